"""The replay after the webhook (issue 18 part 4, ledger/drain.py), against real servers: the
webhook answers before anything is replayed; the replay drains every settled event in bulk
(a few drains for a stream of events, not one job per event) — on the web process's own drain
thread without a broker, on a real Celery worker with a real Redis broker otherwise — and the
ledger ends as the in-order reference."""
from __future__ import annotations

import os
import random
import threading
import time
from datetime import timedelta

import pytest
import requests

from backoffice.dbtypes import utcnow
from backoffice.extensions import db
from backoffice.ledger import drain
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.integration.conftest import serve
from tests.ledger import shapes
from tests.ledger.test_delivery_order import _stories, assert_ledger_is_the_reference, deliveries
from tests.stripe import helpers as h
from tests.stripe.conftest import running_worker
from tests.stripe.test_worker import REDIS_URL, _redis_available, broker_app  # noqa: F401  (fixture)

WAIT_SECONDS = 60


def _states() -> dict[str, str]:
    db.session.rollback()  # a fresh snapshot: other threads and processes write
    return dict(db.session.execute(db.select(StripeEvent.id, StripeEvent.state)).all())


def _wait_until_replayed(expected: set[str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        states = _states()
        if set(states) >= expected and "pending" not in states.values():
            return
        if time.monotonic() > deadline:
            pending = sorted(i for i, s in states.items() if s == "pending")
            pytest.fail(f"after {WAIT_SECONDS} s still pending: {pending[:10]} ({len(pending)})")
        time.sleep(0.1)


def _post_from_threads(url: str, stream: list[dict], threads: int) -> list[tuple[int, float]]:
    """`threads` HTTP senders taking the stream's events in turn; (status, seconds) per answer."""
    answers: list[tuple[int, float]] = []
    lock = threading.Lock()
    todo = iter(stream)

    def send() -> None:
        with requests.Session() as http:
            while True:
                with lock:
                    event = next(todo, None)
                if event is None:
                    return
                body = h.encode(event)
                started = time.perf_counter()
                resp = http.post(f"{url}/stripe/webhook", data=body, timeout=30,
                                 headers={"Stripe-Signature": h.sign(body), "Content-Type": "application/json"})
                with lock:
                    answers.append((resp.status_code, time.perf_counter() - started))

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    return answers


def test_without_a_broker_the_drain_thread_replays_after_the_answer_in_bulk(app):
    """The embedded default: a threaded server, 8 senders, a shuffled and duplicated stream."""
    rng = random.Random(1804)
    stories = _stories(12, rng)
    stream = deliveries([e for events in stories.values() for e in events], rng)
    app.testing = False
    app.config["REPLAY_SETTLE_SECONDS"] = 0.5
    thread = drain.drain_thread(app)
    try:
        with serve(app, threaded=True) as url:
            started = time.monotonic()
            answers = _post_from_threads(url, stream, threads=8)
            sending = time.monotonic() - started
            assert [s for s, _ in answers] == [200] * len(stream)
            # Answered before replayed: what arrived in the last half second has not settled.
            assert drain.backlog().pending > 0, "nothing was left for the drain: the webhook replayed"
            _wait_until_replayed({e["id"] for e in stream})
        assert_ledger_is_the_reference(stories)
        distinct = len({e["id"] for e in stream})
        deadline = time.monotonic() + 10  # the thread counts a drain after its commit
        while thread.events < distinct and time.monotonic() < deadline:
            time.sleep(0.05)
        assert thread.events == distinct  # every archived event replayed exactly once ...
        # ... by a few drains, not one job per event: at most one per drain interval of the sending.
        bound = sending / drain.drain_interval(0.5) + 3
        assert 1 <= thread.drains <= bound < distinct, (thread.drains, sending, distinct)
    finally:
        thread.stop()


def test_a_failing_drain_does_not_stop_the_thread(app, monkeypatch):
    from backoffice.ledger import services

    app.testing = False
    app.config["REPLAY_SETTLE_SECONDS"] = 0.1
    real = services.replay_pending
    calls = []

    def broken_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(services, "replay_pending", broken_once)
    monkeypatch.setattr(drain, "IDLE_POLL_SECONDS", 0.2)
    event = h.envelope("customer.created", h.customer("cus_dr", account_id="acc-dr"), h.ts("2026-01-10"))
    thread = drain.drain_thread(app)
    try:
        with serve(app, threaded=True) as url:
            body = h.encode(event)
            resp = requests.post(f"{url}/stripe/webhook", data=body, timeout=30,
                                 headers={"Stripe-Signature": h.sign(body), "Content-Type": "application/json"})
            assert resp.status_code == 200
            _wait_until_replayed({event["id"]})
        assert len(calls) >= 2  # the drain after the failure replayed it
    finally:
        thread.stop()


@pytest.mark.skipif(not _redis_available(), reason="needs Redis at " + REDIS_URL)
def test_with_a_broker_a_real_worker_drains_in_coalesced_jobs(broker_app, app_config, tmp_path, monkeypatch):  # noqa: F811
    rng = random.Random(1805)
    enqueued: list[bool] = []
    real = drain.enqueue_drain

    def counted(settle):
        enqueued.append(real(settle))
        return enqueued[-1]

    monkeypatch.setattr(drain, "enqueue_drain", counted)
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "CELERY_BROKER_URL": REDIS_URL,
           "SECRET_KEY": "worker-test", "BACKOFFICE_INSTANCE_PATH": str(tmp_path / "worker"),
           "BACKOFFICE_CURRENCY": "EUR", "REPLAY_SETTLE_SECONDS": "0.5"}
    with (running_worker(env, tmp_path / "worker.log", "--concurrency", "2", "--no-beat"),
          broker_app.app_context()):
        broker_app.config["REPLAY_SETTLE_SECONDS"] = 0.5
        stories = _stories(10, rng)
        stream = deliveries([e for events in stories.values() for e in events], rng)
        client = broker_app.test_client()
        for event in stream:
            assert h.deliver(client, event).status_code == 200
        assert drain.backlog().pending > 0  # archived and answered; the worker replays
        try:
            _wait_until_replayed({e["id"] for e in stream})
        except BaseException:
            print((tmp_path / "worker.log").read_text()[-3000:])
            raise
        assert_ledger_is_the_reference(stories)
        # One drain per settle window, not one job per event.
        assert 1 <= sum(enqueued) <= len(stream) / 5, (sum(enqueued), len(stream))
        db.session.remove()


def _waiting_event(event_id: str, seconds_ago: float) -> None:
    from backoffice.accounts.models import Account

    if db.session.get(Account, "acc-wait") is None:
        db.session.add(Account(id="acc-wait", name="Waiting Co", stripe_customer_id="cus_wait"))
        db.session.flush()
    event = h.envelope("customer.updated", h.customer("cus_wait", account_id="acc-wait"), h.ts("2026-01-10"),
                       event_id=event_id)
    body = h.encode(event)
    db.session.add(StripeEvent(id=event_id, type=event["type"], api_version=event["api_version"],
                               stripe_created_at=utcnow(), payload=body.decode(), payload_sha256="0" * 64,
                               customer_id="cus_wait", account_id="acc-wait", state="pending",
                               received_at=utcnow() - timedelta(seconds=seconds_ago)))
    db.session.commit()


def test_the_backlog_on_the_api_the_jobs_page_and_a_banner_past_a_minute(admin_client):
    from backoffice.api import services as api_services

    _token, secret = api_services.create_token("metrics", "read")
    token = {"Authorization": f"Bearer {secret}"}
    empty = admin_client.get("/api/v1/metrics/replay", headers=token).get_json()
    assert empty == {"pending_events": 0, "oldest_pending_received_at": None, "oldest_pending_age_seconds": None,
                     "settle_seconds": 5.0}
    _waiting_event("evt_wait_new", 10)
    body = admin_client.get("/api/v1/metrics/replay", headers=token).get_json()
    assert body["pending_events"] == 1 and 10 <= body["oldest_pending_age_seconds"] < 60
    assert 'data-banner="replay-behind"' not in admin_client.get("/banners", headers={"HX-Request": "true"}).get_data(
        as_text=True)  # a few seconds behind is normal
    _waiting_event("evt_wait_old", 150)
    body = admin_client.get("/api/v1/metrics/replay", headers=token).get_json()
    assert body["pending_events"] == 2 and body["oldest_pending_age_seconds"] >= 150
    banner = admin_client.get("/banners", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-banner="replay-behind"' in banner
    assert "2 archived events wait for the replay, the oldest for 2 min." in banner
    jobs = admin_client.get("/stripe/jobs").get_data(as_text=True)
    assert "2 archived events wait for their replay." in jobs and 'data-settle="5.0"' in jobs


def test_the_replay_metric_is_in_the_openapi_document(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/metrics/replay"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MetricsReplay"}
    assert set(doc["components"]["schemas"]["MetricsReplay"]["required"]) == {
        "pending_events", "oldest_pending_received_at", "oldest_pending_age_seconds", "settle_seconds"}


def test_a_drain_releases_events_whose_customer_found_its_account_meanwhile(app):
    """Two webhooks of one customer archived at once: the invoice's row was written before the
    customer's account existed, and nothing else would give it one. The drain does, then replays it."""
    from backoffice.accounts.models import Account
    from backoffice.ledger import archive

    event = h.envelope("invoice.paid", h.invoice("in_race", "cus_race", "sub_race", amount_paid=4900, total=4900,
                                                 created=h.ts("2026-01-10")), h.ts("2026-01-10"),
                       event_id="evt_race_orphan")
    archive.archive_event(h.encode(event), event)  # no account knows cus_race yet
    db.session.commit()
    assert db.session.get(StripeEvent, "evt_race_orphan").account_id is None
    db.session.add(Account(id="acc-race", name="Race Ltd", stripe_customer_id="cus_race"))
    db.session.commit()  # as the concurrent customer.created's transaction did

    replayed, due = drain.drain_settled(0)
    db.session.expire_all()
    row = db.session.get(StripeEvent, "evt_race_orphan")
    assert (row.account_id, row.state, replayed, due) == ("acc-race", "processed", 1, None)


@pytest.mark.parametrize("label", ["2016-07-06", "2020-08-27", shapes.CURRENT])
def test_a_real_shape_story_delivered_shuffled_ends_as_an_in_order_replay(app, label):
    """Data this project did not invent: the life story of tests/ledger/shapes.py, written in the
    shape each Stripe API version sends (from dj-stripe's fixtures, Stripe's OpenAPI fixtures and
    changelog), delivered shuffled and duplicated by 4 HTTP senders to the default set-up (the
    drain thread). The ledger then is what a fresh in-order replay of the archive writes."""
    from backoffice.ledger import services

    rng = random.Random(label)
    events = list(shapes.story(label).values())
    stream = deliveries(events, rng)
    app.testing = False
    app.config["REPLAY_SETTLE_SECONDS"] = 0.3
    thread = drain.drain_thread(app)
    try:
        with serve(app, threaded=True) as url:
            assert [s for s, _ in _post_from_threads(url, stream, threads=4)] == [200] * len(stream)
            _wait_until_replayed({e["id"] for e in events})
        rows = db.session.execute(db.select(db.func.count()).select_from(BillingEvent)
                                  .where(BillingEvent.current())).scalar_one()
        assert rows > 10
        report = services.rebuild(services.accounts_with_archive(shapes.ACCOUNT))
        assert (report.rows_appended, report.rows_corrected, report.differences) == (0, 0, [])
    finally:
        thread.stop()


def test_on_sqlite_a_writer_that_replays_and_a_waiting_replay_both_finish(app):
    """A sync writes archive rows, then replays in the same transaction; meanwhile the drain
    thread's replay waits for the database. With a process lock beside SQLite's write lock the
    two waited for each other until SQLite gave up ("database is locked"); with the write lock
    alone the writer goes on, commits, and the waiting replay follows."""
    from backoffice.accounts.models import Account
    from backoffice.ledger import replay, services

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's single write lock; PostgreSQL locks per account (tests/ledger/test_replay_concurrency.py)")
    _waiting_event("evt_lock_wait", 10)
    db.session.execute(db.update(Account).where(Account.id == "acc-wait").values(name="Waiting Co"))  # the lock
    reports = []

    def drain_replay() -> None:
        with app.app_context():
            reports.append(services.replay_account("acc-wait"))
            db.session.remove()

    waiting = threading.Thread(target=drain_replay)
    started = time.monotonic()
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive()  # it waits for the write lock
    with replay.serialized():
        pass  # the writer's own replay does not wait for the waiting one
    db.session.commit()
    waiting.join(30)
    assert [r.error for r in reports] == [None] and time.monotonic() - started < 5
    assert _states()["evt_lock_wait"] == "processed"
