"""Reads of the accounts list, the side pane and the account detail page.

Status (DOMAIN §3, first match: Canceling, Downgrading, Active, Canceled, Free) and forward MRR
are SQL expressions, so filtering and sorting by them is one query, never a Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import aliased

from backoffice.accounts.filters import STATUSES, AccountFilters
from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Plan, Subscription
from backoffice.pagination import Page, check_page_in_range, paginate
from backoffice.stripe_sync.models import Discrepancy
from backoffice.users.models import Membership, User

# The current subscription of an account (at most one: a partial unique index guarantees it).
Sub = aliased(Subscription, name="sub")
ZERO = Decimal(0)
ACTIVE_USER_DAYS = 30


def _price():
    return db.func.coalesce(Sub.price_amount, ZERO)


def _paid_once():
    """The account has paid once: its subscription has a subscribed-since date. The replayer sets it
    at the first Created row (a paid start: trials and unpaid starts are NoOps) and a sync sets it
    from Stripe; it is never cleared, so a cancelled account keeps it. A column, not a subquery,
    so filtering and sorting 50,000 accounts by status stays one cheap scan."""
    return Sub.subscribed_since.is_not(None)


def _status_case(values: tuple):
    canceling, downgrading, active, canceled, free = values
    return db.case(
        (db.and_(Sub.cancel_at_period_end.is_(True), _price() > ZERO), canceling),
        (db.and_(Sub.scheduled_plan.is_not(None), Sub.scheduled_price_amount.is_not(None),
                 Sub.scheduled_price_amount < _price()), downgrading),
        (_price() > ZERO, active),
        (_paid_once(), canceled),
        else_=free,
    )


def status_expr():
    """The account status as one of `STATUSES`."""
    return _status_case(STATUSES)


def status_rank_expr():
    """The status as its rank in `STATUSES` (for sorting by status in rule order)."""
    return _status_case(tuple(range(len(STATUSES))))


def forward_mrr_expr():
    """Forward MRR: 0 while cancelling, the scheduled price when a downgrade is queued, else the price."""
    return db.case(
        (Sub.cancel_at_period_end.is_(True), ZERO),
        (Sub.scheduled_price_amount.is_not(None), Sub.scheduled_price_amount),
        else_=_price(),
    )


def unsynced_expr():
    """Paid, but not one ledger row yet (the "not synced yet" banner's rule)."""
    # LIMIT 1 keeps it a per-account index probe (never a hash anti-join over the whole ledger).
    no_rows = ~db.select(BillingEvent.id).where(BillingEvent.account_id == Account.id).limit(1).exists()
    return db.and_(_price() > ZERO, no_rows)


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


def _base(f: AccountFilters | None, *columns):
    stmt = (
        db.select(*columns)
        .select_from(Account)
        # `sub.is_current` as the bare column: the predicate of the partial unique index on
        # subscriptions(account_id), so a page is 25 index probes, not a join of every account.
        .outerjoin(Sub, db.and_(Sub.account_id == Account.id, Sub.is_current))
        .where(Account.deleted_at.is_(None))
    )
    if f is None:
        return stmt
    if f.search:
        stmt = stmt.where(db.or_(Account.name.ilike(f"%{_escape_like(f.search)}%", escape="\\"),
                                 Account.id == f.search))
    if f.plans:
        stmt = stmt.where(db.func.coalesce(Sub.plan, "free").in_(f.plans))
    if f.statuses:
        stmt = stmt.where(status_expr().in_(f.statuses))
    if f.unsynced:
        stmt = stmt.where(unsynced_expr())
    if f.drift:
        stmt = stmt.where(Sub.drift_detected.is_(True))
    return stmt


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


def accounts_stmt(f: AccountFilters):
    """Rows of (Account, current Subscription or None, status, forward MRR)."""
    stmt = _base(f, Account, Sub, status_expr().label("status"), forward_mrr_expr().label("mrr"))
    return _ordered(stmt, f.sort)


def _needs_subscription(f: AccountFilters) -> bool:
    return bool(f.plans or f.statuses or f.unsynced or f.drift)


def accounts_page(f: AccountFilters) -> Page:
    if _needs_subscription(f):
        count_stmt = _base(f, db.func.count(Account.id))
    else:  # no filter reads the subscription: count the accounts alone
        count_stmt = db.select(db.func.count(Account.id)).where(Account.deleted_at.is_(None))
        if f.search:
            count_stmt = count_stmt.where(db.or_(
                Account.name.ilike(f"%{_escape_like(f.search)}%", escape="\\"), Account.id == f.search))
    total = db.session.execute(count_stmt).scalar_one()
    check_page_in_range(f.page, f.page_size, total)
    rows = db.session.execute(accounts_stmt(f).limit(f.page_size).offset((f.page - 1) * f.page_size)).all()
    return Page(rows, total, f.page, f.page_size)


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

    @property
    def mrr_changing(self) -> bool:
        return self.status in ("canceling", "downgrading")


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
    """Σ ex-VAT of succeeded payments with no credit note and no refund (DOMAIN §3 net revenue)."""
    value = db.session.execute(
        db.select(db.func.sum(PaymentTransaction.amount_excluding_tax)).where(
            PaymentTransaction.account_id == account_id,
            PaymentTransaction.status == "succeeded",
            PaymentTransaction.credit_noted_at.is_(None),
            PaymentTransaction.credit_note_url.is_(None),
            PaymentTransaction.refunded_at.is_(None),
        )
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


def discrepancies_page(account_id: str, page: int, page_size: int) -> Page:
    stmt = (
        db.select(Discrepancy)
        .where(Discrepancy.account_id == account_id)
        .order_by(Discrepancy.detected_at.desc(), Discrepancy.id.desc())
    )
    return paginate(stmt, page, page_size)


def drift_count(account_id: str) -> int:
    return db.session.execute(
        db.select(db.func.count(Discrepancy.id)).where(
            Discrepancy.account_id == account_id, Discrepancy.resolved_at.is_(None))
    ).scalar_one()
