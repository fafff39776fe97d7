"""Many rows into one table in the current transaction, as fast as the database takes them.

On PostgreSQL the rows are streamed with COPY … FROM STDIN on the session's own connection (one
round trip, no statement per row; constraints, foreign keys, indexes and INSERT triggers apply
as for any INSERT). Elsewhere one executemany INSERT. Values pass through the columns' types
(exact Money, aware UTC times) exactly as an ORM or Core insert would bind them.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from backoffice.extensions import db


def insert_rows(table: sa.Table, rows: Sequence[dict]) -> None:
    """Inserts `rows` (dicts with the same keys) into `table`; the caller commits."""
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        connection.execute(sa.insert(table), list(rows))
        return
    given = list(rows[0])
    defaults = _python_defaults(table, given)
    names = given + list(defaults)
    processors = [table.c[name].type.bind_processor(dialect) for name in names]

    def bound(values) -> list:
        return [v if p is None or v is None else p(v) for v, p in zip(values, processors, strict=True)]

    extra = list(defaults.values())
    copy_sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row(bound([row[name] for name in given] + extra))


def _python_defaults(table: sa.Table, given: Sequence[str]) -> dict:
    """The client-side defaults (`default=` of the model) of the columns the rows leave out,
    which COPY does not apply: one value for the whole call (e.g. one `created_at`)."""
    found = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None or column.primary_key:
            continue
        if default.is_scalar:
            found[column.name] = default.arg
        elif default.is_callable:
            found[column.name] = default.arg(None)
    return found
