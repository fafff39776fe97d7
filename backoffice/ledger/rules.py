"""A subscription's forward MRR and its account's status (DOMAIN §3), written once, here.

Each rule is a function of an `ops` (how to evaluate) and a subscription's fields, and the same text
is evaluated three ways:
- `PYTHON` on plain values: the classifier's forward MRR of a state, the KPI's mismatch check;
- `SQL` as SQLAlchemy expressions over a subscriptions table or alias (`sql_fields`): the accounts
  list's status and MRR columns, filters and sorts, the dashboard's blended MRR;
- `TEXT` as SQL text over the `subscriptions` table (`TEXT_FIELDS`), laid out as PostgreSQL reflects
  it: the expression indexes the accounts list reads its sorts from (list_indexes.py; migrations
  0016 and 0019 made them with this text).
tests/ledger/test_rules.py evaluates all three on subscriptions of every status and pins them
together. The fields a rule reads: `price` (0 when none), `cancel_at_period_end`, `scheduled_plan`,
`scheduled_price`, `awaiting_activation` (a trial or an unpaid start not active yet), `status` (Stripe's)
and `subscribed_since` (set once the account has paid)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from backoffice.dbtypes import Money

ZERO = Decimal("0.00")  # what the Python evaluation answers for "no MRR" (money's two places)
# DOMAIN §3 "Account status", in the order the rules are checked.
STATUSES = ("trialing", "canceling", "downgrading", "active", "canceled", "free")
NOT_STARTED_STATUSES = ("trialing", "incomplete")


def forward_mrr(o, s):
    """What the subscription will bring per month: 0 without a price, before activation or while
    cancelling; the scheduled price when a downgrade is queued; else the price."""
    return o.case(
        (o.any(o.not_positive(s.price), o.is_true(s.cancel_at_period_end), s.awaiting_activation), o.zero),
        (o.all(o.is_set(s.scheduled_plan), o.is_set(s.scheduled_price)), s.scheduled_price),
        else_=s.price,
    )


def status(o, s, values=STATUSES):
    """The account status, first match (`values` names the six outcomes, in STATUSES' order). A trial
    of a paid plan not yet converted is Trialing; an unpaid start pays nothing yet: Canceled if the
    account paid once, else Free."""
    trialing, canceling, downgrading, active, canceled, free = values
    paid_once = o.is_set(s.subscribed_since)
    return o.case(
        (o.all(o.equals(s.status, "trialing"), o.positive(s.price)), trialing),
        (o.all(o.equals(s.status, "incomplete"), paid_once), canceled),
        (o.equals(s.status, "incomplete"), free),
        (o.all(o.is_true(s.cancel_at_period_end), o.positive(s.price)), canceling),
        (o.all(o.is_set(s.scheduled_plan), o.is_set(s.scheduled_price), o.less(s.scheduled_price, s.price)),
         downgrading),
        (o.positive(s.price), active),
        (paid_once, canceled),
        else_=free,
    )


class _Python:
    """Plain values. Every condition is computed (they are cheap), then the first true one wins; a
    comparison with a missing value is false, as SQL's NULL is."""

    zero = ZERO

    @staticmethod
    def case(*whens, else_):
        for condition, value in whens:
            if condition:
                return value
        return else_

    any = staticmethod(lambda *xs: any(xs))
    all = staticmethod(lambda *xs: all(xs))
    not_positive = staticmethod(lambda x: x is not None and x <= 0)
    positive = staticmethod(lambda x: x is not None and x > 0)
    is_true = staticmethod(lambda x: x is True)
    is_set = staticmethod(lambda x: x is not None)
    equals = staticmethod(lambda x, v: x == v)
    less = staticmethod(lambda a, b: a is not None and b is not None and a < b)


class _Sql:
    """SQLAlchemy expressions, constants inlined (literal columns, not parameters), so a query's
    expression is the indexed one."""

    zero = sa.literal_column("0", Money())

    @staticmethod
    def case(*whens, else_):
        return sa.case(*whens, else_=else_)

    any = staticmethod(sa.or_)
    all = staticmethod(sa.and_)
    not_positive = staticmethod(lambda x: x <= _Sql.zero)
    positive = staticmethod(lambda x: x > _Sql.zero)
    is_true = staticmethod(lambda x: x.is_(True))
    is_set = staticmethod(lambda x: x.is_not(None))
    equals = staticmethod(lambda x, v: x == sa.literal_column(f"'{v}'", sa.String))
    less = staticmethod(lambda a, b: a < b)


class _Or(str):
    """A disjunction, parenthesised when it stands inside a conjunction."""


class _Text:
    """SQL text over the subscriptions table, laid out as PostgreSQL's pg_get_indexdef gives it."""

    zero = "0"

    @staticmethod
    def case(*whens, else_):
        lines = "".join(f"    WHEN {condition} THEN {value}\n" for condition, value in whens)
        return f"\nCASE\n{lines}    ELSE {else_}\nEND"

    any = staticmethod(lambda *xs: _Or(" OR ".join(xs)))
    all = staticmethod(lambda *xs: " AND ".join(f"({x})" if isinstance(x, _Or) else x for x in xs))
    not_positive = staticmethod(lambda x: f"{x} <= 0")
    positive = staticmethod(lambda x: f"{x} > 0")
    is_true = staticmethod(lambda x: f"{x} IS TRUE")
    is_set = staticmethod(lambda x: f"{x} IS NOT NULL")
    equals = staticmethod(lambda x, v: f"{x} = '{v}'")
    less = staticmethod(lambda a, b: f"{a} < {b}")


PYTHON, SQL, TEXT = _Python(), _Sql(), _Text()


@dataclass(frozen=True)
class Fields:
    """A subscription's fields as one of the evaluations reads them."""

    price: Any
    cancel_at_period_end: Any
    scheduled_plan: Any
    scheduled_price: Any
    awaiting_activation: Any
    status: Any = None
    subscribed_since: Any = None


def sql_fields(sub) -> Fields:
    """The fields of a subscriptions table or alias as SQLAlchemy expressions."""
    return Fields(
        price=sa.func.coalesce(sub.price_amount, SQL.zero),
        cancel_at_period_end=sub.cancel_at_period_end,
        scheduled_plan=sub.scheduled_plan,
        scheduled_price=sub.scheduled_price_amount,
        awaiting_activation=SQL.any(*(SQL.equals(sub.status, s) for s in NOT_STARTED_STATUSES)),
        status=sub.status,
        subscribed_since=sub.subscribed_since,
    )


TEXT_FIELDS = Fields(
    price="COALESCE(price_amount, 0)",
    cancel_at_period_end="cancel_at_period_end",
    scheduled_plan="scheduled_plan",
    scheduled_price="scheduled_price_amount",
    awaiting_activation=TEXT.any(*(TEXT.equals("status", s) for s in NOT_STARTED_STATUSES)),
    status="status",
    subscribed_since="subscribed_since",
)
