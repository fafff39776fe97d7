"""The dashboard's per-process caches are dropped as soon as their tables change: in-place updates
(a refund, a soft delete, a price change), inserts and deletes, committed or not yet committed in
the reader's own transaction. On PostgreSQL this exercises the change markers of migration
0007_dashboard_speed; on SQLite nothing is cached and the same figures hold."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.dashboard import queries
from backoffice.dashboard.mrr import Window
from backoffice.extensions import db
from tests.conftest import IS_POSTGRES
from tests.factories import (
    AccountFactory,
    LoginFactory,
    PaymentTransactionFactory,
    SubscriptionFactory,
    UserFactory,
)

D = Decimal


@pytest.fixture
def now():
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def test_revenue_follows_a_refund_and_a_new_payment(app, now):
    tx = PaymentTransactionFactory(amount_excluding_tax=D("149"), date=now - timedelta(days=5))
    db.session.commit()
    w = Window.ending(7, now)
    assert queries.net_revenue() == D("149.00")
    assert queries.revenue_trend(w).last == D("149.00")

    tx.refunded_at = now - timedelta(days=1)  # an in-place update: no new row
    db.session.commit()
    assert queries.net_revenue() == D("0.00")
    assert queries.revenue_trend(w).values == [D(0), D("149"), D("149"), D("149"), D("149"), D(0), D(0)]

    PaymentTransactionFactory(amount_excluding_tax=D("49.99"), date=now)  # flushed, not committed
    assert queries.net_revenue() == D("49.99")
    db.session.rollback()
    assert queries.net_revenue() == D("0.00")


def test_logins_and_active_users_follow_new_and_deleted_logins(app, now):
    w = Window.ending(7, now)
    user = UserFactory()
    LoginFactory(user_id=user.id, at=now - timedelta(days=1))
    db.session.commit()
    assert queries.login_trend(w)[0][-2:] == [1, 0]
    assert queries.kpis(w, billing=False).active_users == 1

    late = LoginFactory(user_id=UserFactory().id, at=now - timedelta(days=1))  # a backdated ingest
    LoginFactory(user_id=user.id, at=now, outcome="failure")
    db.session.commit()
    ok, _, failed = queries.login_trend(w)
    assert (ok[-2:], failed[-2:]) == ([2, 0], [0, 1])
    assert queries.kpis(w, billing=False).active_users == 2

    db.session.delete(late)
    db.session.commit()
    assert queries.login_trend(w)[0][-2:] == [1, 0]
    assert queries.kpis(w, billing=False).active_users == 1


def test_accounts_and_subscriptions_follow_soft_deletes_and_price_changes(app, now):
    w = Window.ending(7, now)
    paid = AccountFactory(created_at=now - timedelta(days=2))
    sub = SubscriptionFactory(account_id=paid.id, plan="pro", price_amount=D("159"))
    AccountFactory(created_at=now - timedelta(days=1))
    db.session.commit()
    assert queries.kpis(w, billing=False).total_accounts == 2
    assert queries.account_growth(w)[0].last == 2
    assert {(p.plan, p.accounts) for p in queries.plan_distribution()} == {("pro", 1), ("free", 1)}
    assert queries.blended_mrr() == D("159.00")
    assert queries.banners().unsynced == 1  # a paid subscription, no ledger rows

    sub.price_amount = D("49")
    paid.deleted_at = now
    db.session.commit()
    assert queries.kpis(w, billing=False).total_accounts == 1
    assert queries.account_growth(w)[0].last == 1
    assert {(p.plan, p.accounts) for p in queries.plan_distribution()} == {("free", 1)}
    assert queries.blended_mrr() == D("49.00")  # a soft-deleted account's money stays in MRR
    assert queries.banners().unsynced == 0


@pytest.mark.skipif(not IS_POSTGRES, reason="the change markers are PostgreSQL triggers")
def test_every_write_advances_the_tables_marker(app):
    def marker():
        return db.session.execute(sa.text("SELECT last_value, is_called FROM dashboard_logins_version")).one()

    before = marker()
    LoginFactory()  # the statement trigger: visible to the writer's own transaction at once
    during = marker()
    db.session.commit()  # the deferred trigger: advanced again just before commit
    after = marker()
    assert before != during != after


def test_a_plans_price_is_what_most_of_its_subscribers_pay(app):
    """Issue 22 part 4: the plan-distribution card priced a plan at the cheapest catalog price it
    ever saw (here a yearly price's twelfth, 40.83); it is what its subscribers pay: 49.00."""
    from tests.factories import PlanFactory

    PlanFactory(plan_key="pro", name="Pro", monthly_amount=D("40.83"), price_id="price_pro_year")
    PlanFactory(plan_key="pro", name="Pro", monthly_amount=D("49.00"), price_id="price_pro_month")
    for price in ("49.00", "49.00", "40.83"):
        SubscriptionFactory(account_id=AccountFactory().id, plan="pro", price_amount=D(price))
    db.session.commit()
    (pro,) = [p for p in queries.plan_distribution() if p.plan == "pro"]
    assert (pro.monthly_amount, pro.accounts) == (D("49.00"), 3)
