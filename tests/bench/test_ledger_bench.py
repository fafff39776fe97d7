"""Benchmarks of the Stripe spine (not timed unit tests; excluded by default).

    BENCH_EVENTS=20000 pytest -m bench tests/bench/test_ledger_bench.py -s -p no:cacheprovider
    BENCH_EVENTS=1000000 TEST_DATABASE_URL=postgresql+psycopg://... pytest -m bench ... -s

`BENCH_EVENTS` events are archived, and `BENCH_CUSTOMERLESS_EVENTS` more (default 2 % of
BENCH_EVENTS) that have no customer (payouts, balance, products: archived and ignored, as in a
real archive; never replayed). First the bulk of the archive is loaded directly, as if
delivered earlier (pending rows, their accounts known), so that the webhook is measured
against a full archive; then the rest comes through the webhook: the first
`BENCH_WEBHOOK_EVENTS` (default: all, at most 20,000) through the real webhook (signature
verification + archive; the replay it enqueues is left out) one request after another; then,
for each thread count K of `BENCH_THREADS` (default 4,8), `BENCH_THREADED_EVENTS` more
(default 10,000, at most what is left of BENCH_EVENTS shared among the thread counts, whole
stories) through the webhook from K threads of this process at once, each with its own test
client and its own customers (as a threaded WSGI server serves Stripe's concurrent
deliveries); then `BENCH_GUNICORN_EVENTS` more (default 10,000 per worker class) through the
production server, ONE gunicorn worker process (`-k sync`, then `-k gthread --threads 4`)
serving `tests/bench/ingest_server.py`, posted by 4 client threads of this process over
loopback, the worker process's own CPU read from /proc. Then `replay_pending` replays the
whole archive. The test clients keep no cookies: Stripe sends none.

It prints one `BENCH {...}` line: the webhook's answer time per request (median, p90, p99,
spread) and its ingest rate in events/s for this one process with its CPU milliseconds per
event, sequential and from K threads (`ingest_threads_K_*`, `webhook_threads_K_ms_*`), and per
gunicorn worker process (`gunicorn_<class>_*`: events/s, the worker's CPU ms per event, answer
times as the clients saw them), beside a
bare single-row INSERT + COMMIT per event (the floor of a durable archive write, sequential) and
a bare bulk INSERT of the same rows; the load average after the ingest;
then the replay in events/s (`backoffice ledger replay`'s code: BENCH_REPLAY_WORKERS processes on
PostgreSQL, default 2, one per core), beside a bare bulk INSERT of as many ledger rows, with the
CPU seconds of this process and of its replay processes (`replay_workers_cpu_s`: the forked
workers, reaped when the replay ends) and their sum per event (`replay_cpu_us_per_event`, the
database server's CPU not included). CPU seconds are given beside wall seconds, because other
processes share the machine.
The stories are rendered in the three payload shapes of Stripe's API versions in turn
(`BENCH_SHAPES`, default `2016,2020,2025`: story n in the n-th of them; the readers read each
field by shape, new-first).
`BENCH_SQLITE_WAL=1` runs SQLite in WAL mode with synchronous=NORMAL (as `backoffice demo` does)
instead of the default rollback journal with an fsync per commit.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.demo import stripe_shapes
from backoffice.extensions import db
from backoffice.ledger import archive, services
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.stripe import helpers as h
from tests.stripe.conftest import free_port, wait_for_port

pytestmark = pytest.mark.bench

EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
WEBHOOK_EVENTS = min(EVENTS, int(os.environ.get("BENCH_WEBHOOK_EVENTS", "20000")))
THREADS = [int(k) for k in os.environ.get("BENCH_THREADS", "4,8").split(",") if k.strip()]
THREADED_EVENTS = min(int(os.environ.get("BENCH_THREADED_EVENTS", "10000")),
                      (EVENTS - WEBHOOK_EVENTS) // max(1, len(THREADS)))
GUNICORN_EVENTS = min(int(os.environ.get("BENCH_GUNICORN_EVENTS", "10000")),  # per worker class
                      (EVENTS - WEBHOOK_EVENTS - THREADED_EVENTS * len(THREADS)) // 2)
GUNICORN_CLIENTS = 4
SQLITE_WAL = os.environ.get("BENCH_SQLITE_WAL") == "1"
REPLAY_WORKERS = int(os.environ.get("BENCH_REPLAY_WORKERS", "2"))  # processes (PostgreSQL; SQLite: 1)
EVENTS_PER_ACCOUNT = 20  # customer, subscription, 18 monthly renewals (some upgrades)
START = h.ts("2025-01-01")
MONTH = 30 * 86400
CHUNK = 5000
SINGLE_SAMPLE = 2000
# Archived and ignored events without a customer (Stripe's payouts, balance, products), 2 % of
# the archive by default: they have no account, as a customer's events have none until its
# account is known.
CUSTOMERLESS_EVENTS = int(os.environ.get("BENCH_CUSTOMERLESS_EVENTS", str(EVENTS // 50)))
PRELOAD_FIRST_STORY = 10**7  # the bulk-loaded stories' customers: none of the webhook's
# The archive mixes the three payload shapes the readers read (issue 17): story n is rendered in
# SHAPES[n % len(SHAPES)], as accounts pinned to old API versions receive their events.
SHAPES = [s for s in os.environ.get("BENCH_SHAPES", "2016,2020,2025").split(",") if s.strip()]


def _story(n: int) -> list[dict]:
    events = _current_story(n)
    shape = SHAPES[n % len(SHAPES)] if SHAPES else "2025"
    return events if shape == "2025" else stripe_shapes.render_all(events, shape)


def _current_story(n: int) -> list[dict]:
    cus, sub = f"cus_b{n:07d}", f"sub_b{n:07d}"
    basic = h.price("price_basic", 4900, product="basic")
    pro = h.price("price_pro", 15900, product="pro")
    t0 = START + n * 7
    events = [
        h.envelope("customer.created", h.customer(cus, account_id=f"acc-b{n:07d}"), t0, event_id=f"evt_{cus}_c"),
        h.envelope("customer.subscription.created", h.subscription(sub, cus, basic, created=t0 + 1), t0 + 1,
                   event_id=f"evt_{cus}_s"),
    ]
    for month in range(1, EVENTS_PER_ACCOUNT - 1):
        at = t0 + month * MONTH
        if month == 6:
            events.append(h.envelope(
                "customer.subscription.updated", h.subscription(sub, cus, pro, created=t0 + 1), at,
                previous_attributes={"items": {"data": [{"price": basic}]}}, event_id=f"evt_{cus}_u{month}"))
        else:
            amount = 4900 if month < 6 else 15900
            events.append(h.envelope("invoice.paid", h.invoice(f"in_{cus}_{month}", cus, sub, amount_paid=amount,
                                                               total=amount, created=at), at,
                                     event_id=f"evt_{cus}_i{month}"))
    return events


def _post(client, signed: list[tuple[bytes, str]], latencies: list[float]) -> None:
    for body, signature in signed:
        t = time.perf_counter()
        resp = client.post("/stripe/webhook", data=body, headers={"Stripe-Signature": signature},
                           content_type="application/json")
        latencies.append(time.perf_counter() - t)
        assert resp.status_code == 200, resp.get_data(as_text=True)


def _ingest_sequential(client, bodies: list[bytes]) -> tuple[list[float], float, float]:
    """One request after another (signed just before, outside the timing): (latencies, wall
    seconds, CPU seconds)."""
    latencies: list[float] = []
    wall = cpu = 0.0
    for start in range(0, len(bodies), 1000):
        signed = [(body, h.sign(body)) for body in bodies[start:start + 1000]]
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        _post(client, signed, latencies)
        wall += time.perf_counter() - wall_started
        cpu += time.process_time() - cpu_started
    return latencies, wall, cpu


def _in_threads(first_story: int, stories: int, threads: int, post: Callable, cpu_seconds: Callable[[], float]
                ) -> tuple[list[float], float, float]:
    """`stories` whole stories from `threads` threads at once, each posting its own customers'
    events in order (`post(i, signed, latencies)` in thread i), all signed beforehand:
    (latencies, wall seconds, `cpu_seconds()` spent meanwhile)."""
    shares: list[list[tuple[bytes, str]]] = [[] for _ in range(threads)]
    for i, n in enumerate(range(first_story, first_story + stories)):
        shares[i % threads].extend((body, h.sign(body)) for body in _bodies(n, EVENTS_PER_ACCOUNT))
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        start.wait()
        post(i, shares[i], latencies[i])

    with ThreadPoolExecutor(threads) as pool:
        runs = [pool.submit(run, i) for i in range(threads)]
        start.wait()
        cpu_started, wall_started = cpu_seconds(), time.perf_counter()
        for done in runs:
            done.result()
        wall, cpu = time.perf_counter() - wall_started, cpu_seconds() - cpu_started
    return [x for share in latencies for x in share], wall, cpu


def _ingest_threaded(app, first_story: int, stories: int, threads: int) -> tuple[list[float], float, float]:
    """Through the test client from `threads` threads of this process, each with its own
    client: (latencies, wall seconds, CPU seconds of the process)."""
    clients = [app.test_client(use_cookies=False) for _ in range(threads)]
    return _in_threads(first_story, stories, threads,
                       lambda i, signed, latencies: _post(clients[i], signed, latencies), time.process_time)


def _children_cpu() -> float:
    """User + system CPU seconds of this process's ended and reaped child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


GUNICORN_KINDS = {  # worker class → gunicorn options
    "sync": ["-k", "sync"],  # one request at a time; closes each connection
    "gthread": ["-k", "gthread", "--threads", "4"],  # 4 threads in the one process; keep-alive
}


def _ingest_gunicorn(kind: str, db_url: str, tmp_path, first_story: int, stories: int
                     ) -> tuple[list[float], float, float]:
    """`stories` whole stories posted to the production server (DESIGN.md: gunicorn): ONE
    worker process of class `kind`, fed by GUNICORN_CLIENTS client threads of this process over
    loopback (a new connection per request for the sync worker, which closes each; one
    keep-alive connection per client thread for gthread). Answers (latencies, wall seconds,
    CPU seconds of the worker process)."""
    env = {**os.environ, "DATABASE_URL": db_url, "STRIPE_WEBHOOK_SECRET": h.SECRET, "SECRET_KEY": "bench",
           "BACKOFFICE_INSTANCE_PATH": str(tmp_path / "gunicorn-instance"), "LOG_LEVEL": "WARNING"}
    server, port, worker = start_gunicorn("tests.bench.ingest_server:app", [*GUNICORN_KINDS[kind], "--backlog", "64"],
                                          env, tmp_path / "gunicorn.log")
    try:
        _warm_up(port)

        def post(_i: int, signed: list[tuple[bytes, str]], latencies: list[float]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for body, signature in signed:
                t = time.perf_counter()
                conn.request("POST", "/stripe/webhook", body=body,
                             headers={"Stripe-Signature": signature, "Content-Type": "application/json"})
                resp = conn.getresponse()
                text = resp.read()
                if resp.will_close:
                    conn.close()  # http.client reconnects on the next request
                latencies.append(time.perf_counter() - t)
                assert resp.status == 200, text
            conn.close()

        return _in_threads(first_story, stories, GUNICORN_CLIENTS, post, lambda: _process_cpu(worker))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def start_gunicorn(app: str, options: list[str], env: dict, log_path: Path) -> tuple[subprocess.Popen, int, int]:
    """ONE gunicorn worker process serving `app` on a free loopback port: (the master, the port,
    the worker's pid, once it has forked it); its errors in `log_path`."""
    port = free_port()
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "-w", "1", *options,
             "-b", f"127.0.0.1:{port}", app], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(port, timeout=30)
    except RuntimeError:
        raise RuntimeError(log_path.read_text()) from None
    deadline = time.monotonic() + 30
    while True:  # the master listens before it has forked its worker
        with open(f"/proc/{server.pid}/task/{server.pid}/children") as f:
            children = f.read().split()
        if children:
            return server, port, int(children[0])
        if time.monotonic() > deadline:
            raise RuntimeError(log_path.read_text())
        time.sleep(0.1)


def _warm_up(port: int) -> None:
    """One request the webhook refuses (bad signature; nothing is stored), so the worker has
    imported and set up the app before the timing starts."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/stripe/webhook", body=b"{}",
                 headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 400, resp.read()
    conn.close()


def _bodies(first_story: int, count: int) -> Iterator[bytes]:
    """`count` event bodies, whole stories from `first_story` on (the last one maybe cut)."""
    n, left = first_story, count
    while left > 0:
        for event in _story(n)[:left]:
            yield h.encode(event)
            left -= 1
        n += 1


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _archive_row(body: bytes, now: datetime) -> dict:
    event = json.loads(body)
    return {"id": event["id"], "type": event["type"], "api_version": event["api_version"],
            "stripe_created_at": datetime.fromtimestamp(event["created"], UTC), "received_at": now,
            "payload": body.decode(), "payload_sha256": hashlib.sha256(body).hexdigest(),
            "customer_id": archive.event_customer_id(event), "state": "pending",
            "stripe_subscription_id": archive.event_subscription_id(event)}


def _scratch(model, name: str) -> sa.Table:
    table = sa.Table(name, sa.MetaData(),
                     *[sa.Column(c.name, c.type, primary_key=c.primary_key) for c in model.__table__.columns])
    table.drop(db.engine, checkfirst=True)
    table.create(db.engine)
    return table


def _bare_inserts(rows: list[dict]) -> tuple[float, float]:
    """The same archive rows into a scratch table: (seconds per row of one INSERT + COMMIT per
    row, measured on the first SINGLE_SAMPLE rows; seconds of one bulk INSERT and one COMMIT)."""
    scratch = _scratch(StripeEvent, "bench_stripe_events")
    sample = rows[:SINGLE_SAMPLE]
    with db.engine.connect() as conn:
        started = time.perf_counter()
        for row in sample:
            conn.execute(scratch.insert(), row)
            conn.commit()
        single = (time.perf_counter() - started) / len(sample)
    scratch.drop(db.engine)
    scratch.create(db.engine)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            conn.execute(scratch.insert(), rows[i:i + CHUNK])
    bulk = time.perf_counter() - started
    scratch.drop(db.engine)
    return single, bulk


def _preload_archive(first_story: int, count: int) -> None:
    """Archive rows (and their accounts) loaded in bulk, as if delivered earlier: pending."""
    accounts = sa.insert(Account.__table__)
    events = sa.insert(StripeEvent.__table__)
    now = datetime.now(UTC)
    batch: list[dict] = []
    for body in _bodies(first_story, count):
        row = _archive_row(body, now)
        row["account_id"] = "acc-b" + row["customer_id"][len("cus_b"):]
        batch.append(row)
        if len(batch) == CHUNK:
            _flush_preload(batch, accounts, events, now)
            batch = []
    if batch:
        _flush_preload(batch, accounts, events, now)


def _preload_customerless(count: int) -> None:
    """`count` archived, ignored events without a customer, loaded in bulk."""
    now = datetime.now(UTC)
    kinds = ("payout.paid", "balance.available", "product.updated", "payout.created")
    for start in range(0, count, CHUNK):
        rows = []
        for i in range(start, min(count, start + CHUNK)):
            body = h.encode(h.envelope(kinds[i % len(kinds)], {"id": f"po_{i}", "object": "payout", "amount": 1000 + i},
                                       START + i, event_id=f"evt_bench_nocus_{i}"))
            row = _archive_row(body, now)
            rows.append({**row, "state": "ignored", "processed_at": now, "error": "unrecognised event type"})
        with db.engine.begin() as conn:
            conn.execute(sa.insert(StripeEvent.__table__), rows)


def _flush_preload(rows: list[dict], accounts, events, now: datetime) -> None:
    new_accounts = [{"id": r["account_id"], "name": r["account_id"], "stripe_customer_id": r["customer_id"],
                     "created_at": now, "modified_at": now} for r in rows if r["type"] == "customer.created"]
    with db.engine.begin() as conn:
        if new_accounts:
            conn.execute(accounts, new_accounts)
        conn.execute(events, rows)


def _bulk_insert_ledger(count: int) -> float:
    scratch = _scratch(BillingEvent, "bench_billing_events")
    now = datetime.now(UTC)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for i in range(0, count, CHUNK):
            conn.execute(scratch.insert(), [
                {"id": j + 1, "account_id": f"acc-{j // EVENTS_PER_ACCOUNT}", "stripe_event_id": f"evt_{j}",
                 "type": "subscription_renewed", "committed_mrr": 49, "currency": "EUR", "occurred_at": now,
                 "baseline": False, "created_at": now} for j in range(i, min(count, i + CHUNK))])
    elapsed = time.perf_counter() - started
    scratch.drop(db.engine)
    return elapsed


def _run_figures(ingest: str, answers: str, run: tuple[list[float], float, float]) -> dict:
    """Events, events/s and CPU ms per event under `ingest`_…, answer times under `answers`_ms_…"""
    latencies, wall, cpu = run
    ms = [x * 1000 for x in latencies]
    return {
        f"{ingest}_events": len(ms),
        f"{ingest}_events_per_s": round(len(ms) / wall),
        f"{ingest}_cpu_ms_per_event": round(cpu / len(ms) * 1000, 3),
        f"{answers}_ms_median": round(statistics.median(ms), 3),
        f"{answers}_ms_p90": round(_pct(ms, 0.90), 3),
        f"{answers}_ms_p99": round(_pct(ms, 0.99), 3),
    }


def _sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def test_webhook_ingest_and_replay_throughput(app, app_config, monkeypatch, capsys, tmp_path):
    from backoffice.ledger import drain

    dialect = db.engine.dialect.name
    if SQLITE_WAL and dialect == "sqlite":
        db.session.remove()
        db.engine.dispose()
        sa.event.listen(db.engine, "connect", _sqlite_wal)
    monkeypatch.setattr(drain, "request_replay", lambda account_id: None)  # verify + archive only
    webhook_stories = -(-WEBHOOK_EVENTS // EVENTS_PER_ACCOUNT)

    # 1. Most of the archive in bulk first, as if delivered earlier (pending, their accounts
    # known), with the customer-less events a real archive holds beside them (archived and
    # ignored: payouts, balance, products), so the webhook is measured against a full archive.
    threaded_stories = THREADED_EVENTS // EVENTS_PER_ACCOUNT if THREADED_EVENTS >= EVENTS_PER_ACCOUNT else 0
    gunicorn_stories = GUNICORN_EVENTS // EVENTS_PER_ACCOUNT if GUNICORN_EVENTS >= EVENTS_PER_ACCOUNT else 0
    through_webhook = (WEBHOOK_EVENTS + threaded_stories * EVENTS_PER_ACCOUNT * len(THREADS)
                       + gunicorn_stories * EVENTS_PER_ACCOUNT * len(GUNICORN_KINDS))
    _preload_archive(PRELOAD_FIRST_STORY, EVENTS - through_webhook)
    _preload_customerless(CUSTOMERLESS_EVENTS)
    db.session.remove()

    # 2. The webhook, request by request, then from K threads at once (new customers each time),
    # then through gunicorn.
    bodies = list(_bodies(0, WEBHOOK_EVENTS))
    latencies, wall, cpu = _ingest_sequential(app.test_client(use_cookies=False), bodies)
    next_story, ingested, threaded = webhook_stories, WEBHOOK_EVENTS, {}
    for threads in THREADS if threaded_stories else []:
        threaded[threads] = _ingest_threaded(app, next_story, threaded_stories, threads)
        next_story += threaded_stories
        ingested += threaded_stories * EVENTS_PER_ACCOUNT
    gunicorn = {}
    for kind in GUNICORN_KINDS if gunicorn_stories else []:
        db.session.remove()
        gunicorn[kind] = _ingest_gunicorn(kind, app_config["SQLALCHEMY_DATABASE_URI"], tmp_path, next_story,
                                          gunicorn_stories)
        next_story += gunicorn_stories
        ingested += gunicorn_stories * EVENTS_PER_ACCOUNT
    assert ingested == through_webhook and next_story < PRELOAD_FIRST_STORY
    load_average = [round(x, 2) for x in os.getloadavg()]
    archived = db.session.execute(sa.select(sa.func.count()).select_from(StripeEvent)).scalar_one()
    assert archived == EVENTS + CUSTOMERLESS_EVENTS
    now = datetime.now(UTC)
    single, bulk_archive = _bare_inserts([_archive_row(body, now) for body in bodies])
    del bodies

    # 3. The replay of everything still to do.
    db.session.remove()
    cpu_started, children_started, started = time.process_time(), _children_cpu(), time.perf_counter()
    reports = services.replay_pending(workers=REPLAY_WORKERS)
    replay = time.perf_counter() - started
    replay_cpu = time.process_time() - cpu_started
    workers_cpu = _children_cpu() - children_started
    rows = db.session.execute(sa.select(sa.func.count()).select_from(BillingEvent)).scalar_one()
    assert sum(r.events for r in reports) == EVENTS
    assert all(r.error is None for r in reports)
    assert rows == EVENTS
    bulk_ledger = _bulk_insert_ledger(rows)

    ms = [x * 1000 for x in latencies]
    figures = {
        "database": dialect + (" (WAL, synchronous=NORMAL)" if SQLITE_WAL and dialect == "sqlite" else ""),
        "events_archived": EVENTS + CUSTOMERLESS_EVENTS,
        "events_to_replay": EVENTS,
        "customerless_events_archived": CUSTOMERLESS_EVENTS,
        "events_archived_before_the_webhook": EVENTS - through_webhook + CUSTOMERLESS_EVENTS,
        "webhook_events": WEBHOOK_EVENTS,
        "webhook_ms_median": round(statistics.median(ms), 3),
        "webhook_ms_p90": round(_pct(ms, 0.90), 3),
        "webhook_ms_p99": round(_pct(ms, 0.99), 3),
        "webhook_ms_stdev": round(statistics.pstdev(ms), 3),
        "ingest_events_per_s": round(WEBHOOK_EVENTS / wall),
        "ingest_cpu_ms_per_event": round(cpu / WEBHOOK_EVENTS * 1000, 3),
        **{k: v for threads, run in threaded.items()
           for k, v in _run_figures(f"ingest_threads_{threads}", f"webhook_threads_{threads}", run).items()},
        **{k: v for kind, run in gunicorn.items()
           for k, v in _run_figures(f"gunicorn_{kind}", f"gunicorn_{kind}", run).items()},
        "load_average": load_average,
        "bare_insert_commit_per_row_ms": round(single * 1000, 3),
        "bare_insert_commit_rows_per_s": round(1 / single),
        "bulk_insert_archive_s": round(bulk_archive, 3),
        "bulk_insert_archive_rows_per_s": round(WEBHOOK_EVENTS / bulk_archive),
        "replay_workers": REPLAY_WORKERS if dialect == "postgresql" else 1,
        "replay_events_per_s": round(EVENTS / replay),
        "replay_s": round(replay, 3),
        "replay_cpu_s": round(replay_cpu, 3),
        "replay_workers_cpu_s": round(workers_cpu, 3),
        "replay_cpu_us_per_event": round((replay_cpu + workers_cpu) / EVENTS * 1e6, 1),
        "ledger_rows": rows,
        "bulk_insert_ledger_s": round(bulk_ledger, 3),
        "bulk_insert_ledger_rows_per_s": round(rows / bulk_ledger),
    }
    with capsys.disabled():
        print("\nBENCH " + json.dumps(figures))
