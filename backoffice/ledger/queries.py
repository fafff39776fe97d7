from __future__ import annotations

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent
from backoffice.pagination import Page, paginate


def billing_events_page(search: str, page: int, page_size: int) -> Page:
    stmt = (
        db.select(BillingEvent, Account.name)
        .join(Account, Account.id == BillingEvent.account_id)
        .where(BillingEvent.type != "no_op")
    )
    if search:
        stmt = stmt.where(Account.name.ilike(f"%{search}%"))
    stmt = stmt.order_by(BillingEvent.occurred_at.desc(), BillingEvent.id.desc())
    return paginate(stmt, page, page_size, scalars=False)
