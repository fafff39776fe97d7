from __future__ import annotations

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.pagination import Page, paginate


def transactions_page(search: str, page: int, page_size: int) -> Page:
    stmt = db.select(PaymentTransaction, Account.name).join(Account, Account.id == PaymentTransaction.account_id)
    if search:
        stmt = stmt.where(Account.name.ilike(f"%{search}%"))
    stmt = stmt.order_by(PaymentTransaction.date.desc(), PaymentTransaction.id.desc())
    return paginate(stmt, page, page_size, scalars=False)
