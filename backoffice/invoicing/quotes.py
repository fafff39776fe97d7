"""Quotes (issue 20 part 2): a planned deployment — plan, add-ons, start day, expected usage per
metric, the customer's country and VAT id — priced by the quote engine for the month it starts
in, exactly as the month-end run would invoice the same timeline (the price book and the VAT
settings of the month's last day). The page, the API and the invoice share `line_json`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, Unprocessable
from backoffice.invoicing import engine, queries
from backoffice.usage.models import METRICS
from backoffice.usage.parsing import parse_addons, parse_name, parse_plan, parse_quantity

PLANNED = "planned"  # the deployment name of a quote unless one is given
FIELD_OF_KIND = {"the plan": "plan", "the add-on": "add_ons", "the metric": "usage"}


@dataclass(frozen=True)
class Planned:
    deployment: str
    plan: str
    add_ons: tuple[str, ...]
    start_day: date
    usage: dict[str, Decimal]
    customer_country: str | None
    customer_vat_id: str | None

    @property
    def period(self) -> engine.Period:
        return engine.Period.of(self.start_day)

    def timeline(self) -> engine.Timeline:
        """Created at 00:00 of the start day on the plan, with its add-ons on from then."""
        at = datetime.combine(self.start_day, time(), UTC)
        return engine.Timeline(self.deployment, at, None, [(at, self.plan)], [(at, a, True) for a in self.add_ons])


def parse(data: dict) -> Planned:
    """A planned deployment from a JSON body or a form's fields; BadRequest naming the field."""
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    plan = parse_plan(data.get("plan") or None)
    if not plan:
        raise BadRequest("plan is required: the plan the deployment would run on.", field="plan")
    add_ons = parse_addons(data.get("add_ons") or None)
    start = data.get("start_day") or utcnow().date().isoformat()
    try:
        start_day = date.fromisoformat(start) if isinstance(start, str) and len(start) == 10 else None
    except ValueError:
        start_day = None
    if start_day is None:
        raise BadRequest(f"start_day must be a day written YYYY-MM-DD, not {start!r}.", field="start_day")
    usage = data.get("usage") or {}
    if not isinstance(usage, dict):
        raise BadRequest("usage must be an object of metric → expected quantity.", field="usage")
    expected = {}
    for metric, quantity in usage.items():
        if metric not in METRICS:
            raise BadRequest(f"Unknown metric {metric!r} in usage; known: {', '.join(METRICS)}.", field="usage")
        if isinstance(quantity, float) and not quantity.is_integer():  # a decimal string: 0.1 is not a float's 0.1
            raise BadRequest(f"usage.{metric} must be a decimal string.", field=f"usage.{metric}")
        expected[metric] = parse_quantity(quantity, f"usage.{metric}", prefix=f"usage.{metric}: ")
    country = _text(data.get("customer_country"), "customer_country", 2)
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise BadRequest("customer_country must be a two-letter country code (ISO 3166-1).",
                         field="customer_country")
    deployment = data.get("deployment")
    return Planned(parse_name(deployment, "deployment") if deployment else PLANNED, plan, tuple(sorted(add_ons)),
                   start_day, expected,
                   country.upper() if country else None, _text(data.get("customer_vat_id"), "customer_vat_id", 40))


def _text(value, name: str, length: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string.", field=name)
    value = value.strip()
    if len(value) > length or not (value.isascii() and value.isprintable()):
        raise BadRequest(f"{name} must be at most {length} printable ASCII characters.", field=name)
    return value


def quote(planned: Planned) -> engine.Quote:
    """The engine's lines for the planned deployment's first month; BadRequest naming the plan,
    add-on or metric the price book does not price."""
    period = planned.period
    book = queries.price_book(period.last_day)
    if planned.plan not in book.plans:
        raise Unprocessable(f"Unknown plan {planned.plan!r}: the price book has no price for it.", field="plan")
    for addon in planned.add_ons:
        if addon not in book.addons:
            raise Unprocessable(f"Unknown add-on {addon!r}: the price book has no price for it.", field="add_ons")
    vat = queries.vat_on(period.last_day)
    decision = engine.vat_decision(vat.domestic_countries, vat.domestic_rate, planned.customer_country,
                                   planned.customer_vat_id)
    try:
        lines = engine.price_deployment(planned.timeline(), period, book, planned.usage)
        return engine.total(lines, decision)
    except engine.PricingError as e:
        field = next((f for what, f in FIELD_OF_KIND.items() if what in str(e)), "plan")
        raise Unprocessable(f"Cannot price this quote: {e}.", field=field) from None


# --- one JSON shape for a line, whether quoted or invoiced ----------------------------------

def _number(value: Decimal | None) -> str | None:
    return None if value is None else format(Decimal(value).normalize(), "f")


def _days(days) -> list[list[str]]:
    return [[d if isinstance(d, str) else d.isoformat() for d in run] for run in days]


def line_json(line) -> dict:
    """A quote's engine.Line or an invoice's stored line, in the API's shape (DESIGN "Invoices, one
    list"), with its evidence."""
    return {"kind": line.kind, "deployment": line.deployment, "metric": line.metric,
            "description": line.description, "quantity": _number(line.quantity), "unit": line.unit,
            "unit_price": _number(line.unit_price), "amount": str(engine.cents(line.amount)),
            "price_valid_from": line.price_valid_from.isoformat() if line.price_valid_from else None,
            "days": _days(line.days), "monthly_price": _number(line.monthly_price),
            "used": _number(line.used), "included": _number(line.included)}


def vat_json(rate: Decimal, reason: str, note: str) -> dict:
    return {"rate": _number(rate), "reason": reason, "note": note}


def quote_json(planned: Planned, found: engine.Quote) -> dict:
    return {"period": str(planned.period), "deployment": planned.deployment, "start_day": planned.start_day.isoformat(),
            "currency": found.currency, "lines": [line_json(line) for line in found.lines],
            "subtotal": str(found.subtotal), "tax": str(found.tax), "total": str(found.total),
            "vat": vat_json(found.vat.rate, found.vat.reason, found.vat.note)}
