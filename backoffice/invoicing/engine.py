"""The quote engine (DOMAIN §6 "One quote engine", "Billable days", "VAT"): pure functions of a
deployment's timeline for a month, the price book, the usage totals and the VAT decision → the
invoice lines. The same functions price a quote for a planned deployment and the month-end
invoice, so a quoted and an invoiced price cannot differ. No database, no Flask: plain data in,
plain data out.

Time is UTC and every interval is half-open, [start, end). A deployment is *running* while it
exists (created <= t < deleted) and is not suspended. A day counts when something ran for a
positive length of time within [00:00, next 00:00). Days are handled as proleptic ordinals
(`date.toordinal()`), the month as [first day, first day of the next month).
"""
from __future__ import annotations

import bisect
import calendar
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

ZERO = Decimal(0)
CENT = Decimal("0.01")
UNIT_PLACES = Decimal("0.0001")  # a daily price as printed; amounts are computed exactly
HUNDRED = Decimal(100)

KINDS = ("plan_base", "setup", "addon", "overage")
REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient (customer VAT id {vat_id})."
EXPORT_NOTE = "Export of services: not subject to VAT."


def cents(amount: Decimal) -> Decimal:
    """Rounded half-up to 0.01, as every line and the tax are (DOMAIN §6)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class PricingError(ValueError):
    """An account cannot be priced: a plan, add-on or metric in use has no price on a day, or its
    prices are in more than one currency. `key` names what is missing or mixed."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


# --- the period -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A calendar month (its bounds computed once: the engine reads them for every deployment)."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """`YYYY-MM`; ValueError otherwise."""
        if not isinstance(text, str) or len(text) != 7 or text[4] != "-" or not (
                text[:4].isdigit() and text[5:].isdigit()):
            raise ValueError(f"{text!r} is not a month written YYYY-MM")
        year, month = int(text[:4]), int(text[5:])
        if not (1 <= month <= 12 and year >= 1970):
            raise ValueError(f"{text!r} is not a month written YYYY-MM")
        return cls(year, month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @functools.cached_property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @functools.cached_property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    @functools.cached_property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), UTC)

    @functools.cached_property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    @functools.cached_property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    def previous(self) -> Period:
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)


# --- the price book, as plain versions ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PlanVersion:
    plan: str
    name: str
    currency: str
    monthly_base: Decimal
    setup_fee: Decimal
    valid_from: date
    included: Mapping[str, Decimal] = field(default_factory=dict)  # metric → quantity per month


@dataclass(frozen=True, slots=True)
class AddonVersion:
    addon: str
    period: str  # "day" | "month"
    price: Decimal
    currency: str
    valid_from: date


@dataclass(frozen=True, slots=True)
class MeteredVersion:
    metric: str
    unit_price: Decimal
    currency: str
    valid_from: date


class Versions:
    """The versions of one key, by `valid_from`: the price of day D is the version with the latest
    valid_from <= D."""

    __slots__ = ("_ordinals", "_versions")

    def __init__(self, versions: Iterable):
        ordered = sorted(versions, key=lambda v: v.valid_from)
        self._versions = ordered
        self._ordinals = [v.valid_from.toordinal() for v in ordered]

    def on(self, day: int):
        """The version valid on the day (an ordinal), or None."""
        i = bisect.bisect_right(self._ordinals, day)
        return self._versions[i - 1] if i else None

    def next_start(self, day: int) -> int | None:
        """The first day after `day` on which a newer version starts, or None."""
        i = bisect.bisect_right(self._ordinals, day)
        return self._ordinals[i] if i < len(self._ordinals) else None


@dataclass
class PriceBook:
    """Every version of every price, by key."""

    plans: dict[str, Versions]
    addons: dict[str, Versions]
    metered: dict[str, Versions]

    @classmethod
    def of(cls, plans: Iterable[PlanVersion] = (), addons: Iterable[AddonVersion] = (),
           metered: Iterable[MeteredVersion] = ()) -> PriceBook:
        def by_key(versions, key):
            grouped: dict[str, list] = {}
            for v in versions:
                grouped.setdefault(getattr(v, key), []).append(v)
            return {k: Versions(vs) for k, vs in grouped.items()}
        return cls(by_key(plans, "plan"), by_key(addons, "addon"), by_key(metered, "metric"))


# --- VAT ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VatDecision:
    rate: Decimal  # percent
    reason: str  # domestic | reverse_charge | export
    note: str
    customer_country: str | None
    customer_vat_id: str | None


def vat_decision(domestic_countries: Iterable[str], domestic_rate: Decimal,
                 customer_country: str | None, customer_vat_id: str | None) -> VatDecision:
    """Domestic customer → the domestic rate; foreign with a VAT id → 0 % reverse charge (the note
    names the id); foreign without → 0 % export. A customer without a country is domestic."""
    country = (customer_country or "").strip().upper() or None
    vat_id = (customer_vat_id or "").strip() or None
    domestic = {c.strip().upper() for c in domestic_countries if c.strip()}
    if country is None or country in domestic:
        return VatDecision(Decimal(domestic_rate), "domestic", "", country, vat_id)
    if vat_id:
        return VatDecision(ZERO, "reverse_charge", REVERSE_CHARGE_NOTE.format(vat_id=vat_id), country, vat_id)
    return VatDecision(ZERO, "export", EXPORT_NOTE, country, None)


# --- a deployment's timeline ----------------------------------------------------------------

@dataclass
class Timeline:
    """What a deployment's append-only logs say, as plain (time, value) events in time order:
    its plan from each moment on, each add-on enabled (True) or disabled (False), suspended
    (True) or resumed (False)."""

    deployment: str
    created_at: datetime
    deleted_at: datetime | None = None
    plans: Sequence[tuple[datetime, str | None]] = ()
    addons: Sequence[tuple[datetime, str, bool]] = ()
    suspensions: Sequence[tuple[datetime, bool]] = ()


class Line(NamedTuple):
    """One invoice (or quote) line, with the evidence a customer would ask for. A NamedTuple, not
    a frozen dataclass, measured: the frozen dataclass's constructor sets each field through
    object.__setattr__ (3.0 µs a line against 1.3, timeit), and 20,000 deployment-months make
    100,000 lines; tests/bench/test_engine_bench.py went from 18,638–18,674 deployment-months/s
    (medians of two runs) to 22,558–23,335 with it, and issue 20's target is 20,000."""

    kind: str  # plan_base | setup | addon | overage
    deployment: str
    description: str
    quantity: Decimal
    unit: str  # day | fee | the metric's unit
    unit_price: Decimal
    amount: Decimal
    currency: str
    key: str  # the plan, add-on or metric priced
    metric: str | None = None
    price_valid_from: date | None = None
    days: tuple[tuple[date, date], ...] = ()  # the billable days as (first, last) runs (plan_base, addon)
    monthly_price: Decimal | None = None  # a monthly price converted to days
    used: Decimal | None = None  # overage: the metered total
    included: Decimal | None = None  # overage: the allowance of the plan on the last billable day

    def dates(self) -> list[date]:
        """Every billable day of the line."""
        return [date.fromordinal(d) for first, last in self.days
                for d in range(first.toordinal(), last.toordinal() + 1)]


@dataclass(frozen=True)
class Quote:
    """Lines plus their subtotal, tax and total, under one VAT decision and one currency."""

    lines: tuple[Line, ...]
    currency: str | None
    vat: VatDecision
    subtotal: Decimal
    tax: Decimal
    total: Decimal


def _ordinal_at(moment: datetime) -> int:
    return moment.date().toordinal()


def _midnight(ordinal: int) -> datetime:
    return datetime.combine(date.fromordinal(ordinal), time(), UTC)


def _days_of(start: datetime, end: datetime) -> range:
    """The days (ordinals) on which [start, end) has a positive length."""
    if end <= start:
        return range(0)
    last = end.date().toordinal()
    if end.hour == end.minute == end.second == end.microsecond == 0:
        last -= 1  # ends at 00:00: that day does not count
    return range(start.date().toordinal(), last + 1)


def _days_within(intervals: list[tuple[datetime, datetime]]) -> list[int]:
    """The sorted days (ordinals) on which any of the (sorted, disjoint) intervals has a positive
    length; one interval's days are its range already (the common case, taken without a set)."""
    if len(intervals) == 1:
        return list(_days_of(*intervals[0]))
    return sorted({d for start, end in intervals for d in _days_of(start, end)})


def _intervals(toggles: Sequence[tuple[datetime, bool]], on_at_start: bool,
               start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The [from, to) intervals within [start, end) during which a state toggled on (True) and
    off (False) by `toggles` (in time order) is on; `on_at_start` is its state before them."""
    found = []
    on, since = on_at_start, start
    for at, state in toggles:
        if at >= end:
            break
        if state == on:
            continue
        at = max(at, start)
        if on and at > since:
            found.append((since, at))
        on, since = state, at
    if on and end > since:
        found.append((since, end))
    return found


def _intersect(a: list[tuple[datetime, datetime]], b: list[tuple[datetime, datetime]]) -> list:
    found, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            found.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return found


def running_intervals(timeline: Timeline, period: Period) -> list[tuple[datetime, datetime]]:
    """When the deployment ran within the month: existing and not suspended."""
    start = max(period.start, timeline.created_at)
    end = period.end if timeline.deleted_at is None else min(period.end, timeline.deleted_at)
    if end <= start:
        return []
    suspensions = sorted(timeline.suspensions, key=lambda e: e[0])
    before = [suspended for at, suspended in suspensions if at <= start]
    return _intervals([(at, not suspended) for at, suspended in suspensions if at > start],
                      not (before and before[-1]), start, end)


def _plan_at(plans: Sequence[tuple[datetime, str | None]], moment: datetime, inclusive: bool) -> str | None:
    """The plan in force just before `moment` (or at it, `inclusive`)."""
    plan = None
    for at, value in plans:
        if at < moment or (inclusive and at == moment):
            plan = value
        else:
            break
    return plan


def _billable_days(running: list[tuple[datetime, datetime]]) -> dict[int, datetime]:
    """Each billable day (ordinal) → the end of the deployment's running time within it."""
    ends: dict[int, datetime] = {}
    for start, end in running:
        for day in _days_of(start, end):
            ends[day] = min(end, _midnight(day + 1))
    return ends


def _price(versions: Versions | None, day: int, key: str, what: str):
    version = versions.on(day) if versions is not None else None
    if version is None:
        raise PricingError(key, f"no price for {what} {key!r} on {date.fromordinal(day).isoformat()}")
    return version


def _by_version(versions: Versions | None, days: list[int], key: str, what: str) -> list[tuple[object, list[int]]]:
    """Sorted days split where a new price version starts: (version, its days) in order."""
    found, i = [], 0
    while i < len(days):
        version = _price(versions, days[i], key, what)
        following = versions.next_start(days[i])
        j = len(days) if following is None else bisect.bisect_left(days, following, i)
        found.append((version, days[i:j]))
        i = j
    return found


def price_deployment(timeline: Timeline, period: Period, book: PriceBook,
                     usage: Mapping[str, Decimal] | None = None) -> list[Line]:
    """The lines of one deployment for the month: its base fee per plan and price version, the
    setup fee in the month it was created, each add-on per price version, and the overage per
    metric. Raises PricingError for a plan, add-on or metric in use without a price."""
    dim = period.days
    running = running_intervals(timeline, period)
    lines: list[Line] = []
    name = timeline.deployment
    plans = sorted(timeline.plans, key=lambda p: p[0])

    # Base fee: the plan of a day is the plan at the end of that day's running time.
    by_plan: dict[str, list[int]] = {}
    if running and not any(running[0][0] < at < running[-1][1] for at, _ in plans):
        plan = _plan_at(plans, running[0][0], inclusive=True)  # one plan all month
        if plan is not None:
            by_plan[plan] = _days_within(running)
    else:
        for day, end in sorted(_billable_days(running).items()):
            plan = _plan_at(plans, end, inclusive=False)
            if plan is not None:
                by_plan.setdefault(plan, []).append(day)
    last_version, last_day = None, -1
    for plan, days in by_plan.items():
        for version, group in _by_version(book.plans.get(plan), days, plan, "the plan"):
            lines.append(_daily_line("plan_base", name, f"{version.name} ({plan})", group, version.monthly_base,
                                     "month", dim, version.currency, plan, version.valid_from))
            if group[-1] > last_day:
                last_version, last_day = version, group[-1]

    # Setup fee: once, in the month of creation, at the plan it was created with.
    if period.start <= timeline.created_at < period.end:
        plan = _plan_at(plans, timeline.created_at, inclusive=True) or next(
            (p for at, p in plans if p is not None), None)
        if plan is not None:
            day = _ordinal_at(timeline.created_at)
            version = _price(book.plans.get(plan), day, plan, "the plan")
            if version.setup_fee > 0:
                lines.append(Line("setup", name, f"Setup fee, {version.name} ({plan})", Decimal(1), "fee",
                                  version.setup_fee, cents(version.setup_fee), version.currency, plan,
                                  price_valid_from=version.valid_from))

    # Add-ons: each day on which one was enabled while the deployment ran.
    if running:
        by_addon: dict[str, list[tuple[datetime, bool]]] = {}
        for at, addon, enabled in sorted(timeline.addons, key=lambda a: a[0]):
            by_addon.setdefault(addon, []).append((at, enabled))
        for addon in sorted(by_addon):
            toggles = by_addon[addon]
            before = [state for at, state in toggles if at <= period.start]
            enabled = _intervals([t for t in toggles if t[0] > period.start], bool(before and before[-1]),
                                 period.start, period.end)
            days = _days_within(_intersect(enabled, running))
            for version, group in _by_version(book.addons.get(addon), days, addon, "the add-on"):
                lines.append(_daily_line("addon", name, f"Add-on {addon}", group, version.price, version.period,
                                         dim, version.currency, addon, version.valid_from))

    # Overage: over the allowance of the plan on the last billable day (not prorated).
    for metric in sorted(usage or {}):
        used = Decimal(usage[metric])
        included = Decimal(last_version.included.get(metric, ZERO)) if last_version is not None else ZERO
        over = used - included
        if over <= 0:
            continue
        day = last_day if last_day >= 0 else period.first_day.toordinal() + dim - 1
        version = _price(book.metered.get(metric), day, metric, "the metric")
        lines.append(Line("overage", name, f"{metric} over the allowance", over, metric, version.unit_price,
                          cents(over * version.unit_price), version.currency, metric, metric=metric,
                          price_valid_from=version.valid_from, used=used, included=included))
    return lines


def _daily_line(kind: str, deployment: str, description: str, days: list[int], price: Decimal, per: str,
                days_in_month: int, currency: str, key: str, valid_from: date) -> Line:
    """Days at a price per day, or per month converted as price / days in the month, computed
    exactly and rounded once."""
    count = Decimal(len(days))
    if per == "day":
        amount, unit_price, monthly = count * price, price, None
    else:
        amount, monthly = count * price / days_in_month, price
        unit_price = (price / days_in_month).quantize(UNIT_PLACES, rounding=ROUND_HALF_UP)
    return Line(kind, deployment, description, count, "day", unit_price, cents(amount), currency, key,
                price_valid_from=valid_from, days=_runs(days), monthly_price=monthly)


def _runs(days: list[int]) -> tuple[tuple[date, date], ...]:
    """Sorted day ordinals as runs of consecutive days, (first, last) dates."""
    if days[-1] - days[0] + 1 == len(days):  # consecutive (distinct and sorted): one run
        return ((date.fromordinal(days[0]), date.fromordinal(days[-1])),)
    runs, start = [], 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i] != days[i - 1] + 1:
            runs.append((date.fromordinal(days[start]), date.fromordinal(days[i - 1])))
            start = i
    return tuple(runs)


def total(lines: Sequence[Line], vat: VatDecision) -> Quote:
    """Subtotal = Σ lines; tax = subtotal × rate, rounded half-up; total = subtotal + tax. Every line
    shares one currency (PricingError naming the second one otherwise)."""
    currencies = []
    for line in lines:
        if line.currency not in currencies:
            currencies.append(line.currency)
    if len(currencies) > 1:
        raise PricingError(currencies[1], f"prices in more than one currency: {', '.join(currencies)}")
    subtotal = sum((line.amount for line in lines), ZERO)
    tax = cents(subtotal * vat.rate / HUNDRED)
    return Quote(tuple(lines), currencies[0] if currencies else None, vat, subtotal, tax, subtotal + tax)


def price_account(timelines: Iterable[Timeline], period: Period, book: PriceBook,
                  usage: Mapping[str, Mapping[str, Decimal]], vat: VatDecision) -> Quote:
    """One account's month: every deployment's lines (grouped by deployment, in name order) and
    their total under the account's VAT decision. `usage`: deployment → metric → total."""
    lines: list[Line] = []
    for timeline in sorted(timelines, key=lambda t: t.deployment):
        lines += price_deployment(timeline, period, book, usage.get(timeline.deployment))
    return total(lines, vat)
