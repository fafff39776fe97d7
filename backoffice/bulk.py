"""Many rows into one table in the current transaction, as fast as the database takes them.

On PostgreSQL the rows are streamed with COPY … FROM STDIN on the session's own connection (one
round trip, no statement per row; constraints, foreign keys, indexes and INSERT triggers apply
as for any INSERT). Elsewhere one executemany INSERT. Values pass through the columns' types
(exact Money, aware UTC times) exactly as an ORM or Core insert would bind them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from backoffice.dbtypes import Money, UnitPrice, UTCDateTime
from backoffice.extensions import db


def insert_rows(table: sa.Table, rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Inserts `rows` (dicts with the same keys) into `table`; the caller commits. With
    `columns`, only those keys of each row are inserted (the rows may hold others)."""
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        if columns is not None:
            rows = [{name: row[name] for name in columns} for row in rows]
        connection.execute(sa.insert(table), list(rows))
        return
    given = list(rows[0] if columns is None else columns)
    defaults = _python_defaults(table, given)
    names = given + list(defaults)
    # The columns whose values need their type's bind processor, as (position, processor,
    # the exact Python type a value already has when the processor would give it back equal).
    binds = [(i, processor, _UNCHANGED.get(type(table.c[name].type)))
             for i, name in enumerate(given) if (processor := table.c[name].type.bind_processor(dialect))]
    extra = [v if (p := table.c[name].type.bind_processor(dialect)) is None or v is None else p(v)
             for name, v in defaults.items()]
    copy_sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        write = copy.write_row
        for row in rows:
            values = [row[name] for name in given]
            for i, processor, unchanged in binds:
                value = values[i]
                if value is not None and (unchanged is None or not unchanged(value)):
                    values[i] = processor(value)
            values += extra
            write(values)


def _utc(value) -> bool:
    return type(value) is datetime and value.tzinfo is UTC


def _decimal(value) -> bool:
    return type(value) is Decimal


# Values these column types bind unchanged on PostgreSQL (a Decimal stays that Decimal, an
# aware UTC datetime that datetime): the processor's calls are skipped for them, a noticeable
# share of a bulk write's CPU. Any other value goes through the processor (its checks included:
# a naive datetime is refused).
_UNCHANGED: dict[type, Callable[[object], bool]] = {Money: _decimal, UnitPrice: _decimal, UTCDateTime: _utc}


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
