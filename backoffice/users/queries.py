from __future__ import annotations

from backoffice.accounts.models import Account
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.pagination import Page, paginate
from backoffice.users.filters import UserFilters
from backoffice.users.models import Login, Membership, User


def users_page(f: UserFilters) -> Page:
    stmt = db.select(User)
    if f.search:
        like = f"%{f.search.lower()}%"
        in_account = (
            db.select(Membership.user_id)
            .join(Account, Account.id == Membership.account_id)
            .where(db.func.lower(Account.name).like(like))
        )
        stmt = stmt.where(
            db.or_(
                db.func.lower(User.email).like(like),
                db.func.lower(User.first_name).like(like),
                db.func.lower(User.last_name).like(like),
                User.id.in_(in_account),
            )
        )
    stmt = stmt.order_by(User.created_at.desc(), User.id)
    return paginate(stmt, f.page, f.page_size)


def get_user(user_id: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def memberships(user_id: str) -> list:
    stmt = (
        db.select(Membership, Account)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.user_id == user_id)
        .order_by(Account.name)
    )
    return list(db.session.execute(stmt))


def recent_logins(user_id: str, limit: int = 50) -> list[Login]:
    stmt = db.select(Login).where(Login.user_id == user_id).order_by(Login.at.desc()).limit(limit)
    return list(db.session.execute(stmt).scalars())
