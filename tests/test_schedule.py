"""The schedules in the embedded default (issue 22 part 3, backoffice/schedule.py): a due schedule
runs once however many processes look, its result and next run are kept and shown on the Jobs
page, and the web process's first request starts the scheduler thread."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from backoffice import schedule
from backoffice.extensions import db
from backoffice.invoicing.models import InvoicingRun
from backoffice.jobs import celery_app
from backoffice.schedule import ScheduleState


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_next_times():
    assert schedule.next_hour(at("2026-12-07T16:04:05")) == at("2026-12-07T17:00")
    assert schedule.next_hour(at("2026-12-31T23:00")) == at("2027-01-01T00:00")
    assert schedule.next_first_at_three(at("2026-12-07T16:00")) == at("2027-01-01T03:00")
    assert schedule.next_first_at_three(at("2026-12-01T02:59")) == at("2026-12-01T03:00")
    assert schedule.next_first_at_three(at("2026-12-01T03:00")) == at("2027-01-01T03:00")


def _due(name: str, now: datetime) -> None:
    db.session.merge(ScheduleState(name=name, next_run_at=now - timedelta(minutes=1)))
    db.session.commit()


def test_a_schedule_is_not_due_when_first_seen_and_runs_when_due(app):
    now = at("2026-12-07T16:04")
    assert schedule.run_due(now) == []  # first sight: due at its next time
    states = {s.name: s for s in db.session.execute(db.select(ScheduleState)).scalars()}
    assert states["stripe-drift-pass"].next_run_at == at("2026-12-07T17:00")
    assert states["invoicing-month-end"].next_run_at == at("2027-01-01T03:00")
    _due("invoicing-month-end", now)
    assert schedule.run_due(now) == ["invoicing-month-end"]
    state = db.session.get(ScheduleState, "invoicing-month-end")
    run = db.session.execute(db.select(InvoicingRun)).scalar_one()
    assert (state.last_ok, state.last_result, run.trigger) == (True, str(run.id), "schedule")
    assert state.next_run_at == at("2027-01-01T03:00") and state.lease_until is None
    assert schedule.run_due(now) == []  # ran: not due again until its next time


def test_the_drift_pass_without_stripe_says_it_ran_nothing(app):
    now = at("2026-12-07T16:04")
    schedule.run_due(now)
    _due("stripe-drift-pass", now)
    assert schedule.run_due(now) == ["stripe-drift-pass"]
    state = db.session.get(ScheduleState, "stripe-drift-pass")
    assert (state.last_ok, state.last_result) == (True, "nothing to run (Stripe is not configured)")


def test_a_failing_schedule_is_recorded_and_runs_again_next_time(app, monkeypatch):
    now = at("2026-12-07T16:04")
    schedule.run_due(now)
    _due("invoicing-month-end", now)

    def broken():
        raise RuntimeError("the price book is on fire")

    monkeypatch.setattr(celery_app.tasks["invoicing.month_end"], "run", broken)
    assert schedule.run_due(now) == ["invoicing-month-end"]
    state = db.session.get(ScheduleState, "invoicing-month-end")
    assert (state.last_ok, state.last_result) == (False, "RuntimeError: the price book is on fire")
    assert state.next_run_at == at("2027-01-01T03:00")


def test_a_due_schedule_runs_once_however_many_processes_look(app, make_app, app_config):
    now = at("2026-12-07T16:04")
    schedule.run_due(now)
    _due("invoicing-month-end", now)
    others = [make_app(app_config) for _ in range(3)]
    barrier = threading.Barrier(len(others))
    ran, errors = [], []

    def look(other) -> None:
        try:
            with other.app_context():
                barrier.wait(10)
                ran.extend(schedule.run_due(now))
                db.session.remove()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=look, args=(o,)) for o in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and ran == ["invoicing-month-end"]
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(InvoicingRun)) == 1


def test_the_jobs_page_shows_the_schedules_and_who_runs_them(app, admin_client, make_app, app_config):
    html = admin_client.get("/stripe/jobs").get_data(as_text=True)
    assert 'data-schedule="stripe-drift-pass"' in html and 'data-schedule="invoicing-month-end"' in html
    assert 'data-owner="web"' in html and "Nothing runs them" in html  # the tests turn the thread off
    now = at("2026-12-07T16:04")
    schedule.run_due(now)
    _due("invoicing-month-end", now)
    schedule.run_due(now)
    html = admin_client.get("/stripe/jobs").get_data(as_text=True)
    assert "Month-end invoicing, the 1st at 03:00 UTC" in html and 'datetime="2027-01-01T03:00:00Z"' in html


@pytest.mark.parametrize("broker", [True, False])
def test_the_first_request_starts_the_thread_unless_a_beat_owns_the_schedules(make_app, app_config, broker):
    config = {**app_config, "TESTING": False, "SCHEDULER_ENABLED": True, "SCHEDULER_POLL_SECONDS": 0.1}
    if broker:
        config["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/5"
    served = make_app(config)
    try:
        served.test_client().get("/sign-in")
        thread = served.extensions.get("scheduler")
        assert (thread is None) == broker
        if thread is None:
            return
        with served.app_context():
            schedule.run_due()  # first sight
            db.session.merge(ScheduleState(name="invoicing-month-end", next_run_at=datetime.now(UTC) - timedelta(1)))
            db.session.commit()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                db.session.expire_all()
                if db.session.get(ScheduleState, "invoicing-month-end").last_finished_at is not None:
                    break
                time.sleep(0.1)
            assert db.session.get(ScheduleState, "invoicing-month-end").last_ok is True
            db.session.remove()
        thread.stop()
    finally:
        celery_app.conf.update(task_always_eager=True, broker_url="memory://", result_backend=None)
