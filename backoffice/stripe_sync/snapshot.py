"""Stripe's live objects as plain data, read by the one payload reader (backoffice/ledger/readers.py),
so the sync, the drift detector and the replayer read every API version alike."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from backoffice.ledger.readers import (  # noqa: F401 - the sync's and the drift detector's names
    FREE_PLAN,
    NO_SUBSCRIPTION,
    PAID_STATUSES,
    LiveInvoice,
    LiveSubscription,
    Price,
    ScheduledChange,
    current_subscription,
    minor_money,
    read_invoice,
    read_price,
    read_schedule,
    read_subscription,
    schedule_price_ids,
)


def money(minor: int | None, currency: str | None = None) -> Decimal:
    """Stripe's minor units of `currency` (cents when none is named) as exact money."""
    return minor_money(minor, currency)


def moment(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(int(ts), UTC)
