"""Reads of reconciliation: job runs (the Jobs page, a sync's polled status), an account's
discrepancy list."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.ledger.models import Discrepancy, StripeEvent, Subscription
from backoffice.pagination import Page, paginate
from backoffice.stripe.models import JobRun
from backoffice.stripe.text import _


@dataclass(frozen=True)
class ArchiveBacklog:
    """The archived Stripe events the ledger has not taken yet: waiting for a replay (pending),
    and those that could not be read (failed: each a Critical discrepancy on its account)."""

    pending: int
    failed: int
    oldest_pending_received_at: datetime | None
    accounts_with_failed: int


def archive_backlog() -> ArchiveBacklog:
    """One statement over the archive's index of events still to replay (ix_stripe_events_todo)."""
    t = StripeEvent
    todo = t.state.in_(("pending", "failed"))
    pending, failed, oldest, accounts = db.session.execute(db.select(
        db.func.count().filter(t.state == "pending"),
        db.func.count().filter(t.state == "failed"),
        db.func.min(t.received_at).filter(t.state == "pending"),
        db.func.count(db.distinct(t.account_id)).filter(t.state == "failed"),
    ).where(todo)).one()
    return ArchiveBacklog(int(pending), int(failed), oldest, int(accounts))


def job_runs_page(page: int, page_size: int, kind: str | None = None) -> Page:
    stmt = db.select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc())
    if kind:
        stmt = stmt.where(JobRun.kind == kind)
    return paginate(stmt, page, page_size)


def get_run(run_id: int, kind: str) -> JobRun:
    """One job's row, of the kind the URL names (a sync's id is no recovery)."""
    run = db.session.get(JobRun, run_id)
    if run is None or run.kind != kind:
        raise NotFound(_("No such job."))
    return run


def account_runs(account_id: str, limit: int = 5) -> list[JobRun]:
    """The account's latest syncs and recoveries, newest first (ix_job_runs_target_started)."""
    return list(db.session.execute(
        db.select(JobRun).where(JobRun.target_id == account_id)
        .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    ).scalars())


def open_discrepancies(account_id: str) -> list[Discrepancy]:
    """The account's current list (bounded: one row per distinct finding)."""
    return list(db.session.execute(
        db.select(Discrepancy)
        .where(Discrepancy.account_id == account_id, Discrepancy.resolved_at.is_(None))
        .order_by(Discrepancy.severity, Discrepancy.kind, Discrepancy.id)
    ).scalars())


def drift_subscription(account_id: str) -> Subscription | None:
    """The account's current subscription: it holds the drift flag, the time of the last check
    and the acknowledgement (None for an account without one)."""
    return db.session.execute(
        db.select(Subscription).where(Subscription.account_id == account_id, Subscription.is_current.is_(True))
    ).scalar_one_or_none()
