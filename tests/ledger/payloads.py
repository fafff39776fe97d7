"""Small builders of Stripe event envelopes in the current API shape (2026-10-28.endive), plus a
converter to localstripe's 2017-08-15 shape, for the classifier's pure tests.

Shapes follow shared/stripe/openapi-fixtures3.json (current) and
shared/stripe/localstripe-generated-events.json (old); only the fields the readers look at, plus
a few realistic neighbours, are filled in.
"""
from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from backoffice.ledger.readers import CURRENT_API_VERSION, LEGACY_API_VERSION

CUSTOMER = "cus_T3st0000000001"
SUBSCRIPTION = "sub_T3st0000000001"
SCHEDULE = "sub_sched_T3st00000001"


def ts(year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())


def price(
    price_id: str = "price_pro_monthly",
    product: str = "prod_pro",
    unit_amount: int | None = 14900,
    currency: str = "chf",
    interval: str = "month",
    interval_count: int = 1,
) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "currency": currency,
        "product": product,
        "recurring": {"interval": interval, "interval_count": interval_count, "usage_type": "licensed",
                      "meter": None, "trial_period_days": None},
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
    }


def items(prices: list[dict[str, Any]], quantity: int = 1, period_end: int | None = None,
          sub_id: str = SUBSCRIPTION) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": f"si_{p['id']}",
                "object": "subscription_item",
                "price": copy.deepcopy(p),
                "quantity": quantity,
                "subscription": sub_id,
                "current_period_start": None if period_end is None else period_end - 30 * 86400,
                "current_period_end": period_end,
            }
            for p in prices
        ],
        "has_more": False,
        "url": f"/v1/subscription_items?subscription={sub_id}",
    }


def subscription(
    p: dict[str, Any] | None = None,
    *,
    sub_id: str = SUBSCRIPTION,
    customer: str = CUSTOMER,
    status: str = "active",
    cancel_at_period_end: bool = False,
    reason: str | None = None,
    quantity: int = 1,
    period_end: int | None = None,
    latest_invoice: str | None = "in_T3st0001",
    extra_prices: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    p = price() if p is None else p
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "currency": p["currency"],
        "status": status,
        "cancel_at_period_end": cancel_at_period_end,
        "cancellation_details": {"comment": None, "feedback": None, "reason": reason},
        "items": items([p, *(extra_prices or [])], quantity, period_end, sub_id),
        "latest_invoice": latest_invoice,
        "schedule": None,
        "metadata": {},
    }


def envelope(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int,
    event_id: str,
    previous: dict[str, Any] | None = None,
    api_version: str = CURRENT_API_VERSION,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": event_id, "object": "event", "api_version": api_version, "created": created,
            "livemode": False, "pending_webhooks": 1, "type": event_type, "data": data}


def sub_created(obj: dict[str, Any], *, created: int, event_id: str) -> dict[str, Any]:
    return envelope("customer.subscription.created", obj, created=created, event_id=event_id)


def sub_updated(obj: dict[str, Any], previous: dict[str, Any] | None, *, created: int,
                event_id: str) -> dict[str, Any]:
    return envelope("customer.subscription.updated", obj, created=created, event_id=event_id,
                    previous=previous)


def sub_deleted(obj: dict[str, Any], *, created: int, event_id: str) -> dict[str, Any]:
    obj = {**obj, "status": "canceled", "ended_at": created}
    return envelope("customer.subscription.deleted", obj, created=created, event_id=event_id)


def plan_change(old: dict[str, Any], new: dict[str, Any], *, created: int, event_id: str,
                cancel_at_period_end: bool = False, previous_extra: dict[str, Any] | None = None,
                quantity: int = 1, old_quantity: int = 1) -> dict[str, Any]:
    """customer.subscription.updated moving the item from `old` to `new` (Stripe puts the whole
    previous items list in previous_attributes)."""
    obj = subscription(new, cancel_at_period_end=cancel_at_period_end, quantity=quantity)
    previous = {"items": items([old], old_quantity), **(previous_extra or {})}
    return sub_updated(obj, previous, created=created, event_id=event_id)


def cancel_toggle(p: dict[str, Any], to: bool, *, created: int, event_id: str,
                  reason: str | None = None) -> dict[str, Any]:
    obj = subscription(p, cancel_at_period_end=to, reason=reason)
    return sub_updated(obj, {"cancel_at_period_end": not to}, created=created, event_id=event_id)


def schedule(
    phases: list[list[tuple[str | dict[str, Any], int]]],
    *,
    status: str = "active",
    sub_id: str | None = SUBSCRIPTION,
    currency: str = "chf",
    start: int = 0,
) -> dict[str, Any]:
    """A subscription_schedule; each phase is a list of (price id or price object, quantity)."""
    out_phases = []
    for n, phase in enumerate(phases):
        out_phases.append({
            "currency": currency,
            "start_date": start + n * 30 * 86400,
            "end_date": start + (n + 1) * 30 * 86400,
            "items": [{"price": pr, "quantity": q, "metadata": {}, "tax_rates": []} for pr, q in phase],
            "proration_behavior": "create_prorations",
            "metadata": {},
        })
    return {
        "id": SCHEDULE,
        "object": "subscription_schedule",
        "customer": CUSTOMER,
        "end_behavior": "release",
        "phases": out_phases,
        "status": status,
        "subscription": sub_id if status != "released" else None,
        "released_subscription": sub_id if status == "released" else None,
    }


def invoice(
    invoice_id: str = "in_T3st0001",
    *,
    billing_reason: str = "subscription_cycle",
    attempt_count: int = 1,
    amount_paid: int = 14900,
    total: int | None = None,
    taxes: int = 0,
    currency: str = "chf",
    status: str = "paid",
    sub_id: str = SUBSCRIPTION,
    paid_at: int | None = None,
    starting_balance: int = 0,
    ending_balance: int | None = 0,
) -> dict[str, Any]:
    total = amount_paid if total is None else total
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": CUSTOMER,
        "currency": currency,
        "billing_reason": billing_reason,
        "attempt_count": attempt_count,
        "amount_due": total,
        "amount_paid": amount_paid,
        "amount_remaining": total - amount_paid,
        "subtotal": total - taxes,
        "total": total,
        "total_excluding_tax": total - taxes,
        "total_taxes": [{"amount": taxes, "tax_behavior": "exclusive", "taxability_reason": "standard_rated",
                         "taxable_amount": total - taxes, "type": "tax_rate_details"}] if taxes else [],
        "starting_balance": starting_balance,
        "ending_balance": ending_balance,
        "status": status,
        "status_transitions": {"finalized_at": paid_at, "paid_at": paid_at if status == "paid" else None,
                               "marked_uncollectible_at": None, "voided_at": None},
        "parent": {"type": "subscription_details",
                   "subscription_details": {"metadata": {}, "subscription": sub_id}},
        "created": paid_at,
    }


def charge(charge_id: str = "ch_T3st0001", *, amount: int = 14900, refunded: int = 14900,
           currency: str = "chf") -> dict[str, Any]:
    return {"id": charge_id, "object": "charge", "customer": CUSTOMER, "amount": amount,
            "amount_refunded": refunded, "currency": currency, "refunded": refunded == amount,
            "status": "succeeded", "paid": True}


def customer(*, currency: str | None = None, email: str | None = "billing@example.com",
             deleted: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": CUSTOMER, "object": "customer", "currency": currency, "email": email,
                           "name": "Example AG", "address": {"country": "CH", "city": "Zürich"},
                           "metadata": {"account_id": "acc-1"}}
    if deleted:
        obj["deleted"] = True
    return obj


def payment_method(pm_id: str = "pm_T3st0001") -> dict[str, Any]:
    return {"id": pm_id, "object": "payment_method", "customer": CUSTOMER, "type": "card",
            "card": {"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2030}}


# --------------------------------------------------------------------------------------------
# 2017-08-15 (localstripe) shape
# --------------------------------------------------------------------------------------------
def _legacy_plan(p: Any) -> Any:
    if not isinstance(p, dict):
        return p
    recurring = p.get("recurring") or {}
    return {"id": p["id"], "object": "plan", "active": True, "amount": p.get("unit_amount"),
            "billing_scheme": "per_unit", "currency": p.get("currency"), "interval": recurring.get("interval"),
            "interval_count": recurring.get("interval_count", 1), "product": p.get("product"),
            "name": p.get("product"), "usage_type": recurring.get("usage_type", "licensed")}


def _legacy_items(value: dict[str, Any]) -> dict[str, Any]:
    value = copy.deepcopy(value)
    for item in value.get("data", []):
        item["plan"] = _legacy_plan(item.pop("price"))
        item.pop("current_period_end", None)
        item.pop("current_period_start", None)
    return value


def _legacy_subscription(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    data = obj["items"]["data"]
    ends = [i.get("current_period_end") for i in data if i.get("current_period_end")]
    obj["current_period_end"] = max(ends) if ends else None
    obj["items"] = _legacy_items(obj["items"])
    obj.pop("currency", None)
    if obj["items"]["data"]:
        obj["plan"] = obj["items"]["data"][0]["plan"]
        obj["quantity"] = obj["items"]["data"][0]["quantity"]
    return obj


def to_legacy(event: dict[str, Any]) -> dict[str, Any]:
    """The same event as localstripe (API 2017-08-15) would shape it."""
    event = copy.deepcopy(event)
    event["api_version"] = LEGACY_API_VERSION
    data = event["data"]
    obj = data["object"]
    kind = obj.get("object")
    if kind == "subscription":
        data["object"] = _legacy_subscription(obj)
        previous = data.get("previous_attributes")
        if previous and "items" in previous:
            previous["items"] = _legacy_items(previous["items"])
            if previous["items"]["data"]:
                previous["plan"] = previous["items"]["data"][0]["plan"]
    elif kind == "invoice":
        obj["subscription"] = obj.pop("parent")["subscription_details"]["subscription"]
        obj["tax"] = sum(t["amount"] for t in obj.pop("total_taxes"))
        obj.pop("total_excluding_tax", None)
    elif kind == "subscription_schedule":
        for phase in obj["phases"]:
            phase["plans"] = [{"plan": _legacy_plan(i["price"]), "quantity": i["quantity"]}
                              for i in phase.pop("items")]
    return event
