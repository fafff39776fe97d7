"""Usage tracking of deployments: append-only logs the month-end invoice is computed from.

The lifecycle row is written once (its `deleted_at` may be stamped once); the add-on, suspension,
plan and usage tables only ever receive INSERTs. On PostgreSQL triggers enforce this (migration 0002).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import Money, UTCDateTime, utcnow
from backoffice.extensions import db

# BIGINT ids on PostgreSQL (these logs grow), INTEGER on SQLite (its rowid autoincrements only then).
BigId = BigInteger().with_variant(Integer, "sqlite")

ADDON_KINDS = ("enabled", "disabled")
SUSPENSION_KINDS = ("suspended", "resumed")
# Where a row came from: the state diff of a PUT, an explicit historical event, the backfill,
# or a DELETE.
SOURCES = ("state", "event", "backfill", "delete")
# Metered usage the platform reports (DOMAIN §5); the price book prices the same names.
METRICS = ("messages_in", "messages_out", "ai_tokens", "resource_hours")

_SOURCE_CHECK = "source IN ('state', 'event', 'backfill', 'delete')"


class Deployment(db.Model):
    """The lifecycle of one deployment: created once, deleted at most once (final-invoice anchor)."""

    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint("deleted_at IS NULL OR deleted_at >= created_at", name="deleted_after_created"),
        CheckConstraint("source IN ('state', 'backfill')", name="source"),
        Index("ix_deployments_account_id", "account_id", "created_at"),
        Index("ix_deployments_created_at", "created_at"),
    )

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(10))


class AddonEvent(db.Model):
    """An add-on ("skill") enabled or disabled; any number a day."""

    __tablename__ = "deployment_addon_events"
    __table_args__ = (
        CheckConstraint("kind IN ('enabled', 'disabled')", name="kind"),
        CheckConstraint(_SOURCE_CHECK, name="source"),
        # "Which add-ons were on at T" walks this index (see queries.addons_enabled_at).
        Index("ix_deployment_addon_events_lookup", "deployment_name", "addon", "occurred_at", "id"),
        Index("ix_deployment_addon_events_account", "account_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_name: Mapped[str] = mapped_column(ForeignKey("deployments.name"))
    account_id: Mapped[str] = mapped_column(String(64))
    addon: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(10))


class SuspensionEvent(db.Model):
    """A deployment suspended or resumed; a suspended deployment pays no base fee those days."""

    __tablename__ = "deployment_suspension_events"
    __table_args__ = (
        CheckConstraint("kind IN ('suspended', 'resumed')", name="kind"),
        CheckConstraint(_SOURCE_CHECK, name="source"),
        Index("ix_deployment_suspension_events_lookup", "deployment_name", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_name: Mapped[str] = mapped_column(ForeignKey("deployments.name"))
    account_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(10))


class PlanEvent(db.Model):
    """The deployment's plan from `occurred_at` on (the price book prices the plan key)."""

    __tablename__ = "deployment_plan_events"
    __table_args__ = (
        CheckConstraint(_SOURCE_CHECK, name="source"),
        Index("ix_deployment_plan_events_lookup", "deployment_name", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_name: Mapped[str] = mapped_column(ForeignKey("deployments.name"))
    account_id: Mapped[str] = mapped_column(String(64))
    plan: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(10))


class UsageRecord(db.Model):
    """One metered quantity; the platform's idempotency key makes a retried batch harmless."""

    __tablename__ = "usage_records"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        Index("ix_usage_records_deployment", "deployment_name", "metric", "occurred_at"),
        Index("ix_usage_records_account", "account_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    deployment_name: Mapped[str] = mapped_column(ForeignKey("deployments.name"))
    account_id: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Money())
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BackfillRun(db.Model):
    """A backfill snapshot as the platform (or an admin re-run) sent it, and what it inserted.
    The admin button re-runs the latest snapshot received from the platform."""

    __tablename__ = "usage_backfill_runs"
    __table_args__ = (
        CheckConstraint("trigger IN ('api', 'admin')", name="trigger"),
        Index("ix_usage_backfill_runs_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    trigger: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(254))
    # The snapshot itself for API runs; admin re-runs point at the run whose snapshot they used.
    snapshot: Mapped[dict | None] = mapped_column(JSON)
    snapshot_run_id: Mapped[int | None] = mapped_column(ForeignKey("usage_backfill_runs.id"))
    deployments_examined: Mapped[int] = mapped_column(Integer)
    lifecycle_inserted: Mapped[int] = mapped_column(Integer)
    events_inserted: Mapped[int] = mapped_column(Integer)
    suspension_events_inserted: Mapped[int] = mapped_column(Integer)

    def counts(self) -> dict:
        return {
            "deployments_examined": self.deployments_examined,
            "lifecycle_inserted": self.lifecycle_inserted,
            "events_inserted": self.events_inserted,
            "suspension_events_inserted": self.suspension_events_inserted,
        }
