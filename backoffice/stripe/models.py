"""Drift and sync bookkeeping: the runs of background jobs. (Discrepancies, found by drift
detection, the webhook and the replay alike, are the ledger's: ledger/models.py.)"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import UTCDateTime, utcnow
from backoffice.extensions import db
from backoffice.ledger.models import Discrepancy  # noqa: F401  (accounts/queries.py imports it from here)


class JobRun(db.Model):
    """One run of a background job (a drift pass, an account sync): progress while it runs,
    totals when it ends. The Jobs page lists them; an account sync's dialog polls its row."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        Index("ix_job_runs_kind_started", "kind", "started_at"),
        Index("ix_job_runs_started", "started_at"),
        Index("ix_job_runs_target_started", "target_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # drift_pass | account_sync | disaster_recovery
    target_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    actor_email: Mapped[str | None] = mapped_column(String(254))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    timed_out: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
