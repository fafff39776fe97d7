"""Summary tables of the dashboard (PostgreSQL; migration 0009_dashboard_summaries).

Each holds, per key, numbers whose sum is an aggregate of a big table: the ledger's MRR changes
per UTC day, type and sign; net revenue flows per UTC day; logins per UTC day and outcome.
Triggers on the source tables keep them current in the writer's own transaction, so a reader sees
exactly the committed data, with no cache to warm after a change. A key may have several rows (a writer adds to a row no other open transaction holds, else
inserts one, so no writer waits for another on a summary row): readers always sum per key.

On SQLite (the embedded single-machine database) the tables exist but stay empty: the dashboard
computes the same figures from the source tables (backoffice.dashboard.queries).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Boolean, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import Money
from backoffice.extensions import db


class MrrDaily(db.Model):
    """Σ change per (day, type, positive) = Σ of the ledger's MRR changes (each delta-carrying
    row's new amount minus the previous one of its subscription) of that UTC day, type and sign."""

    __tablename__ = "dashboard_mrr_daily"
    __table_args__ = (Index("ix_dashboard_mrr_daily_key", "day", "type", "positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    type: Mapped[str] = mapped_column(String(40))
    positive: Mapped[bool] = mapped_column(Boolean)
    change: Mapped[Decimal] = mapped_column(Money())


class RevenueDaily(db.Model):
    """Σ change per day = net revenue flows ex-VAT of that UTC day (+ succeeded payments on their
    payment day, − reversed ones on their reversal day)."""

    __tablename__ = "dashboard_revenue_daily"
    __table_args__ = (Index("ix_dashboard_revenue_daily_day", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    change: Mapped[Decimal] = mapped_column(Money())


class LoginDaily(db.Model):
    """Σ logins per (day, outcome) = the logins of that UTC day and outcome; Σ writes counts every
    login row ever inserted, updated or deleted on that day: it grows with any change."""

    __tablename__ = "dashboard_login_daily"
    __table_args__ = (Index("ix_dashboard_login_daily_key", "day", "outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(10))
    logins: Mapped[int] = mapped_column(Integer)
    writes: Mapped[int] = mapped_column(Integer)

