"""The account status and forward MRR rules (ledger/rules.py) evaluated three ways — Python values,
SQLAlchemy expressions, the SQL text of the list indexes — agree on every combination of a
subscription's fields, and give DOMAIN §3's figures on the named cases."""
from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.accounts import queries as account_queries
from backoffice.dashboard.mrr import forward_mrr as kpi_forward_mrr
from backoffice.dbtypes import Money
from backoffice.extensions import db
from backoffice.ledger import classifier, rules
from backoffice.ledger.models import Subscription
from backoffice.list_indexes import SUBSCRIPTION_SORT_KEYS
from tests.factories import AccountFactory

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
GRID = list(itertools.product(
    ("active", "trialing", "incomplete", "past_due", "canceled"),  # Stripe's status
    (Decimal(0), Decimal("49.00")),  # price
    (False, True),  # cancel at period end
    ((None, None), ("basic", Decimal("19.00")), ("basic", None), (None, Decimal("19.00")),
     ("big", Decimal("99.00"))),  # scheduled plan and price
    (None, SINCE),  # subscribed since
))


def _python(status, price, cancel, scheduled, since):
    fields = rules.Fields(price=price, cancel_at_period_end=cancel, scheduled_plan=scheduled[0],
                          scheduled_price=scheduled[1], awaiting_activation=status in rules.NOT_STARTED_STATUSES,
                          status=status, subscribed_since=since)
    return rules.status(rules.PYTHON, fields), rules.forward_mrr(rules.PYTHON, fields)


@pytest.fixture
def grid(app):
    for n, (status, price, cancel, (plan, scheduled_price), since) in enumerate(GRID):
        account = AccountFactory(id=f"acc_{n:03d}")
        db.session.add(Subscription(account_id=account.id, status=status, plan="pro", price_amount=price,
                                    cancel_at_period_end=cancel, scheduled_plan=plan,
                                    scheduled_price_amount=scheduled_price, subscribed_since=since))
    db.session.commit()
    return {f"acc_{n:03d}": _python(*combo) for n, combo in enumerate(GRID)}


def test_python_sql_and_index_text_agree_on_every_combination(grid):
    Sub = account_queries.Sub
    rows = db.session.execute(
        sa.select(Sub.account_id, account_queries.status_expr(), account_queries.forward_mrr_expr(),
                  account_queries.status_rank_expr(),
                  sa.literal_column(f"({SUBSCRIPTION_SORT_KEYS['status']})"),
                  sa.literal_column(f"({SUBSCRIPTION_SORT_KEYS['mrr']})", Money()))
        .select_from(Sub)
    ).all()
    assert len(rows) == len(GRID)
    for account_id, status, mrr, rank, text_rank, text_mrr in rows:
        want_status, want_mrr = grid[account_id]
        assert (status, Decimal(mrr)) == (want_status, want_mrr), account_id
        assert rank == int(text_rank) == rules.STATUSES.index(want_status), account_id
        assert text_mrr == want_mrr, account_id
    assert {status for status, _mrr in grid.values()} == set(rules.STATUSES)  # every status is met


def test_the_dashboards_blended_mrr_sql_and_the_classifier_read_the_same_rule(grid):
    from backoffice.dashboard.queries import forward_mrr_sql

    by_account = dict(db.session.execute(sa.select(Subscription.account_id, forward_mrr_sql())).all())
    for n, (status, price, cancel, (plan, scheduled_price), _since) in enumerate(GRID):
        want = grid[f"acc_{n:03d}"][1]
        assert Decimal(by_account[f"acc_{n:03d}"]) == want
        assert kpi_forward_mrr(price, cancel, plan, scheduled_price, status) == want
        state = classifier.SubscriptionState(price=price, cancel_at_period_end=cancel, scheduled_plan=plan,
                                             scheduled_price=scheduled_price,
                                             awaiting_activation=status in rules.NOT_STARTED_STATUSES)
        assert classifier.forward_mrr(state) == want


@pytest.mark.parametrize(("combo", "status", "mrr"), [
    (("active", Decimal("49.00"), False, (None, None), SINCE), "active", Decimal("49.00")),
    (("trialing", Decimal("49.00"), False, (None, None), None), "trialing", Decimal(0)),
    (("active", Decimal("49.00"), True, (None, None), SINCE), "canceling", Decimal(0)),
    (("active", Decimal("49.00"), False, ("basic", Decimal("19.00")), SINCE), "downgrading", Decimal("19.00")),
    (("active", Decimal("49.00"), False, ("big", Decimal("99.00")), SINCE), "active", Decimal("99.00")),
    (("canceled", Decimal(0), False, (None, None), SINCE), "canceled", Decimal(0)),
    (("incomplete", Decimal("49.00"), False, (None, None), None), "free", Decimal(0)),
    (("incomplete", Decimal("49.00"), False, (None, None), SINCE), "canceled", Decimal(0)),
    (("active", Decimal(0), False, (None, None), None), "free", Decimal(0)),
    # no price with a scheduled one: nothing is paid now, so nothing forward (the KPI's reading,
    # which the accounts list now shares; it listed 19.00 before migration 0019)
    (("active", Decimal(0), False, ("basic", Decimal("19.00")), None), "free", Decimal(0)),
])
def test_domain_cases(combo, status, mrr):
    assert _python(*combo) == (status, mrr)
