"""The Stripe event archive (append-only), the billing-event ledger (append-only), the
projections the replayer keeps (subscriptions and the plan catalog) and the discrepancies the
webhook, the replay and drift detection find."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import Money, UTCDateTime, utcnow
from backoffice.extensions import db

CURRENCY_CHECK = "currency IS NULL OR (length(currency) = 3 AND currency = upper(currency))"


class StripeEvent(db.Model):
    """One row per Stripe event id, the raw body exactly as received.

    Only the processing columns (state, error, processed_at, account_id, subscription id) may
    change after insert; on PostgreSQL a trigger enforces it and refuses DELETE.
    """

    __tablename__ = "stripe_events"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'processed', 'ignored', 'failed')", name="state"
        ),
        CheckConstraint(
            "recovery_source IS NULL OR recovery_source IN ('events_list', 'baseline')",
            name="recovery_source",
        ),
        Index("ix_stripe_events_customer_created", "customer_id", "stripe_created_at", "id"),
        Index("ix_stripe_events_account_created", "account_id", "stripe_created_at", "id"),
        # Only the events still to replay (pending, failed) are looked up by state.
        Index("ix_stripe_events_todo", "account_id", "customer_id",
              postgresql_where=db.text("state IN ('pending', 'failed')"),
              sqlite_where=db.text("state IN ('pending', 'failed')")),
        # The events of customers without an account yet, by customer: the webhook's INSERT
        # releases a customer's without reading every unmapped event (migration 0015).
        Index("ix_stripe_events_unmapped", "customer_id",
              postgresql_where=db.text("account_id IS NULL AND customer_id IS NOT NULL"),
              sqlite_where=db.text("account_id IS NULL AND customer_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    api_version: Mapped[str | None] = mapped_column(String(40))
    stripe_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[str] = mapped_column(Text)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(255))
    recovery_source: Mapped[str | None] = mapped_column(String(20))
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Processing state: the only mutable part.
    state: Mapped[str] = mapped_column(String(10), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))


class Plan(db.Model):
    """The price catalog: a Stripe price id → plan, read from Stripe and from event payloads."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint(CURRENCY_CHECK, name="currency"),
        CheckConstraint("monthly_amount >= 0", name="monthly_amount_non_negative"),
        CheckConstraint("interval IN ('day', 'week', 'month', 'year')", name="interval"),
    )

    price_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    plan_key: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(100))
    monthly_amount: Mapped[Decimal] = mapped_column(Money())
    interval: Mapped[str] = mapped_column(String(10), default="month")
    currency: Mapped[str] = mapped_column(String(3))
    # The price as billed: `period_amount` every `interval_count` intervals (€490.00 every 1 year);
    # null for a price read before it was kept (the next replay of it fills it in).
    period_amount: Mapped[Decimal | None] = mapped_column(Money())
    interval_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class Subscription(db.Model):
    """The mirrored Stripe subscription of an account; exactly one is current per account."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(CURRENCY_CHECK, name="currency"),
        CheckConstraint("price_amount >= 0", name="price_non_negative"),
        CheckConstraint(
            "scheduled_price_amount IS NULL OR scheduled_price_amount >= 0",
            name="scheduled_price_non_negative",
        ),
        Index(
            "uq_subscriptions_current_account",
            "account_id",
            unique=True,
            sqlite_where=db.text("is_current"),
            postgresql_where=db.text("is_current"),
        ),
        Index("ix_subscriptions_drift", "drift_detected"),
        Index("ix_subscriptions_drift_checked_at", "drift_checked_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str | None] = mapped_column(String(20))
    plan: Mapped[str] = mapped_column(String(255), default="free")
    price_amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    currency: Mapped[str | None] = mapped_column(String(3))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_plan: Mapped[str | None] = mapped_column(String(255))
    scheduled_price_amount: Mapped[Decimal | None] = mapped_column(Money())
    subscribed_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drift_detected: Mapped[bool] = mapped_column(Boolean, default=False)
    drift_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drift_acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drift_acknowledged_by: Mapped[str | None] = mapped_column(String(254))
    events_anchor: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class BillingEvent(db.Model):
    """The ledger: exactly one current row per recognised Stripe event. Written only by the
    replayer. A row never changes but once: superseded (`superseded_at` set, with the row that
    replaces it in `superseded_by`, or none when the event no longer has a row, and the late event
    that caused it in `superseded_because`) when a late event changed how it classifies (DOMAIN
    §3) or a rebuild found it wrong; on PostgreSQL a trigger allows exactly that. Readers read
    current rows (`BillingEvent.current()`)."""

    __tablename__ = "billing_events"
    __table_args__ = (
        CheckConstraint(CURRENCY_CHECK, name="currency"),
        CheckConstraint("committed_mrr >= 0", name="committed_mrr_non_negative"),
        CheckConstraint("previous_amount IS NULL OR previous_amount >= 0", name="previous_non_negative"),
        CheckConstraint("new_amount IS NULL OR new_amount >= 0", name="new_non_negative"),
        CheckConstraint(
            "amount_delta IS NULL OR previous_amount IS NULL OR new_amount IS NULL "
            "OR amount_delta = new_amount - previous_amount",
            name="delta_is_new_minus_previous",
        ),
        Index("uq_billing_events_current_event", "stripe_event_id", unique=True,
              postgresql_where=db.text("superseded_at IS NULL"), sqlite_where=db.text("superseded_at IS NULL")),
        Index("ix_billing_events_stripe_event", "stripe_event_id"),
        Index("ix_billing_events_account_occurred", "account_id", "occurred_at"),
        Index("ix_billing_events_subscription_occurred", "subscription_id", "occurred_at", "id"),
        Index("ix_billing_events_type_occurred", "type", "occurred_at"),
        # The dashboard's MRR reads (issue 5): only MRR-moving rows, in LAG order, index-only.
        Index("ix_billing_events_mrr", "subscription_id", "account_id", "occurred_at", "id",
              postgresql_include=["new_amount", "committed_mrr", "type"],
              postgresql_where=db.text("amount_delta IS NOT NULL AND superseded_at IS NULL"),
              sqlite_where=db.text("amount_delta IS NOT NULL AND superseded_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    stripe_event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(40))
    from_plan: Mapped[str | None] = mapped_column(String(255))
    to_plan: Mapped[str | None] = mapped_column(String(255))
    previous_amount: Mapped[Decimal | None] = mapped_column(Money())
    new_amount: Mapped[Decimal | None] = mapped_column(Money())
    amount_delta: Mapped[Decimal | None] = mapped_column(Money())
    committed_mrr: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str | None] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(100))
    baseline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=db.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Deferred: the row is marked superseded just before its replacement is inserted.
    superseded_by: Mapped[int | None] = mapped_column(
        ForeignKey("billing_events.id", deferrable=True, initially="DEFERRED"))
    # The Stripe event whose late arrival made the correction; None for a `ledger rebuild`.
    superseded_because: Mapped[str | None] = mapped_column(String(255))

    @classmethod
    def current(cls):
        """The condition every reader of the ledger adds: the row is not superseded."""
        return cls.superseded_at.is_(None)


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
