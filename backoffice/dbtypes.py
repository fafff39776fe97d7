"""Column types that behave the same on SQLite and PostgreSQL.

Money is exact on both: NUMERIC(18,4) on PostgreSQL, an integer count of 1/10000 units on
SQLite (whose NUMERIC is a float). SQL SUM() therefore stays exact on both databases.
Times are aware UTC datetimes in Python on both (timestamptz on PostgreSQL).
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, Numeric
from sqlalchemy.types import TypeDecorator

# What no text column holds: a NUL (PostgreSQL refuses it) or a lone surrogate (not UTF-8 at all,
# so neither database can store it).
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
# The largest id: the tables' ids are INTEGER columns, 32 bits on PostgreSQL.
MAX_ID = 2**31 - 1
SCALE = 10_000
CENT = Decimal("0.01")
TENTH_MILLI = Decimal("0.0001")


class Money(TypeDecorator):
    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name == "sqlite":
            return int((value * SCALE).to_integral_value())
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / SCALE).quantize(TENTH_MILLI)
        return Decimal(value).quantize(TENTH_MILLI)

    def coerce_compared_value(self, op, value):
        return self


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text from an aggregate
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UnitPrice(TypeDecorator):
    """A per-unit price with six decimals (0.00012 per message stays exact): NUMERIC(18,6) on
    PostgreSQL, an integer count of millionths on SQLite."""

    impl = Numeric(18, 6)
    cache_ok = True
    _scale = 1_000_000
    _quantum = Decimal("0.000001")

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, 6, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name == "sqlite":
            return int((value * self._scale).to_integral_value())
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / self._scale).quantize(self._quantum)
        return Decimal(value).quantize(self._quantum)

    def coerce_compared_value(self, op, value):
        return self
