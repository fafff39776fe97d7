"""Two runs of one month at once (issue 20 part 3): never two invoices for an account. On
PostgreSQL, where runs really overlap (threads, each with its own connection); the database's
unique (account, period) constraint decides, and the run that lost says so in its summary."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoicing import engine, run
from backoffice.invoicing.models import PlatformInvoice, PlatformInvoiceLine
from backoffice.usage.models import Deployment, PlanEvent
from tests.invoicing.test_run import NOVEMBER, chf_book

ACCOUNTS = 60
RUNS = 4


def _accounts() -> None:
    created = datetime(2026, 10, 1, tzinfo=UTC)
    for i in range(ACCOUNTS):
        account_id = f"acc_{i:03d}"
        db.session.add(Account(id=account_id, name=f"Account {i}", billing_country="CH"))
        db.session.add(Deployment(name=f"dep-{i:03d}", account_id=account_id, created_at=created, source="state"))
        db.session.add(PlanEvent(deployment_name=f"dep-{i:03d}", account_id=account_id, plan="team",
                                 occurred_at=created, source="state"))
    db.session.commit()


@pytest.mark.parametrize("force", [False, True])
def test_runs_of_one_month_at_once_make_one_invoice_per_account(app, monkeypatch, force):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: SQLite runs one writer at a time, so the runs cannot overlap")
    chf_book()
    _accounts()
    if force:  # drafts exist: every run rebuilds them at once
        run.run_in_process(run.start(engine.Period.parse(NOVEMBER), trigger="cli", actor="test"))
    monkeypatch.setattr(run, "BATCH_ACCOUNTS", 7)  # many batches, so the runs interleave
    barrier = threading.Barrier(RUNS)
    finished, errors = [], []

    def one_run() -> None:
        try:
            with app.app_context():
                started = run.start(engine.Period.parse(NOVEMBER), force=force, trigger="cli", actor="test")
                barrier.wait(10)
                finished.append(run.run_in_process(started).summary)
                db.session.remove()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one_run) for _ in range(RUNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(finished) == RUNS
    db.session.expire_all()
    per_account = db.session.execute(db.select(PlatformInvoice.account_id, db.func.count())
                                     .group_by(PlatformInvoice.account_id)).all()
    assert len(per_account) == ACCOUNTS and {n for _, n in per_account} == {1}
    assert db.session.scalar(db.select(db.func.count()).select_from(PlatformInvoiceLine)) == ACCOUNTS
    written = sum(s["rebuilt" if force else "created"] for s in finished)
    assert written >= ACCOUNTS  # each account's draft was written by one run at least (a rebuild may follow another)
    assert all(s["examined"] == ACCOUNTS and not s["failures"] for s in finished)
    assert sum(s["created"] + s["rebuilt"] + sum(s["skipped"].values()) for s in finished) == RUNS * ACCOUNTS
