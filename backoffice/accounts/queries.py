from __future__ import annotations

from backoffice.accounts.filters import AccountFilters
from backoffice.accounts.models import Account
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.pagination import Page, paginate
from backoffice.users.models import Membership, User

_SORT_COLUMNS = {
    "name": db.func.lower(Account.name),
    "country": Account.country,
    "created": Account.created_at,
    "modified": Account.modified_at,
}


def accounts_page(f: AccountFilters) -> Page:
    stmt = db.select(Account).where(Account.deleted_at.is_(None))
    if f.search:
        stmt = stmt.where(
            db.or_(Account.name.ilike(f"%{f.search}%"), Account.id == f.search)
        )
    column = _SORT_COLUMNS[f.sort.lstrip("-")]
    order = column.desc() if f.sort.startswith("-") else column.asc()
    stmt = stmt.order_by(order, Account.id)
    return paginate(stmt, f.page, f.page_size)


def get_account(account_id: str) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account with id {account_id}.")
    return account


def account_members(account_id: str, limit: int = 100) -> list:
    stmt = (
        db.select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
        .order_by(Membership.role, User.email)
        .limit(limit)
    )
    return list(db.session.execute(stmt))
