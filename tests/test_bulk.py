"""`insert_rows`: COPY on PostgreSQL, executemany elsewhere; values bound by the columns' types
exactly as an ORM insert binds them (the COPY path skips the processors only for values they
would give back unchanged)."""
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.bulk import insert_rows
from backoffice.dbtypes import Money, UTCDateTime, utcnow
from backoffice.extensions import db


class Cents(Decimal):
    """A Decimal subclass: not the exact type the fast path passes through."""


@pytest.fixture
def scratch(app):
    table = sa.Table("t_bulk_scratch", sa.MetaData(),
                     sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("label", sa.String(20)),
                     sa.Column("amount", Money()),
                     sa.Column("at", UTCDateTime()),
                     sa.Column("created_at", UTCDateTime(), default=utcnow))
    table.create(db.engine)
    yield table
    db.session.rollback()
    table.drop(db.engine)


def _read(table) -> list:
    return db.session.execute(sa.select(table.c.label, table.c.amount, table.c.at, table.c.created_at)
                              .order_by(table.c.label)).all()


def test_values_are_bound_by_their_column_types(scratch):
    berlin = timezone(timedelta(hours=1))
    insert_rows(scratch, [
        {"label": "a-decimal", "amount": Decimal("12.34"), "at": datetime(2026, 1, 1, 12, tzinfo=UTC)},
        {"label": "b-int", "amount": 7, "at": datetime(2026, 1, 1, 13, tzinfo=berlin)},
        {"label": "c-string", "amount": "0.0001", "at": None},
        {"label": "d-subclass", "amount": Cents("5.5"), "at": datetime(2026, 1, 2, tzinfo=UTC)},
        {"label": "e-null", "amount": None, "at": datetime(2026, 1, 3, tzinfo=UTC)},
    ])
    db.session.commit()
    rows = _read(scratch)
    assert [(r.label, r.amount, r.at) for r in rows] == [
        ("a-decimal", Decimal("12.3400"), datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("b-int", Decimal("7.0000"), datetime(2026, 1, 1, 12, tzinfo=UTC)),  # 13:00+01:00 is 12:00 UTC
        ("c-string", Decimal("0.0001"), None),
        ("d-subclass", Decimal("5.5000"), datetime(2026, 1, 2, tzinfo=UTC)),
        ("e-null", None, datetime(2026, 1, 3, tzinfo=UTC)),
    ]
    # The model's Python default, which COPY would not apply, is filled in.
    assert all(r.created_at is not None and abs(r.created_at - utcnow()) < timedelta(minutes=1) for r in rows)


def test_a_naive_time_is_refused_and_nothing_is_written(scratch):
    with pytest.raises((ValueError, sa.exc.StatementError)):
        insert_rows(scratch, [{"label": "ok", "amount": Decimal(1), "at": datetime(2026, 1, 1, tzinfo=UTC)},
                              {"label": "naive", "amount": Decimal(1), "at": datetime(2026, 1, 1)}])
    db.session.rollback()
    assert _read(scratch) == []


def test_only_the_named_columns_of_richer_rows_are_inserted(scratch):
    rows = [{"id": None, "label": "x", "amount": Decimal("1.50"), "at": None, "unrelated": object()}]
    insert_rows(scratch, rows, columns=("label", "amount", "at"))
    db.session.commit()
    assert [(r.label, r.amount) for r in _read(scratch)] == [("x", Decimal("1.5000"))]
