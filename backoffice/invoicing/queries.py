"""Reads of the price book: the lists an admin edits, the VAT settings of a day, and every price
version as the quote engine reads them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.invoicing import engine
from backoffice.invoicing.models import (
    DEFAULT_DOMESTIC_COUNTRIES,
    DEFAULT_DOMESTIC_RATE,
    DEFAULT_SELLER_COUNTRY,
    AddonPrice,
    InvoicingRun,
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


def runs_page(page: int, page_size: int = 20) -> Page:
    """The month-end runs, newest first."""
    return paginate(sa.select(InvoicingRun).order_by(InvoicingRun.started_at.desc(), InvoicingRun.id.desc()),
                    page, page_size)


def get_entry(kind: Kind, entry_id: int):
    row = db.session.get(kind.model, entry_id)
    if row is None:
        raise NotFound(f"No {kind.singular} with id {entry_id}.")
    return row


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


def price_book(until: date) -> engine.PriceBook:
    """Every version of every price that is valid from `until` or earlier, as the quote engine
    reads them (three queries; the allowances loaded with their plans)."""
    plans = db.session.execute(sa.select(PlanPrice).options(selectinload(PlanPrice.allowances))
                               .where(PlanPrice.valid_from <= until)).scalars()
    addons = db.session.execute(sa.select(AddonPrice).where(AddonPrice.valid_from <= until)).scalars()
    metered = db.session.execute(sa.select(MeteredPrice).where(MeteredPrice.valid_from <= until)).scalars()
    return engine.PriceBook.of(
        plans=[engine.PlanVersion(p.plan, p.name, p.currency, p.monthly_base, p.setup_fee, p.valid_from,
                                  {a.metric: a.included_quantity for a in p.allowances}) for p in plans],
        addons=[engine.AddonVersion(a.addon, a.period, a.price, a.currency, a.valid_from) for a in addons],
        metered=[engine.MeteredVersion(m.metric, m.unit_price, m.currency, m.valid_from) for m in metered])
