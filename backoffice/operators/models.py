from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import UTCDateTime, utcnow
from backoffice.extensions import db


class Operator(UserMixin, db.Model):
    """A person who signs into Backoffice."""

    __tablename__ = "operators"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'viewer')", name="role"),
        CheckConstraint("email = lower(email)", name="email_lower"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10), default="viewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    kiosk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=db.false())
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped to sign out every session of this operator (deactivation, role change).
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and not self.kiosk

    @property
    def is_active(self) -> bool:  # Flask-Login: deactivated operators cannot sign in
        return bool(self.active)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class AuditEntry(db.Model):
    """Who did what to which target, with before/after and the result. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("result IN ('ok', 'error', 'denied')", name="result"),
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    operator_email: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    result: Mapped[str] = mapped_column(String(10), default="ok")
    detail: Mapped[str | None] = mapped_column(Text)
