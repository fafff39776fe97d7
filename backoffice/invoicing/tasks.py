"""The month-end run on Celery: scheduled on the 1st at 03:00 UTC for the month just ended
(backoffice/schedule.py); with a broker its batches of accounts fan out over the workers (a chord, so one summary is written
when the last batch is done); without one a page's or the API's run goes to the web process's
background pool and the scheduler's runs in the scheduler's thread."""
from __future__ import annotations

from celery import chord

from backoffice import jobs
from backoffice.extensions import db
from backoffice.invoicing import engine, run
from backoffice.invoicing.models import InvoicingRun
from backoffice.jobs import celery_app


def launch(started: InvoicingRun, *, here: bool = False) -> InvoicingRun:
    """Runs a started run: fanned out over the workers with a broker; without one on the web
    process's background pool (a page or an API call never waits for it), or in this thread when
    `here` (the CLI's progress bar, the scheduler's own thread). Answers the run as it is now."""
    if celery_app.conf.task_always_eager:
        if here:
            return run.run_in_process(started)
        jobs.in_background(run_started, started.id)
        db.session.expire_all()
        return db.session.get(InvoicingRun, started.id)
    period = engine.Period.parse(started.period)
    account_ids = run.accounts_to_examine(period, started.account_id)
    if not account_ids:
        return run.finish(started, run.Outcome())
    chord(run_batch.s(started.id, started.period, batch, started.force)
          for batch in run.batches(account_ids))(finish_run.s(started.id))
    return started


@celery_app.task(name="invoicing.run_started")
def run_started(run_id: int) -> dict:
    """A started run priced in one process (without a broker: the background pool)."""
    return run.run_in_process(db.session.get(InvoicingRun, run_id)).summary


@celery_app.task(name="invoicing.run_batch")
def run_batch(run_id: int, period: str, account_ids: list[str], force: bool) -> dict:
    """One batch's drafts; an error that stops the batch is its accounts' failure, not the run's
    (the chord's summary is written all the same)."""
    try:
        return run.run_batch(run_id, engine.Period.parse(period), account_ids, force).as_dict()
    except Exception as e:  # noqa: BLE001 - the batch's accounts fail, the chord goes on
        db.session.rollback()
        reason = f"{type(e).__name__}: {e}"[:500]
        return run.Outcome(examined=len(account_ids), failures=[(a, reason) for a in account_ids]).as_dict()


@celery_app.task(name="invoicing.finish_run")
def finish_run(outcomes: list[dict], run_id: int) -> dict:
    total = run.Outcome()
    for outcome in outcomes:
        total.add(run.Outcome.of(outcome))
    return run.finish(db.session.get(InvoicingRun, run_id), total).summary


@celery_app.task(name="invoicing.month_end")
def month_end() -> int:
    """The schedule's run of the month just ended; answers its id."""
    started = run.start(run.previous_period(), trigger="schedule", actor="schedule")
    return launch(started, here=True).id

