"""Use cases the pages and the API start: an account sync and a disaster recovery, each run as a
background job (the page and the API poll its job-runs row); acknowledgement is drift.py's."""
from __future__ import annotations

from flask import current_app

from backoffice import jobs
from backoffice.dbtypes import utcnow
from backoffice.extensions import db
from backoffice.stripe import recovery, sync, tasks
from backoffice.stripe.models import JobRun


def _queue(run: JobRun, task, *args) -> JobRun:
    """Marks the run queued and hands it to the background (jobs.in_background); a broker that is
    down is said on the run, never a 500. Answers the row as it is now: done already when the job
    ran in the request (tests), else queued or running, for the page or the API to poll."""
    db.session.execute(db.update(JobRun).where(JobRun.id == run.id).values(status="queued"))
    db.session.commit()
    try:
        jobs.in_background(task, run.id, *args)
    except Exception as e:  # the broker's failure is the run's, not the request's
        current_app.logger.exception("could not queue %s %s", run.kind, run.target_id)
        db.session.rollback()
        db.session.execute(db.update(JobRun).where(JobRun.id == run.id).values(
            status="failed", error=f"The job queue is unavailable: {type(e).__name__}", finished_at=utcnow()))
        db.session.commit()
    db.session.expire_all()
    return db.session.get(JobRun, run.id)


def _actor_args(actor) -> tuple[int | None, str | None]:
    """What a job needs to audit as its starter: the operator's id, or the label of an actor
    without a row (an API token)."""
    if actor is None:
        return None, None
    return (actor.id, None) if actor.id is not None else (None, actor.email)


def start_account_sync(account_id: str, actor) -> JobRun:
    """Checks the preconditions now (400/404 answer at once), then runs the sync in the background;
    the page and the API poll its job-runs row."""
    account = sync.get_syncable_account(account_id)
    run = tasks.start_run(tasks.ACCOUNT_SYNC, total=1, target_id=account.id,
                          actor_email=actor.email if actor else None)
    return _queue(run, tasks.sync_account_task, account.id, *_actor_args(actor))


def start_disaster_recovery(account_id: str, actor) -> JobRun:
    """Disaster recovery as a background job: 404 at once for an unknown account."""
    recovery.recovery_plan(account_id)  # NotFound before anything is written
    run = tasks.start_run(tasks.DISASTER_RECOVERY, total=1, target_id=account_id,
                          actor_email=actor.email if actor else None)
    return _queue(run, tasks.disaster_recovery_task, account_id, *_actor_args(actor))
