"""The month-end run at size (issue 20 part 10: <= 60 s on PostgreSQL, 2 cores; excluded by default):

    TEST_DATABASE_URL=postgresql+psycopg://... pytest -m bench tests/bench/test_invoicing_run_bench.py -s -p no:cacheprovider

`BENCH_RUN_ACCOUNTS` (10,000) accounts with two deployments each (20,000), ten add-on and
suspension events per deployment (200,000, most before the month, a quarter within it), and
`BENCH_RUN_USAGE` (2,000,000) usage records in the month over two metrics, written with COPY.
Times the run of the month in this process (`run.run_in_process`, what the CLI does), then a
`--force` run that rebuilds every draft, beside the bare `SELECT ... GROUP BY` of that month's
usage (the one query no run can avoid), and prints one `BENCH {...}` line with the load average.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoicing import engine, run
from backoffice.invoicing.models import (
    AddonPrice,
    MeteredPrice,
    PlanAllowance,
    PlanPrice,
    PlatformInvoice,
    VatSetting,
)
from backoffice.ledger import sql
from backoffice.usage.models import AddonEvent, Deployment, PlanEvent, SuspensionEvent, UsageRecord
from tests.conftest import IS_POSTGRES

pytestmark = [pytest.mark.bench,
              pytest.mark.skipif(not IS_POSTGRES, reason="the target is for PostgreSQL (TEST_DATABASE_URL)")]

ACCOUNTS = int(os.environ.get("BENCH_RUN_ACCOUNTS", "10000"))
USAGE = int(os.environ.get("BENCH_RUN_USAGE", "2000000"))
PERIOD = engine.Period(2026, 11)
PLANS = ("starter", "team", "business")
ADDONS = ("translator", "backup", "analytics")
METRICS = ("messages_out", "ai_tokens")


def _price_book() -> None:
    day = date(2025, 1, 1)
    db.session.add(VatSetting(seller_country="CH", domestic_countries="CH,LI", domestic_rate=Decimal("8.1"),
                              valid_from=day))
    for plan, base in zip(PLANS, (49, 149, 490)):
        db.session.add(PlanPrice(plan=plan, name=plan.title(), currency="CHF", monthly_base=Decimal(base),
                                 setup_fee=Decimal(99), valid_from=day, allowances=[
                                     PlanAllowance(metric="messages_out", included_quantity=Decimal(1000)),
                                     PlanAllowance(metric="ai_tokens", included_quantity=Decimal(50000))]))
    for addon, period, price in (("translator", "day", "0.10"), ("backup", "month", "7.50"),
                                 ("analytics", "month", "19.00")):
        db.session.add(AddonPrice(addon=addon, period=period, price=Decimal(price), currency="CHF", valid_from=day))
    for metric, price in (("messages_out", "0.005"), ("ai_tokens", "0.00002")):
        db.session.add(MeteredPrice(metric=metric, unit_price=Decimal(price), currency="CHF", valid_from=day))
    db.session.commit()


def _copy(table, columns: list[str], rows) -> None:
    connection = db.session.connection()
    with connection.connection.driver_connection.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _fill(rng: random.Random) -> dict:
    start, now = PERIOD.start, datetime(2026, 12, 2, tzinfo=UTC)
    accounts = [{"id": f"acc_{i:05d}", "name": f"Account {i}", "billing_country": rng.choice(("CH", "CH", "DE", "FR")),
                 "vat_id": "DE123" if i % 3 else None} for i in range(ACCOUNTS)]
    sql.insert_rows(Account.__table__, accounts)
    deployments, plans, toggles, suspensions = [], [], [], []
    for i in range(ACCOUNTS):
        for d in range(2):
            name = f"dep-{i:05d}-{d}"
            created = start - timedelta(days=rng.randint(1, 300)) if (i + d) % 10 else start + timedelta(days=rng.randint(0, 20))
            deleted = max(created, start) + timedelta(days=rng.randint(1, 8)) if (i + d) % 17 == 0 else None
            deployments.append({"name": name, "account_id": accounts[i]["id"], "created_at": created,
                                "deleted_at": deleted, "recorded_at": created, "source": "state"})
            plans.append({"deployment_name": name, "account_id": accounts[i]["id"], "plan": rng.choice(PLANS),
                          "occurred_at": created, "recorded_at": created, "source": "state"})
            at = created
            for k in range(8):
                at = max(at, start - timedelta(days=30)) + timedelta(hours=rng.randint(1, 200))
                toggles.append({"deployment_name": name, "account_id": accounts[i]["id"], "addon": ADDONS[k % 3],
                                "kind": "enabled" if k < 3 or k % 2 else "disabled", "occurred_at": at,
                                "recorded_at": at, "source": "event"})
            for k, kind in enumerate(("suspended", "resumed")):
                at = start + timedelta(days=10 + k * 2, hours=rng.randint(0, 23)) if d else created + timedelta(days=k + 1)
                suspensions.append({"deployment_name": name, "account_id": accounts[i]["id"], "kind": kind,
                                    "occurred_at": at, "recorded_at": at, "source": "event"})
    for table, rows in ((Deployment.__table__, deployments), (PlanEvent.__table__, plans),
                        (AddonEvent.__table__, toggles), (SuspensionEvent.__table__, suspensions)):
        for chunk in range(0, len(rows), 50_000):
            sql.insert_rows(table, rows[chunk:chunk + 50_000])
    seconds = int((PERIOD.end - start).total_seconds())
    columns = ["idempotency_key", "deployment_name", "account_id", "metric", "quantity", "occurred_at", "recorded_at"]
    _copy(UsageRecord.__tablename__, columns,
          ((f"u{n}", deployments[n % len(deployments)]["name"], deployments[n % len(deployments)]["account_id"],
            METRICS[n % 2], rng.randint(1, 40) * (1 if n % 2 == 0 else 600),
            start + timedelta(seconds=rng.randrange(seconds)), now) for n in range(USAGE)))
    db.session.commit()
    for table in ("accounts", "deployments", "deployment_plan_events", "deployment_addon_events",
                  "deployment_suspension_events", "usage_records"):
        db.session.execute(db.text(f"ANALYZE {table}"))
    db.session.commit()
    return {"deployments": len(deployments), "events": len(toggles) + len(suspensions)}


def _bare_group_by() -> float:
    started = time.perf_counter()
    rows = db.session.execute(db.text(
        "SELECT account_id, deployment_name, metric, sum(quantity) FROM usage_records "
        "WHERE occurred_at >= :s AND occurred_at < :e GROUP BY account_id, deployment_name, metric"),
        {"s": PERIOD.start, "e": PERIOD.end}).all()
    elapsed = time.perf_counter() - started
    assert len(rows) > 0
    db.session.rollback()
    return elapsed


def test_the_month_end_run_at_size(app):
    rng = random.Random(20)
    _price_book()
    t = time.perf_counter()
    sizes = _fill(rng)
    filled = time.perf_counter() - t
    bare = [_bare_group_by() for _ in range(3)]
    db.session.remove()

    started = time.perf_counter()
    fresh = run.run_in_process(run.start(PERIOD, trigger="cli", actor="bench"))
    fresh_s = time.perf_counter() - started
    started = time.perf_counter()
    forced = run.run_in_process(run.start(PERIOD, force=True, trigger="cli", actor="bench"))
    forced_s = time.perf_counter() - started
    invoices = db.session.scalar(db.select(db.func.count()).select_from(PlatformInvoice))
    print("\nBENCH " + json.dumps({
        "accounts": ACCOUNTS, **sizes, "usage_records": USAGE, "fill_s": round(filled, 1),
        "run_s": round(fresh_s, 2), "force_run_s": round(forced_s, 2),
        "bare_group_by_s": {"median": round(statistics.median(bare), 2), "min": round(min(bare), 2),
                            "max": round(max(bare), 2)},
        "created": fresh.created, "rebuilt": forced.rebuilt, "skipped": fresh.summary["skipped"],
        "failed": fresh.failed, "invoices": invoices, "totals": fresh.summary["totals"],
        "load": os.getloadavg()}))
    assert fresh.status == "done" and not fresh.failed and fresh.created == invoices
    assert forced.rebuilt == invoices
    assert fresh_s <= 60
