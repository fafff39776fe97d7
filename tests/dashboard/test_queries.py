"""DOMAIN §3 "Reading MRR and revenue", asserted exactly on rows inserted straight into the tables."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.dashboard import queries
from backoffice.dashboard.mrr import Window
from backoffice.extensions import db
from tests.factories import (
    AccountFactory,
    BillingEventFactory,
    LoginFactory,
    PaymentTransactionFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    UserSessionFactory,
)

D = Decimal


@pytest.fixture
def now():
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def days_ago(now, n, hour=12):
    return (now - timedelta(days=n)).replace(hour=hour)


def subscribe(now, price, days, **sub_kwargs):
    """An account subscribed `days` ago at `price`: its subscription and its Created ledger row."""
    account = AccountFactory(created_at=days_ago(now, days))
    sub = SubscriptionFactory(account_id=account.id, price_amount=D(price), **sub_kwargs)
    BillingEventFactory(subscription=sub, type="subscription_created", previous_amount=D("0"),
                        new_amount=D(price), occurred_at=days_ago(now, days))
    return sub


def event(sub, kind, previous, new, at, **kw):
    return BillingEventFactory(subscription=sub, type=kind, previous_amount=D(previous), new_amount=D(new),
                               occurred_at=at, **kw)


def test_blended_mrr_and_change_over_30_days(app, now):
    subscribe(now, "100", 90)
    subscribe(now, "100", 90)
    subscribe(now, "49.99", 5)
    db.session.commit()
    k = queries.kpis(Window.ending(30, now), billing=True)
    assert k.blended_mrr == D("249.99")
    assert k.mrr_opening == D("200.00")
    assert k.mrr_now == D("249.99")
    assert k.mrr_change_percent == D("25.0")
    assert k.total_accounts == 3
    assert (k.new_accounts, k.new_accounts_prior) == (1, 0)


def test_forward_mrr_scheduled_downgrade_and_canceling(app, now):
    subscribe(now, "299", 60)
    downgrading = subscribe(now, "299", 60, scheduled_plan="basic", scheduled_price_amount=D("149"))
    canceling = subscribe(now, "149", 60, cancel_at_period_end=True)
    event(downgrading, "subscription_downgrade_scheduled", "299", "149", days_ago(now, 3))
    event(canceling, "subscription_cancelled", "149", "0", days_ago(now, 2))
    db.session.commit()
    assert queries.blended_mrr() == D("448.00")
    # The ledger agrees: no MRR-mismatch banner.
    b = queries.banners()
    assert (b.kpi_mrr, b.ledger_mrr, b.mrr_mismatch) == (D("448.00"), D("448.00"), False)


def test_mrr_trend_reads_the_ledger_day_by_day(app, now):
    sub = subscribe(now, "100", 10)
    event(sub, "subscription_upgraded", "100", "250", days_ago(now, 3))
    event(sub, "subscription_cancelled", "250", "0", days_ago(now, 1))
    # The live subscription (today's snapshot) must not be projected back.
    sub.price_amount = D("999")
    db.session.commit()
    s = queries.mrr_trend(Window.ending(7, now))
    assert s.values == [D("100"), D("100"), D("100"), D("250"), D("250"), D("0"), D("0")]
    assert s.prior_values == [D("0"), D("0"), D("0"), D("100"), D("100"), D("100"), D("100")]
    assert s.dates[-1] == now.date()
    assert s.changes == [D("100"), D("100"), D("100"), D("150"), D("150"), D("-100"), D("-100")]


def test_mrr_on_day_uses_latest_row_per_subscription_not_rows_without_delta(app, now):
    sub = subscribe(now, "100", 20)
    BillingEventFactory(subscription=sub, type="subscription_renewed", previous_amount=None, new_amount=None,
                        amount_delta=None, committed_mrr=D("100"), occurred_at=days_ago(now, 2))
    BillingEventFactory(subscription=sub, type="no_op", previous_amount=None, new_amount=None,
                        amount_delta=None, committed_mrr=D("100"), occurred_at=days_ago(now, 1))
    db.session.commit()
    assert queries.mrr_at(now) == D("100.00")


def test_revenue_refund_dips_on_the_reversal_day(app, now):
    tx = PaymentTransactionFactory(amount_excluding_tax=D("149"), date=days_ago(now, 5),
                                   refunded_at=days_ago(now, 1), refund_amount=D("161.07"))
    assert tx.id
    db.session.commit()
    s = queries.revenue_trend(Window.ending(7, now))
    assert s.values == [D("0"), D("149"), D("149"), D("149"), D("149"), D("0"), D("0")]
    assert queries.net_revenue() == D("0") == s.last


def test_revenue_reversal_day_prefers_credit_note_then_refund_then_payment_day(app, now):
    PaymentTransactionFactory(amount_excluding_tax=D("10"), date=days_ago(now, 6))  # kept
    PaymentTransactionFactory(amount_excluding_tax=D("20"), date=days_ago(now, 5),
                              credit_noted_at=days_ago(now, 3), credit_note_url="https://cn/1",
                              refunded_at=days_ago(now, 2))  # credit note day wins
    PaymentTransactionFactory(amount_excluding_tax=D("40"), date=days_ago(now, 4),
                              credit_note_url="https://cn/2")  # no date: reversed the payment day
    PaymentTransactionFactory(amount_excluding_tax=D("80"), date=days_ago(now, 4), status="failed")
    PaymentTransactionFactory(amount_excluding_tax=D("0.01"), date=days_ago(now, 100))  # before both windows
    db.session.commit()
    s = queries.revenue_trend(Window.ending(7, now))
    assert s.values == [D("10.01"), D("30.01"), D("30.01"), D("10.01"), D("10.01"), D("10.01"), D("10.01")]
    assert s.prior_values == [D("0.01")] * 7
    assert queries.net_revenue() == D("10.01") == s.last


def test_soft_deleted_account_keeps_its_money(app, now):
    sub = subscribe(now, "100", 40)
    PaymentTransactionFactory(account_id=sub.account_id, amount_excluding_tax=D("100"), date=days_ago(now, 10))
    db.session.commit()
    from backoffice.accounts.models import Account

    db.session.get(Account, sub.account_id).deleted_at = days_ago(now, 1)
    db.session.commit()
    k = queries.kpis(Window.ending(30, now), billing=True)
    assert k.blended_mrr == D("100.00")
    assert k.mrr_now == D("100.00")
    assert k.total_revenue == D("100.00")
    assert queries.revenue_trend(Window.ending(30, now)).last == D("100.00")
    assert k.total_accounts == 0  # counts leave, money stays


def test_movements_sum_to_the_mrr_change_exactly(app, now):
    old = subscribe(now, "100", 60)
    old2 = subscribe(now, "50", 60)
    old3 = subscribe(now, "80", 60)
    old4 = subscribe(now, "30", 60)
    event(old, "subscription_upgraded", "100", "150", days_ago(now, 45))              # before the window
    event(old, "subscription_upgraded", "150", "225.50", days_ago(now, 20))           # expansion +75.50
    event(old2, "subscription_downgrade_scheduled", "50", "20", days_ago(now, 15))    # contraction −30
    event(old2, "subscription_downgrade_cancelled", "20", "50", days_ago(now, 12))    # expansion +30
    event(old3, "subscription_cancelled", "80", "0", days_ago(now, 10))               # churn −80
    event(old3, "subscription_reactivated", "0", "80", days_ago(now, 8))              # reactivation +80
    event(old4, "subscription_immediately_cancelled", "30", "0", days_ago(now, 4))    # churn −30
    subscribe(now, "49.99", 3)                                                        # new +49.99
    db.session.commit()
    w = Window.ending(30, now)
    m = queries.mrr_movements(w)
    assert m.buckets == {"new": D("49.99"), "expansion": D("105.50"), "contraction": D("-30.00"),
                         "churn": D("-110.00"), "reactivation": D("80.00")}
    assert m.opening == queries.mrr_at(w.start) == D("310.00")
    assert m.closing == queries.mrr_at(w.end) == D("405.49")
    assert sum(m.buckets.values()) == m.change == D("95.49")
    assert queries.mrr_trend(w).last - queries.mrr_trend(w).opening == m.change


def test_banners_unsynced_drift_and_mismatch(app, now):
    assert queries.banners().clear
    synced = subscribe(now, "100", 10)
    unsynced = SubscriptionFactory(price_amount=D("60"), drift_detected=True)
    SubscriptionFactory(price_amount=D("0"), plan="free")  # free: never "unsynced"
    db.session.commit()
    b = queries.banners()
    assert (b.unsynced, b.drift) == (1, 1)
    assert (b.kpi_mrr, b.ledger_mrr, b.mrr_mismatch) == (D("160.00"), D("100.00"), True)
    assert synced.id and unsynced.id


def test_mrr_within_a_cent_is_not_a_mismatch(app, now):
    sub = subscribe(now, "100", 10)
    sub.price_amount = D("100.01")
    db.session.commit()
    assert not queries.banners().mrr_mismatch


def test_plan_distribution_orders_by_price_and_counts_free(app, now):
    PlanFactory(plan_key="basic", name="Basic", monthly_amount=D("49"))
    PlanFactory(plan_key="pro", name="Pro", monthly_amount=D("149"))
    SubscriptionFactory(plan="pro", price_amount=D("149"))
    SubscriptionFactory(plan="pro", price_amount=D("149"))
    SubscriptionFactory(plan="basic", price_amount=D("49"))
    AccountFactory()  # no subscription at all: free
    SubscriptionFactory(plan="free", price_amount=D("0"))
    gone = SubscriptionFactory(plan="pro", price_amount=D("149"))
    db.session.flush()
    from backoffice.accounts.models import Account

    db.session.get(Account, gone.account_id).deleted_at = now
    db.session.commit()
    shares = queries.plan_distribution()
    assert [(p.plan, p.name, p.monthly_amount, p.accounts) for p in shares] == [
        ("free", "Free", D("0"), 2), ("basic", "Basic", D("49.0000"), 1), ("pro", "Pro", D("149.0000"), 2)]


def test_growth_logins_active_users_and_sessions(app, now):
    AccountFactory(created_at=days_ago(now, 40))
    AccountFactory(created_at=days_ago(now, 9))
    AccountFactory(created_at=days_ago(now, 2))
    AccountFactory(created_at=days_ago(now, 2))
    u1, u2 = UserFactory(), UserFactory()
    LoginFactory(user_id=u1.id, at=days_ago(now, 1))
    LoginFactory(user_id=u1.id, at=days_ago(now, 1, hour=13))
    LoginFactory(user_id=u2.id, at=days_ago(now, 0, hour=1))
    LoginFactory(user_id=u2.id, at=days_ago(now, 0, hour=2), outcome="failure")
    LoginFactory(user_id=u2.id, at=days_ago(now, 10))
    UserSessionFactory(user_id=u1.id, last_seen_at=datetime.now(UTC) - timedelta(hours=2))
    UserSessionFactory(user_id=u2.id, last_seen_at=datetime.now(UTC) - timedelta(hours=30))
    UserSessionFactory(user_id=u2.id, last_seen_at=datetime.now(UTC), revoked_at=datetime.now(UTC))
    db.session.commit()
    w = Window.ending(7, now)
    totals, new, new_prior = queries.account_growth(w)
    assert totals.values == [2, 2, 2, 2, 4, 4, 4]
    assert totals.prior_values == [1, 1, 1, 1, 2, 2, 2]
    assert new == [0, 0, 0, 0, 2, 0, 0]
    assert new_prior == [0, 0, 0, 0, 1, 0, 0]
    ok, prior, failed = queries.login_trend(w)
    assert ok == [0, 0, 0, 0, 0, 2, 1]
    assert failed == [0, 0, 0, 0, 0, 0, 1]
    assert prior == [0, 0, 0, 1, 0, 0, 0]
    k = queries.kpis(w, billing=False)
    assert (k.active_users, k.active_users_prior, k.active_sessions) == (2, 1, 1)
    assert (k.total_accounts, k.new_accounts, k.new_accounts_prior, k.new_accounts_change) == (4, 2, 1, 1)
    assert k.blended_mrr is None and k.total_revenue is None


def test_recent_lists_hide_no_op_and_are_newest_first(app, now):
    sub = subscribe(now, "100", 10)
    BillingEventFactory(subscription=sub, type="no_op", previous_amount=None, new_amount=None,
                        committed_mrr=D("100"), occurred_at=days_ago(now, 1))
    event(sub, "subscription_upgraded", "100", "200", days_ago(now, 2))
    PaymentTransactionFactory(account_id=sub.account_id, date=days_ago(now, 3))
    PaymentTransactionFactory(account_id=sub.account_id, date=days_ago(now, 1))
    db.session.commit()
    assert [e.type for e, _name in queries.recent_billing_events()] == [
        "subscription_upgraded", "subscription_created"]
    assert [t.date for t, _name in queries.recent_payments()] == [days_ago(now, 1), days_ago(now, 3)]
    assert [a.id for a in queries.recent_signups()] == [sub.account_id]


def test_daily_mrr_summary_follows_every_ledger_insert(app, now):
    sub = subscribe(now, "100", 10)
    db.session.commit()
    w = Window.ending(7, now)
    assert queries.mrr_trend(w).last == D("100.00")
    assert queries.mrr_trend(w).last == D("100.00")  # served from the per-process summary
    event(sub, "subscription_upgraded", "100", "120", days_ago(now, 3))  # recovered late, dated in the past
    db.session.commit()
    assert queries.mrr_trend(w).values == [D("100.00")] * 3 + [D("120.00")] * 4
    assert queries.ledger_mrr_latest() == D("120.00")
    assert queries.mrr_at_moments(w.start, w.end) == (D("100.00"), D("120.00"))
