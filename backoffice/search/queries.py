"""Reads of the header search: accounts, users and invoices that match what an operator typed.

Each group is one statement: a UNION ALL of one small branch per kind of match (exact id, id prefix,
partial id, Stripe customer id, billing e-mail, name), each read from its own index in its own order
and cut at `LIMIT + 1`, then ranked (exact before prefix before contains) and cut again. A branch
never sorts all of its matches, so a two-letter prefix that matches every account costs as little as
a rare one (migration 0026_search_indexes). A "contains" branch reads pg_trgm indexes on PostgreSQL
and FTS5 trigram tables on SQLite (`sqlite_fts`, migration 0028), which have no trigram index of a
column: there a rare fragment read every row (p95 148 ms; 17 ms with the tables).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.invoicing.models import PlatformInvoice
from backoffice.ledger import sql
from backoffice.search import sqlite_fts
from backoffice.users.models import User

LIMIT = 5  # results per group
MIN_LENGTH = 2  # shorter queries answer the prompt without querying
# "Contains" reads trigram indexes, which need three characters: a two-character query matches from
# the start only (its "contains" read every row: 430 ms for "ma" over 200,000 users on PostgreSQL).
CONTAINS_LENGTH = 3

EXACT, PREFIX, CONTAINS = 0, 1, 2
# CONTAINS_ORDER: a "contains" branch takes its first matches in primary-key order. Ordered by the
# matched text, PostgreSQL fetched and sorted every match of a common fragment ("mar": one user in
# eight, 25,000 rows) before the LIMIT; by the key it may walk the key's index and stop at LIMIT + 1,
# and still reads the trigram index for a rare fragment. The group is ordered by the text after.


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(column, text: str):
    """lower(column) starts with `text` (lower-case): LIKE 'x%' reads the text_pattern_ops index on
    PostgreSQL; SQLite reads its lower() index only through a range, so the range comes too."""
    lowered = db.func.lower(column)
    like = lowered.like(f"{_escape_like(text)}%", escape="\\")
    if sql.postgres():
        return like
    return db.and_(lowered >= text, lowered < text + "\U0010ffff", like)


def _lower_contains(column, text: str):
    return db.func.lower(column).like(f"%{_escape_like(text)}%", escape="\\")


def _contains(indexed, text: str, key, fts_column, limit: int | None = None):
    """A column contains `text` (three characters or more), case-insensitive: on PostgreSQL the
    condition `indexed`, which its trigram index answers; on SQLite the `key`s whose FTS5 trigram
    twin `fts_column` matches (at most `limit`: a branch reads no more than it keeps)."""
    if sql.postgres():
        return indexed
    found = db.select(fts_column.table.c.id).where(fts_column.match(sqlite_fts.phrase(text)))
    return key.in_(found.limit(limit) if limit else found)


def _branch(key, rank: int, where, order):
    """One kind of match: its first LIMIT + 1 keys in index order, with its rank."""
    return (db.select(key.label("key"), db.literal_column(str(rank), db.Integer).label("rank"))
            .where(where).order_by(*order).limit(LIMIT + 1).subquery())


def _ranked(branches: list):
    """The keys of the branches, each with its best rank, as one UNION ALL."""
    union = db.union_all(*(db.select(b.c.key, b.c.rank) for b in branches)).subquery("hits")
    return (db.select(union.c.key, db.func.min(union.c.rank).label("rank"))
            .group_by(union.c.key).subquery("best"))


@dataclass
class Group:
    items: list = field(default_factory=list)
    more: bool = False  # more than LIMIT matched


def _group(rows: list) -> Group:
    return Group(rows[:LIMIT], len(rows) > LIMIT)


def account_matches(text: str, limit: int | None = None) -> list[tuple]:
    """What finds an account, as (rank, condition, index order): the id exact, by prefix or (three
    characters or more) partially; a Stripe customer id, billing e-mail or name by prefix; (three
    characters or more) a name that contains it; case-insensitive. The header search ranks them
    (each branch reads at most `limit`), the accounts list's search matches any (`accounts.queries`)."""
    low = text.lower()
    lower_id = db.func.lower(Account.id)
    matches = [
        (EXACT, Account.id == text, [Account.id]),
        (PREFIX, _prefix(Account.id, low), [lower_id, Account.id]),
        (PREFIX, _prefix(Account.stripe_customer_id, low), [db.func.lower(Account.stripe_customer_id), Account.id]),
        (PREFIX, _prefix(Account.billing_email, low), [db.func.lower(Account.billing_email), Account.id]),
        (PREFIX, _prefix(Account.name, low), [db.func.lower(Account.name), Account.id]),
    ]
    if len(low) >= CONTAINS_LENGTH:  # the name, or a partial id (CONTAINS_ORDER)
        matches += [
            (CONTAINS, _contains(Account.name.ilike(f"%{_escape_like(text)}%", escape="\\"), low,
                                 Account.id, sqlite_fts.accounts_fts.c.name, limit), [Account.id]),
            (CONTAINS, _contains(_lower_contains(Account.id, low), low, Account.id, sqlite_fts.accounts_fts.c.id, limit), [Account.id]),
        ]
    return matches


def accounts_stmt(text: str):
    """The accounts `account_matches` finds, best rank first, then by name. Deleted accounts too
    (the page marks them)."""
    best = _ranked([_branch(Account.id, rank, where, order) for rank, where, order in account_matches(text, LIMIT + 1)])
    return (db.select(Account).join(best, best.c.key == Account.id)
            .order_by(best.c.rank, db.func.lower(Account.name), Account.id).limit(LIMIT + 1))


def accounts(text: str) -> Group:
    return _group(list(db.session.execute(accounts_stmt(text)).scalars()))


def users_stmt(text: str):
    """E-mail exact, prefix or contains (case-insensitive, as the users list matches it)."""
    low = text.lower()
    lower_email = db.func.lower(User.email)
    branches = [
        _branch(User.id, EXACT, lower_email == low, [User.id]),
        _branch(User.id, PREFIX, _prefix(User.email, low), [lower_email, User.id]),
    ]
    if len(low) >= CONTAINS_LENGTH:
        contains = _contains(_lower_contains(User.email, low), low, User.id, sqlite_fts.users_fts.c.email, LIMIT + 1)
        branches.append(_branch(User.id, CONTAINS, contains, [User.id]))  # CONTAINS_ORDER
    best = _ranked(branches)
    return (db.select(User).join(best, best.c.key == User.id)
            .order_by(best.c.rank, lower_email, User.id).limit(LIMIT + 1))


def users(text: str) -> Group:
    return _group(list(db.session.execute(users_stmt(text)).scalars()))


@dataclass(frozen=True)
class InvoiceHit:
    source: str  # "stripe" (a payment transaction) or "backoffice" (a platform invoice)
    id: int
    number: str
    account_id: str
    account_name: str
    account_deleted: bool


def invoices_stmt(text: str):
    """Stripe invoices' and Backoffice's own invoices' numbers, exact or prefix (case-insensitive)."""
    low = text.lower()

    def kind(model, source: str):
        lower_number = db.func.lower(model.number)
        hits = (db.select(model.id, model.number, model.account_id)
                .where(_prefix(model.number, low)).order_by(lower_number, model.id).limit(LIMIT + 1).subquery())
        return db.select(db.literal_column(f"'{source}'", db.String).label("source"), hits.c.id, hits.c.number, hits.c.account_id,
                         db.case((db.func.lower(hits.c.number) == low, EXACT), else_=PREFIX).label("rank"))

    union = db.union_all(kind(PaymentTransaction, "stripe"), kind(PlatformInvoice, "backoffice")).subquery("hits")
    return (db.select(union.c.source, union.c.id, union.c.number, union.c.account_id, Account.name,
                      Account.deleted_at.is_not(None))
            .join(Account, Account.id == union.c.account_id)
            .order_by(union.c.rank, db.func.lower(union.c.number), union.c.source, union.c.id).limit(LIMIT + 1))


def invoices(text: str) -> Group:
    return _group([InvoiceHit(*row) for row in db.session.execute(invoices_stmt(text))])


GROUPS = {"accounts": accounts_stmt, "users": users_stmt, "invoices": invoices_stmt}  # for the benchmark


@dataclass
class Results:
    accounts: Group
    users: Group
    invoices: Group

    @property
    def empty(self) -> bool:
        return not (self.accounts.items or self.users.items or self.invoices.items)


def search(text: str) -> Results | None:
    """The three groups, or None for a query too short to search."""
    if len(text) < MIN_LENGTH:
        return None
    return Results(accounts(text), users(text), invoices(text))
