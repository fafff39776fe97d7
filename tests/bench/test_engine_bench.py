"""The quote engine alone (issue 20 part 10: >= 20,000 deployment-months per second in one process;
excluded by default):

    pytest -m bench tests/bench/test_engine_bench.py -s -p no:cacheprovider

`BENCH_ENGINE_DEPLOYMENTS` (20,000) deployment-months of a realistic mix — most running the whole
month on one plan with two add-ons and two metered metrics over their allowance, one in five
created, deleted, suspended or changing plan within the month, add-ons toggled a few times —
priced with `engine.price_account` in accounts of two deployments, `BENCH_ENGINE_RUNS` (5) times.
Prints one `BENCH {...}` line: deployment-months per second (median and spread) beside the bare
cost of walking the same inputs (building each deployment's usage dict and summing its events,
no pricing), and the load average.
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

from backoffice.invoicing import engine
from backoffice.invoicing.engine import AddonVersion, MeteredVersion, Period, PlanVersion, PriceBook, Timeline

pytestmark = pytest.mark.bench

DEPLOYMENTS = int(os.environ.get("BENCH_ENGINE_DEPLOYMENTS", "20000"))
RUNS = int(os.environ.get("BENCH_ENGINE_RUNS", "5"))
PERIOD = Period(2026, 11)
D = Decimal


def _book() -> PriceBook:
    start = date(2025, 1, 1)
    return PriceBook.of(
        plans=[PlanVersion(p, p.title(), "CHF", D(m), D(99), start, {"messages_out": D(1000), "ai_tokens": D(50000)})
               for p, m in (("starter", 49), ("team", 149), ("business", 490))],
        addons=[AddonVersion("translator", "day", D("0.10"), "CHF", start),
                AddonVersion("backup", "month", D("7.50"), "CHF", start),
                AddonVersion("analytics", "month", D("19.00"), "CHF", start)],
        metered=[MeteredVersion("messages_out", D("0.005"), "CHF", start),
                 MeteredVersion("ai_tokens", D("0.00002"), "CHF", start)])


def _timelines(rng: random.Random) -> list[tuple[Timeline, dict]]:
    month_start = PERIOD.start
    found = []
    for n in range(DEPLOYMENTS):
        created = month_start - timedelta(days=rng.randint(1, 400))
        plan = rng.choice(("starter", "team", "business"))
        plans = [(created, plan)]
        deleted = suspensions = None
        addons = [(created, "backup", True), (created, "translator", True)]
        twist = n % 5
        if twist == 1:
            created = month_start + timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 23))
            plans = [(created, plan)]
            addons = [(created, "backup", True)]
        elif twist == 2:
            deleted = month_start + timedelta(days=rng.randint(1, 28), hours=rng.randint(0, 23))
        elif twist == 3:
            s = month_start + timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 23))
            suspensions = [(s, True), (s + timedelta(days=rng.randint(1, 6)), False)]
        elif twist == 4:
            plans.append((month_start + timedelta(days=rng.randint(1, 28), hours=15), "business"))
        for _ in range(rng.randint(0, 4)):
            t = month_start + timedelta(days=rng.randint(0, 29), hours=rng.randint(0, 23))
            addons.append((t, "analytics", rng.random() < 0.5))
        timeline = Timeline(f"dep-{n}", created, deleted, plans, sorted(addons, key=lambda a: a[0]), suspensions or ())
        usage = {"messages_out": D(rng.randint(0, 5000)), "ai_tokens": D(rng.randint(0, 200000))}
        found.append((timeline, usage))
    return found


def test_quote_engine_deployment_months_per_second():
    data = _timelines(random.Random(20))
    book = _book()
    vat = engine.vat_decision(["CH", "LI"], D("8.1"), "CH", None)
    accounts = [data[i:i + 2] for i in range(0, len(data), 2)]
    rates, bare = [], []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        lines = 0
        for pair in accounts:
            quote = engine.price_account([t for t, _ in pair], PERIOD, book, {t.deployment: u for t, u in pair}, vat)
            lines += len(quote.lines)
        rates.append(len(data) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        walked = 0
        for pair in accounts:
            usage = {t.deployment: u for t, u in pair}
            walked += sum(len(t.addons) + len(t.plans) + len(usage[t.deployment]) for t, _ in pair)
        bare.append(len(data) / (time.perf_counter() - t0))
    figures = {"deployment_months": len(data), "runs": RUNS, "lines_per_run": lines,
               "per_s_median": round(statistics.median(rates)), "per_s_min": round(min(rates)),
               "per_s_max": round(max(rates)), "bare_walk_per_s_median": round(statistics.median(bare)),
               "started": datetime.now(UTC).isoformat(timespec="seconds"), "load_average": os.getloadavg()}
    print("BENCH " + json.dumps(figures))
    assert lines > len(data)  # every deployment was priced
