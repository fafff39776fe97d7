from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import UTCDateTime, utcnow
from backoffice.extensions import db

WITHOUT_LEDGER = "NOT has_ledger_rows AND deleted_at IS NULL"


LANGUAGES = ("en", "de", "fr", "it")  # the languages an account's invoices are written in

class Account(db.Model):
    """A customer organisation: the billed party. Soft-deleted accounts keep their money history."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("pay_by IN ('card', 'invoice')", name="pay_by"),
        CheckConstraint("payment_terms_days >= 0", name="payment_terms_non_negative"),
        Index("ix_accounts_modified_at", "modified_at"),
        Index("ix_accounts_created_at", "created_at"),
        Index("ix_accounts_name_lower", db.func.lower(db.text("name"))),
        # The dashboard's live-account counts (migration 0007_dashboard_speed).
        Index("ix_accounts_live_created_at", "created_at",
              postgresql_where=db.text("deleted_at IS NULL"), sqlite_where=db.text("deleted_at IS NULL")),
        Index("ix_accounts_deleted", "id",
              postgresql_where=db.text("deleted_at IS NOT NULL"), sqlite_where=db.text("deleted_at IS NOT NULL")),
        # The live accounts without ledger rows: "not synced yet" reads only these (migration 0010).
        Index("ix_accounts_without_ledger_rows", "id", postgresql_where=db.text(WITHOUT_LEDGER),
              sqlite_where=db.text(WITHOUT_LEDGER)),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2))
    logo_url: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Billing info (what goes on an invoice).
    billing_name: Mapped[str | None] = mapped_column(String(200))
    billing_email: Mapped[str | None] = mapped_column(String(254))
    billing_line1: Mapped[str | None] = mapped_column(String(200))
    billing_line2: Mapped[str | None] = mapped_column(String(200))
    billing_postal_code: Mapped[str | None] = mapped_column(String(20))
    billing_city: Mapped[str | None] = mapped_column(String(100))
    billing_country: Mapped[str | None] = mapped_column(String(2))
    vat_id: Mapped[str | None] = mapped_column(String(40))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # Billing posture (PieCed's org posture).
    pay_by: Mapped[str] = mapped_column(String(10), default="card", server_default="card")
    auto_invoice: Mapped[bool] = mapped_column(Boolean, default=True, server_default=db.true())
    auto_reminders: Mapped[bool] = mapped_column(Boolean, default=True, server_default=db.true())
    language: Mapped[str] = mapped_column(String(2), default="en", server_default="en")  # its invoices' language
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # Whether the ledger holds a row of this account. Kept by the database (triggers on billing_events,
    # migration 0010_list_filters_speed) in the writer's transaction; the app never writes it.
    has_ledger_rows: Mapped[bool] = mapped_column(Boolean, server_default=db.false())
