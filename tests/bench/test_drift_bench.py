"""Benchmark of the drift pass against localstripe (excluded by default).

    BENCH_ACCOUNTS=1000 pytest -m bench tests/bench/test_drift_bench.py -s -p no:cacheprovider

Builds BENCH_ACCOUNTS customers with a paid subscription on localstripe (through the real
`stripe` client), archives their events and replays them, then runs the drift pass in detect mode
over every account: serially, and on 4 and 8 parallel workers (the in-process pool the pass uses
without a broker; on Celery the same per-account task runs on worker processes). Reports the
wall time, accounts/s, the per-account cost and the speed-up, and Stripe requests per account.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime

import pytest

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger import archive, services
from backoffice.ledger.models import StripeEvent, Subscription
from backoffice.stripe_sync import gateway as gw
from backoffice.stripe_sync import tasks
from backoffice.stripe_sync.models import JobRun
from tests.stripe_sync.conftest import fake_stripe, localstripe_url, stripe_app  # noqa: F401  (fixtures)

pytestmark = pytest.mark.bench

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
WORKERS = (1, 4, 8)


def _setup(fake) -> None:
    fake.plan("standard", 4900)
    pm_customers = []
    for n in range(ACCOUNTS):
        account_id = f"acc_{n:05d}"
        customer = fake.client.v1.customers.create(
            {"name": f"Customer {n}", "metadata": {"account_id": account_id}}).id
        pm = fake.client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
        fake.client.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": pm.id}})
        fake.client.v1.subscriptions.create({"customer": customer, "items": [{"plan": "standard"}]})
        pm_customers.append((account_id, customer))
    db.session.add_all(Account(id=a, name=a, stripe_customer_id=c) for a, c in pm_customers)
    db.session.commit()
    by_customer = {c: a for a, c in pm_customers}
    now = datetime.now(UTC)
    rows = []
    for event in fake.events():  # one pull; what the webhooks would have archived
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
    for account_id, _customer in pm_customers:
        assert services.replay_account(account_id).error is None


def test_drift_pass_over_many_accounts(stripe_app, fake_stripe):  # noqa: F811
    started = time.perf_counter()
    _setup(fake_stripe)
    setup_s = time.perf_counter() - started
    subs = db.session.execute(db.select(db.func.count()).select_from(Subscription)).scalar_one()
    assert subs == ACCOUNTS
    stripe_app.config.update(DRIFT_TIMEOUT=60)
    gateway = stripe_app.extensions["stripe_gateway"]
    results = {}
    for workers in WORKERS:
        db.session.execute(db.update(Subscription).values(drift_checked_at=None))
        db.session.commit()
        calls = gateway.calls
        t0 = time.perf_counter()
        run = tasks.run_drift_pass(parallel=workers)
        elapsed = time.perf_counter() - t0
        run = db.session.get(JobRun, run.id)
        assert (run.total, run.processed, run.skipped, run.failed, run.timed_out) == (ACCOUNTS, ACCOUNTS, 0, 0, 0)
        results[workers] = (elapsed, (gateway.calls - calls) / ACCOUNTS)
    drifted = db.session.execute(
        db.select(db.func.count()).select_from(Subscription).where(Subscription.drift_detected)).scalar_one()
    assert drifted == 0

    serial = results[1][0]
    print(f"\n{ACCOUNTS} accounts on localstripe ({db.engine.dialect.name}); setup {setup_s:.1f} s")
    for workers, (elapsed, calls) in results.items():
        print(f"  {workers} worker(s): {elapsed:7.2f} s  {ACCOUNTS / elapsed:7.1f} accounts/s  "
              f"{elapsed / ACCOUNTS * 1000:6.1f} ms/account wall  "
              f"{elapsed * workers / ACCOUNTS * 1000:6.1f} ms/account per worker  "
              f"speed-up x{serial / elapsed:4.2f}  {calls:.1f} Stripe requests/account")
