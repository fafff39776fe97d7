"""Reads of the accounts list, the side pane and the account detail page.

Status (DOMAIN §3, first match: Trialing, Canceling, Downgrading, Active, Canceled, Free) and forward MRR
are SQL expressions, so filtering and sorting by them is one query, never a Python loop.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import aliased

from backoffice.accounts.filters import STATUSES, AccountFilters
from backoffice.accounts.models import Account
from backoffice.dbtypes import Money, utcnow
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import rules
from backoffice.ledger.models import Plan, Subscription
from backoffice.pagination import Page, paginate, within
from backoffice.search.queries import account_matches
from backoffice.stripe.models import Discrepancy
from backoffice.users.models import Membership, User

# The current subscription of an account (at most one: a partial unique index guarantees it).
Sub = aliased(Subscription, name="sub")
ZERO = Decimal(0)
# Constants rendered into the SQL (not parameters), so the sort expressions below are exactly the
# expressions indexed on subscriptions (backoffice/list_indexes.py); 0 is 0 in Money's storage too.
_SQL_ZERO = rules.SQL.zero
ACTIVE_USER_DAYS = 30


def _price(sub=Sub):
    return rules.sql_fields(sub).price


def status_expr():
    """The account status as one of `STATUSES` (the rule: ledger/rules.py)."""
    return rules.status(rules.SQL, rules.sql_fields(Sub), tuple(db.literal(s) for s in STATUSES))


def status_rank_expr(sub=Sub):
    """The status as its rank in `STATUSES` (for sorting by status in rule order; filtering by status
    with it reads the index and the statistics of migrations 0008 and 0010)."""
    ranks = tuple(db.literal_column(str(i), db.Integer) for i in range(len(STATUSES)))
    return rules.status(rules.SQL, rules.sql_fields(sub), ranks)


def forward_mrr_expr():
    """Forward MRR of the current subscription (the rule: ledger/rules.py)."""
    return rules.forward_mrr(rules.SQL, rules.sql_fields(Sub))


def unsynced_expr():
    """Paid, but not one ledger row yet (the "not synced yet" banner's rule). The mark is kept by
    triggers on the ledger (migration 0010); the live accounts without it have a partial index."""
    return db.and_(_price() > _SQL_ZERO, ~Account.has_ledger_rows)


def _sort_column(name: str):
    return {
        "name": db.func.lower(Account.name),
        "plan": _price(),
        "mrr": forward_mrr_expr(),
        "renewal": Sub.current_period_end,
        "status": status_rank_expr(),
        "country": Account.country,
        "created": Account.created_at,
        "modified": Account.modified_at,
    }[name]


def _requires_subscription(f: AccountFilters) -> bool:
    """Whether only accounts with a current subscription can match (an account without one is on
    the free plan, status free, not paid, without drift)."""
    return bool((f.plans and "free" not in f.plans) or (f.statuses and "free" not in f.statuses)
                or f.unsynced or f.drift)


def _subscription_match(f: AccountFilters, sub=Sub) -> list:
    """The filters on an account's current subscription `sub` (one that exists)."""
    where = []
    if f.plans:
        where.append(sub.plan.in_(f.plans))
    if f.statuses:
        where.append(status_rank_expr(sub).in_([STATUSES.index(s) for s in f.statuses]))
    if f.drift:
        where.append(sub.drift_detected.is_(True))
    return where


def _base(f: AccountFilters | None, *columns):
    # `sub.is_current` as the bare column: the predicate of the partial unique index on
    # subscriptions(account_id), so a page is 25 index probes, not a join of every account.
    on = db.and_(Sub.account_id == Account.id, Sub.is_current)
    requires = f is not None and _requires_subscription(f)
    # An inner join when the filters need a subscription: the planner may start from the
    # subscriptions that an index of the filter finds.
    stmt = db.select(*columns).select_from(Account)
    stmt = stmt.join(Sub, on) if requires else stmt.outerjoin(Sub, on)
    if f is None:  # rows by id (a page's, one account's): deleted or not
        return stmt
    stmt = stmt.where(Account.deleted_at.is_not(None) if f.deleted else Account.deleted_at.is_(None))
    if f.search:
        stmt = stmt.where(_search(f.search))
    if f.unsynced:
        stmt = stmt.where(unsynced_expr())
    match = _subscription_match(f)
    if requires:
        return stmt.where(*match)
    if match:
        # Every filter admits an account without a subscription (plan or status free): an account
        # matches unless its current subscription fails them. As NOT EXISTS the planner knows how
        # many accounts that is; as a test of the outer-joined row it would count only the free
        # subscriptions (rare) and sort every match instead of reading the first in order.
        other = aliased(Subscription, name="other")
        stmt = stmt.where(~db.select(other.id).where(
            other.account_id == Account.id, other.is_current, ~db.and_(*_subscription_match(f, other))).exists())
    return stmt


def _search(text: str):
    """The list finds what the header search finds an account by (its "more" link lands here), and
    a name that contains even one or two characters."""
    return db.or_(Account.name.ilike(f"%{_escape_like(text)}%", escape="\\"),
                  *(where for _, where, _ in account_matches(text)))


def _count_stmt(f: AccountFilters):
    if f.deleted:  # the deleted accounts are few (a partial index): count them as filtered
        return _base(f, db.func.count(Account.id))
    if not _needs_subscription(f):  # no filter reads the subscription: count the accounts alone
        stmt = db.select(db.func.count(Account.id)).where(Account.deleted_at.is_(None))
        return stmt.where(_search(f.search)) if f.search else stmt
    if f.search or f.unsynced:  # an index of accounts finds few: count them
        return _base(f, db.func.count(Account.id))
    # Only the subscription is filtered: count current subscriptions (of live accounts: all but the
    # deleted ones, few and in a partial index), without reading the accounts.
    deleted = db.select(Account.id).where(Account.deleted_at.is_not(None))

    def subscriptions(*where):
        return (db.select(db.func.count()).select_from(Sub)
                .where(Sub.is_current, Sub.account_id.not_in(deleted), *where).scalar_subquery())

    match = _subscription_match(f)
    if _requires_subscription(f):
        return db.select(subscriptions(*match))
    live = db.select(db.func.count()).select_from(Account).where(Account.deleted_at.is_(None)).scalar_subquery()
    return db.select(live - subscriptions(~db.and_(*match)))  # the live accounts less those that fail


NULLABLE_SORTS = ("renewal", "country")


def _ordered(stmt, sort: str):
    name = sort.lstrip("-")
    column = _sort_column(name)
    order = column.desc() if sort.startswith("-") else column.asc()
    if name in NULLABLE_SORTS:
        order = order.nulls_last()
    tie = Account.id.desc() if sort.startswith("-") else Account.id.asc()
    return stmt.order_by(order, tie)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _needs_subscription(f: AccountFilters) -> bool:
    return bool(f.plans or f.statuses or f.unsynced or f.drift)


# The sort keys read from the subscription alone, and their value for an account without one.
SUBSCRIPTION_SORTS = {"plan": _SQL_ZERO, "mrr": _SQL_ZERO, "status": None, "renewal": None}


def _page_ids_stmt(f: AccountFilters):
    """The ids of one page, in order. Unfiltered and sorted by a key of the subscription (plan, MRR,
    status, renewal), the page is merged from two streams each read in order from an index: current
    subscriptions by (key, account id) (expression indexes in list_indexes.py) and accounts without
    one by id. The first offset + limit rows of each suffice, however many accounts there are."""
    name, desc = f.sort.lstrip("-"), f.sort.startswith("-")
    offset = (f.page - 1) * f.page_size
    if name not in SUBSCRIPTION_SORTS or _needs_subscription(f) or f.search or f.deleted:
        return _ordered(_base(f, Account.id), f.sort).limit(f.page_size).offset(offset)
    key = _sort_column(name)
    none_key = SUBSCRIPTION_SORTS[name]
    if name == "status":
        none_key = db.literal_column(str(STATUSES.index("free")), db.Integer)
    elif none_key is None:
        none_key = db.cast(db.null(), key.type)

    def ordered(column, tie):
        order = column.desc() if desc else column.asc()
        if name in NULLABLE_SORTS:
            order = order.nulls_last()
        return order, (tie.desc() if desc else tie.asc())

    n = offset + f.page_size
    with_sub = (db.select(Sub.account_id.label("id"), key.label("k")).select_from(Sub)
                .join(Account, Account.id == Sub.account_id)
                .where(Sub.is_current, Account.deleted_at.is_(None))
                .order_by(*ordered(key, Sub.account_id)).limit(n))
    has_sub = db.select(Sub.account_id).where(Sub.account_id == Account.id, Sub.is_current).exists()
    without = (db.select(Account.id.label("id"), none_key.label("k"))
               .where(Account.deleted_at.is_(None), ~has_sub)
               .order_by(*ordered(none_key, Account.id)[1:]).limit(n))
    merged = db.union_all(db.select(with_sub.subquery()), db.select(without.subquery())).subquery()
    return db.select(merged.c.id).order_by(*ordered(merged.c.k, merged.c.id)).limit(f.page_size).offset(offset)


def accounts_page(f: AccountFilters) -> Page:
    total = db.session.execute(_count_stmt(f)).scalar_one()
    page, asked = within(f.page, total, f.page_size)
    f = dataclasses.replace(f, page=page)
    # Late row lookup: order and cut the page on the narrow ids, then load the page's rows whole.
    ids = list(db.session.execute(_page_ids_stmt(f)).scalars())
    rows = db.session.execute(
        _base(None, Account, Sub, status_expr().label("status"), forward_mrr_expr().label("mrr"))
        .where(Account.id.in_(ids))).all() if ids else []
    position = {account_id: i for i, account_id in enumerate(ids)}
    rows.sort(key=lambda r: position[r.Account.id])
    return Page(rows, total, f.page, f.page_size, asked=asked)


def mrr_totals(f: AccountFilters) -> dict[str, Decimal]:
    """Σ forward MRR of every account the filters match (not only the page's), by currency."""
    mrr = forward_mrr_expr()
    rows = db.session.execute(
        _base(f, Sub.currency, db.func.sum(mrr, type_=mrr.type)).where(Sub.currency.is_not(None))
        .group_by(Sub.currency).order_by(Sub.currency)).all()
    return {currency: (total or ZERO).quantize(Decimal("0.01")) for currency, total in rows if total}


def accounts_export_stmt(f: AccountFilters):
    """Plain columns (no ORM objects) for the streamed CSV export."""
    stmt = _base(
        f, Account.id, Account.name, db.func.coalesce(Sub.plan, "free").label("plan"),
        status_expr().label("status"), _price().label("price"), forward_mrr_expr().label("mrr"),
        Sub.currency, Sub.current_period_end, Account.country, Account.created_at, Account.modified_at,
    )
    return _ordered(stmt, f.sort)


def plan_catalog() -> dict[str, tuple[str, Decimal]]:
    """plan key → (name, monthly amount), ordered by monthly price; the free plan first."""
    rows = db.session.execute(
        db.select(Plan.plan_key, db.func.min(Plan.name), db.func.min(Plan.monthly_amount))
        .group_by(Plan.plan_key)
        .order_by(db.func.min(Plan.monthly_amount), Plan.plan_key)
    ).all()
    out: dict[str, tuple[str, Decimal]] = {"free": ("Free", ZERO)}
    for key, name, amount in rows:
        if key != "free":
            out[key] = (name, amount)
    return out


def yearly_prices() -> dict[str, tuple[Decimal, Decimal]]:
    """Plan key → (price per year, its monthly equivalent) for the plans billed once a year at one
    price: the list shows "€490.00 per year" beside "€40.83 a month" for them."""
    rows = db.session.execute(
        db.select(Plan.plan_key, db.func.min(Plan.period_amount), db.func.max(Plan.period_amount),
                  db.func.min(Plan.monthly_amount))
        .where(Plan.interval == "year", Plan.interval_count == 1, Plan.period_amount.is_not(None))
        .group_by(Plan.plan_key)).all()
    return {key: (low, monthly) for key, low, high, monthly in rows if low == high}


def plan_name(catalog: dict, key: str | None) -> str:
    key = key or "free"
    return catalog[key][0] if key in catalog else key.replace("_", " ").title()


def get_account(account_id: str) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account with id {account_id}.", field="account_id")
    return account


@dataclass
class AccountSummary:
    """What the side pane and the detail header show about one account."""

    account: Account
    subscription: Subscription | None
    status: str
    mrr: Decimal
    currency: str | None
    lifetime_value: Decimal
    last_invoice: PaymentTransaction | None
    users_total: int
    users_active: int
    users_inactive: int
    users_pending: int

    @property
    def price(self) -> Decimal:
        return self.subscription.price_amount if self.subscription else ZERO


def account_summary(account_id: str, now: datetime | None = None) -> AccountSummary:
    account = get_account(account_id)
    row = db.session.execute(
        _base(None, Sub, status_expr(), forward_mrr_expr()).where(Account.id == account_id)
    ).one_or_none()
    sub, status, mrr = row if row else (None, "free", ZERO)
    last = db.session.execute(
        db.select(PaymentTransaction).where(PaymentTransaction.account_id == account_id)
        .order_by(PaymentTransaction.date.desc(), PaymentTransaction.id.desc()).limit(1)
    ).scalar_one_or_none()
    users = user_counts(account_id, now)
    currency = (sub.currency if sub and sub.currency else None) or (last.currency if last else None)
    return AccountSummary(account, sub, status, mrr if mrr is not None else ZERO, currency,
                          lifetime_value(account_id), last, *users)


def lifetime_value(account_id: str) -> Decimal:
    """Σ ex-VAT of succeeded payments less what their credit notes and refunds took back (DOMAIN §3
    net revenue: a partial credit note takes back its part)."""
    t = PaymentTransaction
    value = db.session.execute(
        db.select(db.func.sum(t.amount_excluding_tax - db.func.coalesce(t.reversed_excluding_tax, 0),
                              type_=Money())).where(
            t.account_id == account_id, t.status == "succeeded")
    ).scalar_one()
    return (value or ZERO).quantize(Decimal("0.01"))


def user_counts(account_id: str, now: datetime | None = None) -> tuple[int, int, int, int]:
    """(total, active, inactive, pending): pending = invited, not accepted; active = an accepted
    member seen in the last 30 days; inactive = an accepted member not seen for 30 days."""
    since = (now or utcnow()) - timedelta(days=ACTIVE_USER_DAYS)
    accepted = Membership.state == "active"
    seen = db.and_(accepted, User.last_seen_at >= since)
    unseen = db.and_(accepted, db.or_(User.last_seen_at.is_(None), User.last_seen_at < since))
    row = db.session.execute(
        db.select(
            db.func.count(Membership.id),
            db.func.coalesce(db.func.sum(db.case((seen, 1), else_=0)), 0),
            db.func.coalesce(db.func.sum(db.case((unseen, 1), else_=0)), 0),
            db.func.coalesce(db.func.sum(db.case((Membership.state == "pending", 1), else_=0)), 0),
        )
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.account_id == account_id)
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def owners(account_id: str, limit: int = 10) -> list[User]:
    return list(db.session.execute(
        db.select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id, Membership.role == "owner")
        .order_by(User.email).limit(limit)
    ).scalars())


def top_users(account_id: str, limit: int = 3) -> list:
    """The most recently seen members: (User, Membership)."""
    return list(db.session.execute(
        db.select(User, Membership).join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
        .order_by(User.last_seen_at.desc().nulls_last(), User.id).limit(limit)
    ))


def members_page(account_id: str, page: int, page_size: int) -> Page:
    stmt = (
        db.select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
        .order_by(Membership.role, db.func.lower(User.email), User.id)
    )
    return paginate(stmt, page, page_size, scalars=False)


DISCREPANCY_SORTS = ("detected", "severity", "kind")


def discrepancies_page(account_id: str, page: int, page_size: int, sort: str = "-detected") -> Page:
    """The Drift tab's list (and the API's): every finding, resolved ones too, newest first by default."""
    name, descending = sort.removeprefix("-"), sort.startswith("-")
    if name == "detected":
        order = [Discrepancy.detected_at, Discrepancy.id]
        order = [c.desc() for c in order] if descending else order
    else:
        column = Discrepancy.severity if name == "severity" else Discrepancy.kind
        order = [column.desc() if descending else column, Discrepancy.detected_at.desc(), Discrepancy.id.desc()]
    stmt = db.select(Discrepancy).where(Discrepancy.account_id == account_id).order_by(*order)
    return paginate(stmt, page, page_size)


def drift_count(account_id: str) -> int:
    """The account's open findings: unresolved, and found after the last acknowledgement (the
    Drift tab's count; acknowledged ones stay listed, marked Acknowledged)."""
    acknowledged = (db.select(Subscription.drift_acknowledged_at)
                    .where(Subscription.account_id == account_id, Subscription.is_current.is_(True))
                    .scalar_subquery())
    return db.session.execute(
        db.select(db.func.count(Discrepancy.id)).where(
            Discrepancy.account_id == account_id, Discrepancy.resolved_at.is_(None),
            db.or_(acknowledged.is_(None), Discrepancy.detected_at > acknowledged))
    ).scalar_one()
