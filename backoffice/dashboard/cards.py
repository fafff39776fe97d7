"""The dashboard's cards: for each, which queries it reads and which figure it draws.

A card is its own fragment URL (/dashboard/cards/<name>), so each one loads, fails and
refreshes on its own. Cards marked `billing` are neither shown nor queried when billing is off.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

from flask import current_app
from flask_babel import format_date, format_percent, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from backoffice.dashboard import figures, queries
from backoffice.dashboard.mrr import MOVEMENTS, Window
from backoffice.i18n import money, number, signed_money


def signed_number(value: int) -> str:
    if value > 0:
        return "+" + number(value)
    if value < 0:
        return "−" + number(-value)
    return number(0)


@dataclass(frozen=True)
class Card:
    name: str
    title: object
    load: Callable[[Window], dict]
    billing: bool = False
    wide: bool = False

    @property
    def block(self) -> str:
        return "card_" + self.name.replace("-", "_")


def signed_percent(value) -> str:
    """+25.0% / +25,0 %: one decimal, in the locale's own percent pattern."""
    pattern = get_locale().percent_formats[None].pattern.replace("#,##0", "#,##0.0", 1)
    text = format_percent(abs(value) / 100, pattern)
    return ("+" if value > 0 else "−" if value < 0 else "") + text


def _kpis(w: Window, billing: bool) -> dict:
    k = queries.kpis(w, billing)
    change = k.mrr_change_percent
    return {"k": k, "new_change": signed_number(k.new_accounts_change),
            "mrr_change": None if change is None else signed_percent(change)}


def _medium_date(d) -> str:
    return format_date(d, "medium")


_FORMATS: dict[str, Callable] = {"money": money, "signed_money": signed_money, "date": _medium_date,
                                 "number": number, "signed_number": signed_number}


@lru_cache(maxsize=20_000)
def _formatted(kind: str, locale: str, currency: str, value) -> str:
    return _FORMATS[kind](value)


def _memo(kind: str) -> Callable:
    """Babel's formatting costs ~0.1 ms a call and a 90-day chart needs several hundred (every date,
    every amount, every change): each distinct (locale, currency, value) is formatted once per
    process. The output depends on nothing else."""
    locale, currency = str(get_locale()), current_app.config["PLATFORM_CURRENCY"]
    return partial(_formatted, kind, locale, currency)


def _money_series(s: queries.Series, title: str, y_title: str, area: bool = False) -> dict:
    fmt, signed, day = _memo("money"), _memo("signed_money"), _memo("date")
    fig = figures.trend(title, y_title, s.dates, s.values, s.prior_dates, s.prior_values, fmt, signed,
                        area=area, date_fmt=day)
    rows = [(day(d), fmt(v), day(pd), fmt(p), signed(v - p), v - p)
            for d, v, pd, p in zip(s.dates, s.values, s.prior_dates, s.prior_values, strict=True)]
    return {"series": s, "figure": fig, "rows": rows, "last": fmt(s.last), "change": s.last - s.opening,
            "change_text": signed(s.last - s.opening)}


def _mrr_trend(w: Window) -> dict:
    return _money_series(queries.mrr_trend(w), _("MRR per day"), _("MRR"))


def _revenue_trend(w: Window) -> dict:
    return _money_series(queries.revenue_trend(w), _("Cumulative net revenue (ex-VAT)"), _("Revenue"), area=True)


MOVEMENT_LABELS = {
    "new": _l("New"),
    "expansion": _l("Expansion"),
    "contraction": _l("Contraction"),
    "churn": _l("Churn"),
    "reactivation": _l("Reactivation"),
}


def _movements(w: Window) -> dict:
    m = queries.mrr_movements(w)
    labels = [str(MOVEMENT_LABELS[k]) for k in MOVEMENTS]
    values = [m.buckets[k] for k in MOVEMENTS]
    period = _("%(first)s – %(last)s", first=format_date(w.first_day, "medium"), last=format_date(w.today, "medium"))
    fig = figures.bars(_("MRR movements"), _("Movement"), _("Change in MRR"), labels, values,
                       [signed_money(v) for v in values], colors=[figures.tone(v) for v in values],
                       hover_title=[f"{label} · {period}" for label in labels])
    return {"m": m, "labels": dict(zip(MOVEMENTS, labels, strict=True)), "figure": fig}


def _plan_distribution(w: Window) -> dict:
    shares = queries.plan_distribution()
    total = sum(p.accounts for p in shares)
    fig = figures.bars(_("Accounts per plan"), _("Plan"), _("Accounts"), [p.name for p in shares],
                       [p.accounts for p in shares],
                       [_("%(count)s accounts", count=number(p.accounts)) for p in shares])
    return {"shares": shares, "total": total, "figure": fig}


def _growth(w: Window) -> dict:
    s, new, new_prior = queries.account_growth(w)
    num, day = _memo("number"), _memo("date")
    fig = figures.trend(_("Accounts over time"), _("Accounts"), s.dates, s.values, s.prior_dates, s.prior_values,
                        num, _memo("signed_number"), date_fmt=day)
    rows = [(day(d), num(v), num(n), num(p)) for d, v, n, p in zip(s.dates, s.values, new, new_prior, strict=True)]
    return {"series": s, "new": new, "new_prior": new_prior, "figure": fig, "rows": rows}


def _logins(w: Window) -> dict:
    ok, prior, failed = queries.login_trend(w)
    dates = w.dates()
    num, signed, day = _memo("number"), _memo("signed_number"), _memo("date")
    labels = [d.isoformat() for d in dates]
    texts = [_("%(count)s sign-ins (%(change)s vs prior period)", count=num(n), change=signed(n - p))
             for n, p in zip(ok, prior, strict=True)]
    fig = figures.bars(_("Successful sign-ins per day"), _("Date"), _("Sign-ins"), labels, ok, texts,
                       colors=[figures.tone(n - p) for n, p in zip(ok, prior, strict=True)],
                       hover_title=[day(d) for d in dates], prior=prior,
                       prior_texts=[_("%(count)s sign-ins", count=num(p)) for p in prior])
    rows = [(day(d), num(n), num(f), num(p)) for d, n, f, p in zip(dates, ok, failed, prior, strict=True)]
    return {"dates": dates, "ok": ok, "prior": prior, "failed": failed, "figure": fig, "rows": rows}


def _recent_signups(w: Window) -> dict:
    return {"accounts": queries.recent_signups()}


def _recent_billing_events(w: Window) -> dict:
    return {"events": queries.recent_billing_events()}


def _recent_payments(w: Window) -> dict:
    return {"payments": queries.recent_payments()}


CARDS = {
    c.name: c
    for c in (
        Card("kpis", _l("Key figures"), _kpis, wide=True),
        Card("mrr-trend", _l("MRR trend"), _mrr_trend, billing=True),
        Card("revenue-trend", _l("Revenue trend"), _revenue_trend, billing=True),
        Card("movements", _l("MRR movements"), _movements, billing=True),
        Card("plan-distribution", _l("Plan distribution"), _plan_distribution, billing=True),
        Card("growth", _l("Account growth"), _growth),
        Card("logins", _l("User logins"), _logins),
        Card("recent-signups", _l("Recent signups"), _recent_signups),
        Card("recent-billing-events", _l("Recent billing events"), _recent_billing_events, billing=True),
        Card("recent-payments", _l("Recent payments"), _recent_payments, billing=True),
    )
}


def visible(billing: bool) -> list[Card]:
    return [c for c in CARDS.values() if billing or not c.billing]


def load(card: Card, window: Window, billing: bool) -> dict:
    if card.name == "kpis":
        return _kpis(window, billing)
    return card.load(window)
