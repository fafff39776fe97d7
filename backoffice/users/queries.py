"""Reads of the users list and the user detail page."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.pagination import Page, paginate, paginate_capped
from backoffice.users.filters import UserFilters
from backoffice.users.models import Login, Membership, User, UserSession

ACTIVE_SESSION_HOURS = 24
LOGIN_DAYS = 30


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sort_name():
    """The name sort key: the first name, else the last name, else the e-mail (lower-case).
    The same expression is indexed (migration 0004_list_indexes)."""
    empty = db.literal_column("''")
    return db.func.lower(db.func.coalesce(
        db.func.nullif(User.first_name, empty),
        db.func.nullif(User.last_name, empty),
        User.email))


def _filtered(f: UserFilters, *columns):
    stmt = db.select(*columns).select_from(User)
    if f.search:
        like = f"%{_escape_like(f.search.lower())}%"
        # A union of id sets rather than one OR: each branch is its own trigram index scan
        # (migration 0008_list_search_trgm); an OR with the membership subquery scans every user.
        matching = db.union(
            db.select(User.id).where(db.func.lower(User.email).like(like, escape="\\")),
            db.select(User.id).where(db.func.lower(User.first_name).like(like, escape="\\")),
            db.select(User.id).where(db.func.lower(User.last_name).like(like, escape="\\")),
            db.select(Membership.user_id).join(Account, Account.id == Membership.account_id)
            .where(Account.name.ilike(like, escape="\\")),
        )
        stmt = stmt.where(User.id.in_(matching))
    return stmt


def users_stmt(f: UserFilters):
    column = {
        "name": sort_name(),
        "email": db.func.lower(User.email),
        "created": User.created_at,
        "last_seen": User.last_seen_at,
    }[f.sort.lstrip("-")]
    desc = f.sort.startswith("-")
    order = column.desc() if desc else column.asc()
    if f.sort.lstrip("-") == "last_seen":
        order = order.nulls_last()
    return _filtered(f, User).order_by(order, User.id.desc() if desc else User.id.asc())


def users_page(f: UserFilters) -> Page:
    """One page; the count stops at the cap (the platform has hundreds of thousands of users)."""
    return paginate_capped(users_stmt(f), f.page, f.page_size, count_stmt=_filtered(f, User.id))


def accounts_of(user_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """user id → [(account id, account name)] for one page of users, in one query."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if not user_ids:
        return out
    rows = db.session.execute(
        db.select(Membership.user_id, Account.id, Account.name)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.user_id.in_(user_ids))
        .order_by(Account.name)
    )
    for user_id, account_id, name in rows:
        out[user_id].append((account_id, name))
    return out


def users_export_stmt(f: UserFilters):
    return users_stmt(f).with_only_columns(
        User.id, User.email, User.first_name, User.last_name, User.created_at, User.last_seen_at)


def get_user(user_id: str) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.", field="user_id")
    return user


def memberships(user_id: str) -> list:
    stmt = (
        db.select(Membership, Account)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.user_id == user_id)
        .order_by(Account.name)
    )
    return list(db.session.execute(stmt))


@dataclass
class UserTiles:
    memberships: int
    active_sessions: int
    logins_30_days: int


def user_tiles(user_id: str, now: datetime | None = None) -> UserTiles:
    """Memberships; sessions not revoked and seen in the last 24 hours; logins in 30 days."""
    now = now or utcnow()
    members = db.select(db.func.count(Membership.id)).where(Membership.user_id == user_id).scalar_subquery()
    sessions = db.select(db.func.count(UserSession.id)).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
        UserSession.last_seen_at >= now - timedelta(hours=ACTIVE_SESSION_HOURS)).scalar_subquery()
    logins = db.select(db.func.count(Login.id)).where(
        Login.user_id == user_id, Login.at >= now - timedelta(days=LOGIN_DAYS)).scalar_subquery()
    row = db.session.execute(db.select(members, sessions, logins)).one()
    return UserTiles(int(row[0]), int(row[1]), int(row[2]))


def recent_logins(user_id: str, now: datetime | None = None, limit: int = 50) -> list[Login]:
    since = (now or utcnow()) - timedelta(days=LOGIN_DAYS)
    stmt = (db.select(Login).where(Login.user_id == user_id, Login.at >= since)
            .order_by(Login.at.desc(), Login.id.desc()).limit(limit))
    return list(db.session.execute(stmt).scalars())


def logins_page(user_id: str, page: int, page_size: int) -> Page:
    stmt = db.select(Login).where(Login.user_id == user_id).order_by(Login.at.desc(), Login.id.desc())
    return paginate(stmt, page, page_size)


def sessions_page(user_id: str, page: int, page_size: int) -> Page:
    stmt = (db.select(UserSession).where(UserSession.user_id == user_id)
            .order_by(UserSession.last_seen_at.desc(), UserSession.id))
    return paginate(stmt, page, page_size)
