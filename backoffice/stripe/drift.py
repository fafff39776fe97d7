"""Drift detection (DOMAIN §4): what Backoffice believes about an account against what Stripe
says, and against what a fresh replay of the archive would write.

`detect` computes the findings; `store` reconciles them with the account's open discrepancy list
and sets the flag exactly when that list is non-empty; `check_subscription` is the drift pass's
detect mode (reads Stripe, writes only the drift columns and the discrepancy list).
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import archive, projections, readers
from backoffice.ledger import replay_adapter as adapter
from backoffice.ledger.models import BillingEvent, Discrepancy, Plan, StripeEvent, Subscription
from backoffice.operators.services import audit
from backoffice.sentences import (
    CANCEL_DIFFERS,
    CURRENCY_DIFFERS,
    NEGATIVE_EXCLUDING_TAX,
    NO_BILLING_EVENTS,
    NOT_YET_LISTED,
    PLAN_DIFFERS,
    PRICE_DIFFERS,
    SCHEDULED_UNREADABLE,
    SCHEDULED_WITHOUT_PRICE,
    STALE_ROW,
    UNCLASSIFIED,
    UNREAD,
    UNRECOVERABLE,
    say,
)
from backoffice.stripe import gateway as gw
from backoffice.stripe.text import _

log = logging.getLogger(__name__)

WARNING, CRITICAL = "warning", "critical"
STRIPE_EVENTS_WINDOW = timedelta(days=30)
CENT = Decimal("0.01")

# The kinds `detect` computes. Others on the list (a webhook's PayloadDivergence, the replayer's
# findings) are kept until an operator has acknowledged them.
STATE_MISMATCH = "SubscriptionStateMismatch"
COMPUTED_KINDS = frozenset({
    STATE_MISMATCH,
    "MissingEvent",
    "ScheduledPriceMissing",
    "UnclassifiedStripeEvent",
    "UnreadablePayload",
    "StalePersistedRow",
    "AmountExcludingTaxClamped",
    "MissingHistoricalEvent",
})
UNREADABLE = "UnreadablePayload"

# Ledger types that move the subscription state the ledger implies.
_PLAN_SET = {"subscription_created", "subscription_upgraded", "subscription_downgraded"}
_TO_FREE = {"subscription_expired", "subscription_immediately_cancelled", "subscription_suspended"}
INVOICE_EVENTS = ("invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
                   "invoice.payment_failed", "invoice.updated", "invoice.voided", "invoice.marked_uncollectible")
# The event types that cover an account's resources (see `_resources`).
RESOURCE_EVENT_TYPES = frozenset({"customer.subscription.created", *INVOICE_EVENTS, "charge.refunded",
                                  "credit_note.created"})


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    message: str
    field: str | None = None
    stripe_event_id: str | None = None

    @property
    def key(self) -> tuple:
        return (self.kind, self.field, self.stripe_event_id, self.message)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "field": self.field,
                "stripe_event_id": self.stripe_event_id, "message": self.message}

    @classmethod
    def of(cls, row: Discrepancy) -> Finding:
        return cls(row.kind, row.severity, row.message, row.field, row.stripe_event_id)


@dataclass
class Context:
    """What Stripe said during this check. `events_list` is None in detect mode: it is then
    fetched only if the archive cannot cover a resource (one call per account at most)."""
    live: readers.LiveSubscription
    live_raw: dict | None
    schedule: dict | None
    invoices: list[dict]
    clamped: list[readers.LiveInvoice] = field(default_factory=list)
    events_list: list[dict] | None = None
    events_list_from: datetime | None = None
    divergent: list[Finding] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)
    replay_catalog: object | None = None  # the replayer's Catalog, when the caller has the plans at hand
    # The plans catalog (price id → plan key, → monthly amount): Stripe's schedules name prices by id.
    catalog: dict[str, str] = field(default_factory=dict)
    catalog_amounts: dict[str, Decimal] = field(default_factory=dict)


class Archive:
    """One account's archived events, read with one query per check and parsed at most once:
    the handled events linked to the account (oldest first) feed the API-version check and the
    dry replay; the events of the resource types, linked to the account or to its Stripe
    customer, feed the coverage of its resources."""

    def __init__(self, account_id: str, rows: list):
        self.account_id = account_id
        self.rows = rows
        self._parsed: dict[str, dict] = {}

    @classmethod
    def load(cls, account_id: str, customer_id: str | None = None,
             types: frozenset[str] | set[str] | None = None) -> Archive:
        types = (archive.HANDLED_TYPES | RESOURCE_EVENT_TYPES) if types is None else types
        owner = (db.or_(StripeEvent.account_id == account_id, StripeEvent.customer_id == customer_id)
                 if customer_id else StripeEvent.account_id == account_id)
        rows = db.session.execute(
            db.select(StripeEvent.id, StripeEvent.type, StripeEvent.api_version, StripeEvent.state,
                      StripeEvent.error, StripeEvent.account_id, StripeEvent.payload)
            .where(owner, StripeEvent.type.in_(sorted(types)))
            .order_by(StripeEvent.stripe_created_at, StripeEvent.id)
        ).all()
        return cls(account_id, rows)

    def handled(self) -> list:
        """The handled events linked to the account, oldest first (what a replay reads)."""
        return [r for r in self.rows if r.account_id == self.account_id and r.type in archive.HANDLED_TYPES]

    def event(self, row) -> dict:
        """The row's payload as a dict (raises ValueError when it is not JSON)."""
        event = self._parsed.get(row.id)
        if event is None:
            event = self._parsed[row.id] = json.loads(row.payload)
        return event

    def objects(self, types: set[str] | frozenset[str]):
        """(event type, data.object) of the events of `types`."""
        for row in self.rows:
            if row.type not in types:
                continue
            try:
                yield row.type, (self.event(row).get("data") or {}).get("object")
            except (ValueError, AttributeError):
                continue


@dataclass
class LedgerState:
    plan: str = readers.FREE_PLAN
    price: Decimal = Decimal(0)
    cancel_at_period_end: bool = False
    currency: str | None = None
    known: bool = False  # the ledger holds at least one subscription-lifecycle row


def ledger_state(rows: list[BillingEvent]) -> LedgerState:
    """The subscription state the ledger's rows imply, in their order."""
    state = LedgerState()
    for row in rows:
        if row.currency:
            state.currency = row.currency
        if row.type in _PLAN_SET:
            state.known = True
            state.plan = row.to_plan or state.plan
            state.price = row.new_amount if row.new_amount is not None else state.price
            if row.type == "subscription_created":
                state.cancel_at_period_end = False
        elif row.type == "subscription_cancelled":
            state.known = True
            state.cancel_at_period_end = True
        elif row.type == "subscription_reactivated":
            state.known = True
            state.cancel_at_period_end = False
            if row.to_plan:
                state.plan = row.to_plan
            if row.new_amount is not None:
                state.price = row.new_amount
        elif row.type in _TO_FREE:
            state.known = True
            state.plan, state.price, state.cancel_at_period_end = readers.FREE_PLAN, Decimal(0), False
    return state


def _money(value: Decimal | None) -> Decimal:
    return (value or Decimal(0)).quantize(CENT)


# -- detection ----------------------------------------------------------------------------------------
def detect(account: Account, sub: Subscription | None, ctx: Context,
           gateway: gw.StripeGateway | None = None) -> list[Finding]:
    """Every finding of §4 for one account. Reads only; may call events.list (detect mode)."""
    rows = list(db.session.execute(
        db.select(BillingEvent).where(BillingEvent.account_id == account.id, BillingEvent.current())
        .order_by(BillingEvent.occurred_at, BillingEvent.id)
    ).scalars())
    archived = Archive.load(account.id, account.stripe_customer_id)
    findings: list[Finding] = []
    findings += _state_mismatch(ledger_state(rows), ctx.live)
    findings += _missing_event(account.id, rows)
    findings += _scheduled_price_missing(sub, ctx)
    findings += [
        Finding("UnclassifiedStripeEvent", WARNING,
                say(UNCLASSIFIED, event=r.stripe_event_id),
                stripe_event_id=r.stripe_event_id)
        for r in rows if r.type == "unclassified"
    ]
    findings += _unreadable_events(account.id, archived)
    findings += _stale_rows(account.id, rows, archived, ctx.replay_catalog)
    findings += [f for f in ctx.divergent]
    findings += [
        Finding("AmountExcludingTaxClamped", WARNING,
                say(NEGATIVE_EXCLUDING_TAX, invoice=inv.id),
                field="amount_excluding_tax")
        for inv in (ctx.clamped or [readers.read_invoice(i) for i in ctx.invoices if _is_clamped(i)])
    ]
    findings += _missing_historical(account, sub, ctx, gateway, archived)
    return findings


def _is_clamped(inv: dict) -> bool:
    try:
        return readers.read_invoice(inv).clamped
    except (KeyError, TypeError, ValueError):
        return False


def _state_mismatch(local: LedgerState, live: readers.LiveSubscription) -> list[Finding]:
    if not local.known:
        return []  # nothing replayed yet: MissingEvent / MissingHistoricalEvent name the gap
    out = []
    if local.plan != live.plan:
        out.append(Finding(STATE_MISMATCH, CRITICAL,
                           say(PLAN_DIFFERS, local=local.plan, live=live.plan), field="plan"))
    if _money(local.price) != _money(live.price):  # DOMAIN §4: one finding per field
        out.append(Finding(STATE_MISMATCH, CRITICAL,
                           say(PRICE_DIFFERS, local=_money(local.price), live=_money(live.price)),
                           field="price"))
    if live.plan != readers.FREE_PLAN and local.cancel_at_period_end != live.cancel_at_period_end:
        out.append(Finding(STATE_MISMATCH, WARNING,
                           say(CANCEL_DIFFERS, local=str(local.cancel_at_period_end).lower(),
                               live=str(live.cancel_at_period_end).lower()), field="cancel_at_period_end"))
    if local.currency and live.currency and local.currency != live.currency:
        out.append(Finding(STATE_MISMATCH, WARNING,
                           say(CURRENCY_DIFFERS, local=local.currency, live=live.currency),
                           field="currency"))
    return out


def _missing_event(account_id: str, rows: list[BillingEvent]) -> list[Finding]:
    if rows:
        return []
    payments = db.session.execute(
        db.select(db.func.count()).select_from(PaymentTransaction).where(
            PaymentTransaction.account_id == account_id, PaymentTransaction.status == "succeeded")
    ).scalar_one()
    if not payments:
        return []
    return [Finding("MissingEvent", WARNING,
                    say(NO_BILLING_EVENTS, count=payments))]


def _scheduled_price_missing(sub: Subscription | None, ctx: Context) -> list[Finding]:
    change = (readers.read_schedule(ctx.schedule, ctx.live.plan, ctx.catalog, ctx.catalog_amounts)
              if ctx.schedule else None)
    if change is not None and change.price is None:
        return [Finding("ScheduledPriceMissing", CRITICAL,
                        say(SCHEDULED_UNREADABLE, plan=change.plan),
                        field="scheduled_price_amount")]
    if sub is not None and sub.scheduled_plan and sub.scheduled_price_amount is None:
        return [Finding("ScheduledPriceMissing", CRITICAL,
                        say(SCHEDULED_WITHOUT_PRICE, plan=sub.scheduled_plan), field="scheduled_price_amount")]
    return []


def _unreadable_events(account_id: str, archived: Archive | None = None) -> list[Finding]:
    """Every archived event the replay failed to read stays Critical drift until a replay with
    `--failed` reads it (DOMAIN §3): the replay's own finding (it names the field) when it is
    still open, else one made from the event's error."""
    failed = [r for r in (archived or Archive.load(account_id)).handled() if r.state == "failed"]
    if not failed:
        return []
    recorded = {row.stripe_event_id: Finding.of(row) for row in db.session.execute(
        db.select(Discrepancy).where(Discrepancy.account_id == account_id, Discrepancy.kind == UNREADABLE,
                                     Discrepancy.resolved_at.is_(None),
                                     Discrepancy.stripe_event_id.in_([r.id for r in failed]))).scalars()}
    return [recorded.get(r.id) or Finding(UNREADABLE, CRITICAL, r.error or say(UNREAD, event=r.id),
                                          stripe_event_id=r.id)
            for r in failed]


def _stale_rows(account_id: str, rows: list[BillingEvent], archived: Archive | None = None,
                catalog=None) -> list[Finding]:
    """Stored rows that differ from a fresh replay of the archive. A row sharing its second with
    another row is skipped: siblings in one second have no reliable order (Stripe's `created` is
    in seconds), so their replay may legitimately differ."""
    if not rows:
        return []
    fresh = fresh_replay(account_id, archived, catalog)
    if fresh is None:
        return []
    per_second = Counter(int(r.occurred_at.timestamp()) for r in rows)
    out = []
    for row in rows:
        if row.baseline or per_second[int(row.occurred_at.timestamp())] > 1:
            continue
        expected = fresh.get(row.stripe_event_id)
        if expected is None:
            continue
        compared = _COMPARED if {row.type, expected.get("type")} & _MOVEMENTS else ("type",)
        diffs = [name for name in compared if _normal(getattr(row, name, None)) != _normal(expected.get(name))]
        if diffs:
            out.append(Finding("StalePersistedRow", WARNING,
                               say(STALE_ROW, event=row.stripe_event_id, fields=", ".join(sorted(diffs))),
                               field=",".join(sorted(diffs))[:60], stripe_event_id=row.stripe_event_id))
    return out


# What a fresh replay must reproduce: the type of every row, and the money of MRR movements.
# Informational rows (NoOp, BillingInfo..., payments) carry the seed's plan and committed MRR,
# which a replay from an empty state cannot know, so only their type is compared.
_COMPARED = ("type", "to_plan", "previous_amount", "new_amount", "amount_delta", "currency")
_MOVEMENTS = frozenset({
    "subscription_created", "subscription_upgraded", "subscription_downgraded",
    "subscription_downgrade_scheduled", "subscription_downgrade_cancelled", "subscription_cancelled",
    "subscription_reactivated", "subscription_expired", "subscription_immediately_cancelled",
    "subscription_suspended",
})


def _normal(value):
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.0001"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value)).quantize(Decimal("0.0001"))
    return value


def fresh_replay(account_id: str, archived: Archive | None = None, catalog=None) -> dict[str, dict] | None:
    """{stripe_event_id: row fields} a replay of the account's whole archive from an empty state
    would write: the replayer's own classifier, run as a dry run (nothing is written)."""
    archived = archived or Archive.load(account_id)
    handled = archived.handled()
    if not handled:
        return None
    try:
        events = [archived.event(r) for r in handled]
        result = adapter.classify(events, adapter.empty_state(), catalog or adapter.load_catalog())
        return {values["stripe_event_id"]: values
                for values in (adapter.row_values(r) for r in adapter.rows_of(result))}
    except Exception:
        log.exception("dry replay of %s failed", account_id)
        return None


# -- missing historical events ------------------------------------------------------------------
@dataclass(frozen=True)
class Resource:
    kind: str  # subscription | invoice | refund | credit_note
    id: str
    created: datetime | None
    event_types: tuple[str, ...]
    match: str  # which id in the event's object names the resource: id | invoice | charge


def _resources(account_id: str, sub: Subscription | None, ctx: Context) -> list[Resource]:
    out = []
    sub_id = (sub.stripe_subscription_id if sub else None) or ctx.live.id
    if sub_id:
        created = ctx.live.started_at if ctx.live.id == sub_id else None
        created = created or (sub.subscribed_since if sub else None) or (sub.created_at if sub else None)
        out.append(Resource("subscription", sub_id, created, ("customer.subscription.created",), "id"))
    txs = db.session.execute(
        db.select(PaymentTransaction.stripe_invoice_id, PaymentTransaction.date,
                  PaymentTransaction.stripe_charge_id, PaymentTransaction.refunded_at,
                  PaymentTransaction.credit_noted_at)
        .where(PaymentTransaction.account_id == account_id)
    ).all()
    for tx in txs:
        out.append(Resource("invoice", tx.stripe_invoice_id, tx.date, INVOICE_EVENTS, "id"))
        if tx.refunded_at and tx.stripe_charge_id:
            out.append(Resource("refund", tx.stripe_charge_id, tx.refunded_at, ("charge.refunded",), "id"))
        if tx.credit_noted_at:
            out.append(Resource("credit_note", tx.stripe_invoice_id, tx.credit_noted_at,
                                ("credit_note.created",), "invoice"))
    return out


def covered_ids(events) -> set[tuple[str, str]]:
    """(event type, object id) and (event type, invoice id) pairs the events cover."""
    covered = set()
    for etype, obj in events:
        if not isinstance(obj, dict):
            continue
        if obj.get("id"):
            covered.add((etype, "id", obj["id"]))
        invoice = obj.get("invoice")
        if isinstance(invoice, dict):
            invoice = invoice.get("id")
        if invoice:
            covered.add((etype, "invoice", invoice))
    return covered


def archived_objects(account: Account, types: set[str]):
    """(event type, data.object) of the archived events of `types` of the account or its customer."""
    return Archive.load(account.id, account.stripe_customer_id, types).objects(types)


def _is_covered(res: Resource, covered: set) -> bool:
    return any((t, res.match, res.id) in covered for t in res.event_types)


def _missing_historical(account: Account, sub: Subscription | None, ctx: Context,
                        gateway: gw.StripeGateway | None, archived: Archive | None = None) -> list[Finding]:
    resources = _resources(account.id, sub, ctx)
    if not resources:
        return []
    types = {t for r in resources for t in r.event_types}
    covered = covered_ids(archived.objects(types) if archived else archived_objects(account, types))
    missing = [r for r in resources if not _is_covered(r, covered)]
    if not missing:
        return []
    # archive ∪ events.list: consult Stripe's list (the last 30 days) for what the archive lacks.
    listed = ctx.events_list
    window_start = ctx.now - STRIPE_EVENTS_WINDOW
    needs_full_window = ctx.events_list_from is not None and ctx.events_list_from > window_start
    if (listed is None or needs_full_window) and gateway is not None and account.stripe_customer_id:
        young = [r for r in missing if r.created is None or r.created >= window_start]
        if young:
            listed = gateway.events_since(account.stripe_customer_id, window_start)
    if listed:
        covered |= covered_ids(
            (e["type"], (e.get("data") or {}).get("object")) for e in listed if e["type"] in types)
    out = []
    for res in missing:
        if _is_covered(res, covered):
            continue
        old = res.created is not None and res.created < window_start
        when = res.created.strftime("%Y-%m-%d") if res.created else "unknown date"
        if old:
            out.append(Finding("MissingHistoricalEvent", CRITICAL,
                               say(UNRECOVERABLE, kind=res.kind.replace("_", " "), id=res.id, when=when),
                               field=res.kind))
        else:
            out.append(Finding("MissingHistoricalEvent", WARNING,
                               say(NOT_YET_LISTED, kind=res.kind.replace("_", " "), id=res.id, when=when),
                               field=res.kind))
    return out


# -- the discrepancy list -------------------------------------------------------------------------------
def store(account_id: str, sub: Subscription | None, findings: list[Finding], now: datetime) -> list[Finding]:
    """Reconciles the open list with `findings` (same finding → same row), sets the flag exactly
    when the list is non-empty and the check time. Answers the open list. Does not commit."""
    open_rows = list(db.session.execute(
        db.select(Discrepancy).where(Discrepancy.account_id == account_id, Discrepancy.resolved_at.is_(None))
        .order_by(Discrepancy.id)
    ).scalars())
    wanted = {f.key: f for f in findings}
    acknowledged_at = sub.drift_acknowledged_at if sub else None
    kept: list[Finding] = []
    for row in open_rows:
        finding = Finding.of(row)
        if finding.key in wanted:
            kept.append(wanted.pop(finding.key))
        elif row.kind in COMPUTED_KINDS:
            row.resolved_at = now  # the cause is gone
        elif acknowledged_at is not None and row.detected_at <= acknowledged_at:
            row.resolved_at = now  # recorded elsewhere, seen and acknowledged by an operator
        else:
            kept.append(finding)
    for f in wanted.values():
        db.session.add(Discrepancy(account_id=account_id, subscription_id=sub.id if sub else None,
                                   kind=f.kind, severity=f.severity, field=f.field,
                                   stripe_event_id=f.stripe_event_id, message=f.message, detected_at=now))
        kept.append(f)
    if sub is not None:
        sub.drift_detected = bool(kept)
        sub.drift_checked_at = now
    db.session.flush()
    return kept


# -- prices named by id ----------------------------------------------------------------------------
def unseen_prices(gateway: gw.StripeGateway, schedules: list[dict]) -> list[dict]:
    """The prices the schedules' phases name that the plans catalog lacks, fetched from Stripe:
    a schedule names its prices by id only, and an unknown one would count as 0 (a downgrade
    to it would drop committed MRR to 0, and read as ScheduledPriceMissing)."""
    wanted = {price_id for schedule in schedules for price_id in readers.schedule_price_ids(schedule)}
    if not wanted:
        return []
    known = set(db.session.execute(
        db.select(Plan.price_id).where(Plan.price_id.in_(sorted(wanted)))).scalars())
    return [price for price in (gateway.price(price_id) for price_id in sorted(wanted - known)) if price]


# -- detect mode (the drift pass) -----------------------------------------------------------------
def check_subscription(subscription_id: int, gateway: gw.StripeGateway | None = None) -> str:
    """One account of the drift pass: 'processed', 'skipped' (nothing to check) or
    'unavailable' (Stripe down: nothing written, the row stays due). One commit."""
    found = db.session.execute(
        db.select(Subscription, Account).join(Account, Account.id == Subscription.account_id)
        .where(Subscription.id == subscription_id)
    ).first()
    if found is None or not found.Account.stripe_customer_id:
        return "skipped"
    sub, account = found
    gateway = gateway or gw.get_gateway()
    now = utcnow()
    try:
        live_subs = gateway.subscriptions(account.stripe_customer_id)
        live_raw = readers.current_subscription(live_subs)
        schedule_id = live_raw.get("schedule") if live_raw else None
        if isinstance(schedule_id, dict):
            schedule_id = schedule_id.get("id")
        schedule = gateway.subscription_schedule(schedule_id) if schedule_id else None
        invoices = gateway.invoices(account.stripe_customer_id)
        plans = db.session.execute(db.select(Plan)).scalars().all()
        catalog = {p.price_id: p.plan_key for p in plans}
        amounts = {p.price_id: p.monthly_amount for p in plans}
        for price in unseen_prices(gateway, [schedule] if schedule else []):
            values = adapter.plan_values(price)  # known for this check only: detect mode writes no plan
            if values is not None:
                catalog[values["price_id"]] = values["plan_key"]
                amounts[values["price_id"]] = values["monthly_amount"]
        live = readers.read_subscription(live_raw, catalog, amounts)
        ctx = Context(live=live, live_raw=live_raw, schedule=schedule, invoices=invoices, now=now,
                      replay_catalog=adapter.catalog_of(plans), catalog=catalog, catalog_amounts=amounts)
        findings = detect(account, sub, ctx, gateway=gateway)
    except gw.StripeUnavailable as e:
        db.session.rollback()
        log.warning("drift check of %s: Stripe unavailable: %s", account.id, e)
        return "unavailable"
    store(account.id, sub, findings, now)
    db.session.commit()
    return "processed"


def hold_accounts_without_subscription() -> int:
    """Gives each account with a Stripe customer and payments but no current subscription row
    (its subscription events were missed) a free placeholder row, as a sync writes for a customer
    without a subscription and the replayer adopts: the pass checks subscription rows, and the
    drift flag lives on one, so MissingEvent never showed for these accounts. One commit."""
    account_ids = db.session.execute(
        db.select(Account.id).where(
            Account.stripe_customer_id.is_not(None),
            db.select(PaymentTransaction.id).where(PaymentTransaction.account_id == Account.id).exists(),
            ~db.select(Subscription.id).where(Subscription.account_id == Account.id,
                                              Subscription.is_current.is_(True)).exists())
        .order_by(Account.id)
    ).scalars().all()
    projections.hold_placeholders(account_ids)
    try:
        db.session.commit()
    except IntegrityError:  # a sync or another pass gave one of them its row meanwhile
        db.session.rollback()
        return 0
    return len(account_ids)


def due_subscription_ids(now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Current subscriptions of accounts with a Stripe customer, unchecked for more than 23 h."""
    cutoff = (now or utcnow()) - timedelta(hours=23)
    stmt = (
        db.select(Subscription.id)
        .join(Account, Account.id == Subscription.account_id)
        .where(Subscription.is_current.is_(True), Account.stripe_customer_id.is_not(None),
               db.or_(Subscription.drift_checked_at.is_(None), Subscription.drift_checked_at < cutoff))
        .order_by(Subscription.drift_checked_at.is_not(None), Subscription.drift_checked_at, Subscription.id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.execute(stmt).scalars())


# -- acknowledge ------------------------------------------------------------------------------------
def acknowledge(account_id: str, actor) -> Subscription:
    """Clears the flag, keeps the list, records who and when. No drift → 400."""
    if db.session.get(Account, account_id) is None:
        raise NotFound(_("No account with the id %(id)s.", id=account_id))
    sub = db.session.execute(
        db.select(Subscription).where(Subscription.account_id == account_id, Subscription.is_current.is_(True))
        .with_for_update()
    ).scalar_one_or_none()
    if sub is None or not sub.drift_detected:
        raise BadRequest(_("This account has no drift to acknowledge."), status=409, code="no_drift")
    before = {"drift_detected": True, "drift_acknowledged_at": _iso(sub.drift_acknowledged_at),
              "drift_acknowledged_by": sub.drift_acknowledged_by}
    sub.drift_detected = False
    sub.drift_acknowledged_at = utcnow()
    sub.drift_acknowledged_by = actor.email if actor else "system"
    audit(actor, "stripe.acknowledge_drift", "account", account_id, before=before,
          after={"drift_detected": False, "drift_acknowledged_at": _iso(sub.drift_acknowledged_at),
                 "drift_acknowledged_by": sub.drift_acknowledged_by})
    db.session.commit()
    return sub


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
