"""Stripe payload readers, one per supported `api_version` (DOMAIN §3).

Stripe changes its object shapes between API versions (items carry `price` today, `plan` in 2017;
an invoice names its subscription under `parent` today, at the top level in 2017). The classifier
must not care, so each reader turns an event envelope into the same plain `ParsedEvent`. A future
API version is a new reader here, not a change to the state machine. Pure: no database, no network.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

_T = TypeVar("_T")

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


class UnsupportedStripeApiVersion(Exception):
    """An event whose payload shape no reader knows: it must not be replayed (DOMAIN §3)."""

    def __init__(self, version: str | None) -> None:
        super().__init__(f"Unsupported Stripe API version: {version!r}")
        self.version = version


class MalformedStripeEvent(ValueError):
    """An envelope without the id, type or created time every event has."""


# Below this many minor units, cents scaled to major units are exact (Decimal's default context
# keeps 28 digits).
_EXACT_MINOR = 10**18


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
    """Stripe times are Unix seconds; we keep aware UTC datetimes."""
    if type(value) is int:  # the usual case (a bool is not a time: bool is a subclass, not int)
        return datetime.fromtimestamp(value, UTC)  # tz positional: a keyword costs a third more
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(int(value), UTC)


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


def _dict(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict or isinstance(value, Mapping) else {}  # _is_mapping, inlined


def _list(value: Any) -> Sequence[Any]:
    """A Stripe list object (`{"data": [...]}`) or a bare list."""
    if _is_mapping(value):
        value = value.get("data")
    return value if isinstance(value, list) else []


_FrozenLayout = tuple[dict[str, Any], frozenset[str], str]
_FROZEN_LAYOUTS: dict[type, _FrozenLayout] = {}


def _frozen_layout(cls: type) -> _FrozenLayout:
    """Every field of `cls` in order with its default (None if it has none), the fields without
    a default, and the first field."""
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or any(
            not f.init or f.default_factory is not MISSING for f in fields(cls)):
        raise TypeError(f"{cls.__name__} needs its own __init__")
    layout = {f.name: None if f.default is MISSING else f.default for f in fields(cls)}
    required = frozenset(f.name for f in fields(cls) if f.default is MISSING)
    _FROZEN_LAYOUTS[cls] = layout, required, fields(cls)[0].name
    return _FROZEN_LAYOUTS[cls]


def build_frozen(cls: type[_T], values: Mapping[str, Any]) -> _T:
    """`cls(**values)` for the frozen dataclasses built once or more per replayed event, at about a
    third of the cost: a frozen __init__ sets each field through object.__setattr__, this fills the
    new instance's __dict__ at once, with the same entries in the same order. Unknown or missing
    fields raise TypeError as the constructor would; classes with __post_init__, init=False fields
    or default factories are refused (they need their __init__)."""
    layout, required, first = _FROZEN_LAYOUTS.get(cls) or _frozen_layout(cls)
    instance = object.__new__(cls)
    state = instance.__dict__
    state[first] = None  # not empty, the dict keeps sharing its keys with the other instances'
    state.update(layout)
    state.update(values)
    if len(state) != len(layout) or not values.keys() >= required:
        raise TypeError(f"{cls.__name__} takes {', '.join(layout)}; got {', '.join(values)}")
    return instance


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
    def previous_plan_key(self) -> str | None:
        return self.previous_lines[0].plan_key if self.previous_lines else None

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


class StripeReader:
    """Reads the parts of a payload every supported API version shares; subclasses read the rest."""

    api_version: str = ""

    # -- envelope ---------------------------------------------------------------------------
    def read(self, envelope: Mapping[str, Any]) -> ParsedEvent:
        event_id, event_type = envelope.get("id"), envelope.get("type")
        created = timestamp(envelope.get("created"))
        if not isinstance(event_id, str) or not isinstance(event_type, str) or created is None:
            raise MalformedStripeEvent("An event needs an id, a type and a created time.")
        data = _dict(envelope.get("data"))
        obj = _dict(data.get("object"))
        previous = _dict(data.get("previous_attributes"))
        object_type = obj.get("object")
        if not isinstance(object_type, str):
            object_type = None
        object_id = _id_of(obj.get("id"))
        base: dict[str, Any] = {
            "event_id": event_id,
            "type": event_type,
            "api_version": self.api_version,
            "created": created,
            "object_type": object_type,
            "object_id": object_id,
            "customer_id": object_id if object_type == "customer" else _id_of(obj.get("customer")),
            "subscription_id": None,
            "currency": _upper(obj.get("currency")),
            "previous_keys": tuple(sorted(previous)) if previous else (),
        }
        if object_type == "subscription":
            base.update(self._subscription_fields(obj, previous))
        elif object_type == "subscription_schedule":
            base.update(self._schedule_fields(obj))
        elif object_type == "invoice":
            base.update(self._invoice_fields(obj))
        elif object_type == "charge":
            base["charge_id"] = object_id
            base["invoice_id"] = _id_of(obj.get("invoice"))
        elif object_type == "customer":
            base["customer_touched"] = tuple(sorted({_BILLING_FIELDS[k] for k in previous if k in _BILLING_FIELDS}))
        return build_frozen(ParsedEvent, base)

    # -- subscriptions ----------------------------------------------------------------------
    def _subscription_fields(self, obj: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
        lines = self.subscription_lines(obj)
        cancel = obj.get("cancel_at_period_end")
        cancel = cancel if isinstance(cancel, bool) else None
        previous_cancel = previous.get("cancel_at_period_end")
        previous_cancel = previous_cancel if isinstance(previous_cancel, bool) else None
        currency = _upper(obj.get("currency")) or next((line.currency for line in lines if line.currency), None)
        return {
            "subscription_id": _id_of(obj.get("id")),
            "currency": currency,
            "status": obj.get("status") if isinstance(obj.get("status"), str) else None,
            "previous_status": previous.get("status") if isinstance(previous.get("status"), str) else None,
            "cancel_at_period_end": cancel,
            "previous_cancel_at_period_end": previous_cancel,
            "cancel_changed": previous_cancel is not None and cancel is not None and previous_cancel != cancel,
            "lines": lines,
            "previous_lines": self.previous_subscription_lines(obj, previous),
            "current_period_end": self.current_period_end(obj),
            "cancellation_reason": _str(_dict(obj.get("cancellation_details")).get("reason")),
        }

    def subscription_lines(self, obj: Mapping[str, Any]) -> tuple[PriceLine, ...]:
        return tuple(self.item_line(item) for item in _list(obj.get("items")) if _is_mapping(item))

    def previous_subscription_lines(
        self, obj: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> tuple[PriceLine, ...] | None:
        if "items" not in previous:
            return None
        return self.subscription_lines(previous)

    def item_line(self, item: Mapping[str, Any]) -> PriceLine:  # pragma: no cover - abstract
        raise NotImplementedError

    def current_period_end(self, obj: Mapping[str, Any]) -> datetime | None:  # pragma: no cover
        raise NotImplementedError

    # -- schedules ---------------------------------------------------------------------------
    def _schedule_fields(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        phases = []
        for phase in obj.get("phases") or []:
            if not _is_mapping(phase):
                continue
            lines = tuple(self.phase_line(item) for item in self.phase_items(phase) if _is_mapping(item))
            currency = _upper(phase.get("currency")) or next((ln.currency for ln in lines if ln.currency), None)
            phases.append(SchedulePhase(lines, currency, timestamp(phase.get("start_date")),
                                        timestamp(phase.get("end_date"))))
        currency = next((p.currency for p in reversed(phases) if p.currency), None)
        return {
            "subscription_id": _id_of(obj.get("subscription")) or _id_of(obj.get("released_subscription")),
            "currency": currency,
            "schedule_phases": tuple(phases),
            "schedule_status": _str(obj.get("status")),
        }

    def phase_items(self, phase: Mapping[str, Any]) -> Sequence[Any]:
        return phase.get("items") or []

    def phase_line(self, item: Mapping[str, Any]) -> PriceLine:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- invoices ----------------------------------------------------------------------------
    def _invoice_fields(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "subscription_id": self.invoice_subscription(obj),
            "invoice_id": _id_of(obj.get("id")),
            "billing_reason": _str(obj.get("billing_reason")),
            "attempt_count": _int(obj.get("attempt_count")),
        }

    def invoice_subscription(self, obj: Mapping[str, Any]) -> str | None:  # pragma: no cover
        raise NotImplementedError

    def invoice_tax(self, obj: Mapping[str, Any]) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def invoice_amounts(self, obj: Mapping[str, Any]) -> InvoiceAmounts:
        currency = _upper(obj.get("currency"))
        places = _places(currency)
        majors: dict[int, Decimal] = {}

        def major(minor: int | None) -> Decimal:
            """Minor units in money, each amount converted once (due, paid and total often agree)."""
            minor = minor or 0
            value = majors.get(minor)
            if value is None:
                value = majors[minor] = _minor_money(minor, places)
            return value

        amount_paid, total = major(_int(obj.get("amount_paid"))), major(_int(obj.get("total")))
        tax = major(self.invoice_tax(obj))
        status = _str(obj.get("status"))
        # An unpaid invoice shows what it would earn; a paid one what was actually paid.
        base = amount_paid if status == "paid" or amount_paid > 0 else total
        excluding = base - tax
        clamped = excluding < 0
        starting, ending = _int(obj.get("starting_balance")), _int(obj.get("ending_balance"))
        if starting is not None and ending is not None:
            from_credit = max(ending - starting, 0)
        else:
            from_credit = max((_int(obj.get("total")) or 0) - (_int(obj.get("amount_due")) or 0), 0)
        transitions = _dict(obj.get("status_transitions"))
        return build_frozen(InvoiceAmounts, {
            "invoice_id": _id_of(obj.get("id")),
            "currency": currency,
            "status": status,
            "billing_reason": _str(obj.get("billing_reason")),
            "subscription_id": self.invoice_subscription(obj),
            "amount_due": major(_int(obj.get("amount_due"))),
            "amount_paid": amount_paid,
            "subtotal": major(_int(obj.get("subtotal"))),
            "total": total,
            "tax": tax,
            "amount_excluding_tax": ZERO if clamped else money(excluding),
            "clamped": clamped,
            "amount_from_credit": major(from_credit),
            "created_at": timestamp(obj.get("created")),
            "paid_at": timestamp(transitions.get("paid_at")),
        })


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class CurrentReader(StripeReader):
    """2026-10-28.endive: items carry `price`; periods live on items; invoices name their
    subscription under `parent.subscription_details`; taxes are the `total_taxes` list."""

    api_version = CURRENT_API_VERSION

    def item_line(self, item: Mapping[str, Any]) -> PriceLine:
        return self._price_line(item.get("price"), _int(item.get("quantity")))

    def phase_line(self, item: Mapping[str, Any]) -> PriceLine:
        return self._price_line(item.get("price"), _int(item.get("quantity")))

    def _price_line(self, price: Any, quantity: int | None) -> PriceLine:
        quantity = 1 if quantity is None else quantity
        if not _is_mapping(price):  # an unexpanded id: the catalog knows the rest
            return PriceLine(_id_of(price), None, None, None, None, quantity)
        recurring = _dict(price.get("recurring"))
        currency = _upper(price.get("currency"))
        interval = _str(recurring.get("interval"))
        unit = _int(price.get("unit_amount"))
        if unit is None and isinstance(price.get("unit_amount_decimal"), str):
            unit = Decimal(price["unit_amount_decimal"])
        return PriceLine(
            price_id=_id_of(price.get("id")),
            plan_key=_id_of(price.get("product")),
            monthly_amount=monthly_amount(unit, quantity, interval, _int(recurring.get("interval_count")), currency),
            currency=currency,
            interval=interval,
            quantity=quantity,
            metered=recurring.get("usage_type") == "metered",
        )

    def current_period_end(self, obj: Mapping[str, Any]) -> datetime | None:
        ends = [timestamp(item.get("current_period_end")) for item in _list(obj.get("items"))
                if _is_mapping(item)]
        ends = [end for end in ends if end is not None]
        return max(ends) if ends else timestamp(obj.get("current_period_end"))

    def invoice_subscription(self, obj: Mapping[str, Any]) -> str | None:
        details = _dict(_dict(obj.get("parent")).get("subscription_details"))
        return _id_of(details.get("subscription"))

    def invoice_tax(self, obj: Mapping[str, Any]) -> int:
        taxes = obj.get("total_taxes")
        if isinstance(taxes, list):
            return sum(_int(_dict(tax).get("amount")) or 0 for tax in taxes) if taxes else 0
        if _int(taxes) is not None:
            return _int(taxes) or 0
        total, excluding = _int(obj.get("total")), _int(obj.get("total_excluding_tax"))
        if total is not None and excluding is not None:
            return total - excluding
        return 0


class LegacyReader(StripeReader):
    """2017-08-15 (what localstripe emits): items carry `plan` (its `amount`), the period is on
    the subscription, the invoice's `subscription` is top level and its tax is `tax`."""

    api_version = LEGACY_API_VERSION

    def item_line(self, item: Mapping[str, Any]) -> PriceLine:
        return self._plan_line(item.get("plan") or item.get("price"), _int(item.get("quantity")))

    def phase_line(self, item: Mapping[str, Any]) -> PriceLine:
        return self._plan_line(item.get("plan") or item.get("price"), _int(item.get("quantity")))

    def phase_items(self, phase: Mapping[str, Any]) -> Sequence[Any]:
        return phase.get("plans") or phase.get("items") or []

    def _plan_line(self, plan: Any, quantity: int | None) -> PriceLine:
        quantity = 1 if quantity is None else quantity
        if not _is_mapping(plan):
            return PriceLine(_id_of(plan), None, None, None, None, quantity)
        currency = _upper(plan.get("currency"))
        interval = _str(plan.get("interval"))
        plan_id = _id_of(plan.get("id"))
        return PriceLine(
            price_id=plan_id,
            plan_key=_id_of(plan.get("product")) or plan_id,
            monthly_amount=monthly_amount(_int(plan.get("amount")), quantity, interval,
                                          _int(plan.get("interval_count")), currency),
            currency=currency,
            interval=interval,
            quantity=quantity,
            metered=plan.get("usage_type") == "metered",
        )

    def subscription_lines(self, obj: Mapping[str, Any]) -> tuple[PriceLine, ...]:
        lines = super().subscription_lines(obj)
        if not lines and _is_mapping(obj.get("plan")):
            lines = (self._plan_line(obj["plan"], _int(obj.get("quantity"))),)
        return lines

    def previous_subscription_lines(
        self, obj: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> tuple[PriceLine, ...] | None:
        if "items" in previous:
            return super().subscription_lines(previous)
        if "plan" in previous or "quantity" in previous:
            plan = previous.get("plan", obj.get("plan"))
            quantity = _int(previous.get("quantity", obj.get("quantity")))
            return (self._plan_line(plan, quantity),)
        return None

    def current_period_end(self, obj: Mapping[str, Any]) -> datetime | None:
        return timestamp(obj.get("current_period_end"))

    def invoice_subscription(self, obj: Mapping[str, Any]) -> str | None:
        return _id_of(obj.get("subscription"))

    def invoice_tax(self, obj: Mapping[str, Any]) -> int:
        tax = _int(obj.get("tax"))
        if tax is not None:
            return tax
        return sum(_int(_dict(t).get("amount")) or 0 for t in obj.get("total_tax_amounts") or [])


READERS: dict[str, StripeReader] = {
    CURRENT_API_VERSION: CurrentReader(),
    LEGACY_API_VERSION: LegacyReader(),
}
SUPPORTED_API_VERSIONS = tuple(READERS)


def reader_for(api_version: str | None) -> StripeReader:
    """The reader of an API version; anything else must not be guessed at."""
    reader = READERS.get(api_version) if isinstance(api_version, str) else None
    if reader is None:
        raise UnsupportedStripeApiVersion(api_version)
    return reader


def read_event(envelope: Mapping[str, Any]) -> ParsedEvent:
    """Reads an event envelope with the reader of its own `api_version`."""
    return reader_for(envelope.get("api_version")).read(envelope)


def invoice_amounts(invoice_obj: Mapping[str, Any], api_version: str | None) -> InvoiceAmounts:
    """The money of one invoice object, read in the shape of `api_version`."""
    return reader_for(api_version).invoice_amounts(invoice_obj)
