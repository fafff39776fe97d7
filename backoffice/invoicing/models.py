"""The price book, the month-end runs and the platform invoices they draft. Every price is a version
valid from a day on, so re-running an old month uses the prices of that month: the price of a key
on day D is its row with the latest `valid_from` <= D."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backoffice.dbtypes import Money, UnitPrice, UTCDateTime, utcnow
from backoffice.extensions import db

ADDON_PERIODS = ("day", "month")
DEFAULT_SELLER_COUNTRY = "CH"
DEFAULT_DOMESTIC_COUNTRIES = "CH,LI"
DEFAULT_DOMESTIC_RATE = Decimal("8.1")  # percent


class PlanPrice(db.Model):
    """A deployment plan's monthly base fee, setup fee and included quantities, from a day on."""

    __tablename__ = "price_plans"
    __table_args__ = (
        UniqueConstraint("plan", "valid_from"),
        CheckConstraint("monthly_base >= 0", name="monthly_base_non_negative"),
        CheckConstraint("setup_fee >= 0", name="setup_fee_non_negative"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    monthly_base: Mapped[Decimal] = mapped_column(Money())
    setup_fee: Mapped[Decimal] = mapped_column(Money())
    valid_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    allowances: Mapped[list[PlanAllowance]] = relationship(
        back_populates="plan_price", cascade="all, delete-orphan", order_by="PlanAllowance.metric",
        lazy="selectin",
    )


class PlanAllowance(db.Model):
    """The quantity of a metric a plan includes each month (overage is billed beyond it)."""

    __tablename__ = "price_plan_allowances"
    __table_args__ = (
        UniqueConstraint("price_plan_id", "metric"),
        CheckConstraint("included_quantity >= 0", name="included_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    price_plan_id: Mapped[int] = mapped_column(ForeignKey("price_plans.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(40))
    included_quantity: Mapped[Decimal] = mapped_column(Money())
    plan_price: Mapped[PlanPrice] = relationship(back_populates="allowances")


class AddonPrice(db.Model):
    """An add-on's price per day or per month (monthly converts to daily as price / days in month)."""

    __tablename__ = "price_addons"
    __table_args__ = (
        UniqueConstraint("addon", "valid_from"),
        CheckConstraint("period IN ('day', 'month')", name="period"),
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    addon: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(5))
    price: Mapped[Decimal] = mapped_column(UnitPrice())
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MeteredPrice(db.Model):
    """The unit price of a metered metric beyond the plan's included quantity."""

    __tablename__ = "price_metered"
    __table_args__ = (
        UniqueConstraint("metric", "valid_from"),
        CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(40))
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice())
    currency: Mapped[str] = mapped_column(String(3))
    valid_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class VatSetting(db.Model):
    """The seller's country, the countries taxed at the domestic rate, and that rate in percent."""

    __tablename__ = "price_vat_settings"
    __table_args__ = (
        UniqueConstraint("valid_from"),
        # "< 100" is checked in code: Money is stored scaled on SQLite, so only "0" compares alike.
        CheckConstraint("domestic_rate >= 0", name="rate_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seller_country: Mapped[str] = mapped_column(String(2))
    domestic_countries: Mapped[str] = mapped_column(String(100))  # "CH,LI"
    domestic_rate: Mapped[Decimal] = mapped_column(Money())
    valid_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


INVOICE_STATUSES = ("draft", "issued", "void")
RUN_TRIGGERS = ("cli", "page", "api", "schedule")


class InvoicingRun(db.Model):
    """One month-end run of a period and what it did: accounts examined, invoices created and
    rebuilt, accounts skipped (with why) and failed (with the account and the reason), and the
    total of the drafts it wrote per currency."""

    __tablename__ = "invoicing_runs"
    __table_args__ = (Index("ix_invoicing_runs_started", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    account_id: Mapped[str | None] = mapped_column(String(64))  # --account: only this one
    trigger: Mapped[str] = mapped_column(String(10))  # cli | page | api | schedule
    actor: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default="running")  # running | done | failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    examined: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    rebuilt: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    # {"skipped": {reason: count}, "failures": [{"account_id", "reason"}], "totals": {currency: "0.00"}}
    summary: Mapped[dict] = mapped_column(JSON, default=dict)


class PlatformInvoice(db.Model):
    """Backoffice's own invoice of an account for a month (DOMAIN §6): one per account and period,
    which the database enforces. The VAT decision and the customer's billing details are frozen
    into it when it is drafted."""

    __tablename__ = "platform_invoices"
    __table_args__ = (
        UniqueConstraint("account_id", "period"),
        Index("ix_platform_invoices_period", "period", "account_id"),
        CheckConstraint("status IN ('draft', 'issued', 'void')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    status: Mapped[str] = mapped_column(String(10), default="draft")
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(Money())
    tax: Mapped[Decimal] = mapped_column(Money())
    total: Mapped[Decimal] = mapped_column(Money())
    vat_rate: Mapped[Decimal] = mapped_column(Money())  # percent
    vat_reason: Mapped[str] = mapped_column(String(20))  # domestic | reverse_charge | export
    vat_note: Mapped[str] = mapped_column(Text, default="")
    seller_country: Mapped[str] = mapped_column(String(2))
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_address: Mapped[str] = mapped_column(Text, default="")  # the billing address, one line each
    customer_country: Mapped[str | None] = mapped_column(String(2))
    customer_vat_id: Mapped[str | None] = mapped_column(String(40))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("invoicing_runs.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lines: Mapped[list[PlatformInvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="PlatformInvoiceLine.position",
        passive_deletes=True)


class PlatformInvoiceLine(db.Model):
    """A line as the quote engine computed it, with its evidence: the billable days as runs of
    dates, the monthly price a daily line was converted from, the metered total and allowance of
    an overage line, and the valid-from day of the price version used."""

    __tablename__ = "platform_invoice_lines"
    __table_args__ = (
        Index("ix_platform_invoice_lines_invoice", "invoice_id", "position"),
        CheckConstraint("kind IN ('plan_base', 'setup', 'addon', 'overage')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("platform_invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    deployment: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str | None] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(100))  # the plan, add-on or metric priced
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[Decimal] = mapped_column(Money())
    unit: Mapped[str] = mapped_column(String(40))
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice())
    amount: Mapped[Decimal] = mapped_column(Money())
    price_valid_from: Mapped[date | None] = mapped_column(Date)
    days: Mapped[list] = mapped_column(JSON, default=list)  # [["2026-11-17", "2026-11-30"], ...]
    monthly_price: Mapped[Decimal | None] = mapped_column(UnitPrice())
    used: Mapped[Decimal | None] = mapped_column(Money())
    included: Mapped[Decimal | None] = mapped_column(Money())
    invoice: Mapped[PlatformInvoice] = relationship(back_populates="lines")
