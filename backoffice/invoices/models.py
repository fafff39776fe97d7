from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.dbtypes import Money, UTCDateTime
from backoffice.extensions import db
from backoffice.ledger.models import CURRENCY_CHECK
from backoffice.ledger.readers import reversed_excluding_tax


class PaymentTransaction(db.Model):
    """One per Stripe invoice, projected by the replayer from invoice, charge, refund and
    credit-note payloads."""

    __tablename__ = "payment_transactions"
    __table_args__ = (
        CheckConstraint(CURRENCY_CHECK, name="currency"),
        CheckConstraint(
            "status IN ('draft', 'open', 'succeeded', 'failed', 'void', 'uncollectible')",
            name="status",
        ),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("amount_excluding_tax >= 0", name="amount_excluding_tax_non_negative"),
        CheckConstraint("tax_amount >= 0", name="tax_non_negative"),
        CheckConstraint("invoice_total >= 0", name="invoice_total_non_negative"),
        CheckConstraint("amount_from_credit >= 0", name="amount_from_credit_non_negative"),
        CheckConstraint("reversed_excluding_tax >= 0 AND reversed_excluding_tax <= amount_excluding_tax",
                        name="reversed_within_the_payment"),
        Index("ix_payment_transactions_account_date", "account_id", "date"),
        # The dashboard's revenue reads (issue 5): succeeded payments only, index-only.
        Index("ix_payment_transactions_revenue", "date",
              postgresql_include=["amount_excluding_tax", "reversed_excluding_tax", "credit_noted_at", "refunded_at"],
              postgresql_where=db.text("status = 'succeeded'"), sqlite_where=db.text("status = 'succeeded'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255))
    number: Mapped[str | None] = mapped_column(String(64))
    plan: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(15))
    date: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money())  # paid, incl. VAT
    amount_excluding_tax: Mapped[Decimal] = mapped_column(Money())
    tax_amount: Mapped[Decimal] = mapped_column(Money())
    invoice_total: Mapped[Decimal] = mapped_column(Money())
    amount_from_credit: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    invoice_url: Mapped[str | None] = mapped_column(String(500))
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refund_amount: Mapped[Decimal | None] = mapped_column(Money())
    credit_noted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    credit_note_url: Mapped[str | None] = mapped_column(String(500))
    credit_note_amount: Mapped[Decimal | None] = mapped_column(Money())
    # Ex-VAT revenue the credit note or refund takes back (readers.reversed_excluding_tax): the
    # credited part, pro rata; null when nothing reversed the payment.
    reversed_excluding_tax: Mapped[Decimal | None] = mapped_column(Money())


@event.listens_for(PaymentTransaction, "before_insert")
@event.listens_for(PaymentTransaction, "before_update")
def _taken_back(_mapper, _connection, tx: PaymentTransaction) -> None:
    """A row written through the ORM (a sync's live invoices) keeps what its reversal takes back
    in step; the replay writes its rows in bulk and sets it itself (ledger/projections.Payments)."""
    tx.reversed_excluding_tax = reversed_excluding_tax(
        {c: getattr(tx, c) for c in ("currency", "amount_excluding_tax", "tax_amount", "credit_noted_at",
                                     "credit_note_url", "credit_note_amount", "refunded_at", "refund_amount")})
