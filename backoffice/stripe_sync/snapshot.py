"""Stripe objects as plain data: the live subscription, its schedule and its invoices, read from
either shape Stripe answers in (the 2017 shape with `items[].plan` and top-level periods, the
current one with `items[].price` and per-item periods). Pure functions, no database, no network.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)
PAID_STATUSES = frozenset({"active", "past_due", "unpaid"})
FREE_PLAN = "free"


def money(minor: int | None) -> Decimal:
    """Stripe's minor units (cents) as an exact Decimal."""
    return (Decimal(int(minor or 0)) / 100).quantize(CENT)


def moment(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(int(ts), UTC)


@dataclass(frozen=True)
class Price:
    price_id: str
    plan_key: str
    name: str
    monthly: Decimal | None  # None when Stripe gives no amount (a tiered or unknown price)
    interval: str
    currency: str | None


def plan_key_of(price: dict, catalog: dict[str, str] | None = None) -> str:
    """The plan a price belongs to: the catalog's answer, else the rule the replayer's catalog
    uses (metadata.plan, lookup_key, product, price id), so both name a plan the same way."""
    if catalog and price.get("id") in catalog:
        return catalog[price["id"]]
    metadata = price.get("metadata") or {}
    product = price.get("product")
    if isinstance(product, dict):
        product = product.get("id")
    key = metadata.get("plan") or price.get("lookup_key") or product or price.get("id") or "unknown"
    return str(key)[:255]


def read_price(item_or_price: dict | None, catalog: dict[str, str] | None = None,
               catalog_amounts: dict[str, Decimal] | None = None, quantity: int | None = None) -> Price | None:
    """A subscription item (or a bare price/plan object) → its monthly price. `unit_amount`
    (× quantity) wins over the catalog; yearly ÷ 12, weekly × 52 ÷ 12 (DOMAIN §3)."""
    if not item_or_price:
        return None
    obj = item_or_price
    if obj.get("object") in ("subscription_item", None) and ("price" in obj or "plan" in obj):
        quantity = obj.get("quantity") if quantity is None else quantity
        obj = obj.get("price") or obj.get("plan")
    if isinstance(obj, str):
        obj = {"id": obj}
    if not isinstance(obj, dict) or not obj.get("id"):
        return None
    recurring = obj.get("recurring") or {}
    interval = recurring.get("interval") or obj.get("interval") or "month"
    count = int(recurring.get("interval_count") or obj.get("interval_count") or 1)
    amount = obj.get("unit_amount", obj.get("amount"))
    monthly: Decimal | None
    if amount is not None:
        monthly = money(amount) * int(quantity or 1)
        if interval == "year":
            monthly = monthly / (12 * count)
        elif interval == "week":
            monthly = monthly * 52 / (12 * count)
        elif interval == "day":
            monthly = monthly * 365 / (12 * count)
        elif count > 1:
            monthly = monthly / count
        monthly = monthly.quantize(CENT)
    elif catalog_amounts and obj["id"] in catalog_amounts:
        monthly = catalog_amounts[obj["id"]] * int(quantity or 1)
    else:
        monthly = None
    currency = obj.get("currency")
    return Price(
        price_id=obj["id"],
        plan_key=plan_key_of(obj, catalog),
        name=str(obj.get("nickname") or obj.get("name") or plan_key_of(obj, catalog))[:100],
        monthly=monthly,
        interval=interval if interval in ("day", "week", "month", "year") else "month",
        currency=currency.upper() if isinstance(currency, str) and currency else None,
    )


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


def current_subscription(subscriptions: list[dict]) -> dict | None:
    """The one that counts: a live one (not canceled/expired) first, newest first."""
    if not subscriptions:
        return None
    ranked = sorted(
        subscriptions,
        key=lambda s: (s.get("status") not in ("canceled", "incomplete_expired"), s.get("created") or 0),
        reverse=True,
    )
    return ranked[0]


def read_subscription(sub: dict | None, catalog: dict[str, str] | None = None,
                      catalog_amounts: dict[str, Decimal] | None = None) -> LiveSubscription:
    if not sub:
        return NO_SUBSCRIPTION
    items = ((sub.get("items") or {}).get("data")) or []
    first = items[0] if items else {"plan": sub.get("plan"), "quantity": sub.get("quantity")}
    price = read_price(first, catalog, catalog_amounts)
    period_end = sub.get("current_period_end") or (items[0].get("current_period_end") if items else None)
    schedule = sub.get("schedule")
    if isinstance(schedule, dict):
        schedule = schedule.get("id")
    status = sub.get("status")
    paid = status in PAID_STATUSES
    currency = sub.get("currency") or (price.currency if price else None)
    return LiveSubscription(
        id=sub.get("id"),
        status=status,
        plan=price.plan_key if (price and paid) else FREE_PLAN,
        price=(price.monthly or ZERO) if (price and paid) else ZERO,
        price_id=price.price_id if price else None,
        currency=currency.upper() if isinstance(currency, str) and currency else None,
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")) and paid,
        current_period_end=moment(period_end),
        started_at=moment(sub.get("start_date") or sub.get("created")),
        schedule_id=schedule,
    )


@dataclass(frozen=True)
class ScheduledChange:
    plan: str
    price: Decimal | None  # None: Stripe gives no price we can read (ScheduledPriceMissing)
    price_id: str | None
    starts_at: datetime | None


def read_schedule(schedule: dict | None, current_plan: str, catalog: dict[str, str] | None = None,
                  catalog_amounts: dict[str, Decimal] | None = None) -> ScheduledChange | None:
    """The plan a schedule's last phase moves to (≥ 2 phases, still active), or None."""
    if not schedule or schedule.get("status") in ("released", "canceled", "completed"):
        return None
    phases = schedule.get("phases") or []
    if len(phases) < 2:
        return None
    last = phases[-1]
    items = last.get("items") or []
    if not items:
        return None
    item = items[0]
    price_obj = item.get("price")
    if isinstance(price_obj, str) and isinstance(item.get("plan"), dict):
        price_obj = {**item["plan"], "id": price_obj}
    price = read_price(price_obj if isinstance(price_obj, dict) else ({"id": price_obj} if price_obj else None),
                       catalog, catalog_amounts, quantity=item.get("quantity"))
    if price is None:
        return ScheduledChange("unknown", None, None, moment(last.get("start_date")))
    if price.plan_key == current_plan:
        return None
    return ScheduledChange(price.plan_key, price.monthly, price.price_id, moment(last.get("start_date")))


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


def _invoice_status(inv: dict) -> str:
    status = inv.get("status")
    if status == "paid" or (status is None and inv.get("paid")):
        return "succeeded"
    if status in ("void", "uncollectible", "draft"):
        return status
    if (inv.get("attempt_count") or 0) > 0 and not inv.get("paid"):
        return "failed"
    return "open"


def read_invoice(inv: dict, catalog: dict[str, str] | None = None) -> LiveInvoice:
    total = money(inv.get("total", inv.get("amount_due")))
    tax_minor = inv.get("tax")
    if tax_minor is None:
        tax_minor = sum(int(t.get("amount") or 0) for t in (inv.get("total_taxes") or inv.get("total_tax_amounts") or []))
    tax = money(tax_minor)
    excl_minor = inv.get("total_excluding_tax")
    excluding = money(excl_minor) if excl_minor is not None else total - tax
    clamped = excluding < ZERO
    subscription = inv.get("subscription")
    if subscription is None:
        details = (inv.get("parent") or {}).get("subscription_details") or {}
        subscription = details.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    charge = inv.get("charge")
    charge_id = charge.get("id") if isinstance(charge, dict) else charge
    lines = ((inv.get("lines") or {}).get("data")) or []
    price = None
    if lines:
        line = lines[0]
        pricing = (line.get("pricing") or {}).get("price_details") or {}
        price = read_price(line.get("price") or line.get("plan") or ({"id": pricing["price"]} if pricing.get("price") else None),
                           catalog, quantity=line.get("quantity"))
    paid_at = (inv.get("status_transitions") or {}).get("paid_at")
    starting = int(inv.get("starting_balance") or 0)  # negative: the customer's credit
    credit = min(money(-starting), max(total, ZERO)) if starting < 0 else ZERO
    return LiveInvoice(
        id=inv["id"],
        number=inv.get("number"),
        subscription_id=subscription,
        status=_invoice_status(inv),
        date=moment(paid_at or inv.get("created") or inv.get("date")),
        currency=str(inv.get("currency") or "").upper(),
        amount=money(inv.get("amount_paid")),
        amount_excluding_tax=max(excluding, ZERO),
        tax_amount=max(tax, ZERO),
        invoice_total=max(total, ZERO),
        amount_from_credit=credit,
        invoice_url=inv.get("hosted_invoice_url"),
        charge_id=charge_id,
        price=price,
        clamped=clamped,
    )


def object_ids_of(event: dict) -> tuple[str | None, str | None]:
    """(object type, object id) of an event's data object."""
    obj = (event.get("data") or {}).get("object") or {}
    return obj.get("object"), obj.get("id")
