"""Reads of the users list and the user detail page."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import aliased

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


def sort_name(user=User):
    """The name sort key: the first name, else the last name, else the e-mail (lower-case).
    The same expression is indexed (migration 0004_list_indexes)."""
    empty = db.literal_column("''")
    return db.func.lower(db.func.coalesce(
        db.func.nullif(user.first_name, empty),
        db.func.nullif(user.last_name, empty),
        user.email))


def _like(f: UserFilters) -> str:
    return f"%{_escape_like(f.search.lower())}%"


def _own_match(like: str, user=User):
    """The user's e-mail, first or last name contains the search (pg_trgm indexes on their lower()
    forms, migration 0008_list_search_trgm: one bitmap OR on PostgreSQL)."""
    return db.or_(*(db.func.lower(column).like(like, escape="\\")
                    for column in (user.email, user.first_name, user.last_name)))


def _members_of_named_accounts(like: str):
    """The user ids of the members of the accounts whose name contains the search."""
    named = db.select(Account.id).where(Account.name.ilike(like, escape="\\"))
    if db.session.get_bind().dialect.name == "postgresql":
        # The matching accounts' ids as one array: a single scan of the (account_id, user_id) index
        # for all of them (migration 0010). As a join or IN, the planner hashes every membership.
        in_named = Membership.account_id == db.any_(db.func.array(named.scalar_subquery()))
    else:
        in_named = Membership.account_id.in_(named)
    return db.select(Membership.user_id).where(in_named)


def _matching_ids(f: UserFilters):
    """The ids of the users the search finds: a union of id sets rather than one OR, so each part
    reads its own index (an OR with the memberships subquery scans every user)."""
    like = _like(f)
    return db.union(db.select(User.id).where(_own_match(like)), _members_of_named_accounts(like))


def _order(f: UserFilters, user=User) -> tuple:
    column = {
        "name": sort_name(user),
        "email": db.func.lower(user.email),
        "created": user.created_at,
        "last_seen": user.last_seen_at,
    }[f.sort.lstrip("-")]
    desc = f.sort.startswith("-")
    order = column.desc() if desc else column.asc()
    if f.sort.lstrip("-") == "last_seen":
        order = order.nulls_last()
    return order, user.id.desc() if desc else user.id.asc()


def users_stmt(f: UserFilters):
    stmt = db.select(User)
    if f.search:
        stmt = stmt.where(User.id.in_(_matching_ids(f)))
    return stmt.order_by(*_order(f))


# A broad search (more matches than the count cap) reads its page from the head of the list, the
# first WALK_ROWS users in list order, each tested on the spot: finding the whole set of matches
# first (tens of thousands) and ordering it costs far more than the page.
WALK_ROWS = 2000


def _page_from_head(f: UserFilters):
    def read(limit: int, offset: int) -> list[User] | None:
        if offset + limit > WALK_ROWS:
            return None
        head = aliased(User, db.select(User).order_by(*_order(f)).limit(WALK_ROWS).subquery("head"))
        like = _like(f)
        # OFFSET 0 keeps the membership test a probe of this user's memberships (PostgreSQL would
        # otherwise first hash the members of every matching account).
        in_named = (db.select(db.literal(1)).select_from(Membership)
                    .join(Account, Account.id == Membership.account_id)
                    .where(Membership.user_id == head.id, Account.name.ilike(like, escape="\\"))
                    .offset(0).exists())
        rows = list(db.session.execute(
            db.select(head).where(db.or_(_own_match(like, head), in_named))
            .order_by(*_order(f, head)).limit(limit).offset(offset)).scalars())
        return rows if len(rows) == limit else None  # fewer: the matches may go on past the head

    return read


def users_page(f: UserFilters) -> Page:
    """One page; the count stops at the cap (the platform has hundreds of thousands of users)."""
    if not f.search:
        return paginate_capped(users_stmt(f), f.page, f.page_size, count_stmt=db.select(User.id))
    return paginate_capped(users_stmt(f), f.page, f.page_size, count_stmt=_matching_ids(f),
                           when_capped=_page_from_head(f))


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
