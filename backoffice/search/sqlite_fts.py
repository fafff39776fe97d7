"""SQLite's trigram indexes for the header search's "contains" matches (migration 0028).

SQLite has no trigram index on a column: `lower(email) LIKE '%mar%'` read every row, so a fragment
that matched few or none of 200,000 users cost 40-60 ms and the search's p95 was 148 ms against its
100 ms target (tests/bench/test_search_bench.py). FTS5's trigram tokenizer is SQLite's own answer:
one virtual table per searched table holds the key and the searched text, kept by triggers, and a
phrase query (`name MATCH '"zeta rock"'`) finds a substring of three characters or more from the
index, case-insensitively (Unicode case folding). PostgreSQL reads its pg_trgm indexes instead.

The tables are not models (create_all and autogenerate know nothing of virtual tables):
`include_object` keeps them and FTS5's shadow tables out of the migration comparison. A migration
that recreates `accounts` or `users` (a batch column change on SQLite) drops their triggers with the
table and must make them again.
"""
from __future__ import annotations

import sqlalchemy as sa

TABLES = ("accounts_fts", "users_fts")
SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")

accounts_fts = sa.table("accounts_fts", sa.column("id"), sa.column("name"))
users_fts = sa.table("users_fts", sa.column("id"), sa.column("email"))


def phrase(text: str) -> str:
    """An FTS5 query that matches `text` as it is, anywhere in the column: one quoted phrase (no
    operator, wildcard or column name inside it means anything)."""
    return '"' + text.replace('"', '""') + '"'


def is_fts_table(name: str) -> bool:
    return name in TABLES or any(name == table + shadow for table in TABLES for shadow in SHADOWS)


def include_object(object, name, type_, reflected, compare_to) -> bool:
    """Alembic's filter: the trigram tables and their shadows are the migrations' alone."""
    return not (type_ == "table" and reflected and is_fts_table(name))
