"""Disaster recovery and baseline history (DOMAIN §4).

Disaster recovery replays archived events Stripe's events.list no longer returns (older than its
30-day window) that have no ledger row, oldest first, through the replayer. Baseline history
covers Stripe resources that predate Backoffice (an installation on an existing Stripe account):
synthetic archive rows marked `recovery_source = 'baseline'` and ledger rows marked `baseline`
(written by the replay, `ledger.replay.replay_baseline`), so a fresh installation does not
flag every old customer and nobody mistakes them for events Stripe sent.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db
from backoffice.ledger import archive
from backoffice.ledger import replay as ledger_replay
from backoffice.ledger.models import BillingEvent, Discrepancy, StripeEvent
from backoffice.operators.services import audit, audit_now
from backoffice.stripe import drift, sync
from backoffice.stripe import gateway as gw
from backoffice.stripe.text import _

log = logging.getLogger(__name__)


@dataclass
class RecoveryPlan:
    """What a disaster recovery would do: shown in the second confirmation."""
    account_id: str
    awaiting: sync.Awaiting
    critical: int  # open critical discrepancies

    @property
    def offered(self) -> bool:
        return self.awaiting.count > 0 or self.critical > 0


@dataclass
class RecoveryResult:
    account_id: str
    candidates: int
    appended: int
    oldest: datetime | None
    newest: datetime | None

    def as_dict(self) -> dict:
        return {"account_id": self.account_id, "candidates": self.candidates, "events_appended": self.appended,
                "oldest": sync._iso(self.oldest), "newest": sync._iso(self.newest)}


def recovery_plan(account_id: str) -> RecoveryPlan:
    if db.session.get(Account, account_id) is None:
        raise NotFound(_("No account with the id %(id)s.", id=account_id))
    critical = db.session.execute(
        db.select(db.func.count()).select_from(Discrepancy).where(
            Discrepancy.account_id == account_id, Discrepancy.resolved_at.is_(None),
            Discrepancy.severity == drift.CRITICAL)
    ).scalar_one()
    return RecoveryPlan(account_id, sync.awaiting_confirmation(account_id), int(critical))


def _candidates(account_id: str, now: datetime) -> list[StripeEvent]:
    cutoff = now - sync.STRIPE_EVENTS_WINDOW
    return list(db.session.execute(
        db.select(StripeEvent)
        .where(*sync.awaiting_where(account_id, cutoff))
        .order_by(StripeEvent.stripe_created_at, StripeEvent.id)
    ).scalars())


def run_disaster_recovery(account_id: str, actor) -> RecoveryResult:
    """Hands the candidates back to the replayer (their processing state back to pending; the
    replayer takes pending events oldest first) and reports how many ledger rows it appended."""
    if db.session.get(Account, account_id) is None:
        raise NotFound(_("No account with the id %(id)s.", id=account_id))
    db.session.execute(db.select(Account.id).where(Account.id == account_id).with_for_update())
    now = utcnow()
    rows = _candidates(account_id, now)
    ids = [r.id for r in rows]
    oldest = rows[0].stripe_created_at if rows else None
    newest = rows[-1].stripe_created_at if rows else None
    for row in rows:
        row.state, row.error, row.processed_at = "pending", None, None
    db.session.flush()
    report = sync.replay_account(account_id) if ids else {}
    if report.get("error"):
        audit_now(actor, "stripe.disaster_recovery", target_type="account", target_id=account_id,
                  result="error", detail=f"replay failed: {report['error']}"[:2000])
        raise BadRequest(_("The replay failed; nothing was changed. The error has been logged."),
                         status=500, code="replay_failed")
    appended = db.session.execute(
        db.select(db.func.count()).select_from(BillingEvent)
        .where(BillingEvent.stripe_event_id.in_(ids), BillingEvent.current())
    ).scalar_one() if ids else 0
    result = RecoveryResult(account_id, len(ids), int(appended), oldest, newest)
    audit(actor, "stripe.disaster_recovery", "account", account_id, after=result.as_dict())
    db.session.commit()
    return result


# -- baseline --------------------------------------------------------------------------------------
@dataclass
class BaselineResult:
    accounts: int = 0
    events: int = 0
    ledger_rows: int = 0
    unavailable: int = 0


def _synthetic(event_type: str, obj: dict, created: int) -> dict:
    return {
        "id": f"baseline:{event_type}:{obj['id']}"[:255],
        "object": "event",
        # The version the gateway asks Stripe for: its live objects are rendered in it (the
        # readers read them by shape whatever it says).
        "api_version": gw.API_VERSION,
        "created": int(created),
        "type": event_type,
        "data": {"object": obj},
        "livemode": False,
        "baseline": True,
    }


def baseline_account(account: Account, gateway: gw.StripeGateway, now: datetime | None = None) -> tuple[int, int]:
    """Baseline history for one account: a synthetic event for every Stripe resource older than
    Stripe's window that the archive cannot cover; ledger rows (marked baseline) for the ones the
    classifier recognises. Answers (archive rows, ledger rows). One commit."""
    now = now or utcnow()
    window_start = now - sync.STRIPE_EVENTS_WINDOW
    customer = account.stripe_customer_id
    subs = gateway.subscriptions(customer)
    invoices = gateway.invoices(customer)
    covered = drift.covered_ids(drift.archived_objects(
        account, {"customer.subscription.created", *drift.INVOICE_EVENTS}))
    synthetic = []
    for sub in subs:
        created = sub.get("start_date") or sub.get("created")
        if created and datetime.fromtimestamp(created, UTC) < window_start \
                and ("customer.subscription.created", "id", sub["id"]) not in covered:
            synthetic.append(_synthetic("customer.subscription.created", sub, created))
    for inv in invoices:
        created = inv.get("created") or inv.get("date")
        if created and datetime.fromtimestamp(created, UTC) < window_start \
                and not any((t, "id", inv["id"]) in covered for t in drift.INVOICE_EVENTS):
            synthetic.append(_synthetic("invoice.created", inv, created))
    if not synthetic:
        return 0, 0
    synthetic.sort(key=lambda e: (e["created"], e["id"]))
    existing = set(db.session.execute(
        db.select(StripeEvent.id).where(StripeEvent.id.in_([e["id"] for e in synthetic]))).scalars())
    synthetic = [e for e in synthetic if e["id"] not in existing]
    if not synthetic:
        return 0, 0
    for event in synthetic:
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        archive.store_recovered(body, event, source="baseline", account_id=account.id, customer_id=customer, now=now)
    ledger_rows = ledger_replay.replay_baseline(account.id, synthetic, now)
    db.session.commit()
    return len(synthetic), ledger_rows


def baseline(gateway: gw.StripeGateway | None = None, progress: Callable[[int], None] | None = None,
             actor=None) -> BaselineResult:
    """`backoffice stripe baseline`: every account with a Stripe customer."""
    gateway = gateway or gw.get_gateway()
    result = BaselineResult()
    accounts = list(db.session.execute(
        db.select(Account).where(Account.stripe_customer_id.is_not(None)).order_by(Account.id)).scalars())
    for account in accounts:
        try:
            events, rows = baseline_account(account, gateway)
        except gw.StripeUnavailable as e:
            db.session.rollback()
            log.warning("baseline of %s: Stripe unavailable: %s", account.id, e)
            result.unavailable += 1
        else:
            result.accounts += 1 if events else 0
            result.events += events
            result.ledger_rows += rows
        if progress:
            progress(1)
    audit(actor, "stripe.baseline", after={"accounts": result.accounts, "events": result.events,
                                            "ledger_rows": result.ledger_rows, "unavailable": result.unavailable})
    db.session.commit()
    return result

