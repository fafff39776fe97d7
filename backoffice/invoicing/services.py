"""Admin changes to the price book; each is audited with before and after."""
from __future__ import annotations

import sqlalchemy as sa

from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.invoicing.models import PlanAllowance, PlanPrice
from backoffice.invoicing.pricebook import Kind, snapshot
from backoffice.invoicing.queries import get_entry
from backoffice.operators.models import Operator
from backoffice.operators.services import audit


def _apply(kind: Kind, row, values: dict) -> None:
    for name, value in values.items():
        if not name.startswith("included_"):
            setattr(row, name, value)
    if isinstance(row, PlanPrice):
        wanted = {n.removeprefix("included_"): v for n, v in values.items()
                  if n.startswith("included_") and v is not None}
        row.allowances = [a for a in row.allowances if a.metric in wanted]
        for a in row.allowances:
            a.included_quantity = wanted.pop(a.metric)
        row.allowances.extend(PlanAllowance(metric=m, included_quantity=q) for m, q in sorted(wanted.items()))


def _check_unique(kind: Kind, values: dict, exclude_id: int | None) -> None:
    model = kind.model
    stmt = sa.select(model.id).where(model.valid_from == values["valid_from"])
    if kind.key:
        stmt = stmt.where(getattr(model, kind.key) == values[kind.key])
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if db.session.execute(stmt).first():
        raise BadRequest(f"A {kind.singular} for this key is already valid from {values['valid_from']}; "
                         "edit that one or pick another date.", field="valid_from")


def create_entry(kind: Kind, values: dict, actor: Operator):
    _check_unique(kind, values, None)
    row = kind.model()
    _apply(kind, row, values)
    db.session.add(row)
    db.session.flush()
    audit(actor, f"price_book.{kind.slug}.create", kind.model.__tablename__, row.id, after=snapshot(kind, row))
    db.session.commit()
    return row


def update_entry(kind: Kind, entry_id: int, values: dict, actor: Operator):
    row = get_entry(kind, entry_id)
    _check_unique(kind, values, entry_id)
    before = snapshot(kind, row)
    _apply(kind, row, values)
    db.session.flush()
    audit(actor, f"price_book.{kind.slug}.update", kind.model.__tablename__, row.id, before=before,
          after=snapshot(kind, row))
    db.session.commit()
    return row


def delete_entry(kind: Kind, entry_id: int, actor: Operator) -> None:
    row = get_entry(kind, entry_id)
    before = snapshot(kind, row)
    db.session.delete(row)
    audit(actor, f"price_book.{kind.slug}.delete", kind.model.__tablename__, entry_id, before=before)
    db.session.commit()
