"""The schedules (issue 22 part 3): the hourly drift pass and the month-end run on the 1st at
03:00 UTC. With a broker, `backoffice worker`'s Celery beat owns them. Without one (the embedded
default) each web process runs a scheduler thread, started by its first request, that looks every
SCHEDULER_POLL_SECONDS for a due schedule; a due schedule runs once however many processes look:
a process claims it with one conditional UPDATE of its row (due, and no live lease) and only the
process whose UPDATE changed the row runs it. Each row keeps the last run's start, end and result
and the next run, which the Jobs page shows. `BACKOFFICE_SCHEDULER=off` turns the thread off."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.schedules import crontab
from flask import Flask, current_app
from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import UTCDateTime, utcnow
from backoffice.extensions import db
from backoffice.jobs import celery_app
from backoffice.ledger import sql

log = logging.getLogger(__name__)

LEASE = timedelta(hours=2)  # a claim older than this belongs to a process that died mid-run


class ScheduleState(db.Model):
    """One schedule's last run and next run, and the lease of the process running it now."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_result: Mapped[str | None] = mapped_column(Text)


def next_hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def next_first_at_three(now: datetime) -> datetime:
    """The next 1st of a month at 03:00 UTC after `now`."""
    this = now.replace(day=1, hour=3, minute=0, second=0, microsecond=0)
    if this > now:
        return this
    return (this + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class Schedule:
    name: str  # its entry in Celery beat's schedule
    task: str  # the Celery task it runs
    next_after: Callable[[datetime], datetime]  # the embedded scheduler's next time
    beat: object  # the same times for Celery beat: seconds or a crontab


SCHEDULES = (
    Schedule("stripe-drift-pass", "stripe_sync.drift_pass", next_hour, 3600.0),
    Schedule("invoicing-month-end", "invoicing.month_end", next_first_at_three,
             crontab(minute=0, hour=3, day_of_month=1)),
)


def beat_schedule() -> dict:
    """Celery beat's entries, for `backoffice worker` (stripe/tasks.setup_beat)."""
    return {s.name: {"task": s.task, "schedule": s.beat} for s in SCHEDULES}


def owned_by_beat(app: Flask | None = None) -> bool:
    return bool((app or current_app).config.get("CELERY_BROKER_URL"))


def states() -> list[tuple[Schedule, ScheduleState | None]]:
    found = {s.name: s for s in db.session.execute(db.select(ScheduleState)).scalars()}
    return [(s, found.get(s.name)) for s in SCHEDULES]


def _claim(schedule: Schedule, now: datetime) -> bool:
    """True for the one caller whose UPDATE took the due schedule (the row is made on first sight,
    due at the schedule's next time)."""
    table = ScheduleState.__table__
    db.session.execute(sql.upsert(table).values(name=schedule.name, next_run_at=schedule.next_after(now))
                       .on_conflict_do_nothing(index_elements=[table.c.name]))
    claimed = db.session.execute(
        db.update(table).where(table.c.name == schedule.name, table.c.next_run_at <= now,
                               db.or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        .values(lease_until=now + LEASE, last_started_at=now)).rowcount == 1
    db.session.commit()
    return claimed


def run_due(now: datetime | None = None) -> list[str]:
    """Runs every due schedule this process claims; answers their names."""
    now = now or utcnow()
    ran = []
    for schedule in SCHEDULES:
        if not _claim(schedule, now):
            continue
        ok, result = True, None
        try:
            result = celery_app.tasks[schedule.task].apply().get()  # in this process, as the beat's worker would
        except Exception as e:
            db.session.rollback()
            ok, result = False, f"{type(e).__name__}: {e}"
            log.exception("schedule %s failed", schedule.name)
        state = db.session.get(ScheduleState, schedule.name)
        state.last_finished_at, state.last_ok = utcnow(), ok
        state.last_result = "nothing to run (Stripe is not configured)" if ok and result is None else str(result)[:2000]
        state.next_run_at, state.lease_until = schedule.next_after(now), None
        db.session.commit()
        ran.append(schedule.name)
    return ran


class SchedulerThread:
    """The embedded default's scheduler: a daemon thread per web process."""

    def __init__(self, app: Flask):
        self.app = app
        self.poll = float(app.config.get("SCHEDULER_POLL_SECONDS", 30))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backoffice-scheduler", daemon=True)

    def start(self) -> SchedulerThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                with self.app.app_context():
                    try:
                        run_due()
                    finally:
                        db.session.remove()
            except Exception:
                log.exception("scheduler pass failed")


_start_lock = threading.Lock()


def init_app(app: Flask) -> None:
    """Starts the scheduler thread with the process's first request, unless a broker's beat owns
    the schedules, the app is under test, or BACKOFFICE_SCHEDULER=off."""
    if owned_by_beat(app) or app.testing or not app.config.get("SCHEDULER_ENABLED", True):
        return

    @app.before_request
    def _start_scheduler() -> None:
        if "scheduler" in app.extensions:
            return
        with _start_lock:
            if "scheduler" not in app.extensions:
                app.extensions["scheduler"] = SchedulerThread(app).start()
