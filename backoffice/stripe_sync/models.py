from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import UTCDateTime, utcnow
from backoffice.extensions import db


class Discrepancy(db.Model):
    """One finding of drift detection (or of the webhook/replayer) on an account."""

    __tablename__ = "discrepancies"
    __table_args__ = (
        CheckConstraint("severity IN ('warning', 'critical')", name="severity"),
        Index("ix_discrepancies_account_detected", "account_id", "detected_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    kind: Mapped[str] = mapped_column(String(60))
    severity: Mapped[str] = mapped_column(String(10))
    field: Mapped[str | None] = mapped_column(String(60))
    stripe_event_id: Mapped[str | None] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
