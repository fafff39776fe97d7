"""The price book. Every price is a version valid from a day on, so re-running an old month uses the
prices of that month: the price of a key on day D is its row with the latest `valid_from` <= D."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
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
