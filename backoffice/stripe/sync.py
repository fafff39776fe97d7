"""Sync an account with Stripe (DOMAIN §4).

One use case per account: lock the subscription row (PostgreSQL: SELECT ... FOR UPDATE), pull
`events.list` for the customer from the anchor (inclusive), archive what the archive lacks as
recovered (`recovery_source = events_list`), refresh the live subscription and the payment
transactions (the live objects, handed to ledger/projections.py), replay, move the anchor only
if the pull completed, then detect drift; one commit at the end. A Stripe outage during the
pull, or a failed replay, rolls everything back: pending events stay pending, nothing moves. An
outage during the drift check keeps the completed pull and replay (committed) and leaves the
check time unmoved.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import current_app

from backoffice.accounts.models import Account
from backoffice.dbtypes import UTCDateTime, utcnow
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db
from backoffice.ledger import archive, projections, readers
from backoffice.ledger import services as ledger_services
from backoffice.ledger.models import BillingEvent, Plan, StripeEvent, Subscription
from backoffice.operators.services import audit, audit_now
from backoffice.sentences import LISTED_BODY_DIFFERS, say
from backoffice.stripe import drift
from backoffice.stripe import gateway as gw
from backoffice.stripe.text import _

log = logging.getLogger(__name__)

STRIPE_EVENTS_WINDOW = timedelta(days=30)
Progress = Callable[[str], None]


@dataclass
class Awaiting:
    """Archived events outside Stripe's window with no ledger row: disaster recovery candidates."""
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "oldest": _iso(self.oldest),
            "newest": _iso(self.newest),
        }


@dataclass
class SyncResult:
    account_id: str
    events_recovered: int = 0  # archive rows a missed webhook should have stored
    events_appended: int = 0  # ledger rows the replay appended
    drift_detected: bool = False
    discrepancies: list[dict] = field(default_factory=list)
    synced_at: datetime | None = None
    awaiting: Awaiting = field(default_factory=Awaiting)

    @property
    def nothing_new(self) -> bool:
        return not self.events_recovered and not self.events_appended and not self.discrepancies

    def as_dict(self) -> dict:
        return {
            "account_id": self.account_id,
            "events_recovered": self.events_recovered,
            "events_appended": self.events_appended,
            "drift_detected": self.drift_detected,
            "discrepancies": self.discrepancies,
            "synced_at": _iso(self.synced_at),
            "awaiting_confirmation": self.awaiting.as_dict() if self.awaiting.count else None,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- preconditions ----------------------------------------------------------------------------------
def get_syncable_account(account_id: str) -> Account:
    """The account, or a clean 404, or a 409 naming why it cannot be synced (the set-up's or the
    account's state, not the request, is in the way)."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound(_("No account with the id %(id)s.", id=account_id))
    if not gw.is_configured():
        raise BadRequest(_("Stripe is not configured: set STRIPE_SECRET_KEY to sync accounts."),
                         status=409, code="stripe_not_configured")
    if not account.stripe_customer_id:
        raise BadRequest(_("This account has no Stripe customer, so there is nothing to sync."),
                         field="stripe_customer_id", status=409, code="no_stripe_customer")
    sub = current_subscription(account.id)
    _check_currency(sub.currency if sub else None)
    return account


def _check_currency(currency: str | None) -> None:
    platform = current_app.config.get("PLATFORM_CURRENCY", "EUR").upper()
    if currency and currency.upper() != platform:
        raise BadRequest(
            _("The subscription is billed in %(currency)s, but Backoffice reports in %(platform)s; "
              "it cannot be synced.", currency=currency.upper(), platform=platform),
            field="currency", status=409, code="foreign_currency")


def current_subscription(account_id: str, *, lock: bool = False) -> Subscription | None:
    stmt = db.select(Subscription).where(Subscription.account_id == account_id,
                                         Subscription.is_current.is_(True))
    if lock:
        stmt = stmt.with_for_update()  # a row lock on PostgreSQL; SQLite serialises writers anyway
    return db.session.execute(stmt).scalar_one_or_none()


# -- the use case -----------------------------------------------------------------------------------
def sync_account(account_id: str, actor=None, *, gateway: gw.StripeGateway | None = None,
                 progress: Progress | None = None) -> SyncResult:
    """Runs the whole sync of one account. StripeUnavailable → 503 BadRequest, nothing changed.
    `actor` is the operator or an API token's NamedActor (None for the CLI and the scheduler)."""
    say = progress or (lambda step: None)
    account = get_syncable_account(account_id)
    gateway = gateway or gw.get_gateway()
    customer_id = account.stripe_customer_id
    now = utcnow()

    sub = current_subscription(account.id, lock=True)
    anchor = sub.events_anchor if sub else None
    try:
        say("events")
        events = gateway.events_since(customer_id, anchor)
        say("subscription")
        live_subs = gateway.subscriptions(customer_id)
        live_raw = readers.current_subscription(live_subs)
        schedule = None
        schedule_id = live_raw.get("schedule") if live_raw else None
        if isinstance(schedule_id, dict):
            schedule_id = schedule_id.get("id")
        if schedule_id:
            schedule = gateway.subscription_schedule(schedule_id)
        schedules = [schedule] if schedule else []
        schedules += [e["data"]["object"] for e in events if e["type"].startswith("subscription_schedule.")]
        prices = drift.unseen_prices(gateway, schedules)
        say("payments")
        invoices = gateway.invoices(customer_id)
        credit_notes = gateway.credit_notes(customer_id)
    except gw.StripeUnavailable as e:
        log.warning("sync of %s: Stripe unavailable: %s", account.id, e)
        audit_now(actor, "stripe.sync", target_type="account", target_id=account.id, result="error",
                  detail=str(e)[:2000])
        raise BadRequest(_("%(why)s Nothing was changed.", why=gw.describe_error(e)),
                         status=503, code="stripe_unavailable") from e

    for price in prices:
        projections.remember_price(price)  # before anything counts a price: the replay reads the catalog too
    catalog, amounts = plan_catalog()
    live = readers.read_subscription(live_raw, catalog, amounts)
    _check_currency(live.currency if live_raw and live_raw.get("status") != "canceled" else None)

    say("archive")
    archive.release_waiting_events(customer_id, account.id)  # webhooks that came before the link
    recovered, divergent = archive_recovered(account.id, customer_id, events, now)
    before_rows = _ledger_count(account.id)
    # The replayer seeds its state from the live subscription, so refresh it first.
    sub = projections.mirror_subscription(account.id, live, live_raw, schedule, catalog, amounts, existing=sub)
    projections.mirror_payments(account.id, sub, invoices, credit_notes, catalog)
    if events:
        newest = max(datetime.fromtimestamp(e["created"], UTC) for e in events)
        if anchor is None or newest > anchor:
            sub.events_anchor = newest  # the pull completed: the next one starts here (inclusive)
    db.session.flush()

    say("replay")
    report = replay_account(account.id)  # in this transaction: one commit at the end
    if report.get("error"):
        audit_now(actor, "stripe.sync", target_type="account", target_id=account.id, result="error",
                  detail=f"replay failed: {report['error']}"[:2000])
        raise BadRequest(_("The replay of this account's events failed; nothing was changed. "
                           "The error has been logged."), status=500, code="replay_failed")
    appended = _ledger_count(account.id) - before_rows

    say("drift")
    # Stripe's live state wins over what the payloads said: refresh again after the replay.
    catalog, amounts = plan_catalog()
    live = readers.read_subscription(live_raw, catalog, amounts)
    sub = projections.mirror_subscription(account.id, live, live_raw, schedule, catalog, amounts,
                                          existing=current_subscription(account.id, lock=True))
    clamped = projections.mirror_payments(account.id, sub, invoices, credit_notes, catalog)
    context = drift.Context(
        live=live, live_raw=live_raw, schedule=schedule, invoices=invoices, clamped=clamped,
        events_list=events, events_list_from=anchor, divergent=divergent, now=now,
        catalog=catalog, catalog_amounts=amounts,
    )
    try:
        found = drift.detect(account, sub, context, gateway=gateway)
    except gw.StripeUnavailable as e:
        db.session.commit()  # the pull and the replay are complete and kept; the check did not happen
        audit_now(actor, "stripe.sync", target_type="account", target_id=account.id, result="error",
                  detail=f"drift check: {e}"[:2000])
        raise BadRequest(_("Stripe became unavailable during the drift check; the events were synced, "
                           "the drift check will run again."), status=503, code="stripe_unavailable") from e
    findings = drift.store(account.id, sub, found, now)
    awaiting = awaiting_confirmation(account.id, now)
    result = SyncResult(
        account_id=account.id,
        events_recovered=recovered,
        events_appended=appended,
        drift_detected=bool(findings),
        discrepancies=[f.as_dict() for f in findings],
        synced_at=now,
        awaiting=awaiting,
    )
    audit(actor, "stripe.sync", "account", account.id,
          after={"events_recovered": recovered, "events_appended": appended,
                 "discrepancies": len(findings), "awaiting_confirmation": awaiting.count},
          result="ok")
    db.session.commit()
    return result


def attach_waiting_customers(gateway: gw.StripeGateway | None = None) -> int:
    """Fetches from Stripe the customers whose events wait for an account (their customer.created
    was missed), which links or creates each one's account (DOMAIN §2), so a sync of all accounts
    includes them. A customer Stripe no longer has stays waiting. Answers how many were attached;
    StripeUnavailable propagates."""
    gateway = gateway or gw.get_gateway()
    attached = 0
    for customer_id in archive.waiting_customer_ids():
        customer = gateway.customer(customer_id)
        if customer is None or customer.get("deleted"):
            continue
        archive.attach_customer(customer)
        attached += 1
    return attached


# -- steps --------------------------------------------------------------------------------------------
def archive_recovered(account_id: str, customer_id: str, events: list[dict], now: datetime
                      ) -> tuple[int, list[drift.Finding]]:
    """Inserts the pulled events the archive lacks, marked recovered; a re-pulled event that says
    something else than the stored one is a PayloadDivergence (the stored row is kept). The
    events list renders each event at its own API version, the webhook at the endpoint's: one
    event in two versions that says the same is no divergence (readers.same_event)."""
    if not events:
        return 0, []
    ids = [e["id"] for e in events]
    stored = {
        row.id: row.payload
        for row in db.session.execute(
            db.select(StripeEvent.id, StripeEvent.payload).where(StripeEvent.id.in_(ids))
        )
    }
    recovered = 0
    divergent: list[drift.Finding] = []
    for event in events:
        if event["id"] in stored:
            if not _same(stored[event["id"]], event):
                divergent.append(drift.Finding(
                    "PayloadDivergence", "warning",
                    say(LISTED_BODY_DIFFERS, event=event["id"]),
                    stripe_event_id=event["id"]))
            continue
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        if archive.store_recovered(body, event, source="events_list", account_id=account_id,
                                   customer_id=customer_id, now=now):
            recovered += 1
    return recovered, divergent


def _same(stored_payload: str, event: dict) -> bool:
    try:
        stored = json.loads(stored_payload)
    except ValueError:
        return False
    return isinstance(stored, dict) and readers.same_event(stored, event)


def plan_catalog() -> tuple[dict[str, str], dict[str, Decimal]]:
    rows = db.session.execute(db.select(Plan.price_id, Plan.plan_key, Plan.monthly_amount)).all()
    return {r.price_id: r.plan_key for r in rows}, {r.price_id: r.monthly_amount for r in rows}


def replay_account(account_id: str) -> dict:
    """The ledger's replayer (the only writer of billing events), run in this process inside the
    caller's transaction: what the caller wrote before (recovered archive rows, the refreshed
    subscription, the anchor) is committed with the ledger rows by the caller, or not at all.
    On failure everything is rolled back and the error answered."""
    try:
        return ledger_services.replay_account_in_transaction(account_id).as_dict()
    except Exception as e:
        db.session.rollback()
        log.exception("replay of account %s during a sync failed", account_id)
        return {"error": f"{type(e).__name__}: {e}"[:2000]}


def _ledger_count(account_id: str) -> int:
    return db.session.execute(
        db.select(db.func.count()).select_from(BillingEvent)
        .where(BillingEvent.account_id == account_id, BillingEvent.current())
    ).scalar_one()


def awaiting_where(account_id: str, cutoff: datetime) -> tuple:
    """The account's archived events older than `cutoff` that the replayer recognises and that have
    no ledger row: what awaits confirmation, and what disaster recovery replays (recovery.py)."""
    return (
        StripeEvent.account_id == account_id,
        StripeEvent.stripe_created_at < cutoff,
        StripeEvent.type.in_(sorted(archive.CLASSIFIED_TYPES)),
        StripeEvent.state != "ignored",
        ~db.select(BillingEvent.id).where(BillingEvent.stripe_event_id == StripeEvent.id).exists(),
    )


def awaiting_confirmation(account_id: str, now: datetime | None = None) -> Awaiting:
    """Archived events Stripe no longer lists (older than 30 days), recognised by the replayer,
    with no ledger row: what disaster recovery would replay."""
    cutoff = (now or utcnow()) - STRIPE_EVENTS_WINDOW
    row = db.session.execute(
        db.select(db.func.count(), db.func.min(StripeEvent.stripe_created_at),
                  db.func.max(StripeEvent.stripe_created_at))
        .where(*awaiting_where(account_id, cutoff))
    ).one()
    count, oldest, newest = row
    convert = UTCDateTime().process_result_value
    dialect = db.engine.dialect
    return Awaiting(int(count or 0), convert(oldest, dialect), convert(newest, dialect))
