"""The billing-event classifier: DOMAIN §3 "Classification" as a pure state machine.

It turns the archived Stripe events of one subscription into ledger rows, one per recognised
event, replaying them in Stripe's order (`created`, then id). It is pure on purpose: the replayer
can rebuild the whole ledger from the archive and get the same rows, byte for byte, and the rules
are tested without a database.

Amounts: every MRR-moving row carries previous = committed MRR before, new = committed MRR after
(the forward MRR of the new state), delta = new − previous. So `new_amount` of the latest
delta-carrying row is the subscription's MRR, and the deltas of a period add up to its MRR change.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from backoffice.ledger import rules
from backoffice.ledger.readers import (
    InvoiceAmounts,
    MalformedStripeEvent,
    ParsedEvent,
    PriceLine,
    ResolvedPrice,
    UnreadablePayload,
    invoice_amounts,
    money,
    read_event,
    resolve_lines,
    shape_of,
)
from backoffice.sentences import (
    CANCEL_AND_PLAN_CHANGE,
    DEARER_SCHEDULE,
    EVENT_REASON,
    EXCLUDING_TAX_CLAMPED,
    NO_SCHEDULED_PRICE,
    PAYLOAD_UNREADABLE,
    say,
)

__all__ = [
    "DELTA_TYPES", "FREE_PLAN", "MRR_VIEW_TYPES", "OTHER_VIEW_TYPES", "RECOGNISED_EVENT_TYPES",
    "STATE_VIEW_TYPES", "Catalog", "CatalogPrice", "ClassifyResult", "Discrepancy", "EventType",
    "InvoiceAmounts", "LedgerRow", "SubscriptionState", "classify", "forward_mrr", "invoice_amounts",
]

ZERO = Decimal("0.00")
FREE_PLAN = "free"
WARNING = "warning"
CRITICAL = "critical"

# Statuses of a subscription that has not started paying: trials and unpaid starts are not MRR.
NOT_STARTED_STATUSES = frozenset(rules.NOT_STARTED_STATUSES)
TERMINAL_SCHEDULE_STATUSES = frozenset({"released", "canceled", "completed"})
CUSTOMER_DELETED_REASON = "customer_deleted"
PRICE_UNKNOWN = "price_unknown"


class EventType(str, Enum):
    """The 20 billing-event types; values are DOMAIN's names in snake_case (API and database)."""

    CREATED = "subscription_created"
    RENEWED = "subscription_renewed"
    UPGRADED = "subscription_upgraded"
    DOWNGRADE_SCHEDULED = "subscription_downgrade_scheduled"
    DOWNGRADE_CANCELLED = "subscription_downgrade_cancelled"
    DOWNGRADED = "subscription_downgraded"
    CANCELLED = "subscription_cancelled"
    REACTIVATED = "subscription_reactivated"
    EXPIRED = "subscription_expired"
    IMMEDIATELY_CANCELLED = "subscription_immediately_cancelled"
    SUSPENDED = "subscription_suspended"
    PAST_DUE = "subscription_past_due"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_RECOVERED = "payment_recovered"
    PAYMENT_REFUNDED = "payment_refunded"
    BILLING_INFO_ADDED = "billing_info_added"
    BILLING_INFO_UPDATED = "billing_info_updated"
    PAYMENT_METHOD_UPDATED = "payment_method_updated"
    NO_OP = "no_op"
    UNCLASSIFIED = "unclassified"

    def __str__(self) -> str:
        return self.value


# "Types with a delta" (the MRR movements) of DOMAIN §3.
DELTA_TYPES = frozenset({
    EventType.CREATED, EventType.UPGRADED, EventType.DOWNGRADED, EventType.DOWNGRADE_SCHEDULED,
    EventType.DOWNGRADE_CANCELLED, EventType.CANCELLED, EventType.REACTIVATED, EventType.EXPIRED,
    EventType.IMMEDIATELY_CANCELLED, EventType.SUSPENDED,
})
# Billing-events page pills: independent lenses, not a partition.
MRR_VIEW_TYPES = DELTA_TYPES
STATE_VIEW_TYPES = frozenset({
    EventType.CREATED, EventType.UPGRADED, EventType.DOWNGRADED, EventType.IMMEDIATELY_CANCELLED,
    EventType.EXPIRED, EventType.SUSPENDED, EventType.CANCELLED, EventType.REACTIVATED,
    EventType.PAST_DUE,
})
OTHER_VIEW_TYPES = frozenset({
    EventType.RENEWED, EventType.PAST_DUE, EventType.PAYMENT_FAILED, EventType.PAYMENT_RECOVERED,
    EventType.PAYMENT_REFUNDED, EventType.BILLING_INFO_ADDED, EventType.BILLING_INFO_UPDATED,
    EventType.PAYMENT_METHOD_UPDATED, EventType.NO_OP, EventType.UNCLASSIFIED,
})


# --------------------------------------------------------------------------------------------
# Plain data in and out
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogPrice:
    price_id: str
    plan_key: str
    plan_name: str
    monthly_amount: Decimal
    currency: str


@dataclass(frozen=True)
class Catalog:
    """Price id → plan, monthly amount and currency (read from Stripe and from payloads).
    Build it with `Catalog.of(...)`; an empty catalog is valid (payload amounts then rule)."""

    prices: tuple[CatalogPrice, ...] = ()
    plan_names: tuple[tuple[str, str], ...] = ()
    _by_id: Mapping[str, CatalogPrice] = field(default_factory=dict, init=False, repr=False, compare=False)
    _names: Mapping[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {p.price_id: p for p in self.prices})
        names = {FREE_PLAN: "Free"}
        names.update({p.plan_key: p.plan_name for p in self.prices})
        names.update(dict(self.plan_names))
        object.__setattr__(self, "_names", names)

    @classmethod
    def of(cls, prices: Iterable[CatalogPrice], plan_names: Mapping[str, str] | None = None) -> Catalog:
        """A catalog in a stable order (plans by monthly price, then id), whatever the input order."""
        ordered = sorted(prices, key=lambda p: (p.monthly_amount, p.plan_key, p.price_id))
        return cls(tuple(ordered), tuple(sorted((plan_names or {}).items())))

    def price(self, price_id: str | None) -> CatalogPrice | None:
        return self._by_id.get(price_id) if price_id else None

    def lookup(self, price_id: str | None) -> tuple[str, Decimal, str | None] | None:
        """A price's plan key, monthly amount and currency (readers.resolve_lines asks it)."""
        entry = self._by_id.get(price_id) if price_id else None
        return None if entry is None else (entry.plan_key, entry.monthly_amount, entry.currency)

    def plan_name(self, plan_key: str | None) -> str | None:
        if plan_key is None:
            return None
        return self._names.get(plan_key, plan_key)


@dataclass(frozen=True)
class SubscriptionState:
    """The machine's state between events. Seed it from the live subscription (plan, price, cancel
    flag, scheduled plan/price, status) and `committed_mrr` from the latest stored ledger row of
    the subscription (0 if none) - never a phantom zero."""

    plan: str = FREE_PLAN
    price: Decimal = ZERO
    currency: str | None = None
    cancel_at_period_end: bool = False
    scheduled_plan: str | None = None
    scheduled_price: Decimal | None = None
    committed_mrr: Decimal = ZERO
    status: str | None = None
    price_id: str | None = None
    # Created trialing/incomplete and not active yet (seed True when the live status is one of those).
    awaiting_activation: bool = False
    # Invoices already classified by invoice.paid or invoice.payment_succeeded (sorted).
    classified_invoice_ids: tuple[str, ...] = ()

    @property
    def downgrade_scheduled(self) -> bool:
        return self.scheduled_plan is not None


def forward_mrr(state: SubscriptionState) -> Decimal:
    """What the subscription will bring per month (the rule: ledger/rules.py), to the cent."""
    value = rules.forward_mrr(rules.PYTHON, state)
    return value if value is rules.ZERO else money(value)


@dataclass(frozen=True)
class LedgerRow:
    stripe_event_id: str
    type: EventType
    from_plan: str | None
    to_plan: str | None
    previous_amount: Decimal | None
    new_amount: Decimal | None
    amount_delta: Decimal | None
    committed_mrr: Decimal
    currency: str | None
    occurred_at: datetime
    reason: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass
class Discrepancy:
    kind: str
    severity: str
    stripe_event_id: str | None
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "stripe_event_id": self.stripe_event_id,
                "message": self.message, "field": self.field}


@dataclass(frozen=True)
class ClassifyResult:
    rows: tuple[LedgerRow, ...]
    state: SubscriptionState
    discrepancies: tuple[Discrepancy, ...]
    skipped_event_ids: tuple[str, ...]  # recognised, but no currency anywhere
    ignored_event_ids: tuple[str, ...] = ()  # types the ledger does not record
    unreadable_event_ids: tuple[str, ...] = ()  # malformed, or lacking what its type needs: failed


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------
@dataclass
class _Outcome:
    row: LedgerRow
    state: SubscriptionState
    discrepancies: list[Discrepancy] = field(default_factory=list)


def _resolve(lines: Sequence[PriceLine], catalog: Catalog, fallback_plan: str) -> ResolvedPrice | None:
    """DOMAIN §3 "Price" (readers.resolve_lines, the rule the sync reads live objects by)."""
    return resolve_lines(lines, catalog.lookup, fallback_plan)


def _movement(
    ev: ParsedEvent,
    kind: EventType,
    before: SubscriptionState,
    after: SubscriptionState,
    currency: str | None,
    *,
    from_plan: str | None = None,
    to_plan: str | None = None,
    reason: str | None = None,
    null_zero_delta: bool = False,
    warnings: tuple[str, ...] = (),
) -> _Outcome:
    """A delta-carrying row: committed MRR moves from the old committed to the new forward MRR."""
    new = max(forward_mrr(after), ZERO)
    previous = money(before.committed_mrr)
    delta = new - previous
    after = dataclasses.replace(after, committed_mrr=new)
    row = LedgerRow(
        stripe_event_id=ev.event_id, type=kind,
        from_plan=before.plan if from_plan is None else from_plan,
        to_plan=after.plan if to_plan is None else to_plan,
        previous_amount=previous, new_amount=new,
        amount_delta=None if (null_zero_delta and delta == 0) else delta,
        committed_mrr=new, currency=currency, occurred_at=ev.created, reason=reason, warnings=warnings,
    )
    return _Outcome(row, after)


def _plain(
    ev: ParsedEvent,
    kind: EventType,
    before: SubscriptionState,
    after: SubscriptionState | None,
    currency: str | None,
    *,
    to_plan: str | None = None,
    reason: str | None = None,
) -> _Outcome:
    """A row that does not move MRR: no amounts, committed MRR carried over unchanged."""
    if after is None:
        after = before
    elif after.committed_mrr is not before.committed_mrr:  # else replacing it would only copy `after`
        after = dataclasses.replace(after, committed_mrr=before.committed_mrr)
    row = LedgerRow(stripe_event_id=ev.event_id, type=kind, from_plan=before.plan, to_plan=after.plan if to_plan is None else to_plan, previous_amount=None, new_amount=None, amount_delta=None, committed_mrr=money(max(before.committed_mrr, ZERO)), currency=currency, occurred_at=ev.created, reason=reason)
    return _Outcome(row, after)


def _unclassified(ev: ParsedEvent, state: SubscriptionState, currency: str | None, why: str,
                  to_plan: str | None = None) -> _Outcome:
    """A payload the rules cannot decompose: state unchanged, drift flagged."""
    out = _plain(ev, EventType.UNCLASSIFIED, state, None, currency, to_plan=to_plan)
    out.discrepancies.append(Discrepancy("UnclassifiedStripeEvent", WARNING, ev.event_id,
                                         say(EVENT_REASON, type=ev.type, event=ev.event_id, reason=why)))
    return out


def _with_price(state: SubscriptionState, price: ResolvedPrice | None, currency: str | None) -> SubscriptionState:
    if price is None:
        return dataclasses.replace(state, currency=currency or state.currency)
    return dataclasses.replace(state, plan=price.plan_key, price=price.amount, price_id=price.price_id,
                     currency=price.currency or currency or state.currency)


def _after_reset(state: SubscriptionState, status: str | None) -> SubscriptionState:
    """Deleted subscription or customer: back to the free plan, nothing scheduled, no MRR."""
    return dataclasses.replace(state, plan=FREE_PLAN, price=ZERO, price_id=None, cancel_at_period_end=False,
                     scheduled_plan=None, scheduled_price=None, status=status, awaiting_activation=False)


def _status_of(ev: ParsedEvent, state: SubscriptionState) -> str | None:
    return ev.status or state.status


# -- customer.subscription.* --------------------------------------------------------------------
def _subscription_created(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                          currency: str | None) -> _Outcome:
    price = _resolve(ev.lines, catalog, state.plan)
    after = dataclasses.replace(_with_price(state, price, currency), status=_status_of(ev, state),
                      cancel_at_period_end=bool(ev.cancel_at_period_end),
                      scheduled_plan=None, scheduled_price=None)
    if ev.status in NOT_STARTED_STATUSES:
        return _plain(ev, EventType.NO_OP, state, dataclasses.replace(after, awaiting_activation=True), currency)
    warnings = (PRICE_UNKNOWN,) if price is not None and not price.known else ()
    return _movement(ev, EventType.CREATED, state, dataclasses.replace(after, awaiting_activation=False), currency,
                     warnings=warnings)


def _subscription_updated(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                          currency: str | None) -> _Outcome:
    if not ev.has_previous_attributes:
        return _plain(ev, EventType.NO_OP, state, None, currency)
    new_price = _resolve(ev.lines, catalog, state.plan)
    old_price = _resolve(ev.previous_lines or (), catalog, state.plan)
    plan_changed = ev.previous_lines is not None and new_price is not None and (
        old_price is None
        or old_price.price_id != new_price.price_id
        or old_price.plan_key != new_price.plan_key
        or (old_price.known and new_price.known and old_price.amount != new_price.amount)  # quantity
    )
    status = _status_of(ev, state)
    cancel = state.cancel_at_period_end if ev.cancel_at_period_end is None else ev.cancel_at_period_end

    if state.awaiting_activation:
        # Trials and unpaid starts are not MRR; the update that makes them active is the Created row.
        after = dataclasses.replace(_with_price(state, new_price, currency), status=status, cancel_at_period_end=cancel)
        if ev.status == "active":
            warnings = (PRICE_UNKNOWN,) if new_price is not None and not new_price.known else ()
            return _movement(ev, EventType.CREATED, state, dataclasses.replace(after, awaiting_activation=False),
                             currency, warnings=warnings)
        return _plain(ev, EventType.NO_OP, state, after, currency)

    if ev.cancel_changed and plan_changed:
        return _unclassified(ev, state, currency, CANCEL_AND_PLAN_CHANGE,
                             to_plan=new_price.plan_key if new_price else None)
    if ev.cancel_changed and ev.cancel_at_period_end:
        after = dataclasses.replace(state, cancel_at_period_end=True, status=status)
        return _movement(ev, EventType.CANCELLED, state, after, currency, reason=ev.cancellation_reason)
    if ev.cancel_changed:
        after = dataclasses.replace(state, cancel_at_period_end=False, status=status)
        return _movement(ev, EventType.REACTIVATED, state, after, currency)
    if plan_changed:
        assert new_price is not None
        old_amount = old_price.amount if old_price is not None and old_price.known else state.price
        from_plan = old_price.plan_key if old_price is not None else state.plan
        if new_price.amount > old_amount or (new_price.amount == old_amount and new_price.plan_key != from_plan):
            kind = EventType.UPGRADED
        elif new_price.amount < old_amount:
            kind = EventType.DOWNGRADED
        else:  # same plan, same money (a replaced price id): nothing an operator needs to see
            after = dataclasses.replace(_with_price(state, new_price, currency), status=status)
            return _plain(ev, EventType.NO_OP, state, after, currency)
        # Any direct plan change supersedes a tracked scheduled downgrade (or is it, applied).
        after = dataclasses.replace(_with_price(state, new_price, currency), status=status, cancel_at_period_end=cancel,
                          scheduled_plan=None, scheduled_price=None)
        warnings = () if new_price.known else (PRICE_UNKNOWN,)
        return _movement(ev, kind, state, after, currency, from_plan=from_plan, warnings=warnings)
    if ev.previous_status == "active" and ev.status in ("past_due", "unpaid"):
        return _plain(ev, EventType.PAST_DUE, state, dataclasses.replace(state, status=status), currency)
    # Only latest_invoice, or anything else: no change the ledger records.
    return _plain(ev, EventType.NO_OP, state, dataclasses.replace(state, status=status), currency)


def _subscription_deleted(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                          currency: str | None) -> _Outcome:
    reason = ev.cancellation_reason
    after = _after_reset(state, ev.status or "canceled")
    if state.awaiting_activation:
        kind = EventType.IMMEDIATELY_CANCELLED  # a trial or unpaid start that never converted
    elif reason == "payment_failed":
        kind = EventType.SUSPENDED
    elif state.cancel_at_period_end or ev.cancel_at_period_end:
        kind = EventType.EXPIRED
    else:
        kind = EventType.IMMEDIATELY_CANCELLED
    return _movement(ev, kind, state, after, currency, to_plan=FREE_PLAN, reason=reason)


# -- subscription_schedule.* --------------------------------------------------------------------
def _schedule_updated(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                      currency: str | None) -> _Outcome:
    if ev.schedule_status in TERMINAL_SCHEDULE_STATUSES:
        return _plain(ev, EventType.NO_OP, state, None, currency)
    last = _resolve(ev.schedule_phases[-1].lines, catalog, state.plan) if ev.schedule_phases else None
    if len(ev.schedule_phases) < 2 or last is None:
        if state.downgrade_scheduled:  # the cheaper phase was removed from the schedule
            return _downgrade_cancelled(ev, state, currency)
        return _plain(ev, EventType.NO_OP, state, None, currency)
    if not last.known:
        # An unknown price is unknown, never 0: MRR stays as it was (a sync fetches the price).
        why = say(NO_SCHEDULED_PRICE, price=last.price_id or last.plan_key)
        out = _unclassified(ev, state, currency, why, to_plan=last.plan_key)
        out.discrepancies.append(Discrepancy(
            "ScheduledPriceMissing", CRITICAL, ev.event_id,
            say(EVENT_REASON, type=ev.type, event=ev.event_id, reason=why),
            field="scheduled_price"))
        return out
    if last.amount > state.price:
        return _unclassified(ev, state, currency, DEARER_SCHEDULE, to_plan=last.plan_key)
    if last.amount == state.price:
        if state.downgrade_scheduled:
            return _downgrade_cancelled(ev, state, currency)
        return _plain(ev, EventType.NO_OP, state, None, currency)
    if state.scheduled_plan == last.plan_key and state.scheduled_price == last.amount:
        return _plain(ev, EventType.NO_OP, state, None, currency)  # the same downgrade, seen again
    after = dataclasses.replace(state, scheduled_plan=last.plan_key, scheduled_price=last.amount)
    return _movement(ev, EventType.DOWNGRADE_SCHEDULED, state, after, currency, to_plan=last.plan_key)


def _schedule_ended(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                    currency: str | None) -> _Outcome:
    if state.downgrade_scheduled:
        return _downgrade_cancelled(ev, state, currency)
    return _plain(ev, EventType.NO_OP, state, None, currency)


def _downgrade_cancelled(ev: ParsedEvent, state: SubscriptionState, currency: str | None) -> _Outcome:
    """Back to the plan price; the delta is null when nothing moves."""
    after = dataclasses.replace(state, scheduled_plan=None, scheduled_price=None)
    return _movement(ev, EventType.DOWNGRADE_CANCELLED, state, after, currency,
                     from_plan=state.scheduled_plan, to_plan=state.plan, null_zero_delta=True)


# -- invoices and charges -----------------------------------------------------------------------
def _invoice_paid(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                  currency: str | None) -> _Outcome:
    """Stripe sends invoice.paid and invoice.payment_succeeded; the first one classifies."""
    if ev.invoice_id is not None and ev.invoice_id in state.classified_invoice_ids:
        return _plain(ev, EventType.NO_OP, state, None, currency)
    after = state
    if ev.invoice_id is not None:
        after = dataclasses.replace(state,
                          classified_invoice_ids=tuple(sorted({*state.classified_invoice_ids, ev.invoice_id})))
    if ev.billing_reason != "subscription_cycle":
        return _plain(ev, EventType.NO_OP, state, after, currency)
    kind = EventType.PAYMENT_RECOVERED if (ev.attempt_count or 0) > 1 else EventType.RENEWED
    return _plain(ev, kind, state, after, currency)


def _invoice_failed(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                    currency: str | None) -> _Outcome:
    kind = EventType.PAYMENT_FAILED if ev.billing_reason == "subscription_cycle" else EventType.NO_OP
    return _plain(ev, kind, state, None, currency)


def _charge_refunded(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                     currency: str | None) -> _Outcome:
    return _plain(ev, EventType.PAYMENT_REFUNDED, state, None, currency)


# -- customers and payment methods --------------------------------------------------------------
def _customer_created(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                      currency: str | None) -> _Outcome:
    return _plain(ev, EventType.BILLING_INFO_ADDED, state, None, currency)


def _customer_updated(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                      currency: str | None) -> _Outcome:
    kind = EventType.BILLING_INFO_UPDATED if ev.customer_touched else EventType.NO_OP
    return _plain(ev, kind, state, None, currency)


def _tax_id_changed(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                    currency: str | None) -> _Outcome:
    return _plain(ev, EventType.BILLING_INFO_UPDATED, state, None, currency)


def _customer_deleted(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                      currency: str | None) -> _Outcome:
    after = _after_reset(state, "canceled" if state.status is not None else None)
    return _movement(ev, EventType.SUSPENDED, state, after, currency, to_plan=FREE_PLAN,
                     reason=CUSTOMER_DELETED_REASON)


def _payment_method_attached(ev: ParsedEvent, state: SubscriptionState, catalog: Catalog,
                             currency: str | None) -> _Outcome:
    return _plain(ev, EventType.PAYMENT_METHOD_UPDATED, state, None, currency)


_Handler = Callable[[ParsedEvent, SubscriptionState, Catalog, str | None], _Outcome]

_HANDLERS: dict[str, _Handler] = {
    "customer.created": _customer_created,
    "customer.updated": _customer_updated,
    "customer.deleted": _customer_deleted,
    "customer.tax_id.created": _tax_id_changed,
    "customer.tax_id.updated": _tax_id_changed,
    "customer.tax_id.deleted": _tax_id_changed,
    "payment_method.attached": _payment_method_attached,
    "customer.subscription.created": _subscription_created,
    "customer.subscription.updated": _subscription_updated,
    "customer.subscription.deleted": _subscription_deleted,
    "subscription_schedule.created": _schedule_updated,
    "subscription_schedule.updated": _schedule_updated,
    "subscription_schedule.released": _schedule_ended,
    "subscription_schedule.canceled": _schedule_ended,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice.payment_failed": _invoice_failed,
    "charge.refunded": _charge_refunded,
}
RECOGNISED_EVENT_TYPES = frozenset(_HANDLERS)


def _normalised(state: SubscriptionState) -> SubscriptionState:
    """Two-place amounts and an upper-case currency, so a seeded state prints like a replayed one."""
    return dataclasses.replace(
        state,
        price=money(state.price),
        committed_mrr=money(max(state.committed_mrr, ZERO)),
        scheduled_price=None if state.scheduled_price is None else money(state.scheduled_price),
        currency=state.currency.upper() if state.currency else None,
        classified_invoice_ids=tuple(sorted(set(state.classified_invoice_ids))),
    )


def _currency_exempt(event_type: str) -> bool:
    """Customer and payment-method events are recorded even when no currency is known yet."""
    return (event_type.startswith("customer.") and not event_type.startswith("customer.subscription.")) \
        or event_type.startswith("payment_method.")


def _sort_key(envelope: Mapping[str, Any]) -> tuple[int, str]:
    created = envelope.get("created")
    created = created if isinstance(created, int) and not isinstance(created, bool) else 0
    event_id = envelope.get("id")
    return created, event_id if isinstance(event_id, str) else ""


def classify(events: Sequence[Mapping[str, Any]], state: SubscriptionState, catalog: Catalog,
             amounts_of: Callable[[Mapping[str, Any]], InvoiceAmounts] | None = None) -> ClassifyResult:
    """Classifies the events of one subscription (or customer), oldest first, from `state`.

    Payloads are read by shape, whatever their API version; an event that cannot be read (it
    lacks what its type needs) fails with a Critical discrepancy naming the field and changes
    nothing; recognised events with no currency anywhere are skipped; types the ledger does not
    record are ignored.
    `amounts_of(envelope)` reads an invoice event's money (default: `invoice_amounts` of its
    object); a caller that reads the same invoices again passes a memoised one."""
    rows: list[LedgerRow] = []
    discrepancies: list[Discrepancy] = []
    skipped: list[str] = []
    ignored: list[str] = []
    unreadable: list[str] = []
    seen: set[str] = set()
    state = _normalised(state)
    for envelope in sorted(events, key=_sort_key):
        event_id = envelope.get("id")
        if isinstance(event_id, str):
            if event_id in seen:  # a redelivered copy: one row per event id
                continue
            seen.add(event_id)
        handler = _HANDLERS.get(envelope.get("type"))  # type: ignore[arg-type]
        if handler is None:
            if isinstance(event_id, str):
                ignored.append(event_id)
            continue
        try:
            ev = read_event(envelope)
            if handler is _invoice_paid and ev.invoice_id is not None \
                    and ev.invoice_id not in state.classified_invoice_ids:
                clamp = _clamp_check(envelope, ev, amounts_of)
            else:
                clamp = []
        except UnreadablePayload as exc:
            unreadable.append(str(event_id))
            discrepancies.append(unreadable_discrepancy(str(event_id), exc))
            continue
        except MalformedStripeEvent as exc:
            unreadable.append(str(event_id))
            discrepancies.append(Discrepancy("MalformedStripeEvent", CRITICAL,
                                             event_id if isinstance(event_id, str) else None, str(exc)))
            continue
        currency = ev.currency or state.currency
        if currency is None and not _currency_exempt(ev.type):
            skipped.append(ev.event_id)
            continue
        outcome = handler(ev, state, catalog, currency)
        rows.append(outcome.row)
        discrepancies.extend(outcome.discrepancies)
        discrepancies.extend(clamp)
        state = outcome.state
    return ClassifyResult(tuple(rows), state, tuple(discrepancies), tuple(skipped), tuple(ignored),
                          tuple(unreadable))


def unreadable_discrepancy(event_id: str, exc: UnreadablePayload) -> Discrepancy:
    """The Critical finding of an event the replay cannot read: what is missing, and the shape
    it was read in, so an operator can tell a Stripe change from a broken payload."""
    return Discrepancy(
        "UnreadablePayload", CRITICAL, event_id,
        say(PAYLOAD_UNREADABLE, type=exc.event_type, event=event_id, field=exc.field,
            version=exc.api_version or "unknown", shape=shape_of(exc.api_version)),
        field=exc.field)


def _clamp_check(envelope: Mapping[str, Any], ev: ParsedEvent,
                 amounts_of: Callable[[Mapping[str, Any]], InvoiceAmounts] | None) -> list[Discrepancy]:
    """A paid invoice whose tax exceeds what was paid: its ex-VAT amount was clamped to 0."""
    if amounts_of is not None:
        amounts = amounts_of(envelope)
    else:
        amounts = invoice_amounts(envelope["data"]["object"], ev.api_version)
    if not amounts.clamped:
        return []
    return [Discrepancy("AmountExcludingTaxClamped", WARNING, ev.event_id,
                        say(EXCLUDING_TAX_CLAMPED, invoice=amounts.invoice_id, paid=amounts.amount_paid,
                            tax=amounts.tax), field="amount_excluding_tax")]
