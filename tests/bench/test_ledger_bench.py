"""Benchmarks of the Stripe spine (not timed unit tests; excluded by default).

    BENCH_EVENTS=20000 pytest -m bench tests/bench/test_ledger_bench.py -s -p no:cacheprovider
    BENCH_EVENTS=1000000 TEST_DATABASE_URL=postgresql+psycopg://... pytest -m bench ... -s

`BENCH_EVENTS` events are archived: the first `BENCH_WEBHOOK_EVENTS` (default: all, at most
20,000) through the real webhook (signature verification + archive; the replay it enqueues is
left out), the rest bulk-loaded into the archive as pending rows (so a million archived events
do not need a million HTTP requests). Then `replay_pending` replays the whole archive.

It prints one `BENCH {...}` line: the webhook's answer time per request (median, p90, p99,
spread) and its ingest rate in events/s for this one process, beside a bare single-row INSERT +
COMMIT per event (the floor of a durable archive write) and a bare bulk INSERT of the same rows;
then the replay in events/s, beside a bare bulk INSERT of as many ledger rows. CPU seconds of
this process are given beside wall seconds, because other processes share the machine.
`BENCH_SQLITE_WAL=1` runs SQLite in WAL mode with synchronous=NORMAL (as `backoffice demo` does)
instead of the default rollback journal with an fsync per commit.
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger import archive, services
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.stripe_sync import helpers as h

pytestmark = pytest.mark.bench

EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
WEBHOOK_EVENTS = min(EVENTS, int(os.environ.get("BENCH_WEBHOOK_EVENTS", "20000")))
SQLITE_WAL = os.environ.get("BENCH_SQLITE_WAL") == "1"
EVENTS_PER_ACCOUNT = 20  # customer, subscription, 18 monthly renewals (some upgrades)
START = h.ts("2025-01-01")
MONTH = 30 * 86400
CHUNK = 5000
SINGLE_SAMPLE = 2000


def _story(n: int) -> list[dict]:
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


def _sqlite_wal(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def test_webhook_ingest_and_replay_throughput(app, client, monkeypatch, capsys):
    from backoffice.stripe_sync import views

    dialect = db.engine.dialect.name
    if SQLITE_WAL and dialect == "sqlite":
        db.session.remove()
        db.engine.dispose()
        sa.event.listen(db.engine, "connect", _sqlite_wal)
    monkeypatch.setattr(views, "_enqueue_replay", lambda account_id: None)  # verify + archive only
    webhook_stories = -(-WEBHOOK_EVENTS // EVENTS_PER_ACCOUNT)

    # 1. The webhook, request by request (signed just before, outside the timing).
    latencies: list[float] = []
    wall = cpu = 0.0
    bodies = list(_bodies(0, WEBHOOK_EVENTS))
    for start in range(0, len(bodies), 1000):
        chunk = bodies[start:start + 1000]
        signed = [(body, h.sign(body)) for body in chunk]
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        for body, signature in signed:
            t = time.perf_counter()
            resp = client.post("/stripe/webhook", data=body, headers={"Stripe-Signature": signature},
                               content_type="application/json")
            latencies.append(time.perf_counter() - t)
            assert resp.status_code == 200
        wall += time.perf_counter() - wall_started
        cpu += time.process_time() - cpu_started
    archived = db.session.execute(sa.select(sa.func.count()).select_from(StripeEvent)).scalar_one()
    assert archived == WEBHOOK_EVENTS
    now = datetime.now(UTC)
    single, bulk_archive = _bare_inserts([_archive_row(body, now) for body in bodies])
    del bodies

    # 2. The rest of the archive in bulk, then the replay of everything.
    _preload_archive(webhook_stories, EVENTS - WEBHOOK_EVENTS)
    db.session.remove()
    cpu_started, started = time.process_time(), time.perf_counter()
    reports = services.replay_pending()
    replay = time.perf_counter() - started
    replay_cpu = time.process_time() - cpu_started
    rows = db.session.execute(sa.select(sa.func.count()).select_from(BillingEvent)).scalar_one()
    assert sum(r.events for r in reports) == EVENTS
    assert all(r.error is None for r in reports)
    assert rows == EVENTS
    bulk_ledger = _bulk_insert_ledger(rows)

    ms = [x * 1000 for x in latencies]
    figures = {
        "database": dialect + (" (WAL, synchronous=NORMAL)" if SQLITE_WAL and dialect == "sqlite" else ""),
        "events_archived": EVENTS,
        "webhook_events": WEBHOOK_EVENTS,
        "webhook_ms_median": round(statistics.median(ms), 3),
        "webhook_ms_p90": round(_pct(ms, 0.90), 3),
        "webhook_ms_p99": round(_pct(ms, 0.99), 3),
        "webhook_ms_stdev": round(statistics.pstdev(ms), 3),
        "ingest_events_per_s": round(WEBHOOK_EVENTS / wall),
        "ingest_cpu_ms_per_event": round(cpu / WEBHOOK_EVENTS * 1000, 3),
        "bare_insert_commit_per_row_ms": round(single * 1000, 3),
        "bare_insert_commit_rows_per_s": round(1 / single),
        "bulk_insert_archive_s": round(bulk_archive, 3),
        "bulk_insert_archive_rows_per_s": round(WEBHOOK_EVENTS / bulk_archive),
        "replay_events_per_s": round(EVENTS / replay),
        "replay_s": round(replay, 3),
        "replay_cpu_s": round(replay_cpu, 3),
        "ledger_rows": rows,
        "bulk_insert_ledger_s": round(bulk_ledger, 3),
        "bulk_insert_ledger_rows_per_s": round(rows / bulk_ledger),
    }
    with capsys.disabled():
        print("\nBENCH " + json.dumps(figures))
