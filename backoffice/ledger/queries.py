"""Reads of the billing-event ledger for the billing events page, the account tab and the API."""
from __future__ import annotations

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger.filters import EventFilters, view_types
from backoffice.ledger.models import BillingEvent
from backoffice.pagination import Page, paginate, paginate_capped


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(f: EventFilters, *columns, with_account: bool = True):
    """The filtered rows; the accounts join only when shown or searched (counting needs no names)."""
    stmt = db.select(*columns).select_from(BillingEvent).where(BillingEvent.current())
    if with_account or f.search:
        stmt = stmt.join(Account, Account.id == BillingEvent.account_id)
    types = view_types(f.view)
    if f.type:
        stmt = stmt.where(BillingEvent.type == f.type)
        if types is not None and f.type not in types:
            stmt = stmt.where(db.false())
    elif types is None:
        stmt = stmt.where(BillingEvent.type != "no_op")
    else:
        stmt = stmt.where(BillingEvent.type.in_(sorted(types)))
    if f.account:
        stmt = stmt.where(BillingEvent.account_id == f.account)
    if f.search:
        stmt = stmt.where(db.or_(Account.name.ilike(f"%{_escape_like(f.search)}%", escape="\\"),
                                 Account.id == f.search))
    if f.date_from:
        stmt = stmt.where(BillingEvent.occurred_at >= f.date_from)
    if f.date_to:
        stmt = stmt.where(BillingEvent.occurred_at < f.date_to)
    return stmt


def _ordered(stmt, sort: str):
    column = {
        "account": db.func.lower(Account.name),
        "event": BillingEvent.type,
        "occurred": BillingEvent.occurred_at,
    }[sort.lstrip("-")]
    desc = sort.startswith("-")
    order = [column.desc() if desc else column.asc()]
    if sort.lstrip("-") == "event":  # same direction as the type, so (type, occurred_at, id) serves it
        order.append(BillingEvent.occurred_at.desc() if desc else BillingEvent.occurred_at.asc())
    elif sort.lstrip("-") != "occurred":
        order.append(BillingEvent.occurred_at.desc())
    order.append(BillingEvent.id.desc() if desc else BillingEvent.id.asc())
    return stmt.order_by(*order)


def billing_events_stmt(f: EventFilters):
    """Rows of (BillingEvent, account name)."""
    return _ordered(_filtered(f, BillingEvent, Account.name.label("account_name")), f.sort)


def billing_events_page(f: EventFilters) -> Page:
    """One page; the count stops at the cap (the ledger holds millions of rows)."""
    return paginate_capped(billing_events_stmt(f), f.page, f.page_size, scalars=False,
                           count_stmt=_filtered(f, BillingEvent.id, with_account=False))


def billing_events_export_stmt(f: EventFilters):
    return _ordered(_filtered(
        f, BillingEvent.occurred_at, BillingEvent.type, BillingEvent.account_id,
        Account.name.label("account_name"), BillingEvent.from_plan, BillingEvent.to_plan,
        BillingEvent.previous_amount, BillingEvent.new_amount, BillingEvent.amount_delta,
        BillingEvent.committed_mrr, BillingEvent.currency, BillingEvent.stripe_event_id,
    ), f.sort)


def billing_events_preview(account_id: str, limit: int = 5) -> list:
    return db.session.execute(billing_events_stmt(EventFilters(account=account_id)).limit(limit)).all()


def _corrections(account_id: str, *columns):
    return (db.select(*columns).select_from(BillingEvent)
            .where(BillingEvent.account_id == account_id, BillingEvent.superseded_at.is_not(None)))


def correction_count(account_id: str) -> int:
    """How many of the account's ledger rows were superseded (corrected)."""
    return db.session.execute(_corrections(account_id, db.func.count())).scalar_one()


def corrections_page(account_id: str, page: int, page_size: int) -> Page:
    """Rows of (superseded row, the row that corrected it or None), the latest correction first:
    the account's audit trail of DOMAIN §3's corrections."""
    correction = db.aliased(BillingEvent, name="correction")
    stmt = (_corrections(account_id, BillingEvent, correction)
            .outerjoin(correction, correction.id == BillingEvent.superseded_by)
            .order_by(BillingEvent.superseded_at.desc(), BillingEvent.id.desc()))
    return paginate(stmt, page, page_size, scalars=False)
