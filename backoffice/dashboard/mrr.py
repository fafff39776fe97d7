"""MRR arithmetic over plain data (DOMAIN §3 "Reading MRR and revenue"): forward MRR, the
movement bucket of a ledger row, percent changes, reporting windows. No database here; the SQL
in queries.py applies the same rules (and its tests pin the two together)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from backoffice.ledger import classifier, rules

ZERO = Decimal(0)
PERIODS = (7, 30, 90)

# Movement buckets, in display order.
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation")
_BUCKET = {
    "subscription_created": "new",
    "subscription_upgraded": "expansion",
    "subscription_downgraded": "contraction",
    "subscription_downgrade_scheduled": "contraction",
    "subscription_cancelled": "churn",
    "subscription_immediately_cancelled": "churn",
    "subscription_suspended": "churn",
    "subscription_expired": "churn",
    "subscription_reactivated": "reactivation",
}


def forward_mrr(price: Decimal | None, cancel_at_period_end: bool, scheduled_plan: str | None = None,
                scheduled_price: Decimal | None = None, status: str | None = None) -> Decimal:
    """A live subscription's forward MRR, by the classifier's own rule (one formula for the ledger,
    the KPI and the mismatch check): 0 without a price, before activation (trialing/incomplete) or
    while cancelling; the scheduled price if a downgrade is queued; else the current price."""
    return classifier.forward_mrr(classifier.SubscriptionState(
        price=price if price is not None else ZERO,
        cancel_at_period_end=cancel_at_period_end,
        scheduled_plan=scheduled_plan,
        scheduled_price=scheduled_price,
        awaiting_activation=status in rules.NOT_STARTED_STATUSES,
    ))


def movement_bucket(event_type: str, change: Decimal) -> str:
    """The movement a delta-carrying ledger row counts as. A DowngradeCancelled is expansion when
    it raises MRR; any other row that moves MRR (an Unclassified one, a negative DowngradeCancelled)
    lands in the bucket its sign suggests, so the buckets always add up to the MRR change."""
    bucket = _BUCKET.get(event_type)
    if bucket is not None:
        return bucket
    return "expansion" if change > 0 else "contraction"


def movements(rows: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Sums (type, change) pairs into the five buckets."""
    out = {name: ZERO for name in MOVEMENTS}
    for event_type, change in rows:
        if change:
            out[movement_bucket(event_type, change)] += change
    return out


def percent_change(old: Decimal | int, new: Decimal | int) -> Decimal | None:
    """Change in percent, one decimal, half up; None when there is nothing to compare with."""
    old, new = Decimal(old), Decimal(new)
    if old == 0:
        return None
    return ((new - old) * 100 / old).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def cumulative(opening: Decimal | int, changes: Sequence[Decimal | int]) -> list:
    """Running totals: the value at the end of each day, starting from `opening`."""
    out, total = [], opening
    for change in changes:
        total += change
        out.append(total)
    return out


def snapped_equal(a: Decimal, b: Decimal, tolerance: Decimal = Decimal("0.01")) -> bool:
    """Two MRR figures agree when they differ by at most a cent (rounding in Stripe's amounts)."""
    return abs(a - b) <= tolerance


@dataclass(frozen=True)
class Window:
    """The last `days` UTC days up to and including `today`, and the period just before it."""

    days: int
    today: date

    @classmethod
    def ending(cls, days: int, now: datetime) -> Window:
        return cls(days, now.astimezone(UTC).date())

    @property
    def first_day(self) -> date:
        return self.today - timedelta(days=self.days - 1)

    @property
    def prior_first_day(self) -> date:
        return self.first_day - timedelta(days=self.days)

    @property
    def start(self) -> datetime:
        return midnight(self.first_day)

    @property
    def end(self) -> datetime:
        """Exclusive: the start of tomorrow."""
        return midnight(self.today + timedelta(days=1))

    @property
    def prior_start(self) -> datetime:
        return midnight(self.prior_first_day)

    def dates(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]

    def prior_dates(self) -> list[date]:
        return [self.prior_first_day + timedelta(days=i) for i in range(self.days)]


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
