"""The seam between the replayer (database) and the pure classifier (plain data).

Everything the replayer needs from ledger/classifier.py and ledger/readers.py goes through here:
seeding a `SubscriptionState` from the live subscription and the latest ledger row, the
`Catalog` from the plans table, the classifier's rows and findings as plain values, and the
payload reading the projections need (plans, invoice amounts, subscription fields).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from decimal import Decimal

from backoffice.extensions import db
from backoffice.ledger import classifier, readers
from backoffice.ledger.models import Plan, Subscription

ZERO = Decimal(0)
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
NOT_STARTED_STATUSES = classifier.NOT_STARTED_STATUSES


# -- state ------------------------------------------------------------------------------------
def empty_state():
    return classifier.SubscriptionState()


def seed_state(sub: Subscription | None, latest_committed_mrr: Decimal | None, classified_invoices: set[str]):
    """The live subscription's plan, price, cancel flag and schedule; the committed MRR of the
    latest stored ledger row (None when there is none: 0)."""
    values: dict = {}
    if sub is not None and sub.status not in ENDED_STATUSES and sub.plan != "free":
        values.update(
            subscription_id=sub.stripe_subscription_id,
            plan=sub.plan,
            price=sub.price_amount,
            currency=sub.currency,
            status=sub.status,
            cancel_at_period_end=sub.cancel_at_period_end,
            scheduled_plan=sub.scheduled_plan,
            scheduled_price=sub.scheduled_price_amount,
        )
    elif sub is not None:
        values.update(currency=sub.currency)
    if sub is not None:
        values["awaiting_activation"] = sub.status in NOT_STARTED_STATUSES
    values["committed_mrr"] = latest_committed_mrr if latest_committed_mrr is not None else ZERO
    values["classified_invoice_ids"] = tuple(sorted(classified_invoices))
    return _make_state(values)


def _make_state(values: dict):
    names = {f.name for f in dataclasses.fields(classifier.SubscriptionState)}
    return classifier.SubscriptionState(**{k: v for k, v in values.items() if k in names})


def final_state_of(result):
    return result.state


def apply_state(sub: Subscription, state) -> None:
    """What the classifier's state says that the payload alone does not: the schedule, and the
    free plan after the subscription ended."""
    sub.scheduled_plan = getattr(state, "scheduled_plan", None)
    sub.scheduled_price_amount = getattr(state, "scheduled_price", None)
    if sub.status in ENDED_STATUSES:
        sub.plan, sub.price_amount, sub.cancel_at_period_end = "free", ZERO, False
        sub.scheduled_plan = sub.scheduled_price_amount = None


# -- catalog ------------------------------------------------------------------------------------
def load_catalog():
    return catalog_of(db.session.execute(db.select(Plan)).scalars().all())


def catalog_of(plans: Iterable[Plan]):
    return classifier.Catalog.of(
        classifier.CatalogPrice(p.price_id, p.plan_key, p.name, p.monthly_amount, p.currency) for p in plans)


def _plan_in_db(price_id: str) -> Plan | None:
    return db.session.get(Plan, price_id)


def plan_values(price: dict) -> dict | None:
    """A catalog row for a Stripe price (or a plan object of the 2016 shape), read by the one
    payload reader: the plan is the price's product (readers.plan_key_of)."""
    try:
        line = readers.price_line(price)
    except readers.UnreadablePayload:
        return None  # the event that carries it fails, naming the field
    interval = line.interval or "month"
    if line.price_id is None or line.monthly_amount is None or line.currency is None \
            or not readers.storable_line(line) or interval not in ("day", "week", "month", "year"):
        return None
    name = price.get("nickname")
    name = name if isinstance(name, str) and name else line.plan_key
    return {"price_id": line.price_id[:255], "plan_key": str(line.plan_key)[:255], "name": str(name)[:100],
            "monthly_amount": line.monthly_amount, "interval": interval, "currency": line.currency,
            "period_amount": line.period_amount, "interval_count": line.interval_count}


# -- classification -----------------------------------------------------------------------------
def classify(events, state, catalog, amounts: InvoiceAmountsMemo | None = None):
    return classifier.classify(events, state, catalog, amounts)


def rows_of(result):
    return result.rows


def row_values(row) -> dict:
    kind = row.type.value if hasattr(row.type, "value") else str(row.type)
    return {
        "stripe_event_id": row.stripe_event_id,
        "type": kind,
        "from_plan": row.from_plan,
        "to_plan": row.to_plan,
        "previous_amount": row.previous_amount,
        "new_amount": row.new_amount,
        "amount_delta": row.amount_delta,
        "committed_mrr": row.committed_mrr,
        "currency": row.currency.upper() if row.currency else None,
        "occurred_at": row.occurred_at,
        "reason": row.reason,
    }


def discrepancies_of(result) -> list[dict]:
    unreadable = set(result.unreadable_event_ids)
    found = []
    for d in result.discrepancies:
        values = d.as_dict()
        # An event the reader cannot read waits, failed, for `ledger replay --failed`.
        values["fails_event"] = d.stripe_event_id in unreadable
        found.append(values)
    return found


def skipped_of(result) -> dict[str, str]:
    """Event id → why the classifier wrote no row for it."""
    skipped = {event_id: "no currency in the payload or the subscription" for event_id in result.skipped_event_ids}
    skipped.update({event_id: "not recorded in the ledger" for event_id in result.ignored_event_ids})
    return skipped


# -- payload reading for projections ------------------------------------------------------------
class InvoiceAmountsMemo:
    """The money of each invoice event of a replay, read once: the classifier (clamp check) and
    the payment projection read the same invoices. Keyed by the event's id."""

    def __init__(self) -> None:
        self._read: dict[str, readers.InvoiceAmounts] = {}

    def __call__(self, envelope: dict) -> readers.InvoiceAmounts:
        """Raises UnreadablePayload for amounts that cannot be read."""
        event_id = envelope["id"]
        amounts = self._read.get(event_id)
        if amounts is None:
            amounts = self._read[event_id] = readers.invoice_amounts(
                envelope["data"]["object"], envelope.get("api_version"), event_type=envelope["type"])
        return amounts


def invoice_plan(obj: dict, plan_of: Callable[[str], Plan | None] = _plan_in_db) -> str | None:
    for price_id in readers.invoice_line_prices(obj):
        plan = plan_of(price_id)
        if plan is not None:
            return plan.plan_key
    return None


def apply_subscription_payload(sub: Subscription, event: dict,
                               plan_of: Callable[[str], Plan | None] = _plan_in_db) -> None:
    """Status, plan, price, currency, cancel flag and period end as the payload says, read with
    the one payload reader (an unreadable payload changes nothing; the classifier fails it)."""
    try:
        parsed = readers.read_event(event)
    except (readers.UnreadablePayload, readers.MalformedStripeEvent):
        return
    if parsed.status:
        sub.status = parsed.status[:20]
    price = parsed.monthly_amount
    plan = plan_of(parsed.price_id) if parsed.price_id else None
    if parsed.plan_key or plan is not None:
        sub.plan = parsed.plan_key or plan.plan_key
    if price is None and plan is not None:
        price = plan.monthly_amount * sum(line.quantity for line in parsed.lines[:1])
    if price is not None:
        sub.price_amount = price
    currency = parsed.currency or (plan.currency if plan is not None else None)
    if currency:
        sub.currency = currency
    if parsed.cancel_at_period_end is not None:
        sub.cancel_at_period_end = parsed.cancel_at_period_end
    if parsed.current_period_end is not None:
        sub.current_period_end = parsed.current_period_end
    if event["type"] == "customer.subscription.deleted" or sub.status in ENDED_STATUSES:
        sub.status = sub.status if sub.status in ENDED_STATUSES else "canceled"
        sub.plan, sub.price_amount, sub.cancel_at_period_end = "free", ZERO, False
        sub.scheduled_plan = sub.scheduled_price_amount = None
