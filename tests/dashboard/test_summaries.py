"""The summary tables of migration 0009 (PostgreSQL triggers) always equal what the dashboard would
compute from the source tables: after late ledger rows, rows written in one statement, refunds,
credit notes, moved and deleted logins, writers of one account at the same time, and a rebuild."""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.dashboard import queries
from backoffice.dashboard.models import LoginDaily, MrrDaily, RevenueDaily
from backoffice.dashboard.mrr import Window
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent
from backoffice.users.models import Login
from tests.conftest import IS_POSTGRES
from tests.factories import (
    AccountFactory,
    BillingEventFactory,
    LoginFactory,
    PaymentTransactionFactory,
    SubscriptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="the summaries are kept by PostgreSQL triggers")

D = Decimal


@pytest.fixture
def now():
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def ago(now, days):
    return now - timedelta(days=days)


def _sums(stmt) -> dict:
    return {key[0] if len(key) == 1 else tuple(key): value
            for *key, value in db.session.execute(stmt) if value != 0}


def mrr_summary() -> dict:
    m = MrrDaily
    return _sums(sa.select(m.day, m.type, m.positive, queries._money_sum(m.change)).group_by(m.day, m.type, m.positive))


def mrr_from_ledger() -> dict:
    c = queries._mrr_daily_from_ledger().c
    return _sums(sa.select(c.day, c.type, c.positive, queries._money_sum(c.change)).group_by(c.day, c.type, c.positive))


def revenue_summary() -> dict:
    r = RevenueDaily
    return _sums(sa.select(r.day, queries._money_sum(r.change)).group_by(r.day))


def revenue_from_payments() -> dict:
    c = queries._revenue_daily_from_payments().c
    return _sums(sa.select(c.day, queries._money_sum(c.change)).group_by(c.day))


def login_summary() -> dict:
    d = LoginDaily
    return _sums(sa.select(d.day, d.outcome, sa.func.sum(d.logins)).group_by(d.day, d.outcome))


def logins_from_table() -> dict:
    day = queries._day(Login.at)
    return _sums(sa.select(day, Login.outcome, sa.func.count()).group_by(day, Login.outcome))


def rebuild() -> None:
    db.session.execute(sa.text("SELECT dashboard_rebuild_summaries()"))


def ledger_row(sub, kind, previous, new, at, n) -> dict:
    return {"account_id": sub.account_id, "subscription_id": sub.id, "stripe_event_id": f"evt_batch_{n}",
            "type": kind, "previous_amount": D(previous), "new_amount": D(new), "amount_delta": D(new) - D(previous),
            "committed_mrr": D(new), "currency": "EUR", "occurred_at": at}


def test_mrr_summary_follows_late_rows_and_rows_of_one_statement(app, now):
    sub = SubscriptionFactory(price_amount=D("150"))
    BillingEventFactory(subscription=sub, previous_amount=D(0), new_amount=D("100"), occurred_at=ago(now, 10))
    BillingEventFactory(subscription=sub, type="subscription_upgraded", previous_amount=D("100"),
                        new_amount=D("150"), occurred_at=ago(now, 5))
    db.session.commit()
    assert queries.mrr_trend(Window.ending(7, now)).values == [D("100")] + [D("150")] * 6

    # A late downgrade (older than the upgrade already stored): the upgrade now adds 70, not 50.
    BillingEventFactory(subscription=sub, type="subscription_downgraded", previous_amount=D("100"),
                        new_amount=D("80"), occurred_at=ago(now, 7))
    # One statement: a second subscription's whole history, and another late row of the first one.
    other = SubscriptionFactory(price_amount=D("49.99"))
    db.session.execute(sa.insert(BillingEvent), [
        ledger_row(other, "subscription_created", "0", "49.99", ago(now, 6), 1),
        ledger_row(other, "subscription_cancelled", "49.99", "0", ago(now, 2), 2),
        ledger_row(sub, "subscription_upgraded", "80", "90", ago(now, 6), 3),
    ])
    BillingEventFactory(subscription=sub, type="subscription_renewed", previous_amount=None, new_amount=None,
                        occurred_at=ago(now, 1))  # moves no MRR
    db.session.commit()

    assert mrr_summary() == mrr_from_ledger()
    w = Window.ending(7, now)
    assert queries.mrr_trend(w).values == [D("139.99")] + [D("199.99")] * 3 + [D("150")] * 3
    m = queries.mrr_movements(w)
    assert (m.opening, m.closing) == (D("80"), D("150"))
    assert m.buckets == {"new": D("49.99"), "expansion": D("70"), "contraction": D(0), "churn": D("-49.99"),
                         "reactivation": D(0)}
    assert queries.ledger_mrr_latest() == D("150")
    before = mrr_summary()
    rebuild()
    assert mrr_summary() == before


def test_mrr_summary_of_rows_without_a_subscription(app, now):
    account = AccountFactory()
    db.session.execute(sa.insert(BillingEvent), [
        {"account_id": account.id, "subscription_id": None, "stripe_event_id": "evt_a", "type": "unclassified",
         "previous_amount": D(0), "new_amount": D("20"), "amount_delta": D("20"), "committed_mrr": D("20"),
         "currency": "EUR", "occurred_at": ago(now, 3)},
        {"account_id": account.id, "subscription_id": None, "stripe_event_id": "evt_b", "type": "unclassified",
         "previous_amount": D("20"), "new_amount": D("5"), "amount_delta": D("-15"), "committed_mrr": D("5"),
         "currency": "EUR", "occurred_at": ago(now, 2)},
    ])
    db.session.commit()
    assert mrr_summary() == mrr_from_ledger() == {
        (ago(now, 3).date(), "unclassified", True): D("20"), (ago(now, 2).date(), "unclassified", False): D("-15")}


def test_revenue_summary_follows_refunds_credit_notes_and_deletes(app, now):
    paid = PaymentTransactionFactory(amount_excluding_tax=D("100"), date=ago(now, 9))
    refunded = PaymentTransactionFactory(amount_excluding_tax=D("49.99"), date=ago(now, 8))
    failed = PaymentTransactionFactory(amount_excluding_tax=D("10"), date=ago(now, 7), status="failed")
    db.session.commit()
    assert revenue_summary() == revenue_from_payments()
    assert queries.net_revenue() == D("149.99")

    refunded.refunded_at = ago(now, 3)
    paid.credit_noted_at = ago(now, 2)
    paid.credit_note_url = "https://example.test/cn"
    failed.status = "succeeded"
    db.session.commit()
    assert revenue_summary() == revenue_from_payments() == {
        ago(now, 9).date(): D("100"), ago(now, 8).date(): D("49.99"), ago(now, 7).date(): D("10"),
        ago(now, 3).date(): D("-49.99"), ago(now, 2).date(): D("-100")}
    assert queries.net_revenue() == D("10")

    db.session.delete(failed)
    db.session.commit()
    assert revenue_summary() == revenue_from_payments()
    assert queries.net_revenue() == D(0)
    before = revenue_summary()
    rebuild()
    assert revenue_summary() == before


def test_login_summary_follows_moved_and_deleted_logins(app, now):
    user = UserFactory()
    first = LoginFactory(user_id=user.id, at=ago(now, 3))
    LoginFactory(user_id=user.id, at=ago(now, 3), outcome="failure")
    db.session.execute(sa.insert(Login), [{"user_id": user.id, "at": ago(now, d), "method": "password",
                                           "outcome": "success"} for d in (0, 1, 1)])
    db.session.commit()
    assert login_summary() == logins_from_table()
    writes = db.session.execute(sa.select(sa.func.sum(LoginDaily.writes))).scalar_one()

    first.at = ago(now, 2)
    db.session.commit()
    assert login_summary() == logins_from_table()
    db.session.delete(first)
    db.session.commit()
    assert login_summary() == logins_from_table()
    assert db.session.execute(sa.select(sa.func.sum(LoginDaily.writes))).scalar_one() == writes + 3


def test_active_users_follow_a_backdated_login_and_the_next_day(app, now):
    w = Window.ending(7, now)
    earlier, today_only = UserFactory(), UserFactory()
    LoginFactory(user_id=earlier.id, at=ago(now, 3))
    LoginFactory(user_id=earlier.id, at=now)
    LoginFactory(user_id=today_only.id, at=now)
    db.session.commit()
    assert queries._active_users(w) == (2, 0)
    LoginFactory(user_id=UserFactory().id, at=ago(now, 9))  # backdated into the prior period
    LoginFactory(user_id=today_only.id, at=ago(now, 1))  # and into the window: no new user
    db.session.commit()
    assert queries._active_users(w) == (2, 1)
    later = Window.ending(7, now + timedelta(days=4))  # another day: the past is counted again
    assert queries._active_users(later) == (2, 2)


def _waiting_for_a_lock(timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one():
                return True
        time.sleep(0.05)
    return False


def test_two_writers_of_one_account_at_once(app, now):
    """The second writer's trigger waits for the first one's account lock, then computes from its
    committed rows: the two late rows interleave in the history and the summary stays exact."""
    sub = SubscriptionFactory(price_amount=D("100"))
    BillingEventFactory(subscription=sub, previous_amount=D(0), new_amount=D("100"), occurred_at=ago(now, 10))
    BillingEventFactory(subscription=sub, type="subscription_upgraded", previous_amount=D("100"),
                        new_amount=D("200"), occurred_at=ago(now, 2))
    db.session.commit()

    engine = db.engine  # the thread has no app context
    first = engine.connect()
    first.begin()
    first.execute(sa.insert(BillingEvent), ledger_row(sub, "subscription_upgraded", "100", "150", ago(now, 6), 1))
    errors = []

    def second():
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(BillingEvent),
                             ledger_row(sub, "subscription_downgraded", "150", "120", ago(now, 4), 2))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert _waiting_for_a_lock()
    finally:
        first.commit()
        first.close()
        thread.join(10)
    assert not errors
    db.session.expire_all()
    assert mrr_summary() == mrr_from_ledger()
    assert queries.ledger_mrr_latest() == D("200")


def test_writers_of_one_day_do_not_wait_for_each_other(app, now):
    """A writer adds to a row of the day that no open transaction holds, else inserts its own."""
    account = AccountFactory()
    PaymentTransactionFactory(account_id=account.id, amount_excluding_tax=D("100"), date=ago(now, 1))
    db.session.commit()
    row = {"account_id": account.id, "status": "succeeded", "date": ago(now, 1), "currency": "EUR",
           "amount": D("108.1"), "amount_excluding_tax": D("100"), "tax_amount": D("8.1"),
           "invoice_total": D("108.1"), "amount_from_credit": D(0)}
    table = PaymentTransaction.__table__
    with db.engine.connect() as first:  # adds to the day's committed row and holds it
        first.begin()
        first.execute(table.insert(), {**row, "stripe_invoice_id": "in_first"})
        with db.engine.begin() as second:
            second.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            second.execute(table.insert(), {**row, "stripe_invoice_id": "in_second"})
        first.commit()
    rows = db.session.execute(sa.select(RevenueDaily.change).where(RevenueDaily.day == ago(now, 1).date())).scalars()
    assert sorted(rows) == [D("100"), D("200")]
    assert queries.net_revenue() == D("300")
