"""Benchmarks of usage tracking on PostgreSQL (excluded by default):

    TEST_DATABASE_URL=postgresql+psycopg://... pytest -m bench tests/bench/test_usage_bench.py -s -p no:cacheprovider

1. POST /api/v1/usage in batches of 1,000 records (JSON parse, validation, one INSERT .. ON CONFLICT)
   through the real endpoint: target >= 5,000 records/s.
2. "Which add-ons were enabled at T" for a deployment with 100,000 add-on events: target <= 5 ms.
Each prints the median and the spread (min, p90, max).
"""
from __future__ import annotations

import os
import random
import statistics
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.usage import queries
from backoffice.usage.models import AddonEvent
from tests.conftest import IS_POSTGRES
from tests.usage.helpers import T0, iso, make_api


@pytest.fixture
def api(app, client):
    return make_api(client)

pytestmark = [pytest.mark.bench,
              pytest.mark.skipif(not IS_POSTGRES, reason="the targets are for PostgreSQL (TEST_DATABASE_URL)")]

BATCHES = int(os.environ.get("BENCH_USAGE_BATCHES", "30"))
EVENTS = int(os.environ.get("BENCH_ADDON_EVENTS", "100000"))


def _spread(samples: list[float]) -> str:
    s = sorted(samples)
    p90 = s[int(len(s) * 0.9) - 1]
    return f"median {statistics.median(s):.2f}, min {s[0]:.2f}, p90 {p90:.2f}, max {s[-1]:.2f}"


def test_usage_ingest_rate(api):
    api.account()
    for d in range(10):
        api.deployment(f"bench-{d}", at=T0)
    times = []
    for b in range(BATCHES):
        records = [{"deployment": f"bench-{i % 10}", "metric": "messages_out", "quantity": i % 7,
                    "occurred_at": iso(T0 + timedelta(seconds=b * 1000 + i)),
                    "idempotency_key": f"bench:{b}:{i}"} for i in range(1000)]
        started = time.perf_counter()
        resp = api.post("/usage", {"records": records})
        times.append(time.perf_counter() - started)
        assert resp.get_json() == {"received": 1000, "inserted": 1000, "duplicates": 0}
    rates = [1000 / t for t in times]
    overall = BATCHES * 1000 / sum(times)
    print(f"\nusage ingest, {BATCHES} batches of 1,000: {overall:,.0f} records/s overall; "
          f"per batch ms {_spread([t * 1000 for t in times])}; records/s {_spread(rates)}")
    assert statistics.median(rates) >= 5000
    assert overall >= 5000


def test_addons_enabled_at_on_a_long_log(api):
    api.account()
    api.deployment("busy", at=T0)
    addons = [f"addon-{i:02d}" for i in range(20)]
    rng = random.Random(7)
    state = dict.fromkeys(addons, False)
    rows, at = [], T0
    for _ in range(EVENTS):
        at += timedelta(seconds=rng.randint(0, 600))  # many on the same day, some at the same instant
        addon = rng.choice(addons)
        state[addon] = not state[addon]
        rows.append({"deployment_name": "busy", "account_id": "acc_1", "addon": addon,
                     "kind": "enabled" if state[addon] else "disabled", "occurred_at": at,
                     "recorded_at": at, "source": "event"})
    for start in range(0, len(rows), 10_000):
        db.session.execute(sa.insert(AddonEvent.__table__), rows[start:start + 10_000])
    db.session.commit()
    db.session.execute(sa.text("ANALYZE deployment_addon_events"))
    db.session.commit()
    end = at
    # Correctness first: the one query agrees with a replay of the log at a few instants.
    probes = [T0 + (end - T0) * k / 10 for k in range(11)]
    for t in probes:
        on = {}
        for r in rows:
            if r["occurred_at"] <= t:
                on[r["addon"]] = r["kind"] == "enabled"
        assert queries.addons_enabled_at("busy", t) == sorted(a for a, v in on.items() if v)
    times = []
    for _ in range(300):
        t = T0 + (end - T0) * rng.random()
        started = time.perf_counter()
        queries.addons_enabled_at("busy", t)
        times.append((time.perf_counter() - started) * 1000)
    print(f"\naddons_enabled_at over {EVENTS:,} events (20 add-ons), ms: {_spread(times)}")
    assert statistics.median(times) <= 5
