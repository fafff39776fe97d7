"""Reads for the dashboard, the banners and /api/v1/metrics/ (DOMAIN §3 "Reading MRR and revenue").

Every figure is one or two SQL aggregates: money is summed by the database as exact Decimal (the
Money type), days are bucketed in UTC by the database, and Python only walks daily buckets (at most
one per day). Nothing here loops over accounts. The all-time daily series (the ledger's MRR
changes, net revenue flows, logins) are read on PostgreSQL from summary tables that triggers keep
exact in every writer's transaction (backoffice.dashboard.models, migration 0009), so the first
request after a webhook is as fast as any other; the remaining counts are kept per process and
reused until their tables change (see "per-process caches" below and migration 0007).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import type_coerce
from sqlalchemy.orm import aliased

from backoffice.accounts.models import Account
from backoffice.dashboard import mrr
from backoffice.dashboard.models import LoginDaily, MrrDaily, RevenueDaily
from backoffice.dashboard.mrr import ZERO, Window, midnight
from backoffice.dbtypes import Money, utcnow
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import drain, rules
from backoffice.ledger.models import BillingEvent, Plan, Subscription
from backoffice.stripe.models import JobRun
from backoffice.users.models import Login, UserSession

RECENT_LIMIT = 8


# --- helpers -------------------------------------------------------------------------------

def _is_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _day(column):
    """The UTC day of a timestamp column, computed by the database."""
    if _is_postgres():
        return sa.func.date(sa.func.timezone("UTC", column), type_=sa.Date)
    return sa.func.date(column, type_=sa.Date)  # SQLite stores naive UTC


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _money_sum(expr):
    return type_coerce(sa.func.coalesce(sa.func.sum(expr), 0), Money())


def _bucketed(rows, first_day: date, days: int, zero) -> tuple:
    """(opening, [per-day sums]) from (day-or-None, sum) rows; None is 'before first_day'."""
    opening, per_day = zero, {}
    for day, value in rows:
        if day is None:
            opening += value
        else:
            per_day[_as_date(day)] = per_day.get(_as_date(day), zero) + value
    return opening, [per_day.get(first_day + timedelta(days=i), zero) for i in range(days)]


@dataclass
class Series:
    """Daily closing values of a window and of the period before it (same length)."""

    dates: list[date]
    values: list
    prior_dates: list[date]
    prior_values: list
    opening: object = ZERO  # the value when the current window opened

    @property
    def changes(self) -> list:
        """Per point: the value minus the prior period's value at the same position."""
        return [v - p for v, p in zip(self.values, self.prior_values, strict=True)]

    @property
    def last(self):
        return self.values[-1]


def _daily_totals(daily, value, window: Window, zero) -> tuple:
    """(opening, [per-day sums]) of `value` over `daily` (a selectable with a `day` column) for the
    prior period and the window: one GROUP BY, the days before the prior period folded into one row."""
    day = daily.c.day
    bucket = sa.case((day < window.prior_first_day, sa.null()), else_=day).label("bucket")
    rows = db.session.execute(sa.select(bucket, value).where(day <= window.today).group_by(bucket)).all()
    return _bucketed(rows, window.prior_first_day, 2 * window.days, zero)


def _series(window: Window, opening, per_day: list) -> Series:
    """Cumulative closing values over the prior period followed by the current window."""
    totals = mrr.cumulative(opening, per_day)
    n = window.days
    opening_current = totals[n - 1]
    return Series(window.dates(), totals[n:], window.prior_dates(), totals[:n], opening_current)


# --- per-process caches keyed on change markers ---------------------------------------------
# The counts over accounts, subscriptions and logins (tens of thousands of rows) change only when
# their table does. Each is kept per process under a cheap change marker read from the database,
# and for at most CACHE_SECONDS (a bound on staleness should a marker ever miss a change). Only
# small results are kept: a few counts, or ≤ one row per day. Measured without them (issue 19,
# tests/bench/test_dashboard_bench.py, 50,000 accounts, 1,000,000 logins, 2 cores): the KPI card
# took 206–240 ms at p95 and the whole dashboard 319–339 ms, against targets of 100 and 300; with
# them 21 and 108 ms.
CACHE_SECONDS = 300


def _cached(name, key, compute, exact: bool = False):
    """compute(), reused while `key` is unchanged (never reused when key is None), for at most
    CACHE_SECONDS unless the key is `exact`: read in the reader's own snapshot of the data it
    describes, so it cannot name data computed before a commit (the sequences of _marker can,
    for the instant between their last advance and the commit)."""
    if key is None:
        return compute()
    cache = current_app.extensions.setdefault("dashboard_cache", {})
    now = time.monotonic()
    entry = cache.get(name)
    if entry and entry[0] == key and (entry[3] or now - entry[1] < CACHE_SECONDS):
        return entry[2]
    value = compute()
    for stale in [k for k, e in list(cache.items()) if not e[3] and now - e[1] >= CACHE_SECONDS]:
        cache.pop(stale, None)
    cache[name] = (key, now, value, exact)
    return value


_MARKERS = {"payments": "dashboard_payments_version", "logins": "dashboard_logins_version",
            "subscriptions": "dashboard_subscriptions_version", "accounts": "dashboard_accounts_version"}


def _marker(*tables: str):
    """The change marker of some tables, in one statement: per table a sequence that every write
    advances (triggers of migration 0007, PostgreSQL). None (compute, do not cache) on SQLite, the
    embedded single-machine database, and inside a transaction that has written anything itself:
    what it reads may yet be rolled back."""
    if not _is_postgres():
        return None
    names = [_MARKERS[t] for t in tables]
    sql = ("SELECT pg_current_xact_id_if_assigned() IS NOT NULL, "
           + ", ".join(f"m{i}.last_value, m{i}.is_called" for i in range(len(names)))
           + " FROM " + ", ".join(f"{name} AS m{i}" for i, name in enumerate(names)))
    wrote, *marker = db.session.execute(sa.text(sql)).one()
    return None if wrote else (str(db.engine.url), *marker)


# --- MRR -----------------------------------------------------------------------------------

def forward_mrr_sql():
    """Forward MRR over the subscriptions table (the rule: ledger/rules.py)."""
    return rules.forward_mrr(rules.SQL, rules.sql_fields(Subscription))


def blended_mrr() -> Decimal:
    """Σ forward MRR of every current subscription, soft-deleted accounts included."""
    return _cached("blended_mrr", _marker("subscriptions"), lambda: db.session.execute(
        sa.select(_money_sum(forward_mrr_sql())).where(Subscription.is_current.is_(True))
    ).scalar_one())


def _mrr_changes(until: datetime | None):
    """Each delta-carrying ledger row with `change` = its new amount minus the previous
    delta-carrying row's new amount of the same subscription. Summing the changes up to a moment
    gives Σ over subscriptions of the latest new_amount (the DOMAIN's MRR on day D), and summing
    them by type gives movements that add up to the MRR change exactly."""
    b = BillingEvent
    amount = sa.func.coalesce(b.new_amount, b.committed_mrr)
    previous = sa.func.lag(amount).over(
        partition_by=(b.subscription_id, b.account_id), order_by=(b.occurred_at, b.id)
    )
    return (
        sa.select(b.occurred_at, b.type, (amount - sa.func.coalesce(previous, 0)).label("change"))
        .where(b.amount_delta.is_not(None), b.current(),
               b.occurred_at < until if until is not None else sa.true())
        .subquery("mrr_changes")
    )


# The MRR cards, the KPI and the mismatch banner all read the same thing: the ledger's MRR changes
# summed per UTC day, type and sign. PostgreSQL reads them from the summary its triggers keep
# (a few rows per day); SQLite, the embedded single-machine database, computes them from the ledger.
def _mrr_daily():
    """A selectable of (day, type, positive, change) rows: per key, Σ change is the sum of the
    ledger's MRR changes of that UTC day, type and sign (never one row per key: always sum)."""
    return MrrDaily.__table__ if _is_postgres() else _mrr_daily_from_ledger()


def _mrr_daily_from_ledger():
    """The same rows computed from the ledger: one per MRR-moving row."""
    c = _mrr_changes(None)
    return sa.select(_day(c.c.occurred_at).label("day"), c.c.type, (c.c.change > 0).label("positive"),
                     c.c.change.label("change")).subquery("mrr_daily")


def ledger_mrr_latest() -> Decimal:
    """MRR after the ledger's latest row (the mismatch banner's "ledger-latest")."""
    daily = _mrr_daily()
    return db.session.execute(sa.select(_money_sum(daily.c.change))).scalar_one()


def mrr_at(moment: datetime) -> Decimal:
    """MRR read from the ledger at `moment` (Σ latest new_amount per subscription before it)."""
    return mrr_at_moments(moment)[0]


def mrr_at_moments(*moments: datetime) -> tuple[Decimal, ...]:
    """MRR from the ledger at several moments. Midnights (UTC) read the daily summary."""
    if all(m == midnight(m.astimezone(UTC).date()) for m in moments):
        daily = _mrr_daily()
        columns = [_money_sum(sa.case((daily.c.day < m.astimezone(UTC).date(), daily.c.change), else_=0))
                   for m in moments]
        return tuple(db.session.execute(sa.select(*columns)).one())
    c = _mrr_changes(max(moments))
    columns = [_money_sum(sa.case((c.c.occurred_at < m, c.c.change), else_=0)) for m in moments]
    return tuple(db.session.execute(sa.select(*columns)).one())


def mrr_trend(window: Window) -> Series:
    """MRR at the end of each day of the window and of the prior period, from the ledger."""
    daily = _mrr_daily()
    opening, per_day = _daily_totals(daily, _money_sum(daily.c.change), window, ZERO)
    return _series(window, opening, per_day)


@dataclass
class Movements:
    opening: Decimal
    closing: Decimal
    buckets: dict[str, Decimal] = field(default_factory=dict)

    @property
    def change(self) -> Decimal:
        return self.closing - self.opening


def mrr_movements(window: Window) -> Movements:
    """New, expansion, contraction, churn, reactivation within the window; they sum to
    closing − opening exactly."""
    daily = _mrr_daily()
    in_window = (daily.c.day >= window.first_day).label("in_window")
    rows = db.session.execute(
        sa.select(in_window, daily.c.type, daily.c.positive, _money_sum(daily.c.change))
        .where(daily.c.day <= window.today).group_by(in_window, daily.c.type, daily.c.positive)).all()
    opening = sum((change for inside, _, _, change in rows if not inside), ZERO)
    buckets = mrr.movements((kind, change) for inside, kind, _, change in rows if inside)
    return Movements(opening, opening + sum(buckets.values(), ZERO), buckets)


# --- revenue -------------------------------------------------------------------------------

def _revenue_daily():
    """A selectable of (day, change) rows: per UTC day, Σ change is the day's net revenue flows
    ex-VAT: + each succeeded payment on its payment day, − what its credit note or refund took back
    (the credited part, ex-VAT: reversed_excluding_tax) on the reversal day (credit note, else
    refund, else payment day). PostgreSQL reads the summary its triggers keep;
    SQLite computes it from the payments."""
    return RevenueDaily.__table__ if _is_postgres() else _revenue_daily_from_payments()


def _revenue_daily_from_payments():
    """The same rows computed from the payments: one per flow."""
    t = PaymentTransaction
    adds = sa.select(t.date.label("at"), t.amount_excluding_tax.label("value")).where(t.status == "succeeded")
    reversal_day = sa.func.coalesce(t.credit_noted_at, t.refunded_at, t.date)
    subtracts = sa.select(reversal_day.label("at"), (-t.reversed_excluding_tax).label("value")).where(
        t.status == "succeeded", t.reversed_excluding_tax.is_not(None))
    flows = sa.union_all(adds, subtracts).subquery("flows")
    return sa.select(_day(flows.c.at).label("day"), flows.c.value.label("change")).subquery("revenue_daily")


def net_revenue() -> Decimal:
    """Lifetime net revenue ex-VAT: succeeded payments less what their credit notes and refunds
    took back (the sum of every daily flow)."""
    daily = _revenue_daily()
    return db.session.execute(sa.select(_money_sum(daily.c.change))).scalar_one()


def revenue_trend(window: Window) -> Series:
    """All-time cumulative net revenue at the end of each day: + on the payment day, − on the
    reversal day (credit note, else refund, else payment day). The last point is net_revenue()."""
    daily = _revenue_daily()
    opening, per_day = _daily_totals(daily, _money_sum(daily.c.change), window, ZERO)
    return _series(window, opening, per_day)


# --- accounts, users, plans ----------------------------------------------------------------

def account_growth(window: Window) -> tuple[Series, list[int], list[int]]:
    """Total (not deleted) accounts at the end of each day, and new accounts per day (current, prior)."""
    opening, per_day = _account_days(window)
    return _series(window, opening, per_day), per_day[window.days:], per_day[:window.days]


def _account_days(window: Window) -> tuple[int, list[int]]:
    """Live accounts created before the prior period, and per day of the prior period and the
    window (the growth card and the KPI tiles read the same rows)."""
    a = Account
    live = a.deleted_at.is_(None)  # ix_accounts_live_created_at: both parts read it index-only
    day = _day(a.created_at).label("day")
    before = sa.select(sa.null().label("day"), sa.func.count().label("n")).where(live, a.created_at < window.prior_start)
    daily = sa.select(day, sa.func.count()).where(
        live, a.created_at >= window.prior_start, a.created_at < window.end).group_by(day)
    rows = _cached(("account_days", window.prior_start, window.end), _marker("accounts"),
                   lambda: db.session.execute(sa.union_all(before, daily)).all())
    return _bucketed(rows, window.prior_first_day, 2 * window.days, 0)


def _live_accounts() -> int:
    """Accounts not deleted (the KPI tile and the plan distribution); index-only on
    ix_accounts_live_created_at."""
    a = Account
    return int(_cached("live_accounts", _marker("accounts"), lambda: db.session.execute(
        sa.select(sa.func.count()).select_from(a).where(a.deleted_at.is_(None))).scalar_one()))


def login_trend(window: Window) -> tuple[list[int], list[int], list[int]]:
    """Successful logins per day (current, prior) and failed logins per day (current)."""
    rows = _login_daily(window)
    ok = {d: n for d, outcome, n in rows if outcome == "success"}
    failed = {d: n for d, outcome, n in rows if outcome != "success"}
    return ([ok.get(d, 0) for d in window.dates()], [ok.get(d, 0) for d in window.prior_dates()],
            [failed.get(d, 0) for d in window.dates()])


def _login_daily(window: Window) -> list[tuple[date, str, int]]:
    """Logins per UTC day and outcome over the window and its prior period: from the summary the
    triggers keep on PostgreSQL, from the logins on SQLite."""
    if _is_postgres():
        d = LoginDaily
        stmt = (sa.select(d.day, d.outcome, sa.func.sum(d.logins))
                .where(d.day >= window.prior_first_day, d.day <= window.today).group_by(d.day, d.outcome))
    else:
        lg = Login
        day = _day(lg.at).label("day")
        stmt = (sa.select(day, lg.outcome, sa.func.count())
                .where(lg.at >= window.prior_start, lg.at < window.end).group_by(day, lg.outcome))
    return [(_as_date(d), outcome, int(n)) for d, outcome, n in db.session.execute(stmt)]


@dataclass
class PlanShare:
    plan: str
    name: str
    monthly_amount: Decimal | None
    accounts: int


def plan_distribution() -> list[PlanShare]:
    """Accounts (not deleted) per plan, cheapest first, each at the price per month most of its
    subscribers pay; no paid current subscription = free."""
    a, s = Account, Subscription
    # An account has at most one current subscription (uq_subscriptions_current_account), so the
    # free accounts are the live ones minus the paid ones: no join over every account, and the
    # few deleted accounts are a hashed NOT IN (ix_accounts_deleted).
    deleted = sa.select(a.id).where(a.deleted_at.is_not(None))
    paid = (sa.select(s.plan, s.price_amount, sa.func.count())
            .where(s.is_current.is_(True), s.price_amount > 0, s.account_id.not_in(deleted))
            .group_by(s.plan, s.price_amount))
    by_price = list(_cached("plan_distribution", _marker("subscriptions", "accounts"),
                            lambda: [(plan, price, int(n)) for plan, price, n in db.session.execute(paid)]))
    # A plan's price per month is what most of its subscribers pay (the cheapest of equals), not
    # the cheapest price the catalog ever saw for it (a yearly price's twelfth, a legacy price).
    paying: dict[str, tuple[int, Decimal]] = {}
    counts: dict[str, int] = {}
    for plan, price, n in by_price:
        counts[plan] = counts.get(plan, 0) + n
        if plan not in paying or (n, -price) > (paying[plan][0], -paying[plan][1]):
            paying[plan] = (n, price)
    rows = list(counts.items())
    free = _live_accounts() - sum(counts.values())
    if free:
        rows.append(("free", free))
    catalog = {
        key: (name, amount)
        for key, name, amount in db.session.execute(
            sa.select(Plan.plan_key, sa.func.min(Plan.name), type_coerce(sa.func.min(Plan.monthly_amount), Money()))
            .group_by(Plan.plan_key)
        )
    }
    shares = []
    for key, count in rows:
        name, amount = catalog.get(key, (None, None))
        if key in paying:
            amount = paying[key][1]
        if key == "free":
            amount = ZERO
        shares.append(PlanShare(key, name or key.replace("_", " ").title(), amount, count))
    return sorted(shares, key=lambda p: (p.monthly_amount is None, p.monthly_amount or ZERO, p.plan))


@dataclass
class Kpis:
    total_accounts: int
    new_accounts: int
    new_accounts_prior: int
    active_users: int
    active_users_prior: int
    active_sessions: int
    blended_mrr: Decimal | None = None
    mrr_opening: Decimal | None = None
    mrr_now: Decimal | None = None
    total_revenue: Decimal | None = None

    @property
    def mrr_change_percent(self) -> Decimal | None:
        if self.mrr_opening is None or self.mrr_now is None:
            return None
        return mrr.percent_change(self.mrr_opening, self.mrr_now)

    @property
    def new_accounts_change(self) -> int:
        return self.new_accounts - self.new_accounts_prior


def kpis(window: Window, billing: bool) -> Kpis:
    """The KPI tiles. Billing figures only when billing is enabled (nothing billing is queried otherwise)."""
    _, per_day = _account_days(window)  # the growth card's rows: new accounts per day
    new, new_prior = sum(per_day[window.days:]), sum(per_day[:window.days])
    users, users_prior = _active_users(window)
    result = Kpis(_live_accounts(), new, new_prior, users, users_prior, active_sessions())
    if billing:
        result.blended_mrr = blended_mrr()
        result.mrr_opening, result.mrr_now = mrr_at_moments(window.start, window.end)
        result.total_revenue = net_revenue()
    return result


def _distinct_users(start: datetime, end: datetime, *where):
    """How many users have a successful login in [start, end). DISTINCT in a subquery: hashed, not sorted."""
    lg = Login
    users = sa.select(lg.user_id).where(lg.outcome == "success", lg.at >= start, lg.at < end, *where).distinct()
    return sa.select(sa.func.count()).select_from(users.subquery()).scalar_subquery()


def _active_users(window: Window) -> tuple[int, int]:
    """Distinct users with a successful login in the window and in the prior period.

    Counting distinct users walks every login of both periods, so it is split at today's midnight:
    the past days (the prior period, and the window up to yesterday) are kept per process while
    none of their logins changes (_past_logins_marker); today's users not seen earlier in the
    window are counted apart, kept until any login changes: an ingest of today's logins costs a
    look-up per login of today, not a walk over the whole window."""
    lg = Login
    today = midnight(window.today)

    def past() -> tuple[int, int]:
        current, prior = db.session.execute(sa.select(
            _distinct_users(window.start, today), _distinct_users(window.prior_start, window.start))).one()
        return int(current), int(prior)

    def new_today() -> int:
        earlier = aliased(Login)
        seen = sa.exists().where(earlier.user_id == lg.user_id, earlier.outcome == "success",
                                 earlier.at >= window.start, earlier.at < today)
        return int(db.session.execute(sa.select(_distinct_users(today, window.end, ~seen))).scalar_one())

    current, prior = _cached(("active_users_past", window.days), _past_logins_marker(window), past, exact=True)
    marker = _marker("logins")
    today_key = None if marker is None else (marker, window.today)
    return current + _cached(("active_users_today", window.days), today_key, new_today), prior


def _past_logins_marker(window: Window):
    """What identifies the logins of the prior period and of the window before today: the day,
    and how many login rows were ever written on those days (the login summary's `writes`, which
    every insert, update and delete raises in the writer's own transaction: an exact key, so the
    past days' users are counted again only when one of those days changes, or on the next day).
    None where _marker is."""
    if not _is_postgres():
        return None
    d = LoginDaily
    wrote, writes = db.session.execute(
        sa.select(sa.func.pg_current_xact_id_if_assigned().is_not(None), sa.func.coalesce(sa.func.sum(d.writes), 0))
        .where(d.day >= window.prior_first_day, d.day < window.today)).one()
    return None if wrote else (str(db.engine.url), window.today, int(writes))


def active_sessions(now: datetime | None = None) -> int:
    now = now or utcnow()
    return db.session.execute(
        sa.select(sa.func.count()).select_from(UserSession).where(
            UserSession.revoked_at.is_(None), UserSession.last_seen_at >= now - timedelta(hours=24)
        )
    ).scalar_one()


# --- recent lists --------------------------------------------------------------------------

def recent_signups(limit: int = RECENT_LIMIT) -> list[Account]:
    return list(db.session.execute(
        sa.select(Account).where(Account.deleted_at.is_(None))
        .order_by(Account.created_at.desc(), Account.id.desc()).limit(limit)
    ).scalars())


def recent_billing_events(limit: int = RECENT_LIMIT) -> list:
    """(BillingEvent, account name) rows, newest first, NoOp rows hidden."""
    b = BillingEvent
    return list(db.session.execute(
        sa.select(b, Account.name).join(Account, Account.id == b.account_id)
        .where(b.type != "no_op", b.current()).order_by(b.occurred_at.desc(), b.id.desc()).limit(limit)
    ))


def recent_payments(limit: int = RECENT_LIMIT) -> list:
    """(PaymentTransaction, account name) rows, newest first."""
    t = PaymentTransaction
    return list(db.session.execute(
        sa.select(t, Account.name).join(Account, Account.id == t.account_id)
        .order_by(t.date.desc(), t.id.desc()).limit(limit)
    ))


# --- data-quality banners ------------------------------------------------------------------

REPLAY_BEHIND_BANNER_SECONDS = 60  # the ledger's lag behind the archive that raises a banner


@dataclass
class Banners:
    unsynced: int
    drift: int
    kpi_mrr: Decimal
    ledger_mrr: Decimal
    replay_pending: int = 0  # archived events of known accounts waiting for the replay
    replay_behind_seconds: float | None = None  # how long the oldest of them has waited
    drift_pass_failed: str | None = None  # why the latest finished drift pass did not complete

    @property
    def mrr_mismatch(self) -> bool:
        return not mrr.snapped_equal(self.kpi_mrr, self.ledger_mrr)

    @property
    def replay_behind(self) -> bool:
        return (self.replay_behind_seconds or 0) > REPLAY_BEHIND_BANNER_SECONDS

    @property
    def replay_behind_minutes(self) -> int:
        return int((self.replay_behind_seconds or 0) // 60)

    @property
    def clear(self) -> bool:
        return not (self.unsynced or self.drift or self.mrr_mismatch or self.replay_behind
                    or self.drift_pass_failed)


def banners() -> Banners:
    """Unsynced accounts (a paid subscription, no ledger rows), accounts with billing drift,
    and whether the Blended MRR tile disagrees with the ledger's latest MRR."""
    s, a = Subscription, Account
    # accounts.has_ledger_rows (kept by a trigger on the ledger, migration 0010) leaves only the
    # few live accounts without ledger rows to read (ix_accounts_without_ledger_rows); marking an
    # account updates it, which advances the accounts' change marker.
    unsynced = (sa.select(sa.func.count()).select_from(s).join(a, a.id == s.account_id)
                .where(s.is_current.is_(True), s.price_amount > 0, ~a.has_ledger_rows, a.deleted_at.is_(None)))
    # The current subscriptions with drift (ix_subscriptions_drift) of live accounts: the few deleted
    # accounts are a hashed NOT IN.
    drift = sa.select(sa.func.count()).select_from(s).where(
        s.is_current.is_(True), s.drift_detected.is_(True),
        s.account_id.not_in(sa.select(a.id).where(a.deleted_at.is_not(None))))
    unsynced, drift = _cached("banner_counts", _marker("subscriptions", "accounts"), lambda: tuple(
        db.session.execute(sa.select(unsynced.scalar_subquery(), drift.scalar_subquery())).one()))
    waiting = drain.backlog()
    latest_pass = db.session.execute(
        sa.select(JobRun.status, JobRun.error).where(JobRun.kind == "drift_pass", JobRun.status.in_(("done", "failed")))
        .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)).first()
    failed_pass = (latest_pass.error or "") if latest_pass is not None and latest_pass.status == "failed" else None
    return Banners(int(unsynced), int(drift), blended_mrr(), ledger_mrr_latest(),
                   waiting.pending, waiting.age_seconds(), failed_pass)
