"""Benchmarks of the Stripe spine (not timed unit tests; excluded by default).

    BENCH_EVENTS=20000 pytest -m bench tests/bench/test_ledger_bench.py -s -p no:cacheprovider
    BENCH_EVENTS=1000000 TEST_DATABASE_URL=postgresql+psycopg://... pytest -m bench ... -s

Measures, in one process: the webhook (signature verification + archive, no replay) per request
(median, p90, p99) and in events/s, beside a bare bulk INSERT of the same archive rows; then the
replay of the whole archive in events/s, beside a bare bulk INSERT of as many ledger rows.
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.ledger import services
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.stripe_sync import helpers as h

pytestmark = pytest.mark.bench

EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
EVENTS_PER_ACCOUNT = 20  # customer, subscription, 18 monthly renewals (some upgrades)
START = h.ts("2025-01-01")
MONTH = 30 * 86400


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


def _bodies() -> list[bytes]:
    bodies: list[bytes] = []
    n = 0
    while len(bodies) < EVENTS:
        bodies.extend(h.encode(e) for e in _story(n))
        n += 1
    return bodies[:EVENTS]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _bulk_insert_archive(bodies: list[bytes]) -> float:
    """A bare bulk INSERT of the same archive rows into a scratch table, one commit."""
    scratch = sa.Table("bench_stripe_events", sa.MetaData(), *[sa.Column(c.name, c.type, primary_key=c.primary_key) for c in StripeEvent.__table__.columns])
    engine = db.engine
    scratch.drop(engine, checkfirst=True)
    scratch.create(engine)
    rows = []
    now = datetime.now(UTC)
    for body in bodies:
        event = json.loads(body)
        rows.append({"id": event["id"], "type": event["type"], "api_version": event["api_version"],
                     "stripe_created_at": datetime.fromtimestamp(event["created"], UTC), "received_at": now,
                     "payload": body.decode(), "payload_sha256": hashlib.sha256(body).hexdigest(),
                     "customer_id": None, "state": "pending"})
    started = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(scratch.insert(), rows[i:i + 5000])
    elapsed = time.perf_counter() - started
    scratch.drop(engine)
    return elapsed


def _bulk_insert_ledger(count: int) -> float:
    scratch = sa.Table("bench_billing_events", sa.MetaData(),
                       *[sa.Column(c.name, c.type, primary_key=c.primary_key) for c in BillingEvent.__table__.columns])
    engine = db.engine
    scratch.drop(engine, checkfirst=True)
    scratch.create(engine)
    now = datetime.now(UTC)
    rows = [{"id": i + 1, "account_id": f"acc-{i // EVENTS_PER_ACCOUNT}", "stripe_event_id": f"evt_{i}",
             "type": "subscription_renewed", "committed_mrr": 49, "currency": "EUR", "occurred_at": now,
             "baseline": False, "created_at": now} for i in range(count)]
    started = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(scratch.insert(), rows[i:i + 5000])
    elapsed = time.perf_counter() - started
    scratch.drop(engine)
    return elapsed


def test_webhook_ingest_and_replay_throughput(app, client, monkeypatch, capsys):
    from backoffice.stripe_sync import views

    monkeypatch.setattr(views, "_enqueue_replay", lambda account_id: None)  # verify + archive only
    bodies = _bodies()
    signatures = [h.sign(b) for b in bodies[:1]]  # warm-up
    latencies: list[float] = []
    started = time.perf_counter()
    for body in bodies:
        signature = h.sign(body)
        t = time.perf_counter()
        resp = client.post("/stripe/webhook", data=body, headers={"Stripe-Signature": signature},
                           content_type="application/json")
        latencies.append(time.perf_counter() - t)
        assert resp.status_code == 200
    ingest = time.perf_counter() - started
    del signatures
    archived = db.session.execute(sa.select(sa.func.count()).select_from(StripeEvent)).scalar_one()
    assert archived == len(bodies)
    bulk_archive = _bulk_insert_archive(bodies)

    started = time.perf_counter()
    reports = services.replay_pending()
    replay = time.perf_counter() - started
    rows = db.session.execute(sa.select(sa.func.count()).select_from(BillingEvent)).scalar_one()
    assert sum(r.events for r in reports) == len(bodies)
    assert all(r.error is None for r in reports)
    bulk_ledger = _bulk_insert_ledger(rows)

    ms = [x * 1000 for x in latencies]
    figures = {
        "database": db.engine.dialect.name,
        "events": len(bodies),
        "webhook_ms_median": round(statistics.median(ms), 3),
        "webhook_ms_p90": round(_pct(ms, 0.90), 3),
        "webhook_ms_p99": round(_pct(ms, 0.99), 3),
        "webhook_ms_stdev": round(statistics.pstdev(ms), 3),
        "ingest_events_per_s": round(len(bodies) / ingest),
        "bulk_insert_archive_s": round(bulk_archive, 3),
        "bulk_insert_archive_rows_per_s": round(len(bodies) / bulk_archive),
        "replay_events_per_s": round(len(bodies) / replay),
        "replay_s": round(replay, 3),
        "ledger_rows": rows,
        "bulk_insert_ledger_s": round(bulk_ledger, 3),
        "bulk_insert_ledger_rows_per_s": round(rows / bulk_ledger),
    }
    with capsys.disabled():
        print("\nBENCH " + json.dumps(figures))
    assert figures["webhook_ms_median"] < 20
