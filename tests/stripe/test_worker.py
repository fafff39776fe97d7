"""The drift pass: in-process (no broker) and on a real Celery worker with Redis."""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice import jobs
from backoffice.extensions import db
from backoffice.ledger.models import Subscription
from backoffice.stripe import drift, sync, tasks
from backoffice.stripe import gateway as gw
from backoffice.stripe.models import JobRun
from tests.stripe import helpers as h
from tests.stripe.conftest import API_KEY, free_port, make_account, running_worker
from tests.stripe.stubs import RecordedGateway, days_ago

REDIS_URL = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/5")
STANDARD = h.price("price_standard", 4900, product="standard")


class UnavailableGateway(RecordedGateway):
    """Unavailable for the customers `unavailable_after` names, after that many seconds each;
    recorded answers for everyone else."""

    def __init__(self, unavailable_after: dict[str, float], **recorded):
        super().__init__(**recorded)
        self.unavailable_after = unavailable_after

    def subscriptions(self, customer_id):
        if customer_id in self.unavailable_after:
            time.sleep(self.unavailable_after[customer_id])
            raise gw.StripeUnavailable(f"unavailable after {self.unavailable_after[customer_id]} s")
        return super().subscriptions(customer_id)


def _account(account_id: str, customer: str | None, checked: datetime | None) -> Subscription:
    make_account(account_id, customer)
    sub = Subscription(account_id=account_id, plan="free", price_amount=Decimal(0), drift_checked_at=checked)
    db.session.add(sub)
    db.session.commit()
    return sub


def test_an_in_process_pass_checks_due_accounts_and_stores_its_totals(app, admin_client, caplog):
    now = datetime.now(UTC)
    ok = _account("acc_ok", "cus_ok", None)
    _account("acc_fresh", "cus_fresh", now - timedelta(hours=2))  # checked recently: not due
    _account("acc_nocus", None, None)  # no Stripe customer: not due
    down = _account("acc_down", "cus_down", now - timedelta(hours=30))
    slow = _account("acc_slow", "cus_slow", now - timedelta(hours=24))
    app.extensions["stripe_gateway"] = UnavailableGateway(
        {"cus_down": 0, "cus_slow": 1.5}, subscriptions=[h.subscription("sub_ok", "cus_ok", STANDARD, created=days_ago(3))])
    app.config.update(STRIPE_SECRET_KEY=API_KEY, DRIFT_PARALLEL=2, DRIFT_TIMEOUT=1)
    assert set(drift.due_subscription_ids()) == {ok.id, down.id, slow.id}

    with caplog.at_level(logging.INFO, logger="backoffice.stripe.tasks"):
        # Eager result: another test may have left Celery's "inside a worker" flag set in this process.
        run_id = tasks.drift_pass_task.delay().get(disable_sync_subtasks=False)

    run = db.session.get(JobRun, run_id)
    # Checks that did not complete make the pass failed, saying how many and why.
    assert (run.kind, run.status, run.total) == ("drift_pass", "failed", 3)
    assert run.error.startswith("2 of 3 checks did not complete (1 failed or could not reach Stripe, 1 timed out")
    # Stripe unavailable: the check did not happen, it counts as failed (the account stays due).
    assert (run.processed, run.skipped, run.failed, run.timed_out) == (1, 0, 1, 1)
    assert "3 accounts, 1 processed, 0 skipped, 1 failed, 1 timed out" in caplog.text
    db.session.expire_all()
    assert db.session.get(Subscription, ok.id).drift_checked_at > now
    # Unavailable and timed out: untouched, still due.
    assert db.session.get(Subscription, down.id).drift_checked_at == now - timedelta(hours=30)
    assert set(drift.due_subscription_ids()) == {down.id, slow.id}
    time.sleep(0.6)  # let the slow thread finish before the database goes away

    html = admin_client.get("/stripe/jobs").get_data(as_text=True)
    assert "Drift pass" in html and "Timed out" in html and "2 of 3 checks did not complete" in html
    banner = admin_client.get("/banners", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-banner="drift-pass-failed"' in banner and "The last drift pass did not complete: 2 of 3" in banner
    fragment = admin_client.get("/stripe/jobs", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="job-table"')


def test_each_account_has_the_timeout_from_its_own_start(app):
    """The pass waits for the accounts one after another; the second one's second counts from
    when its own check began, not from when the pass was done waiting for the first (0.8 s):
    it is timed out after 1 s, not allowed until 1.8 s and counted as answered at 1.5 s."""
    _account("acc_first", "cus_first", datetime.now(UTC) - timedelta(hours=30))  # due first
    _account("acc_long", "cus_long", datetime.now(UTC) - timedelta(hours=24))
    app.extensions["stripe_gateway"] = UnavailableGateway({"cus_first": 0.8, "cus_long": 1.5})
    app.config["STRIPE_SECRET_KEY"] = API_KEY

    started = time.monotonic()
    run = tasks.run_drift_pass(parallel=2, timeout=1)

    assert (run.total, run.processed, run.skipped, run.failed, run.timed_out) == (2, 0, 0, 1, 1)
    assert time.monotonic() - started < 10  # the pool waits for the slow check (1.5 s), not longer


def test_detect_mode_writes_only_the_drift_columns(app):
    sub_obj = h.subscription("sub_1", "cus_1", STANDARD, created=days_ago(3))
    sub = _account("acc_1", "cus_1", None)
    app.extensions["stripe_gateway"] = RecordedGateway(subscriptions=[sub_obj])
    app.config["STRIPE_SECRET_KEY"] = API_KEY
    before = {c: getattr(sub, c) for c in ("plan", "price_amount", "status", "stripe_subscription_id",
                                            "events_anchor", "currency")}

    assert drift.check_subscription(sub.id) == "processed"

    db.session.expire_all()
    sub = db.session.get(Subscription, sub.id)
    assert {c: getattr(sub, c) for c in before} == before
    assert sub.drift_checked_at is not None
    assert sub.drift_detected is True  # the live subscription has no archived event yet


def test_drift_scan_command(app, runner):
    _account("acc_1", "cus_1", None)
    app.extensions["stripe_gateway"] = RecordedGateway()
    app.config["STRIPE_SECRET_KEY"] = API_KEY
    result = runner.invoke(args=["drift", "scan", "--parallel", "1"])
    assert result.exit_code == 0, result.output
    assert "1 accounts due, 1 processed, 0 skipped, 0 failed, 0 timed out." in result.output


def test_drift_scan_exits_1_when_checks_fail(app, runner):
    """Stripe unreachable (a closed port on loopback): every check fails, and the scan says so."""
    _account("acc_1", "cus_1", None)
    app.config.update(STRIPE_SECRET_KEY=API_KEY, STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                      STRIPE_MAX_RETRIES=0, STRIPE_TIMEOUT=2)
    app.extensions.pop("stripe_gateway", None)
    result = runner.invoke(args=["drift", "scan", "--parallel", "1"])
    assert result.exit_code == 1, result.output
    assert "1 accounts due, 0 processed, 0 skipped, 1 failed, 0 timed out." in result.output
    assert "1 of 1 checks did not complete" in result.output


def test_stripe_command(stripe_app, fake_stripe, runner):
    fake_stripe.plan("standard", 4900)
    customer = fake_stripe.customer("acc_1")
    make_account("acc_1", customer)
    fake_stripe.subscribe(customer, "standard")
    make_account("acc_2", None)
    result = runner.invoke(args=["stripe", "sync", "--account", "acc_1"])
    assert result.exit_code == 0, result.output
    assert "1 accounts synced, 6 missed events recovered, 4 ledger rows appended, 0 with drift, 0 failed." in result.output
    result = runner.invoke(args=["stripe", "sync", "--all"])
    assert "1 accounts synced, 0 missed events recovered, 0 ledger rows appended" in result.output
    result = runner.invoke(args=["stripe", "sync", "--account", "acc_2"])
    assert result.exit_code == 1 and "no Stripe customer" in result.output
    assert runner.invoke(args=["stripe", "sync"]).exit_code == 2


# -- a real worker ------------------------------------------------------------------------------
def _redis_available() -> bool:
    import redis

    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def broker_app(app_config, make_app):
    """A second app on the same database, with the broker set; the eager default comes back after."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    _forget_connections()
    app = make_app({**app_config, "CELERY_BROKER_URL": REDIS_URL})
    try:
        yield app
    finally:
        _forget_connections()
        jobs.celery_app.conf.update(task_always_eager=True, broker_url="memory://", result_backend=None)
        redis.Redis.from_url(REDIS_URL).flushdb()


def _forget_connections() -> None:
    """Celery keeps its producer pool and result backend from the first use; a test that
    changes the broker of the one process-wide app must drop them."""
    from kombu import pools

    jobs.celery_app.close()
    jobs.celery_app.__dict__.pop("amqp", None)
    jobs.celery_app._local = threading.local()
    pools.reset()


@pytest.mark.skipif(not _redis_available(), reason="needs Redis at " + REDIS_URL)
def test_a_real_worker_completes_a_drift_pass(stripe_app, fake_stripe, app_config, broker_app, tmp_path):
    fake_stripe.plan("standard", 4900)
    customer = fake_stripe.customer("acc_1")
    make_account("acc_1", customer)
    fake_stripe.subscribe(customer, "standard")
    sync.sync_account("acc_1")
    sub = db.session.execute(db.select(Subscription).where(Subscription.account_id == "acc_1")).scalar_one()
    sub.drift_checked_at = datetime.now(UTC) - timedelta(hours=24)
    db.session.commit()
    checked = sub.drift_checked_at

    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "CELERY_BROKER_URL": REDIS_URL,
           "STRIPE_SECRET_KEY": API_KEY, "STRIPE_API_BASE": fake_stripe.url, "SECRET_KEY": "worker-test",
           "BACKOFFICE_INSTANCE_PATH": str(tmp_path / "worker"), "BACKOFFICE_CURRENCY": "EUR"}
    with running_worker(env, tmp_path / "worker.log", "--concurrency", "2") as worker, broker_app.app_context():
        assert not jobs.celery_app.conf.task_always_eager
        run = tasks.run_drift_pass(parallel=2)
        run_id = run.id
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            db.session.expire_all()
            run = db.session.get(JobRun, run_id)
            if run.status == "done" or worker.poll() is not None:
                break
            time.sleep(0.5)
        assert (run.status, run.total, run.processed, run.skipped, run.failed, run.timed_out) == (
            "done", 1, 1, 0, 0, 0), (tmp_path / "worker.log").read_text()[-3000:]
        sub = db.session.get(Subscription, sub.id)
        assert sub.drift_checked_at > checked and sub.drift_detected is False
        db.session.remove()
    assert f"drift pass {run_id} finished: 1 accounts, 1 processed" in (tmp_path / "worker.log").read_text()


@pytest.mark.skipif(not _redis_available(), reason="needs Redis at " + REDIS_URL)
def test_a_worker_task_leaves_no_transaction_open(app_config, broker_app, tmp_path):
    """A drain with nothing to release still runs its UPDATE (a write transaction). The worker's
    processes inherit the command's app context; the task must end its session all the same,
    or the process keeps the transaction — on SQLite the database's write lock — until its next
    task, and every other writer waits and fails ("database is locked")."""
    env = {**os.environ, "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "CELERY_BROKER_URL": REDIS_URL,
           "SECRET_KEY": "worker-test", "BACKOFFICE_INSTANCE_PATH": str(tmp_path / "worker"),
           "BACKOFFICE_CURRENCY": "EUR"}
    with running_worker(env, tmp_path / "worker.log", "--concurrency", "1", "--no-beat"), broker_app.app_context():
        result = jobs.celery_app.send_task("ledger.drain_pending").get(timeout=60)
        assert result == {"events": 0, "next_in_s": None}
        db.session.commit()
        if db.engine.dialect.name == "sqlite":
            import sqlite3

            other = sqlite3.connect(db.engine.url.database, timeout=0.5)
            try:
                other.execute("BEGIN IMMEDIATE")  # the write lock is free
                other.rollback()
            finally:
                other.close()
        else:
            open_elsewhere = db.session.execute(db.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")).scalar_one()
            assert open_elsewhere == 0
        db.session.remove()
