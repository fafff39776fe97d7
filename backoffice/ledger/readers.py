"""Stripe payloads as plain data, for every API version since 2016 (DOMAIN §3): the one module
that reads Stripe's objects, for the replayer, the sync, the drift detector and recovery alike.

Stripe changes its object shapes between API versions, and adds new fields to old renderings, so
a field is read by its shape, new-first with the old as the fallback, never by the label. The
fields read have three shapes (boundaries 2020-08-27 and 2025-03-31.basil, see `SHAPE_STARTS`).
An event whose payload lacks what its type needs raises `UnreadablePayload`, naming the field.
Pure: no database, no network.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import orjson

# The labels of the simulator's and localstripe's events (stripe-python 16.1 sends the first).
CURRENT_API_VERSION = "2026-10-28.endive"
LEGACY_API_VERSION = "2017-08-15"

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# Currencies whose Stripe amounts are not in hundredths (https://docs.stripe.com/currencies).
_ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
})
_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

# customer.updated previous_attributes keys that are billing info, by the name DOMAIN uses.
_BILLING_FIELDS = {
    "address": "address",
    "email": "email",
    "name": "name",
    "tax_ids": "tax_ids",
    "tax_info": "tax_ids",
    "business_vat_id": "tax_ids",
}


class MalformedStripeEvent(ValueError):
    """An envelope without the id, type or created time every event has."""


# Below this many minor units, cents scaled to major units are exact (Decimal's default context
# keeps 28 digits).
_EXACT_MINOR = 10**18


# What a Money column holds (Numeric(18, 4): below 10^14), with room for sums of many: an amount
# beyond is not Stripe's (its own limit is 99,999,999 minor units per price) and cannot be stored.
MAX_MINOR = 10**16
MAX_MAJOR = Decimal(10**12)


def _amount(obj: Mapping[str, Any], key: str) -> int | None:
    """An amount in minor units: an integer (Stripe never sends a float) a Money column holds."""
    value = obj.get(key)
    if value is None or (type(value) is int and -MAX_MINOR < value < MAX_MINOR):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and -MAX_MINOR < value < MAX_MINOR:
        return int(value)
    raise UnreadablePayload("", f"data.object.{key}")


def money(value: Decimal | int | str) -> Decimal:
    """Amounts are kept at two places, half up, so equal inputs print identically."""
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)  # rounding positional: a keyword doubles the cost


def _places(currency: str | None) -> int:
    """How many decimal places the minor units of a currency have."""
    code = (currency or "").upper()
    return 0 if code in _ZERO_DECIMAL else 3 if code in _THREE_DECIMAL else 2


def minor_to_major(amount: int | str | Decimal, currency: str | None) -> Decimal:
    """Stripe sends minor units; most currencies have cents, a few have none or three places."""
    return Decimal(amount).scaleb(-_places(currency))


def _minor_money(amount: int, places: int) -> Decimal:
    """`money(minor_to_major(amount, currency))` for an int amount of a currency with `places`."""
    major = Decimal(amount).scaleb(-places)
    if places == 2 and type(amount) is int and -_EXACT_MINOR < amount < _EXACT_MINOR:
        return major  # cents are two places already: quantize(CENT) would return them unchanged
    return major.quantize(CENT, ROUND_HALF_UP)


def monthly_amount(
    unit_amount: int | str | Decimal | None,
    quantity: int,
    interval: str | None,
    interval_count: int | None,
    currency: str | None,
) -> Decimal | None:
    """Normalises a recurring price to a month: yearly ÷ 12, weekly × 52 ÷ 12, daily × 365 ÷ 12,
    every N intervals ÷ N. None when the payload carries no amount (tiered prices), so the
    caller falls back to the catalog."""
    if unit_amount is None:
        return None
    total = minor_to_major(unit_amount, currency) * quantity
    count = interval_count if isinstance(interval_count, int) and interval_count > 0 else 1
    if interval == "year":
        total = total / (12 * count)
    elif interval == "week":
        total = total * 52 / (12 * count)
    elif interval == "day":
        total = total * 365 / (12 * count)
    else:
        total = total / count
    return money(total)


def timestamp(value: Any) -> datetime | None:
    """Stripe times are Unix seconds; we keep aware UTC datetimes. A time no calendar holds
    (infinite, NaN, beyond year 9999) is none."""
    try:
        if type(value) is int:  # the usual case (a bool is not a time: bool is a subclass, not int)
            return datetime.fromtimestamp(value, UTC)  # tz positional: a keyword costs a third more
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return datetime.fromtimestamp(int(value), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # parsed JSON skips the slower ABC check


def _id_of(value: Any) -> str | None:
    """An expandable field is either an id or the expanded object."""
    if type(value) is str:  # the usual case: an id
        return value or None
    if _is_mapping(value):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if type(value) is int:  # the usual case (bool is a subclass of int, not int)
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _decimal(value: Any) -> Decimal | None:
    """A `*_decimal` field: Stripe sends a string of minor units (stripe-python a Decimal)."""
    try:
        found = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return found if found.is_finite() else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict or isinstance(value, Mapping) else {}  # _is_mapping, inlined


def _list(value: Any) -> Sequence[Any]:
    """A Stripe list object (`{"data": [...]}`) or a bare list."""
    if _is_mapping(value):
        value = value.get("data")
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class PriceLine:
    """One subscription item (or schedule-phase item), whatever the API version calls its price."""

    price_id: str | None
    plan_key: str | None
    monthly_amount: Decimal | None  # from the payload only; None → ask the catalog
    currency: str | None
    interval: str | None
    quantity: int
    metered: bool = False
    period_amount: Decimal | None = None  # what one billing period costs (interval_count intervals), as billed
    interval_count: int = 1


@dataclass(frozen=True)
class SchedulePhase:
    lines: tuple[PriceLine, ...]
    currency: str | None
    start: datetime | None
    end: datetime | None

    @property
    def price_id(self) -> str | None:
        return self.lines[0].price_id if self.lines else None

    @property
    def plan_key(self) -> str | None:
        return self.lines[0].plan_key if self.lines else None

    @property
    def monthly_amount(self) -> Decimal | None:
        return _sum_known(self.lines)


def _sum_known(lines: Sequence[PriceLine]) -> Decimal | None:
    amounts = [line.monthly_amount for line in lines if not line.metered]
    if not amounts or any(amount is None for amount in amounts):
        return None
    return money(sum(amounts, ZERO))


@dataclass(frozen=True)
class ParsedEvent:
    """The fields of an event the classifier needs, the same for every API version."""

    event_id: str
    type: str
    api_version: str
    created: datetime
    object_type: str | None
    object_id: str | None
    customer_id: str | None
    subscription_id: str | None
    currency: str | None
    # Subscriptions.
    status: str | None = None
    previous_status: str | None = None
    cancel_at_period_end: bool | None = None
    cancel_changed: bool = False
    previous_cancel_at_period_end: bool | None = None
    lines: tuple[PriceLine, ...] = ()
    previous_lines: tuple[PriceLine, ...] | None = None  # set only when previous_attributes has items
    previous_keys: tuple[str, ...] = ()
    current_period_end: datetime | None = None
    cancellation_reason: str | None = None
    # Subscription schedules.
    schedule_phases: tuple[SchedulePhase, ...] = ()
    schedule_status: str | None = None
    # Invoices and charges.
    invoice_id: str | None = None
    billing_reason: str | None = None
    attempt_count: int | None = None
    charge_id: str | None = None
    # Customers: the billing fields a customer.updated touched (address, email, name, tax_ids).
    customer_touched: tuple[str, ...] = ()

    @property
    def has_previous_attributes(self) -> bool:
        return bool(self.previous_keys)

    @property
    def price_id(self) -> str | None:
        return self.lines[0].price_id if self.lines else None

    @property
    def plan_key(self) -> str | None:
        return self.lines[0].plan_key if self.lines else None

    @property
    def monthly_amount(self) -> Decimal | None:
        return _sum_known(self.lines)

    @property
    def previous_price_id(self) -> str | None:
        return self.previous_lines[0].price_id if self.previous_lines else None

    @property
    def previous_monthly_amount(self) -> Decimal | None:
        return _sum_known(self.previous_lines) if self.previous_lines else None


@dataclass(frozen=True)
class InvoiceAmounts:
    """One invoice's money in major units. `amount_excluding_tax` is what counts as revenue:
    the amount paid minus tax, clamped at zero (then `clamped` is set, a drift warning)."""

    invoice_id: str | None
    currency: str | None
    status: str | None
    billing_reason: str | None
    subscription_id: str | None
    amount_due: Decimal
    amount_paid: Decimal
    subtotal: Decimal
    total: Decimal
    tax: Decimal
    amount_excluding_tax: Decimal
    clamped: bool
    amount_from_credit: Decimal
    created_at: datetime | None
    paid_at: datetime | None


# --------------------------------------------------------------------------------------------
# API versions: a label is read for its date; the payload is read by its shape
# --------------------------------------------------------------------------------------------
SHAPE_2016, SHAPE_2020, SHAPE_2025 = "2016", "2020", "2025"
# The first version of each shape (https://docs.stripe.com/changelog): 2020-08-27 moved schedule
# phases from `plans` to `items` (and items' `plan` gave way to `price`); 2025-03-31.basil moved
# periods onto subscription items, an invoice's subscription under `parent`, its tax into
# `total_taxes`, its lines' price into `pricing` and removed `invoice.charge`.
SHAPE_STARTS = ((date(2025, 3, 31), SHAPE_2025), (date(2020, 8, 27), SHAPE_2020))


_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19  # 19 digits in a row: maybe an integer beyond 64 bits


def parse_payload(body: bytes | str, text: str | None = None, *, exact: bool = True) -> Any:
    """An archived or received Stripe body as JSON: orjson (half the CPU of json for a 3.7 KB
    event), with json wherever the two could differ: orjson refuses some bodies json reads
    (NaN, 1e400, a lone surrogate escape), and reads an integer beyond 64 bits as a float where
    json keeps it exact. 19 digits in a row (a 3 µs check) may be such an integer. The webhook
    and the replay read a body alike, so what the webhook archived the replay can read. Raises
    json.JSONDecodeError (orjson's subclasses it), also for a body nested beyond the stack.
    `exact=False` (the replay) skips the 19-digit check: an integer beyond 64 bits is no amount,
    id or time the readers accept, read exactly or not (8 µs of a 4 KB body's 28)."""
    if not exact:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if exact and _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    if text is None:
        text = body if isinstance(body, str) else raw.decode("utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def api_version_date(label: Any) -> date | None:
    """The date of a label: `2025-03-31.basil`, `2020-08-27; orders_beta=v3` and `2016-07-06`
    all start with it; None for anything else."""
    if not isinstance(label, str) or len(label) < 10:
        return None
    try:
        return date.fromisoformat(label[:10])
    except ValueError:
        return None


def shape_of(label: Any) -> str:
    """Which of the three shapes an `api_version` renders. A label newer than any known, or none
    at all, is read as the newest shape; the readers read every field new-first anyway, so the
    shape only names what an operator sees (Stripe adds new fields to old renderings)."""
    day = api_version_date(label)
    if day is None:
        return SHAPE_2025
    for start, shape in SHAPE_STARTS:
        if day >= start:
            return shape
    return SHAPE_2016


class UnreadablePayload(ValueError):
    """An event whose payload lacks what its type needs (DOMAIN §3): failed, never guessed at."""

    def __init__(self, event_type: str, field: str, api_version: str | None = None) -> None:
        super().__init__(f"{event_type} without {field} (Stripe API version {api_version or 'unknown'})")
        self.event_type = event_type
        self.field = field
        self.api_version = api_version


# --------------------------------------------------------------------------------------------
# Fields, each read new-first with the old shape as the fallback
# --------------------------------------------------------------------------------------------
def plan_key_of(price: Mapping[str, Any]) -> str | None:
    """A plan is a Stripe product (DOMAIN §1): every price of a product, monthly or yearly, in any
    currency, is that plan. A price without a product is a plan of its own."""
    return _id_of(price.get("product")) or _id_of(price.get("id"))


def price_line(price: Any, quantity: int | None = None) -> PriceLine:
    """A price object (2020-08-27 on) or a plan object (before) as a line; an unexpanded id
    leaves the amount to the catalog."""
    quantity = 1 if quantity is None else quantity
    if not _is_mapping(price):
        return PriceLine(_id_of(price), None, None, None, None, quantity)
    recurring = price.get("recurring")
    if _is_mapping(recurring):  # a price
        unit: Any = _amount(price, "unit_amount")
        decimal_key = "unit_amount_decimal"
        interval, count, usage = recurring.get("interval"), recurring.get("interval_count"), recurring.get("usage_type")
    else:  # a plan
        unit = _amount(price, "amount")
        decimal_key = "amount_decimal"
        interval, count, usage = price.get("interval"), price.get("interval_count"), price.get("usage_type")
    if unit is None and isinstance(price.get(decimal_key), str | Decimal):
        unit = _decimal(price[decimal_key])
        if unit is None or not -MAX_MINOR < unit < MAX_MINOR:
            raise UnreadablePayload("", f"data.object.{decimal_key}")
    currency = _upper(price.get("currency"))
    interval = _str(interval)
    count = _int(count)
    monthly = monthly_amount(unit, quantity, interval, count, currency)
    if monthly is not None and not -MAX_MAJOR < monthly < MAX_MAJOR:
        raise UnreadablePayload("", "data.object.quantity" if quantity != 1 else "data.object.unit_amount")
    return PriceLine(
        price_id=_id_of(price.get("id")),
        plan_key=plan_key_of(price),
        monthly_amount=monthly,
        currency=currency,
        interval=interval,
        quantity=quantity,
        metered=usage == "metered",
        period_amount=None if unit is None else money(minor_to_major(unit, currency) * quantity),
        interval_count=count if count and count > 0 else 1,
    )


def item_line(item: Mapping[str, Any]) -> PriceLine:
    """A subscription item or a schedule-phase item: `price` (2020-08-27 on, expanded on
    subscriptions, an id on schedules), else `plan`."""
    price = item.get("price")
    if not _is_mapping(price):
        plan = item.get("plan")
        if _is_mapping(plan) or price is None:
            price = plan if plan is not None else price
    return price_line(price, _int(item.get("quantity")))


def subscription_lines(sub: Mapping[str, Any]) -> tuple[PriceLine, ...]:
    """The items' lines; a subscription of 2016 without items has one `plan` and `quantity`."""
    lines = tuple(item_line(item) for item in _list(sub.get("items")) if _is_mapping(item))
    if not lines and sub.get("plan") is not None:
        lines = (price_line(sub.get("plan"), _int(sub.get("quantity"))),)
    return lines


def previous_subscription_lines(sub: Mapping[str, Any], previous: Mapping[str, Any]) -> tuple[PriceLine, ...] | None:
    """The lines before an update: `previous_attributes.items`, or (2016) its `plan` and
    `quantity`; None when the update did not touch them."""
    if "items" in previous:
        return tuple(item_line(item) for item in _list(previous.get("items")) if _is_mapping(item))
    if "plan" in previous or "quantity" in previous:
        plan = previous.get("plan", sub.get("plan"))
        return (price_line(plan, _int(previous.get("quantity", sub.get("quantity")))),)
    return None


def current_period_end(sub: Mapping[str, Any]) -> datetime | None:
    """On the items since 2025-03-31.basil (the latest of them), on the subscription before."""
    ends = [timestamp(item.get("current_period_end")) for item in _list(sub.get("items")) if _is_mapping(item)]
    ends = [end for end in ends if end is not None]
    return max(ends) if ends else timestamp(sub.get("current_period_end"))


def schedule_phases(schedule: Mapping[str, Any]) -> tuple[SchedulePhase, ...]:
    """Each phase's `items` (2020-08-27 on), else its `plans`."""
    phases = []
    for phase in _list(schedule.get("phases")):
        if not _is_mapping(phase):
            continue
        items = phase.get("items")
        if not isinstance(items, list) or not items:
            items = phase.get("plans") if isinstance(phase.get("plans"), list) else items
        lines = tuple(item_line(item) for item in (items or ()) if _is_mapping(item))
        currency = _upper(phase.get("currency")) or next((ln.currency for ln in lines if ln.currency), None)
        phases.append(SchedulePhase(lines, currency, timestamp(phase.get("start_date")),
                                    timestamp(phase.get("end_date"))))
    return tuple(phases)


def invoice_subscription(inv: Mapping[str, Any]) -> str | None:
    """`parent.subscription_details.subscription` since basil, the top-level `subscription` before."""
    parent = inv.get("parent")
    if parent:
        found = _id_of(_dict(_dict(parent).get("subscription_details")).get("subscription"))
        if found:
            return found
    return _id_of(inv.get("subscription"))


def invoice_tax(inv: Mapping[str, Any]) -> int:
    """Minor units of tax: `total_taxes` since basil, `tax` and `total_tax_amounts` before."""
    taxes = inv.get("total_taxes")
    if isinstance(taxes, list):
        return sum(_amount(_dict(tax), "amount") or 0 for tax in taxes)
    tax = _amount(inv, "tax")
    if tax is not None:
        return tax
    amounts = inv.get("total_tax_amounts")
    if isinstance(amounts, list):
        return sum(_amount(_dict(tax), "amount") or 0 for tax in amounts)
    total, excluding = _amount(inv, "total"), _amount(inv, "total_excluding_tax")
    if total is not None and excluding is not None:
        return total - excluding
    return 0


def invoice_line_price_id(line: Mapping[str, Any]) -> str | None:
    """`pricing.price_details.price` since basil, the line's `price` or `plan` before."""
    details = _dict(_dict(line.get("pricing")).get("price_details"))
    return _id_of(details.get("price")) or _id_of(line.get("price")) or _id_of(line.get("plan"))


def invoice_line_prices(inv: Mapping[str, Any]) -> tuple[str, ...]:
    """The price ids of an invoice's lines, in their order."""
    found = (invoice_line_price_id(line) for line in _list(inv.get("lines")) if _is_mapping(line))
    return tuple(price_id for price_id in found if price_id)


def invoice_charge(inv: Mapping[str, Any]) -> str | None:
    """The charge that paid an invoice: `invoice.charge` before basil; since basil the
    invoice's `payments` (each an InvoicePayment naming its charge), when Stripe includes them."""
    charge = _id_of(inv.get("charge"))
    if charge:
        return charge
    for payment in _list(inv.get("payments")):
        found = _id_of(_dict(_dict(payment).get("payment")).get("charge"))
        if found:
            return found
    return None


def invoice_status(inv: Mapping[str, Any]) -> str | None:
    """`status` (2018 on), else what 2016's `paid` / `forgiven` / `closed` flags said."""
    status = _str(inv.get("status"))
    if status is not None:
        return status
    if inv.get("paid") is True:
        return "paid"
    if inv.get("forgiven") is True:
        return "uncollectible"
    if "paid" in inv or "closed" in inv:
        return "open"
    return None


def invoice_created(inv: Mapping[str, Any]) -> datetime | None:
    """`created`, `date` in 2016."""
    return timestamp(inv.get("created")) or timestamp(inv.get("date"))


def invoice_paid_at(inv: Mapping[str, Any]) -> datetime | None:
    return timestamp(_dict(inv.get("status_transitions")).get("paid_at"))


def _amount_paid(inv: Mapping[str, Any], status: str | None) -> int | None:
    """`amount_paid` (2018-05-21 on); a 2016 invoice paid in full paid its `amount_due`."""
    paid = _amount(inv, "amount_paid")
    if paid is None and status == "paid":
        paid = _amount(inv, "amount_due")
    return paid


def customer_touched(previous: Mapping[str, Any]) -> tuple[str, ...]:
    """The billing fields a customer.updated touched, by DOMAIN's names."""
    return tuple(sorted({_BILLING_FIELDS[k] for k in previous if k in _BILLING_FIELDS}))


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------
# What each event type needs from its data object, besides the object's `object` and `id`.
_OBJECT_OF = {
    "customer.subscription.": "subscription",
    "subscription_schedule.": "subscription_schedule",
    "invoice.": "invoice",
    "charge.": "charge",
    "credit_note.": "credit_note",
    "customer.tax_id.": "tax_id",
    "customer.source.": None,
    "customer.": "customer",
    "payment_method.": "payment_method",
    "price.": "price",
    "plan.": "plan",
}


def _expected_object(event_type: str) -> str | None:
    for prefix, kind in _OBJECT_OF.items():
        if event_type.startswith(prefix):
            return kind
    return None


def read_event(envelope: Mapping[str, Any]) -> ParsedEvent:
    """The fields of an event the classifier needs, whatever its API version. Raises
    MalformedStripeEvent for an envelope without id, type or created time, and UnreadablePayload
    (naming the field) for a payload without what its type needs or with a value the ledger
    cannot store (an amount beyond a Money column, a currency that is not a code, an id no
    text column holds): such an event is poison for its account's batch, so it fails alone."""
    try:
        parsed = _read_event(envelope)
    except UnreadablePayload as exc:
        if exc.event_type:
            raise
        label = envelope.get("api_version")
        raise UnreadablePayload(str(envelope.get("type")), exc.field, label if isinstance(label, str) else None) from None
    _check_storable(parsed)
    return parsed


def _read_event(envelope: Mapping[str, Any]) -> ParsedEvent:
    event_id, event_type = envelope.get("id"), envelope.get("type")
    created = timestamp(envelope.get("created"))
    if not isinstance(event_id, str) or not isinstance(event_type, str) or created is None:
        raise MalformedStripeEvent("An event needs an id, a type and a created time.")
    label = envelope.get("api_version")
    label = label if isinstance(label, str) else ""
    data = _dict(envelope.get("data"))
    obj = _dict(data.get("object"))
    previous = _dict(data.get("previous_attributes"))
    object_type = obj.get("object")
    object_type = object_type if isinstance(object_type, str) else None
    expected = _expected_object(event_type)
    if expected is not None and object_type != expected:
        raise UnreadablePayload(event_type, "data.object", label)
    object_id = _id_of(obj.get("id"))
    if expected is not None and object_id is None:
        raise UnreadablePayload(event_type, "data.object.id", label)
    base: dict[str, Any] = {
        "event_id": event_id,
        "type": event_type,
        "api_version": label,
        "created": created,
        "object_type": object_type,
        "object_id": object_id,
        "customer_id": object_id if object_type == "customer" else _id_of(obj.get("customer")),
        "subscription_id": None,
        "currency": _upper(obj.get("currency")),
        "previous_keys": tuple(sorted(previous)) if previous else (),
    }
    if object_type == "subscription":
        base.update(_subscription_fields(event_type, obj, previous, label))
    elif object_type == "subscription_schedule":
        base.update(_schedule_fields(event_type, obj, label))
    elif object_type == "invoice":
        base.update(_invoice_fields(obj))
    elif object_type == "charge":
        base["charge_id"] = object_id
        base["invoice_id"] = _id_of(obj.get("invoice"))
    elif object_type == "customer":
        base["customer_touched"] = customer_touched(previous)
    elif object_type == "tax_id" and base["customer_id"] is None:
        raise UnreadablePayload(event_type, "data.object.customer", label)
    return ParsedEvent(**base)


_TEXT_FIELDS = ("object_id", "customer_id", "subscription_id", "status", "previous_status", "cancellation_reason",
                "invoice_id", "billing_reason", "charge_id")


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha()


def _storable_text(value: str | None) -> bool:
    """Text a column holds: at most 255 characters, no NUL, valid UTF-8 (no lone surrogate)."""
    if value is None or (len(value) <= 255 and value.isascii() and "\x00" not in value):
        return True
    if len(value) > 255 or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_storable(ev: ParsedEvent) -> None:
    """Every value of the event the ledger and the projections store, checked once here."""
    fail = UnreadablePayload
    if ev.currency is not None and not _is_currency(ev.currency):
        raise fail(ev.type, "data.object.currency", ev.api_version)
    for name in _TEXT_FIELDS:
        if not _storable_text(getattr(ev, name)):
            raise fail(ev.type, f"data.object ({name})", ev.api_version)
    lines = [*ev.lines, *(ev.previous_lines or ()), *(ln for phase in ev.schedule_phases for ln in phase.lines)]
    for line in lines:
        if not (_storable_text(line.price_id) and _storable_text(line.plan_key)):
            raise fail(ev.type, "data.object.items (price id)", ev.api_version)
        if line.currency is not None and not _is_currency(line.currency):
            raise fail(ev.type, "data.object.items (price currency)", ev.api_version)


def storable_line(line: PriceLine) -> bool:
    """Whether a price's ids and currency are values the plans catalog can hold."""
    return _storable_text(line.price_id) and _storable_text(line.plan_key) and (
        line.currency is None or _is_currency(line.currency))


def _subscription_fields(event_type: str, obj: Mapping[str, Any], previous: Mapping[str, Any],
                         label: str) -> dict[str, Any]:
    lines = subscription_lines(obj)
    if not lines and event_type != "customer.subscription.deleted":
        raise UnreadablePayload(event_type, "data.object.items", label)
    cancel = obj.get("cancel_at_period_end")
    cancel = cancel if isinstance(cancel, bool) else None
    previous_cancel = previous.get("cancel_at_period_end")
    previous_cancel = previous_cancel if isinstance(previous_cancel, bool) else None
    currency = _upper(obj.get("currency")) or next((line.currency for line in lines if line.currency), None)
    return {
        "subscription_id": _id_of(obj.get("id")),
        "currency": currency,
        "status": _str(obj.get("status")),
        "previous_status": _str(previous.get("status")),
        "cancel_at_period_end": cancel,
        "previous_cancel_at_period_end": previous_cancel,
        "cancel_changed": previous_cancel is not None and cancel is not None and previous_cancel != cancel,
        "lines": lines,
        "previous_lines": previous_subscription_lines(obj, previous),
        "current_period_end": current_period_end(obj),
        "cancellation_reason": _str(_dict(obj.get("cancellation_details")).get("reason")),
    }


def _schedule_fields(event_type: str, obj: Mapping[str, Any], label: str) -> dict[str, Any]:
    if not isinstance(obj.get("phases"), list):
        raise UnreadablePayload(event_type, "data.object.phases", label)
    phases = schedule_phases(obj)
    currency = next((p.currency for p in reversed(phases) if p.currency), None)
    return {
        "subscription_id": _id_of(obj.get("subscription")) or _id_of(obj.get("released_subscription")),
        "currency": currency,
        "schedule_phases": phases,
        "schedule_status": _str(obj.get("status")),
    }


def _invoice_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "subscription_id": invoice_subscription(obj),
        "invoice_id": _id_of(obj.get("id")),
        "billing_reason": _str(obj.get("billing_reason")),
        "attempt_count": _int(obj.get("attempt_count")),
        "charge_id": invoice_charge(obj),
    }


def invoice_amounts(obj: Mapping[str, Any], api_version: str | None = None,
                    event_type: str = "invoice") -> InvoiceAmounts:
    """One invoice's money in major units, whatever the shape (`api_version` is not needed: the
    fields are read by shape). Raises UnreadablePayload for amounts that are not integers of
    minor units a Money column holds (Stripe never sends floats) or a currency that is not a
    three-letter code."""
    try:
        return _invoice_amounts(obj)
    except UnreadablePayload as exc:
        raise UnreadablePayload(event_type, exc.field, api_version) from None


def _invoice_amounts(obj: Mapping[str, Any]) -> InvoiceAmounts:
    currency = _upper(obj.get("currency"))
    if currency is not None and not _is_currency(currency):
        raise UnreadablePayload("", "data.object.currency")
    places = _places(currency)
    majors: dict[int, Decimal] = {}

    def major(minor: int | None) -> Decimal:
        """Minor units in money, each amount converted once (due, paid and total often agree)."""
        minor = minor or 0
        value = majors.get(minor)
        if value is None:
            value = majors[minor] = _minor_money(minor, places)
        return value

    status = invoice_status(obj)
    amount_paid, total = major(_amount_paid(obj, status)), major(_amount(obj, "total"))
    tax = major(invoice_tax(obj))
    # An unpaid invoice shows what it would earn; a paid one what was actually paid. An invoice
    # with a negative total (a proration credit) earns nothing: Stripe adds it to the customer's
    # credit balance, which later invoices draw on (amount_from_credit).
    base = amount_paid if status == "paid" or amount_paid > 0 else total
    # Negative in minor units, not after rounding: -1 fils is a credit although it shows as -0.00.
    excluding = ZERO if (_amount(obj, "total") or 0) < 0 else base - tax
    clamped = excluding < 0
    starting, ending = _amount(obj, "starting_balance"), _amount(obj, "ending_balance")
    if starting is not None and ending is not None:
        from_credit = max(ending - starting, 0)
    else:
        from_credit = max((_amount(obj, "total") or 0) - (_amount(obj, "amount_due") or 0), 0)
    return InvoiceAmounts(invoice_id=_id_of(obj.get("id")), currency=currency, status=status, billing_reason=_str(obj.get("billing_reason")), subscription_id=invoice_subscription(obj), amount_due=major(_amount(obj, "amount_due")), amount_paid=amount_paid, subtotal=major(_amount(obj, "subtotal")), total=total, tax=tax, amount_excluding_tax=ZERO if clamped else money(excluding), clamped=clamped, amount_from_credit=major(from_credit), created_at=invoice_created(obj), paid_at=invoice_paid_at(obj))


# --------------------------------------------------------------------------------------------
# Live objects (the sync and the drift detector read what Stripe answers now)
# --------------------------------------------------------------------------------------------
PAID_STATUSES = frozenset({"active", "past_due", "unpaid"})
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
FREE_PLAN = "free"


def minor_money(amount: Any, currency: str | None) -> Decimal:
    """Minor units of `currency` in money (0 for anything that is not an integer)."""
    return _minor_money(_int(amount) or 0, _places(currency))


def amount_of(obj: Mapping[str, Any], key: str, event_type: str = "") -> Decimal | None:
    """`obj[key]` in money of the object's currency; None when absent. Raises UnreadablePayload
    for a value that is not an integer a Money column holds."""
    try:
        minor = _amount(obj, key)
    except UnreadablePayload as exc:
        raise UnreadablePayload(event_type, exc.field) from None
    return None if minor is None else _minor_money(minor, _places(_upper(obj.get("currency"))))


@dataclass(frozen=True)
class Price:
    price_id: str
    plan_key: str
    name: str
    monthly: Decimal | None  # None when Stripe gives no amount (a tiered or unknown price)
    interval: str
    currency: str | None


def read_price(item_or_price: Mapping[str, Any] | str | None, catalog: Mapping[str, str] | None = None,
               catalog_amounts: Mapping[str, Decimal] | None = None, quantity: int | None = None) -> Price | None:
    """A subscription item, a schedule-phase item or a bare price/plan object → its monthly price.
    The payload's amount (× quantity) wins over the catalog (DOMAIN §3 "Price"); the plan is the
    catalog's, else the price's product."""
    if not item_or_price:
        return None
    if isinstance(item_or_price, str) or item_or_price.get("object") in ("price", "plan"):
        line = price_line(item_or_price, quantity)
    else:  # an item: its price, else its plan
        line = price_line(_price_of(item_or_price), _int(item_or_price.get("quantity")) if quantity is None
                          else quantity)
    if line.price_id is None:
        return None
    monthly = line.monthly_amount
    if monthly is None and catalog_amounts and line.price_id in catalog_amounts:
        monthly = money(catalog_amounts[line.price_id] * line.quantity)
    plan_key = (catalog or {}).get(line.price_id) or line.plan_key or line.price_id
    name = item_or_price.get("nickname") if _is_mapping(item_or_price) else None
    return Price(price_id=line.price_id, plan_key=str(plan_key)[:255], name=str(name or plan_key)[:100],
                 monthly=monthly, interval=line.interval if line.interval in ("day", "week", "month", "year")
                 else "month", currency=line.currency)


def _price_of(item: Mapping[str, Any]) -> Any:
    price = item.get("price")
    return price if _is_mapping(price) or item.get("plan") is None else item.get("plan")


@dataclass(frozen=True)
class LiveSubscription:
    """Stripe's current subscription of a customer, as Backoffice compares it."""

    id: str | None
    status: str | None
    plan: str
    price: Decimal
    price_id: str | None
    currency: str | None
    cancel_at_period_end: bool
    current_period_end: datetime | None
    started_at: datetime | None
    schedule_id: str | None

    @property
    def is_paid(self) -> bool:
        return self.status in PAID_STATUSES and self.price > ZERO


NO_SUBSCRIPTION = LiveSubscription(None, None, FREE_PLAN, ZERO, None, None, False, None, None, None)


def current_subscription(subscriptions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The one that counts: a live one (not canceled/expired) first, newest first."""
    if not subscriptions:
        return None
    return max(subscriptions, key=lambda s: (s.get("status") not in ENDED_STATUSES, _int(s.get("created")) or 0))


@dataclass(frozen=True)
class ResolvedPrice:
    """Several items as one price: the plan, the amount and whether every amount was known."""

    price_id: str | None
    plan_key: str
    amount: Decimal  # an unknown amount counts 0 here; `known` says whether one was
    currency: str | None
    known: bool
    interval: str | None = None


CatalogLookup = Callable[[str | None], "tuple[str, Decimal, str | None] | None"]


def resolve_lines(lines: Sequence[PriceLine], lookup: CatalogLookup, fallback_plan: str) -> ResolvedPrice | None:
    """DOMAIN §3 "Price", the one rule for events and live objects: the payload's amount first,
    the catalog's next (`lookup(price id)` → plan key, monthly amount, currency), else unknown.
    The price is the sum of the licensed items; the plan is the dearest item's (first on a tie):
    the payload's product, else the catalog's, else the price id."""
    if not lines:
        return None
    total, known, best, best_amount, currency = ZERO, True, None, None, None
    for line in lines:
        entry = lookup(line.price_id)
        amount = line.monthly_amount
        if amount is None and entry is not None and entry[1] is not None:
            amount = money(entry[1] * line.quantity)
        if line.metered:
            amount = ZERO
        elif amount is None:
            amount, known = ZERO, False
        total += amount
        currency = currency or line.currency or (entry[2].upper() if entry and entry[2] else None)
        if best_amount is None or amount > best_amount:
            best, best_amount = (line, entry), amount
    line, entry = best  # type: ignore[misc]
    plan_key = line.plan_key or (entry[0] if entry else None) or line.price_id or fallback_plan
    return ResolvedPrice(line.price_id, plan_key, money(total), currency, known, line.interval)


def _lookup(catalog: Mapping[str, str] | None, amounts: Mapping[str, Decimal] | None) -> CatalogLookup:
    """The sync's catalog (price id → plan key, price id → monthly amount) as a lookup."""
    catalog, amounts = catalog or {}, amounts or {}

    def lookup(price_id: str | None):
        if price_id is None or (price_id not in catalog and price_id not in amounts):
            return None
        return catalog.get(price_id, price_id), amounts.get(price_id), None

    return lookup


def _live_price(price: ResolvedPrice | None) -> Price | None:
    if price is None or price.price_id is None:
        return None
    return Price(price.price_id, str(price.plan_key)[:255], str(price.plan_key)[:100],
                 price.amount if price.known else None,
                 price.interval if price.interval in ("day", "week", "month", "year") else "month", price.currency)


def read_subscription(sub: Mapping[str, Any] | None, catalog: Mapping[str, str] | None = None,
                      catalog_amounts: Mapping[str, Decimal] | None = None) -> LiveSubscription:
    if not sub:
        return NO_SUBSCRIPTION
    price = _live_price(resolve_lines(subscription_lines(sub), _lookup(catalog, catalog_amounts), FREE_PLAN))
    status = _str(sub.get("status"))
    paid = status in PAID_STATUSES
    currency = _upper(sub.get("currency")) or (price.currency if price else None)
    return LiveSubscription(
        id=_id_of(sub.get("id")),
        status=status,
        plan=price.plan_key if (price and paid) else FREE_PLAN,
        price=(price.monthly or ZERO) if (price and paid) else ZERO,
        price_id=price.price_id if price else None,
        currency=currency,
        cancel_at_period_end=sub.get("cancel_at_period_end") is True and paid,
        current_period_end=current_period_end(sub),
        started_at=timestamp(sub.get("start_date")) or timestamp(sub.get("created")),
        schedule_id=_id_of(sub.get("schedule")),
    )


@dataclass(frozen=True)
class ScheduledChange:
    plan: str
    price: Decimal | None  # None: no price known for it (ScheduledPriceMissing)
    price_id: str | None
    starts_at: datetime | None


def read_schedule(schedule: Mapping[str, Any] | None, current_plan: str, catalog: Mapping[str, str] | None = None,
                  catalog_amounts: Mapping[str, Decimal] | None = None) -> ScheduledChange | None:
    """The plan a schedule's last phase moves to (≥ 2 phases, still active), or None."""
    if not schedule or schedule.get("status") in ("released", "canceled", "completed"):
        return None
    phases = schedule_phases(schedule)
    if len(phases) < 2 or not phases[-1].lines:
        return None
    last = phases[-1]
    price = _live_price(resolve_lines(last.lines, _lookup(catalog, catalog_amounts), FREE_PLAN))
    if price is None:
        return ScheduledChange("unknown", None, None, last.start)
    if price.plan_key == current_plan:
        return None
    return ScheduledChange(price.plan_key, price.monthly, price.price_id, last.start)


def schedule_price_ids(schedule: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Every price a schedule names (Stripe's schedules name prices by id only)."""
    if not schedule:
        return ()
    return tuple(line.price_id for phase in schedule_phases(schedule) for line in phase.lines if line.price_id)


@dataclass(frozen=True)
class LiveInvoice:
    """A Stripe invoice as a payment transaction (DOMAIN §1: one per Stripe invoice)."""

    id: str
    number: str | None
    subscription_id: str | None
    status: str
    date: datetime
    currency: str
    amount: Decimal
    amount_excluding_tax: Decimal
    tax_amount: Decimal
    invoice_total: Decimal
    amount_from_credit: Decimal
    invoice_url: str | None
    charge_id: str | None
    price: Price | None
    clamped: bool  # Stripe's amount excluding tax was negative and was stored as 0


def _transaction_status(inv: Mapping[str, Any], status: str | None) -> str:
    if status == "paid":
        return "succeeded"
    if status in ("void", "uncollectible", "draft"):
        return status
    if (_int(inv.get("attempt_count")) or 0) > 0:
        return "failed"
    return "open"


def read_invoice(inv: Mapping[str, Any], catalog: Mapping[str, str] | None = None) -> LiveInvoice:
    """A live invoice, with the money of `invoice_amounts` (the replay's projection reads the same)."""
    amounts = invoice_amounts(inv)
    currency = amounts.currency or ""
    lines = [line for line in _list(inv.get("lines")) if _is_mapping(line)]
    price = None
    if lines:
        price_id = invoice_line_price_id(lines[0])
        obj = lines[0].get("price") if _is_mapping(lines[0].get("price")) else lines[0].get("plan")
        price = read_price(obj if _is_mapping(obj) else price_id, catalog, quantity=_int(lines[0].get("quantity")))
    starting = _int(inv.get("starting_balance")) or 0  # negative: the customer's credit
    total = max(amounts.total, ZERO)
    credit = min(minor_money(-starting, currency), total) if starting < 0 else ZERO
    return LiveInvoice(
        id=str(inv["id"]),
        number=_str(inv.get("number")),
        subscription_id=amounts.subscription_id,
        status=_transaction_status(inv, amounts.status),
        date=amounts.paid_at or amounts.created_at,  # type: ignore[arg-type]
        currency=currency,
        amount=amounts.amount_paid,
        amount_excluding_tax=amounts.amount_excluding_tax,
        tax_amount=max(amounts.tax, ZERO),
        invoice_total=total,
        amount_from_credit=credit,
        invoice_url=_str(inv.get("hosted_invoice_url")),
        charge_id=invoice_charge(inv),
        price=price,
        clamped=amounts.clamped,
    )


# --------------------------------------------------------------------------------------------
# One event, two renderings
# --------------------------------------------------------------------------------------------
def event_meaning(envelope: Mapping[str, Any]) -> tuple | None:
    """What an event says, the same in every shape it is rendered in: its parsed fields (the
    label aside) and, for an invoice, its money. None when it cannot be read."""
    try:
        parsed = read_event(envelope)
        obj = _dict(_dict(envelope.get("data")).get("object"))
        money_read = invoice_amounts(obj) if parsed.object_type == "invoice" else None
    except (UnreadablePayload, MalformedStripeEvent):
        return None
    said = {name: value for name, value in parsed.__dict__.items() if name != "api_version"}
    return tuple(sorted(said.items())), money_read


def same_event(stored: Mapping[str, Any], received: Mapping[str, Any]) -> bool:
    """Whether two bodies of one event id say the same thing. Stripe renders an event at the
    version of the endpoint that receives it (a pinned endpoint beside the account's default, and
    `events.list` at the event's own version), so bodies of different versions are compared by
    what they say; bodies of one version by their type, time and data."""
    if stored.get("api_version") == received.get("api_version"):
        return [stored.get(k) for k in ("type", "created", "data")] == \
            [received.get(k) for k in ("type", "created", "data")]
    said = event_meaning(stored)
    return said is not None and said == event_meaning(received)


def reversed_excluding_tax(row: Mapping[str, Any]) -> Decimal | None:
    """What a credit note or a refund of a payment takes back from net revenue, ex-VAT (DOMAIN §3):
    the credited amount (else the refunded one) less its VAT share, pro rata to the invoice's
    ex-VAT and VAT amounts, in the currency's minor units (half up), never more than the invoice's
    ex-VAT; all of it when the amount is unknown. None when nothing reversed the payment. `row`:
    a payment transaction's columns by name."""
    if row["credit_noted_at"] is not None or row["credit_note_url"] is not None:
        taken = row["credit_note_amount"]
    elif row["refunded_at"] is not None:
        taken = row["refund_amount"]
    else:
        return None
    kept = row["amount_excluding_tax"]
    if kept is None:  # no invoice amounts yet: nothing to take back
        return None
    whole = kept + (row["tax_amount"] or ZERO)
    if taken is None or whole <= 0:
        return kept
    share = (Decimal(taken) * kept / whole).quantize(Decimal(1).scaleb(-_places(row["currency"])), ROUND_HALF_UP)
    return max(ZERO, min(kept, share))
