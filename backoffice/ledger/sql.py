"""The ledger's database idioms, shared by the replay and the projections: `IN` lists of
thousands of ids (one array parameter on PostgreSQL, chunks within SQLite's variable limit) and
ids taken for rows before they are inserted. Plain SQLAlchemy Core; nothing here knows a table
of its own."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import NullType

from backoffice.extensions import db

ID_CHUNK = 2000  # ids per IN (...) list (SQLite allows 32,766 variables)


def postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


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
