"""Benchmark of the drift pass against localstripe (excluded by default).

    BENCH_DRIFT_ACCOUNTS=1000 pytest -m bench tests/bench/test_drift_bench.py -s -p no:cacheprovider

Setup (timed apart, not measured): BENCH_DRIFT_ACCOUNTS customers (default 1000) with a paid
subscription are created on localstripe through the real `stripe` client, with no webhook endpoint
registered; localstripe's events are pulled once and archived as the webhook would have archived
them, and the worker's catch-up replay (`replay_pending`) writes the ledger. localstripe runs
without its per-write disk snapshot (tests/stripe/run_localstripe.py), which made this setup
quadratic (1,000 accounts: over 40 minutes; now about a minute).

Measured: the drift pass in detect mode over every account (`tasks.run_drift_pass`, what
`backoffice drift scan --parallel N` runs), once per worker count of BENCH_DRIFT_WORKERS (default
1,2,4,8: the in-process thread pool the pass uses without a broker; on Celery the same per-account
task runs on worker processes). Every account is checked against localstripe through the product's
gateway. Per worker count: wall time, the per-account check time (median, p10, p90, max), the
speed-up over one worker, Stripe requests and SQL statements per account, the CPU seconds of this
process (the app), of the localstripe process and of the PostgreSQL backends, and the load average
before and after. One `BENCH {...}` line.

localstripe answers each list request by scanning its whole store, so its cost per account grows
with the number of accounts and it becomes the bottleneck (one process, one core) near 1,000
accounts. BENCH_DRIFT_INDEXED_LISTS=1 starts it with lists that scan only the objects of their type
(same answers), to measure the app rather than localstripe. BENCH_DRIFT_PROFILE=path writes a
cProfile of the one-worker pass in CPU time of the checking thread (waits on Stripe and PostgreSQL
excluded, so a shared machine's load barely skews it).
"""
from __future__ import annotations

import cProfile
import hashlib
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger import archive, services
from backoffice.ledger.models import StripeEvent, Subscription
from backoffice.stripe import drift, tasks
from backoffice.stripe import gateway as gw
from backoffice.stripe.models import JobRun
from tests.stripe.conftest import LAUNCHER, fake_stripe, running_localstripe, stripe_app  # noqa: F401  (fixtures)

pytestmark = pytest.mark.bench

ACCOUNTS = int(os.environ.get("BENCH_DRIFT_ACCOUNTS", os.environ.get("BENCH_ACCOUNTS", "1000")))
WORKERS = tuple(int(w) for w in os.environ.get("BENCH_DRIFT_WORKERS", "1,2,4,8").split(","))
PROFILE = os.environ.get("BENCH_DRIFT_PROFILE", "")
INDEXED_LISTS = os.environ.get("BENCH_DRIFT_INDEXED_LISTS", "") == "1"
TICK = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def localstripe_url(tmp_path_factory):
    """The bench's own localstripe; with BENCH_DRIFT_INDEXED_LISTS=1 its lists scan only the
    objects of their type instead of its whole store (see tests/stripe/run_localstripe.py)."""
    with running_localstripe(tmp_path_factory, *(["--indexed-lists"] if INDEXED_LISTS else [])) as url:
        yield url


@pytest.fixture
def app_config(app_config):
    """A pool that holds every worker's connection, so the PostgreSQL backends live through a pass
    (their CPU time is read from /proc) and none is reopened mid-pass."""
    return {**app_config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": max(WORKERS) + 2}}


# -- CPU accounting ----------------------------------------------------------------------------------
def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _localstripe_pid(url: str) -> int | None:
    """The localstripe process this session started (a child of this process on the URL's port)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and str(LAUNCHER).encode() in args and port.encode() in args:
            return int(entry.name)
    return None


def _pg_backends() -> list[int]:
    if db.engine.dialect.name != "postgresql":
        return []
    return list(db.session.execute(db.text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars())


class CpuMeter:
    """CPU seconds spent between start() and stop() by the app, localstripe and PostgreSQL."""

    def __init__(self, localstripe_pid: int | None):
        self.localstripe_pid = localstripe_pid

    def _sample(self) -> dict:
        own = os.times()
        return {"app": own.user + own.system,
                "localstripe": _cpu_of(self.localstripe_pid) if self.localstripe_pid else 0.0,
                "postgres": {pid: _cpu_of(pid) for pid in _pg_backends()}}

    def start(self) -> None:
        self.before = self._sample()

    def stop(self) -> dict:
        after = self._sample()
        pg = sum(cpu - self.before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items())
        return {"app": round(after["app"] - self.before["app"], 2),
                "localstripe": round(after["localstripe"] - self.before["localstripe"], 2),
                "postgres": round(pg, 2) if after["postgres"] else None}


# -- setup ------------------------------------------------------------------------------------------
def _create_on_stripe(fake) -> list[tuple[str, str]]:
    fake.plan("standard", 4900)
    pairs = []
    for n in range(ACCOUNTS):
        account_id = f"acc_{n:05d}"
        customer = fake.client.v1.customers.create(
            {"name": f"Customer {n}", "metadata": {"account_id": account_id}}).id
        fake.subscribe(customer, "standard")
        pairs.append((account_id, customer))
    return pairs


def _archive(fake, pairs: list[tuple[str, str]]) -> int:
    """The accounts linked to their customers, and every localstripe event archived as the webhook
    would have (one pull of events.list)."""
    db.session.add_all(Account(id=a, name=a, stripe_customer_id=c) for a, c in pairs)
    db.session.commit()
    by_customer = {c: a for a, c in pairs}
    now = datetime.now(UTC)
    rows = []
    for event in fake.events():
        customer = gw.event_customer(event)
        body = json.dumps(event)
        rows.append(StripeEvent(
            id=event["id"], type=event["type"], api_version=event["api_version"],
            stripe_created_at=datetime.fromtimestamp(event["created"], UTC), received_at=now, payload=body,
            payload_sha256=hashlib.sha256(body.encode()).hexdigest(), customer_id=customer,
            account_id=by_customer.get(customer),
            state="pending" if event["type"] in archive.HANDLED_TYPES else "ignored",
            stripe_subscription_id=archive.event_subscription_id(event)))
    db.session.add_all(rows)
    db.session.commit()
    return len(rows)


# -- the pass -----------------------------------------------------------------------------------------
class StatementCounter:
    """SQL statements sent to the database (every connection of the engine)."""

    def __init__(self, engine):
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *args) -> None:
        self.count += 1


class TimedChecks:
    """Wraps the real per-account check to record its duration (nothing else changes), and to
    profile it when a profiler is set (one worker only: the pass runs the check on a pool thread,
    which a profiler enabled on the main thread would not see)."""

    def __init__(self, monkeypatch):
        self.durations: list[float] = []
        self.profiler: cProfile.Profile | None = None
        check = drift.check_subscription

        def timed(subscription_id, *args, **kwargs):
            t0 = time.perf_counter()
            if self.profiler:
                self.profiler.enable()
            try:
                return check(subscription_id, *args, **kwargs)
            finally:
                if self.profiler:
                    self.profiler.disable()
                self.durations.append(time.perf_counter() - t0)

        monkeypatch.setattr(drift, "check_subscription", timed)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def test_drift_pass_over_many_accounts(stripe_app, fake_stripe, monkeypatch):  # noqa: F811
    setup: dict = {}
    t0 = time.perf_counter()
    pairs = _create_on_stripe(fake_stripe)
    setup["stripe_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    setup["events"] = _archive(fake_stripe, pairs)
    setup["archive_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    reports = services.replay_pending()
    setup["replay_s"] = round(time.perf_counter() - t0, 1)
    assert [r.account_id for r in reports if r.error] == []
    subs = db.session.execute(db.select(db.func.count()).select_from(Subscription)).scalar_one()
    assert subs == ACCOUNTS

    stripe_app.config.update(DRIFT_TIMEOUT=60)
    gateway = stripe_app.extensions["stripe_gateway"]
    meter = CpuMeter(_localstripe_pid(fake_stripe.url))
    statements = StatementCounter(db.engine)
    checks = TimedChecks(monkeypatch)
    durations = checks.durations
    passes = []
    for workers in WORKERS:
        db.session.execute(db.update(Subscription).values(drift_checked_at=None))
        db.session.commit()
        durations.clear()
        calls, sent = gateway.calls, statements.count
        load_before = os.getloadavg()[0]
        checks.profiler = cProfile.Profile(time.thread_time) if PROFILE and workers == 1 else None
        meter.start()
        t0 = time.perf_counter()
        run = tasks.run_drift_pass(parallel=workers)
        elapsed = time.perf_counter() - t0
        cpu = meter.stop()
        if checks.profiler:
            checks.profiler.dump_stats(PROFILE)
            checks.profiler = None
        run = db.session.get(JobRun, run.id)
        assert (run.total, run.processed, run.skipped, run.failed, run.timed_out) == (ACCOUNTS, ACCOUNTS, 0, 0, 0)
        passes.append({
            "workers": workers, "wall_s": round(elapsed, 2), "accounts_per_s": round(ACCOUNTS / elapsed, 1),
            "wall_ms_per_account": _ms(elapsed / ACCOUNTS),
            "check_ms": {"median": _ms(statistics.median(durations)), "p10": _ms(_quantile(durations, 0.1)),
                         "p90": _ms(_quantile(durations, 0.9)), "max": _ms(max(durations))},
            "stripe_requests_per_account": round((gateway.calls - calls) / ACCOUNTS, 2),
            "sql_statements_per_account": round((statements.count - sent) / ACCOUNTS, 2),
            "cpu_s": cpu, "cpu_ms_per_account": {k: v and _ms(v / ACCOUNTS) for k, v in cpu.items()},
            "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        })
    drifted = db.session.execute(
        db.select(db.func.count()).select_from(Subscription).where(Subscription.drift_detected)).scalar_one()
    assert drifted == 0

    serial = next((p["wall_s"] for p in passes if p["workers"] == 1), None)
    for p in passes:
        p["speed_up"] = round(serial / p["wall_s"], 2) if serial else None
    print(f"\n{ACCOUNTS} accounts on localstripe{' (indexed lists)' if INDEXED_LISTS else ''} "
          f"({db.engine.dialect.name}); setup {setup}")
    for p in passes:
        print(f"  {p['workers']} worker(s): {p['wall_s']:7.2f} s  {p['accounts_per_s']:6.1f} accounts/s  "
              f"check {p['check_ms']['median']} ms median (p90 {p['check_ms']['p90']})  "
              f"speed-up x{p['speed_up']}  {p['stripe_requests_per_account']} Stripe requests/account  "
              f"{p['sql_statements_per_account']} SQL statements/account  "
              f"CPU {p['cpu_s']}  load {p['load']}")
    print("BENCH " + json.dumps({"bench": "drift_pass", "accounts": ACCOUNTS, "database": db.engine.dialect.name,
                                 "cpus": os.cpu_count(), "localstripe_indexed_lists": INDEXED_LISTS, "setup": setup, "passes": passes}))
