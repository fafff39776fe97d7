"""The replay's bulk catch-up, clean and with corrections (issue 18 part 7; not a timed unit test,
excluded by default):

    BENCH_EVENTS=100000 pytest -m bench tests/bench/test_replay_bench.py -s -p no:cacheprovider
    BENCH_EVENTS=100000 TEST_DATABASE_URL=postgresql+psycopg://... pytest -m bench ... -s

Two runs over the same life stories (`tests/bench/test_ledger_bench.py`'s: 20 events an account,
in the three payload shapes), each from an empty database:

- clean: `BENCH_EVENTS` events archived pending, then `replay_pending` (BENCH_REPLAY_WORKERS
  processes on PostgreSQL) replays them all;
- corrections: in `BENCH_CORRECTED_PERCENT` (default 1) % of the accounts the plan change of
  month 6 arrives late: their other events are archived and replayed first (untimed), then the
  rest of the archive and the late events are archived and `replay_pending` is timed. Each late
  event replays its account's whole archive and supersedes the rows it changed (the renewals
  after it: their committed MRR was the old plan's).

It prints one `BENCH {...}` line: events/s of each run (events replayed in the timed replay over
its wall time), the rows superseded, and a bare bulk INSERT of as many ledger rows in the same
run, with the load average.
"""
from __future__ import annotations

import json
import os
import time

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.extensions import db
from backoffice.ledger import services
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.bench.test_ledger_bench import (
    CHUNK,
    EVENTS_PER_ACCOUNT,
    PRELOAD_FIRST_STORY,
    REPLAY_WORKERS,
    _bulk_insert_ledger,
    _flush_preload,
    _story,
)
from tests.bench.test_ledger_bench import _archive_row as archive_row
from tests.stripe import helpers as h

pytestmark = pytest.mark.bench

EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
CORRECTED_PERCENT = float(os.environ.get("BENCH_CORRECTED_PERCENT", "1"))


def _late(n: int) -> bool:
    """Whether story n's plan change arrives late (every k-th story: CORRECTED_PERCENT %)."""
    return CORRECTED_PERCENT > 0 and n % round(100 / CORRECTED_PERCENT) == 0


def _archive(stories: range, keep) -> int:
    """Archives the events of `stories` for which keep(n, event) holds, pending; returns how many."""
    accounts, events = sa.insert(Account.__table__), sa.insert(StripeEvent.__table__)
    now = utcnow()
    batch, count = [], 0
    for n in stories:
        for event in _story(n):
            if not keep(n, event):
                continue
            row = archive_row(h.encode(event), now)
            row["account_id"] = "acc-b" + row["customer_id"][len("cus_b"):]
            batch.append(row)
            count += 1
            if len(batch) >= CHUNK:
                _flush_preload(batch, accounts, events, now)
                batch = []
    if batch:
        _flush_preload(batch, accounts, events, now)
    return count


def _is_plan_change(event: dict) -> bool:
    return event["id"].endswith("_u6")


def _timed_replay() -> tuple[float, int, list]:
    db.session.remove()
    started = time.perf_counter()
    reports = services.replay_pending(workers=REPLAY_WORKERS)
    elapsed = time.perf_counter() - started
    assert all(r.error is None for r in reports)
    return elapsed, sum(r.events for r in reports), reports


def _reset() -> None:
    """Empties the tables the runs write (the test database's guard is bypassed as the fixtures do)."""
    db.session.remove()
    if db.engine.dialect.name == "postgresql":
        from tests.conftest import _pg_truncate_all
        _pg_truncate_all(db.engine.url.render_as_string(hide_password=False))
        return
    with db.engine.begin() as conn:
        for table in ("billing_events", "payment_transactions", "subscriptions", "discrepancies", "stripe_events",
                      "plans", "accounts"):
            conn.execute(sa.text(f"DELETE FROM {table}"))


def test_replay_throughput_clean_and_with_corrections(app, capsys):
    stories = range(PRELOAD_FIRST_STORY, PRELOAD_FIRST_STORY + EVENTS // EVENTS_PER_ACCOUNT)
    dialect = db.engine.dialect.name

    # Clean: the whole archive pending, replayed at once.
    archived = _archive(stories, lambda n, e: True)
    clean_s, clean_events, _ = _timed_replay()
    assert clean_events == archived
    rows = db.session.execute(sa.select(sa.func.count()).select_from(BillingEvent)).scalar_one()
    bulk_ledger = _bulk_insert_ledger(rows)

    # Corrections: the late accounts replayed without their plan change first (untimed).
    _reset()
    late = [n for n in stories if _late(n - PRELOAD_FIRST_STORY)]
    _archive(late, lambda n, e: not _is_plan_change(e))
    services.replay_pending(workers=REPLAY_WORKERS)
    db.session.remove()
    pending = _archive(stories, lambda n, e: (n not in set(late)) or _is_plan_change(e))
    corrected_s, corrected_events, reports = _timed_replay()
    assert corrected_events == pending
    superseded = db.session.execute(sa.select(sa.func.count()).select_from(BillingEvent)
                                    .where(BillingEvent.superseded_at.is_not(None))).scalar_one()
    current = db.session.execute(sa.select(sa.func.count()).select_from(BillingEvent)
                                 .where(BillingEvent.current())).scalar_one()
    assert current == rows  # the same current ledger as the clean run's
    assert superseded > 0 or not late
    figures = {
        "database": dialect,
        "replay_workers": REPLAY_WORKERS if dialect == "postgresql" else 1,
        "events": archived,
        "clean_replay_events_per_s": round(clean_events / clean_s),
        "clean_replay_s": round(clean_s, 3),
        "corrected_accounts": len(late),
        "corrected_accounts_percent": CORRECTED_PERCENT,
        "corrections_replay_events": corrected_events,
        "corrections_replay_events_per_s": round(corrected_events / corrected_s),
        "corrections_replay_s": round(corrected_s, 3),
        "rows_superseded": superseded,
        "rows_corrected_reported": sum(r.rows_corrected for r in reports),
        "bare_bulk_insert_ledger_rows_per_s": round(rows / bulk_ledger),
        "load_average": os.getloadavg(),
    }
    with capsys.disabled():
        print("BENCH " + json.dumps(figures))
