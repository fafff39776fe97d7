"""The price book's kinds of entry and their form fields: one description drives the forms, the
parsing of what an admin typed, and the audit snapshots. Pure: no database."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from backoffice.errors import BadRequest, NotFound
from backoffice.i18n import parse_decimal_input
from backoffice.invoicing.models import ADDON_PERIODS, AddonPrice, MeteredPrice, PlanPrice, VatSetting
from backoffice.usage.models import METRICS

CENT = Decimal("0.01")
KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Field:
    name: str
    label: object
    type: str  # key | text | money | unit_price | quantity | rate | date | currency | country | countries | choice
    choices: tuple = ()
    required: bool = True


@dataclass(frozen=True)
class Kind:
    slug: str
    model: type
    title: object
    singular: object
    key: str  # the column versions are grouped by ('' for VAT: one series)
    fields: tuple[Field, ...]


KINDS = {
    "plans": Kind("plans", PlanPrice, _l("Deployment plans"), _l("deployment plan"), "plan", (
        Field("plan", _l("Plan key"), "key"),
        Field("name", _l("Name"), "text"),
        Field("monthly_base", _l("Monthly base fee"), "money"),
        Field("setup_fee", _l("Setup fee (month of creation)"), "money"),
        Field("currency", _l("Currency"), "currency"),
        Field("valid_from", _l("Valid from"), "date"),
        *(Field(f"included_{m}", _l("Included %(metric)s per month", metric=m), "quantity", required=False)
          for m in METRICS),
    )),
    "add-ons": Kind("add-ons", AddonPrice, _l("Add-on prices"), _l("add-on price"), "addon", (
        Field("addon", _l("Add-on id"), "key"),
        Field("period", _l("Priced per"), "choice", ADDON_PERIODS),
        Field("price", _l("Price"), "unit_price"),
        Field("currency", _l("Currency"), "currency"),
        Field("valid_from", _l("Valid from"), "date"),
    )),
    "metered": Kind("metered", MeteredPrice, _l("Metered unit prices"), _l("metered unit price"), "metric", (
        Field("metric", _l("Metric"), "choice", METRICS),
        Field("unit_price", _l("Unit price"), "unit_price"),
        Field("currency", _l("Currency"), "currency"),
        Field("valid_from", _l("Valid from"), "date"),
    )),
    "vat": Kind("vat", VatSetting, _l("VAT settings"), _l("VAT setting"), "", (
        Field("seller_country", _l("Seller country"), "country"),
        Field("domestic_countries", _l("Domestic countries (comma-separated)"), "countries"),
        Field("domestic_rate", _l("Domestic VAT rate (%)"), "rate"),
        Field("valid_from", _l("Valid from"), "date"),
    )),
}


def get_kind(slug: str) -> Kind:

    if slug not in KINDS:
        raise NotFound(_("No price book section %(slug)s.", slug=repr(slug)))
    return KINDS[slug]


def _decimal(raw: str, field: Field, places: int) -> Decimal:
    try:
        value = parse_decimal_input(raw)
    except InvalidOperation:
        raise BadRequest(_("%(label)s must be a number like 49.00 (or 49,00).", label=field.label), field=field.name) from None
    if not value.is_finite() or value < 0:
        raise BadRequest(_("%(label)s must not be negative.", label=field.label), field=field.name)
    if value.as_tuple().exponent < -places:
        raise BadRequest(_("%(label)s may have at most %(places)s decimals.", label=field.label, places=places), field=field.name)
    if value >= Decimal(100000000000):
        raise BadRequest(_("%(label)s is too large.", label=field.label), field=field.name)
    return value


def parse_form(kind: Kind, form) -> dict:
    """What an admin typed, typed and checked; BadRequest names the field."""
    out: dict = {}
    for f in kind.fields:
        raw = (form.get(f.name) or "").strip()
        if not raw:
            if f.required:
                raise BadRequest(_("%(label)s is required.", label=f.label), field=f.name)
            out[f.name] = None
            continue
        if f.type == "key":
            if not KEY_RE.match(raw):
                raise BadRequest(_("%(label)s may hold letters, digits, '.', '_', ':' and '-' (at most 64).", label=f.label),
                                 field=f.name)
            out[f.name] = raw
        elif f.type == "text":
            if len(raw) > 100:
                raise BadRequest(_("%(label)s may have at most 100 characters.", label=f.label), field=f.name)
            out[f.name] = raw
        elif f.type == "money":
            out[f.name] = _decimal(raw, f, 2)
        elif f.type == "unit_price":
            out[f.name] = _decimal(raw, f, 6)
        elif f.type == "quantity":
            out[f.name] = _decimal(raw, f, 4)
        elif f.type == "rate":
            value = _decimal(raw, f, 4)
            if value >= 100:
                raise BadRequest(_("%(label)s must be below 100.", label=f.label), field=f.name)
            out[f.name] = value
        elif f.type == "date":
            try:
                out[f.name] = date.fromisoformat(raw)
            except ValueError:
                raise BadRequest(_("%(label)s must be a date like 2026-01-01.", label=f.label), field=f.name) from None
        elif f.type == "currency":
            raw = raw.upper()
            if not re.fullmatch(r"[A-Z]{3}", raw):
                raise BadRequest(_("%(label)s must be a three-letter code like CHF.", label=f.label), field=f.name)
            out[f.name] = raw
        elif f.type == "country":
            raw = raw.upper()
            if not COUNTRY_RE.match(raw):
                raise BadRequest(_("%(label)s must be a two-letter code like CH.", label=f.label), field=f.name)
            out[f.name] = raw
        elif f.type == "countries":
            codes = [c.strip().upper() for c in raw.split(",") if c.strip()]
            if not codes or not all(COUNTRY_RE.match(c) for c in codes):
                raise BadRequest(_("%(label)s must be two-letter codes separated by commas, like CH,LI.", label=f.label),
                                 field=f.name)
            out[f.name] = ",".join(codes)
        elif f.type == "choice":
            if raw not in f.choices:
                raise BadRequest(_("%(label)s must be one of %(choices)s.", label=f.label, choices=", ".join(f.choices)), field=f.name)
            out[f.name] = raw
    return out


def form_values(kind: Kind, row) -> dict:
    """A stored row as the strings its form shows."""
    values = {}
    for f in kind.fields:
        if f.name.startswith("included_"):
            metric = f.name.removeprefix("included_")
            value = next((a.included_quantity for a in row.allowances if a.metric == metric), None)
        else:
            value = getattr(row, f.name)
        if isinstance(value, Decimal):
            value = str(value.quantize(CENT)) if f.type == "money" else format(value.normalize(), "f")
        values[f.name] = "" if value is None else str(value)
    return values


def snapshot(kind: Kind, row) -> dict:
    """A JSON-able picture of a row for the audit log (before/after)."""
    return {"id": row.id, **form_values(kind, row)}
