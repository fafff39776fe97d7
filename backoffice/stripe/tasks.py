"""Background jobs of reconciliation: the hourly drift pass, and the account syncs and disaster
recoveries started from a page or the API.

With no broker (CELERY_BROKER_URL unset) Celery runs tasks in-process: the drift pass then checks
accounts on a small thread pool. With a broker the pass fans out over the workers: N chains of
per-account tasks, so at most N accounts are checked at once; each task has a 30 s soft time limit
and counts its outcome on the job-runs row; the last one closes the run and logs the totals.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from celery import chain, group
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app

from backoffice import schedule
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.jobs import celery_app
from backoffice.operators.models import Operator
from backoffice.operators.services import NamedActor, audit_now
from backoffice.sentences import CHECKS_INCOMPLETE, say
from backoffice.stripe import drift, recovery, sync
from backoffice.stripe import gateway as gw
from backoffice.stripe.models import JobRun

log = logging.getLogger(__name__)

DRIFT_PASS = "drift_pass"
ACCOUNT_SYNC = "account_sync"
DISASTER_RECOVERY = "disaster_recovery"
DEFAULT_PARALLEL = 4
DEFAULT_TIMEOUT = 30  # seconds per account
WAIT_FOR_A_START = 0.05  # seconds the in-process pass waits when no pending check has begun yet
# A check that could not reach Stripe did not happen: it counts as failed (the account stays due).
OUTCOME_COLUMNS = {"processed": "processed", "skipped": "skipped", "unavailable": "failed",
                   "failed": "failed", "timed_out": "timed_out"}


def _settings() -> tuple[int, int]:
    cfg = current_app.config
    return int(cfg.get("DRIFT_PARALLEL", DEFAULT_PARALLEL)), int(cfg.get("DRIFT_TIMEOUT", DEFAULT_TIMEOUT))


# -- the job-runs row ----------------------------------------------------------------------------
def start_run(kind: str, total: int = 0, target_id: str | None = None, actor_email: str | None = None) -> JobRun:
    run = JobRun(kind=kind, status="running", total=total, target_id=target_id, actor_email=actor_email,
                 started_at=utcnow())
    db.session.add(run)
    db.session.commit()
    return run


def count_outcome(run_id: int, outcome: str) -> None:
    """Adds one outcome to the run (an atomic UPDATE: tasks on many workers count at once) and
    closes the run when every account is counted."""
    column = getattr(JobRun, OUTCOME_COLUMNS.get(outcome, "failed"))
    db.session.execute(db.update(JobRun).where(JobRun.id == run_id).values({column: column + 1}))
    db.session.commit()
    _finish_if_complete(run_id)


def _finish_if_complete(run_id: int) -> None:
    done = JobRun.processed + JobRun.skipped + JobRun.failed + JobRun.timed_out
    closed = db.session.execute(
        db.update(JobRun).where(JobRun.id == run_id, JobRun.status == "running", done >= JobRun.total)
        .values(status="done", finished_at=utcnow())
    ).rowcount
    db.session.commit()
    if closed:
        _judge(db.session.get(JobRun, run_id))


def _judge(run: JobRun) -> None:
    """A closed pass in which checks failed or timed out is `failed`, saying how many and why
    (those accounts stay due); logs its totals. Commits."""
    incomplete = run.failed + run.timed_out
    if incomplete:
        run.status = "failed"
        run.error = say(CHECKS_INCOMPLETE, incomplete=incomplete, total=run.total, failed=run.failed,
                        timed_out=run.timed_out)
    db.session.commit()
    _log_totals(run)


def _log_totals(run: JobRun) -> None:
    log.info("drift pass %s finished: %d accounts, %d processed, %d skipped, %d failed, %d timed out",
             run.id, run.total, run.processed, run.skipped, run.failed, run.timed_out)


# -- the drift pass ----------------------------------------------------------------------------------
def _check(subscription_id: int) -> str:
    try:
        return drift.check_subscription(subscription_id)
    except gw.StripeNotConfigured:
        return "skipped"
    except SoftTimeLimitExceeded:
        db.session.rollback()
        return "timed_out"
    except Exception:
        db.session.rollback()
        log.exception("drift check of subscription %s failed", subscription_id)
        return "failed"


# The tasks' wire names keep the package's old name `stripe_sync`: a task queued by the previous
# release must still find its function after an upgrade (issue 19 renamed the package only).
@celery_app.task(name="stripe_sync.check_subscription", soft_time_limit=DEFAULT_TIMEOUT,
                 time_limit=DEFAULT_TIMEOUT + 15)
def check_subscription_task(subscription_id: int, run_id: int | None = None) -> str:
    """One account of the pass, in detect mode. Never raises: a chain must go on."""
    outcome = _check(subscription_id)
    if run_id is not None:
        count_outcome(run_id, outcome)
    return outcome


@celery_app.task(name="stripe_sync.drift_pass")
def drift_pass_task() -> int | None:
    """The hourly pass: one task per due account (checked more than 23 h ago)."""
    if not current_app.config.get("STRIPE_SECRET_KEY") and "stripe_gateway" not in current_app.extensions:
        log.info("drift pass skipped: Stripe is not configured")
        return None
    run = run_drift_pass()
    return run.id


def run_drift_pass(*, parallel: int | None = None, timeout: int | None = None,
                   progress: Callable[[int], None] | None = None, limit: int | None = None) -> JobRun:
    """Starts one pass. On workers it fans out and returns at once (the run closes itself);
    in-process it checks on a thread pool and returns the closed run."""
    default_parallel, default_timeout = _settings()
    parallel = max(1, parallel or default_parallel)
    timeout = timeout or default_timeout
    drift.hold_accounts_without_subscription()
    ids = drift.due_subscription_ids(limit=limit)
    run = start_run(DRIFT_PASS, total=len(ids))
    if not ids:
        _finish_if_complete(run.id)
        return db.session.get(JobRun, run.id)
    if celery_app.conf.task_always_eager:
        _run_in_process(run.id, ids, parallel, timeout, progress)
        db.session.expire_all()
        return db.session.get(JobRun, run.id)
    chunks = [ids[i::parallel] for i in range(parallel)]
    group(
        chain(*[check_subscription_task.si(sub_id, run.id).set(soft_time_limit=timeout, time_limit=timeout + 15)
                for sub_id in chunk])
        for chunk in chunks if chunk
    ).apply_async()
    return run


def _run_in_process(run_id: int, ids: list[int], parallel: int, timeout: int,
                    progress: Callable[[int], None] | None) -> None:
    """Checks the accounts on `parallel` threads. Each account has `timeout` seconds from the
    moment its own check starts (not from when the pass gets round to waiting for it: an account
    queued behind slow ones is not timed out before it ran, nor given the time they took)."""
    app = current_app._get_current_object()
    gw.get_gateway() if app.config.get("STRIPE_SECRET_KEY") else None  # built once, shared by threads
    running: dict[int, float] = {}  # subscription id → monotonic start of its check, until counted
    lock = threading.Lock()
    finished: queue.SimpleQueue = queue.SimpleQueue()  # (subscription id, future) as each ends

    def work(sub_id: int) -> str:
        with lock:
            running[sub_id] = time.monotonic()
        with app.app_context():
            try:
                return _check(sub_id)
            finally:
                db.session.remove()

    totals = {"processed": 0, "skipped": 0, "failed": 0, "timed_out": 0}

    def count(outcome: str) -> None:
        totals[OUTCOME_COLUMNS.get(outcome, "failed")] += 1
        if progress:
            progress(1)

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="drift") as pool:
        for sub_id in ids:
            pool.submit(work, sub_id).add_done_callback(lambda future, s=sub_id: finished.put((s, future)))
        left = len(ids)
        while left:
            # The work per turn grows with the checks under way (at most `parallel`), not with
            # the accounts of the pass.
            with lock:
                first_start = min(running.values(), default=None)
            wait_for = (WAIT_FOR_A_START if first_start is None
                        else max(0.0, first_start + timeout - time.monotonic()))
            ended = []
            try:  # what ended meanwhile, before any check is judged late
                ended.append(finished.get(timeout=wait_for))
                while True:
                    ended.append(finished.get_nowait())
            except queue.Empty:
                pass
            for sub_id, future in ended:
                with lock:
                    counted_late = running.pop(sub_id, None) is None  # a check is under way until counted
                if not counted_late:
                    count(future.result())
                    left -= 1
            now = time.monotonic()
            with lock:
                late = [s for s, began in running.items() if now - began >= timeout]
                for sub_id in late:
                    del running[sub_id]
            for _ in late:
                count("timed_out")  # the thread ends on its own (HTTP timeouts bound it)
                left -= 1
    db.session.execute(db.update(JobRun).where(JobRun.id == run_id).values(
        processed=totals["processed"], skipped=totals["skipped"], failed=totals["failed"],
        timed_out=totals["timed_out"], status="done", finished_at=utcnow()))
    db.session.commit()
    _judge(db.session.get(JobRun, run_id))


# -- an account sync started from a page -------------------------------------------------------------
def _actor(operator_id: int | None, actor_label: str | None):
    """Who started the job, for its audit entries: the operator, or an actor without a row."""
    if operator_id:
        return db.session.get(Operator, operator_id)
    return NamedActor(actor_label) if actor_label else None


def _fail(run_id: int, why: str, **values) -> None:
    db.session.rollback()
    db.session.execute(db.update(JobRun).where(JobRun.id == run_id).values(
        status="failed", error=why, finished_at=utcnow(), **values))
    db.session.commit()


@celery_app.task(name="stripe_sync.sync_account")
def sync_account_task(run_id: int, account_id: str, operator_id: int | None, actor_label: str | None = None) -> dict:
    """Runs the sync and stores its answer (or its error) on the job-runs row the page polls."""
    actor = _actor(operator_id, actor_label)
    db.session.execute(db.update(JobRun).where(JobRun.id == run_id).values(status="running"))
    db.session.commit()

    def progress(step: str) -> None:
        """Published on its own connection so the polling page sees it before the sync commits
        (not on SQLite, whose single writer would wait for the sync's own transaction)."""
        if db.engine.dialect.name == "sqlite":
            return
        with db.engine.begin() as conn:
            conn.execute(db.update(JobRun).where(JobRun.id == run_id).values(result={"step": step}))

    try:
        result = sync.sync_account(account_id, actor, progress=progress).as_dict()
    except BadRequest as e:
        _fail(run_id, e.message, result={"status": e.status, "code": e.code})
        return {"error": e.message}
    except Exception as e:
        log.exception("sync of %s failed", account_id)
        why = gw.describe_error(e)[:2000]
        _fail(run_id, why)
        audit_now(actor, "stripe.sync", target_type="account", target_id=account_id, result="error", detail=why)
        return {"error": why}
    db.session.execute(db.update(JobRun).where(JobRun.id == run_id).values(
        status="done", result=result, processed=1, total=1, finished_at=utcnow()))
    db.session.commit()
    return result


@celery_app.task(name="stripe_sync.disaster_recovery")
def disaster_recovery_task(run_id: int, account_id: str, operator_id: int | None,
                           actor_label: str | None = None) -> dict:
    """Runs the recovery (recovery.py audits it) and stores its answer or error on the row."""
    actor = _actor(operator_id, actor_label)
    db.session.execute(db.update(JobRun).where(JobRun.id == run_id).values(status="running"))
    db.session.commit()
    try:
        result = recovery.run_disaster_recovery(account_id, actor).as_dict()
    except BadRequest as e:
        _fail(run_id, e.message, result={"status": e.status, "code": e.code})
        return {"error": e.message}
    except Exception as e:
        log.exception("disaster recovery of %s failed", account_id)
        why = f"{type(e).__name__}: {e}"[:2000]
        _fail(run_id, why)
        audit_now(actor, "stripe.disaster_recovery", target_type="account", target_id=account_id,
                  result="error", detail=why)
        return {"error": why}
    db.session.execute(db.update(JobRun).where(JobRun.id == run_id).values(
        status="done", result=result, processed=1, total=1, finished_at=utcnow()))
    db.session.commit()
    return result


def setup_beat() -> None:
    """The beat schedule: the drift pass every hour and the month-end run (backoffice/schedule.py)."""
    celery_app.conf.beat_schedule = {**(celery_app.conf.beat_schedule or {}), **schedule.beat_schedule()}


setup_beat()
