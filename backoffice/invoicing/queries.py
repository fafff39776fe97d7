"""Reads of the price book: the lists an admin edits and the prices valid on a day."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.invoicing.models import (
    DEFAULT_DOMESTIC_COUNTRIES,
    DEFAULT_DOMESTIC_RATE,
    DEFAULT_SELLER_COUNTRY,
    AddonPrice,
    MeteredPrice,
    PlanPrice,
    VatSetting,
)
from backoffice.invoicing.pricebook import Kind
from backoffice.pagination import Page, paginate


def entries_page(kind: Kind, page: int, page_size: int = 50) -> Page:
    model = kind.model
    order = [getattr(model, kind.key)] if kind.key else []
    stmt = sa.select(model).order_by(*order, model.valid_from.desc(), model.id)
    return paginate(stmt, page, page_size)


def get_entry(kind: Kind, entry_id: int):
    row = db.session.get(kind.model, entry_id)
    if row is None:
        raise NotFound(f"No {kind.singular} with id {entry_id}.")
    return row


def _latest_per_key(model, key_column, day: date):
    """Rows valid on `day`: per key, the one with the latest valid_from <= day (one query)."""
    rn = sa.func.row_number().over(partition_by=key_column, order_by=model.valid_from.desc()).label("rn")
    sub = sa.select(model.id, rn).where(model.valid_from <= day).subquery()
    return list(db.session.execute(
        sa.select(model).join(sub, sub.c.id == model.id).where(sub.c.rn == 1).order_by(key_column)
    ).scalars())


@dataclass(frozen=True)
class Vat:
    seller_country: str
    domestic_countries: tuple[str, ...]
    domestic_rate: Decimal  # percent


def vat_on(day: date) -> Vat:
    row = db.session.execute(
        sa.select(VatSetting).where(VatSetting.valid_from <= day).order_by(VatSetting.valid_from.desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        return Vat(DEFAULT_SELLER_COUNTRY, tuple(DEFAULT_DOMESTIC_COUNTRIES.split(",")), DEFAULT_DOMESTIC_RATE)
    return Vat(row.seller_country, tuple(row.domestic_countries.split(",")), row.domestic_rate)


@dataclass(frozen=True)
class PriceBook:
    """Every price valid on one day: what the quote engine prices a month with."""

    day: date
    plans: dict[str, PlanPrice]
    addons: dict[str, AddonPrice]
    metered: dict[str, MeteredPrice]
    vat: Vat


def price_book_on(day: date) -> PriceBook:
    return PriceBook(
        day=day,
        plans={p.plan: p for p in _latest_per_key(PlanPrice, PlanPrice.plan, day)},
        addons={a.addon: a for a in _latest_per_key(AddonPrice, AddonPrice.addon, day)},
        metered={m.metric: m for m in _latest_per_key(MeteredPrice, MeteredPrice.metric, day)},
        vat=vat_on(day),
    )
