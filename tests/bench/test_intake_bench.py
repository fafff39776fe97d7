"""Webhook intake with the replay running, as users run it (issue 18 parts 4 and 7; excluded by
default):

    pytest -m bench tests/bench/test_intake_bench.py -s -p no:cacheprovider
    TEST_DATABASE_URL=postgresql+psycopg://... pytest -m bench tests/bench/test_intake_bench.py -s -p no:cacheprovider

The app (`backoffice:create_app()`, configured from the environment as in production, with its
default REPLAY_SETTLE_SECONDS and no broker: the embedded set-up, whose replay runs on the web
process's drain thread) is served by ONE gunicorn worker process (`-k gthread --threads 8`), and
`BENCH_INTAKE_SENDERS` (8) client threads of this process post signed Stripe events over
loopback keep-alive connections for `BENCH_INTAKE_SECONDS` (60), each its own customers' life
stories in order. Once a second a monitor reads how far the ledger is behind: the events
waiting for the replay and the age of the oldest. Afterwards, the time until nothing waits.

It prints one `BENCH {...}` line: accepted events/s (answers 200 over the sending time), answer
times (median, p90, p99), the replay's lag during the load (median and worst) and after it, the
worker process's CPU, and a bare INSERT + COMMIT per archive row on the same database in the
same run (the floor of a durable archive write), with the load average.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.ledger import drain
from backoffice.ledger.models import StripeEvent
from tests.bench.test_ledger_bench import (
    _archive_row,
    _bare_inserts,
    _current_story,
    _pct,
    _process_cpu,
    _warm_up,
    start_gunicorn,
)
from tests.stripe import helpers as h

pytestmark = pytest.mark.bench

SECONDS = float(os.environ.get("BENCH_INTAKE_SECONDS", "60"))
SENDERS = int(os.environ.get("BENCH_INTAKE_SENDERS", "8"))
THREADS = int(os.environ.get("BENCH_INTAKE_THREADS", "8"))  # gunicorn gthread threads
DRAIN_WAIT = 300  # seconds allowed for the replay to catch up after the load


def _serve(db_url: str, tmp_path) -> tuple[subprocess.Popen, int, int]:
    env = {**os.environ, "DATABASE_URL": db_url, "STRIPE_WEBHOOK_SECRET": h.SECRET, "SECRET_KEY": "bench",
           "BACKOFFICE_INSTANCE_PATH": str(tmp_path / "intake-instance"), "LOG_LEVEL": "WARNING"}
    env.pop("REPLAY_SETTLE_SECONDS", None)  # the default, as users run it
    env.pop("CELERY_BROKER_URL", None)
    return start_gunicorn("backoffice:create_app()", ["-k", "gthread", "--threads", str(THREADS), "--backlog", "128"],
                          env, tmp_path / "intake-gunicorn.log")


def _backlog(app) -> tuple[int, float | None, int]:
    """(events waiting for the replay, age in seconds of the oldest, events archived): the
    app's own reading (ledger/drain.py), from this process."""
    with app.app_context():
        try:
            waiting = drain.backlog()
            archived = db.session.execute(sa.select(sa.func.count()).select_from(StripeEvent)).scalar_one()
            return waiting.pending, waiting.age_seconds(), int(archived)
        finally:
            db.session.remove()


def test_webhook_intake_with_the_replay_running(app, app_config, tmp_path, capsys):
    db_url = app_config["SQLALCHEMY_DATABASE_URI"]
    dialect = db.engine.dialect.name
    db.session.remove()
    server, port, worker = _serve(db_url, tmp_path)
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(SENDERS)]
    failures: list[str] = []
    stories = itertools.count(1)
    story_lock = threading.Lock()

    def send(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            with story_lock:
                n = next(stories)
            for event in _current_story(n):
                if stop.is_set():
                    break
                body = h.encode(event)
                started = time.perf_counter()
                conn.request("POST", "/stripe/webhook", body=body,
                             headers={"Stripe-Signature": h.sign(body), "Content-Type": "application/json"})
                resp = conn.getresponse()
                text = resp.read()
                if resp.status != 200:
                    failures.append(f"{resp.status} {text[:200]!r}")
                    continue
                latencies[i].append(time.perf_counter() - started)
        conn.close()

    lags: list[float] = []
    waiting: list[int] = []

    def monitor() -> None:
        while not stop.wait(1.0):
            pending, age, _ = _backlog(app)
            waiting.append(pending)
            lags.append(age or 0.0)

    try:
        _warm_up(port)
        senders = [threading.Thread(target=send, args=(i,)) for i in range(SENDERS)]
        watcher = threading.Thread(target=monitor)
        cpu_started = _process_cpu(worker)
        started = time.perf_counter()
        for t in [*senders, watcher]:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in senders:
            t.join(timeout=120)
        sending = time.perf_counter() - started
        watcher.join(timeout=10)
        stopped = time.perf_counter()
        while True:
            pending, _age, archived = _backlog(app)
            if pending == 0 or time.perf_counter() - stopped > DRAIN_WAIT:
                break
            time.sleep(0.25)
        caught_up = time.perf_counter() - stopped
        cpu = _process_cpu(worker) - cpu_started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert failures == []
    assert pending == 0, f"{pending} events still waiting {DRAIN_WAIT} s after the load"
    accepted = sum(len(x) for x in latencies)
    ms = sorted(x * 1000 for share in latencies for x in share)
    with db.engine.connect() as conn:
        sample = [_archive_row(r[0].encode(), datetime.now(UTC)) for r in conn.execute(
            sa.text("SELECT payload FROM stripe_events ORDER BY id LIMIT 2000"))]
    single, _bulk = _bare_inserts(sample)
    figures = {
        "database": dialect,
        "server": f"gunicorn -w 1 -k gthread --threads {THREADS}",
        "replay": "in the web process (no broker), REPLAY_SETTLE_SECONDS default",
        "senders": SENDERS,
        "seconds": round(sending, 1),
        "accepted_events": accepted,
        "archived_events": archived,
        "accepted_events_per_s": round(accepted / sending),
        "answer_ms_median": round(statistics.median(ms), 2),
        "answer_ms_p90": round(_pct(ms, 0.9), 2),
        "answer_ms_p99": round(_pct(ms, 0.99), 2),
        "replay_lag_s_median": round(statistics.median(lags), 1) if lags else None,
        "replay_lag_s_max": round(max(lags), 1) if lags else None,
        "waiting_events_max": max(waiting) if waiting else None,
        "caught_up_s_after_load": round(caught_up, 1),
        "worker_cpu_ms_per_event": round(cpu / accepted * 1000, 3),
        "bare_insert_commit_per_s": round(1 / single),
        "load_average": os.getloadavg(),
    }
    with capsys.disabled():
        print("BENCH " + json.dumps(figures))
