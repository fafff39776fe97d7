"""The ledger's database idioms, shared by the replay and the projections: `IN` lists of
thousands of ids (one array parameter on PostgreSQL, chunks within SQLite's variable limit), ids
taken for rows before they are inserted, and rows written in bulk. Plain SQLAlchemy Core and
psycopg; nothing here knows a table of its own."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import String, insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import NullType

from backoffice.extensions import db

ID_CHUNK = 2000  # ids per IN (...) list (SQLite allows 32,766 variables)


def postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def upsert(table):
    """`INSERT` into `table` in the session's dialect, for `.on_conflict_do_nothing(...)` /
    `.on_conflict_do_update(...)` (PostgreSQL and SQLite spell them alike)."""
    return (pg_insert if postgres() else sqlite_insert)(table)


def chunks(values: Sequence, size: int = ID_CHUNK) -> Iterable[Sequence]:
    """Lists of ids for `in_`: one on PostgreSQL (an array is one parameter), chunks of `size`
    on SQLite (at most 32,766 variables per statement)."""
    if postgres():
        if values:
            yield values
        return
    for start in range(0, len(values), size):
        yield values[start:start + size]


def in_(column, values: Sequence):
    """`column IN (values)`. On PostgreSQL `column = ANY(:array)`: one parameter however many
    values, so the statement stays short (the driver parses and caches it once) and the planner
    still uses the column's index."""
    if postgres():
        return column == db.any_(pg_array(values, array_of(column.type)))
    return column.in_(values)


def array_of(element_type) -> ARRAY:
    """The array type to compare a column of `element_type` with. A string type loses its
    length: `CAST('{"abcd"}' AS VARCHAR(3)[])` is `{abc}`, so a value longer than the column
    would match a stored value equal to its beginning."""
    if isinstance(element_type, String):
        return ARRAY(String())
    return ARRAY(element_type)


def pg_array(values: Sequence, array_type: ARRAY):
    """A bound PostgreSQL array of `values`. Strings and integers are sent as one text value in
    the array's input syntax, cast by the server: the driver's list adapter converts element by
    element in Python, about four times slower for the thousands of ids of a batch. Other
    values are bound as a list. The parameter has no type of its own (NullType: no `::VARCHAR`
    is rendered), so the server types it as the array and parses it once; cast from a VARCHAR
    parameter it would be an expression evaluated again for every row a scan compares."""
    literal = array_literal(values)
    if literal is None:
        return db.bindparam(None, list(values), type_=array_type)
    return db.cast(db.bindparam(None, literal, type_=NullType()), array_type)


def array_literal(values: Sequence) -> str | None:
    """`{"a","b"}` or `{1,2}`: the input syntax of a one-dimensional array of str or of int
    values (each string quoted, its quotes and backslashes escaped); None for other values."""
    kinds = {type(v) for v in values}
    if kinds == {str}:
        probe = "".join(values)
        if '"' in probe or "\\" in probe:
            values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
        return '{"' + '","'.join(values) + '"}'
    if kinds == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    return "{}" if not kinds else None


def new_ids(table, n: int) -> list[int]:
    """`n` ids for new rows of `table` (its integer `id` column): from its sequence on
    PostgreSQL; on SQLite after the largest (the caller has written already, so it holds
    SQLite's one write lock and no other connection can take these ids)."""
    if n == 0:
        return []
    if postgres():
        return list(db.session.execute(
            db.text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": n}).scalars())
    top = db.session.execute(db.select(db.func.max(table.c.id))).scalar() or 0
    return list(range(top + 1, top + 1 + n))


def insert_rows(table, rows: Sequence[dict], columns: Sequence[str] | None = None) -> None:
    """Inserts `rows` (dicts with the same keys; only `columns` of them if given) in the session's
    transaction. On PostgreSQL with psycopg's COPY, each value bound by its column's type as an
    INSERT binds it, the model's Python defaults applied: the replay measured 3,469 events/s with
    executemany INSERTs against 6,305 with COPY (tests/bench/test_replay_bench.py, 30,000 events,
    2 cores), and the ≥ 8,000 of issue 18 is out of reach without it. Elsewhere an executemany."""
    if not rows:
        return
    names = list(columns or rows[0])
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), [{name: row[name] for name in names} for row in rows])
        return
    defaults = {c.name: c.default.arg(None) if c.default.is_callable else c.default.arg for c in table.columns
                if c.default is not None and not c.primary_key and c.name not in names}
    binds = [table.c[name].type.bind_processor(connection.dialect) for name in [*names, *defaults]]
    extra = list(defaults.values())
    sql = f"COPY {table.name} ({', '.join([*names, *defaults])}) FROM STDIN"
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            values = [row[name] for name in names] + extra
            copy.write_row([v if bind is None or v is None else bind(v) for v, bind in zip(values, binds)])
