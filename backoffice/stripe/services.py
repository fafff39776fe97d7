"""Use cases the pages and the API start: an account sync run as a background job (the page
polls its job-runs row), acknowledgement and disaster recovery (drift.py, recovery.py)."""
from __future__ import annotations

from flask import current_app

from backoffice.extensions import db
from backoffice.stripe import sync, tasks
from backoffice.stripe.models import JobRun


def start_account_sync(account_id: str, actor) -> JobRun:
    """Checks the preconditions now (400/404 answer at once), then queues the sync. Without a
    broker it runs in this request; with one, a worker runs it and the page polls the row."""
    account = sync.get_syncable_account(account_id)
    run = tasks.start_run(tasks.ACCOUNT_SYNC, total=1, target_id=account.id,
                          actor_email=actor.email if actor else None)
    db.session.execute(db.update(JobRun).where(JobRun.id == run.id).values(status="queued"))
    db.session.commit()
    try:
        tasks.sync_account_task.delay(run.id, account.id, actor.id if actor else None)
    except Exception as e:  # a broker that is down: say so on the run, never a 500
        current_app.logger.exception("could not queue the sync of %s", account.id)
        db.session.rollback()
        db.session.execute(db.update(JobRun).where(JobRun.id == run.id).values(
            status="failed", error=f"The job queue is unavailable: {type(e).__name__}"))
        db.session.commit()
    db.session.expire_all()
    return db.session.get(JobRun, run.id)
