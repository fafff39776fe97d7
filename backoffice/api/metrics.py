"""GET /api/v1/metrics/*: the dashboard's numbers as JSON, for scripts and BI tools.

Same queries as the cards, same `period` (7, 30 or 90; else 400 naming it). Money is a decimal
string with `currency` beside it; days are ISO dates (UTC days); times ISO 8601 with Z. With
billing disabled the billing metrics answer 404 and are not queried.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask import Blueprint, current_app, jsonify, request

from backoffice.api.openapi import contribute
from backoffice.auth import token_required
from backoffice.dashboard import queries
from backoffice.dashboard.filters import parse_period
from backoffice.dashboard.mrr import MOVEMENTS, PERIODS, Window
from backoffice.dbtypes import utcnow
from backoffice.errors import NotFound
from backoffice.ledger import drain

bp = Blueprint("metrics", __name__)  # nested in the api blueprint (api/blueprints.py)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value).quantize(Decimal('0.01'))}"


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _day(value: date) -> str:
    return value.isoformat()


def _window() -> Window:
    return Window.ending(parse_period(request.args), utcnow())


def _currency() -> str:
    return current_app.config["PLATFORM_CURRENCY"]


def _billing_required() -> None:
    if not current_app.config["BILLING_ENABLED"]:
        raise NotFound("Billing is disabled (BACKOFFICE_BILLING_ENABLED=false).")


def _head(w: Window) -> dict:
    return {"period": w.days, "from": _time(w.start), "to": _time(w.end)}


def _points(w: Window, items: list[dict]) -> dict:
    return {**_head(w), "items": items, "total": len(items), "page": 1, "page_size": len(items)}


@bp.get("/metrics/kpis")
@token_required("read")
def kpis():
    w = _window()
    billing = bool(current_app.config["BILLING_ENABLED"])
    k = queries.kpis(w, billing)
    body = {
        **_head(w),
        "billing_enabled": billing,
        "total_accounts": k.total_accounts,
        "new_accounts": k.new_accounts,
        "new_accounts_prior": k.new_accounts_prior,
        "active_users": k.active_users,
        "active_users_prior": k.active_users_prior,
        "active_sessions": k.active_sessions,
    }
    if billing:
        change = k.mrr_change_percent
        body.update({
            "currency": _currency(),
            "blended_mrr": _money(k.blended_mrr),
            "mrr_at_start": _money(k.mrr_opening),
            "mrr_ledger": _money(k.mrr_now),
            "mrr_change_percent": None if change is None else str(change),
            "total_revenue": _money(k.total_revenue),
        })
    return jsonify(body)


def _money_points(w: Window, s: queries.Series, name: str) -> dict:
    items = [
        {"date": _day(d), name: _money(v), "prior_date": _day(pd), f"prior_{name}": _money(p),
         "change": _money(v - p), "currency": _currency()}
        for d, v, pd, p in zip(s.dates, s.values, s.prior_dates, s.prior_values, strict=True)
    ]
    return _points(w, items)


@bp.get("/metrics/mrr-trend")
@token_required("read")
def mrr_trend():
    _billing_required()
    w = _window()
    return jsonify(_money_points(w, queries.mrr_trend(w), "mrr"))


@bp.get("/metrics/revenue-trend")
@token_required("read")
def revenue_trend():
    _billing_required()
    w = _window()
    return jsonify(_money_points(w, queries.revenue_trend(w), "revenue"))


@bp.get("/metrics/movements")
@token_required("read")
def movements():
    _billing_required()
    w = _window()
    m = queries.mrr_movements(w)
    return jsonify({
        **_head(w), "currency": _currency(), "opening_mrr": _money(m.opening), "closing_mrr": _money(m.closing),
        "change": _money(m.change), **{k: _money(m.buckets[k]) for k in MOVEMENTS},
    })


@bp.get("/metrics/plan-distribution")
@token_required("read")
def plan_distribution():
    _billing_required()
    shares = queries.plan_distribution()
    items = [{"plan": p.plan, "name": p.name, "monthly_amount": _money(p.monthly_amount), "currency": _currency(),
              "accounts": p.accounts} for p in shares]
    return jsonify({"items": items, "total": len(items), "page": 1, "page_size": len(items)})


@bp.get("/metrics/growth")
@token_required("read")
def growth():
    w = _window()
    s, new, new_prior = queries.account_growth(w)
    items = [{"date": _day(d), "total_accounts": t, "new_accounts": n, "prior_date": _day(pd),
              "prior_total_accounts": pt, "prior_new_accounts": pn}
             for d, t, n, pd, pt, pn in zip(s.dates, s.values, new, s.prior_dates, s.prior_values, new_prior,
                                            strict=True)]
    return jsonify(_points(w, items))


@bp.get("/metrics/logins")
@token_required("read")
def logins():
    w = _window()
    ok, prior, failed = queries.login_trend(w)
    items = [{"date": _day(d), "logins": n, "failed_logins": f, "prior_date": _day(pd), "prior_logins": p}
             for d, n, f, pd, p in zip(w.dates(), ok, failed, w.prior_dates(), prior, strict=True)]
    return jsonify(_points(w, items))


@bp.get("/metrics/replay")
@token_required("read")
def replay():
    """How far the ledger is behind the archive: the events waiting for the replay (of known
    accounts) and how long the oldest has waited (ledger/drain.py)."""
    waiting = drain.backlog()
    age = waiting.age_seconds()
    return jsonify({
        "pending_events": waiting.pending,
        "oldest_pending_received_at": None if waiting.oldest_received_at is None else _time(waiting.oldest_received_at),
        "oldest_pending_age_seconds": None if age is None else round(age, 3),
        "settle_seconds": drain.settle_seconds(),
    })


@contribute
def _openapi():
    period = {"name": "period", "in": "query", "required": False,
              "description": "The window: the last 7, 30 or 90 UTC days (default 30); anything else is a 400.",
              "schema": {"type": "integer", "enum": list(PERIODS), "default": 30}}
    money = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "Decimal string in `currency`."}
    day = {"type": "string", "format": "date"}
    head = {"period": {"type": "integer"}, "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time", "description": "Exclusive: start of tomorrow (UTC)."}}
    paged = {"total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}}

    def points(item: dict) -> dict:
        return {"type": "object", "required": ["items", "total", "page", "page_size"], "properties": {
            **head, **paged, "items": {"type": "array", "items": {"type": "object", "properties": item}}}}

    def op(summary: str, description: str, schema: str, billing: bool = True, with_period: bool = True) -> dict:
        responses = {
            "200": {"description": summary, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{schema}"}}}},
            "400": {"description": "Bad `period`", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "No or unknown bearer token"},
            "403": {"description": "The token's scope is not read or admin"},
        }
        if billing:
            responses["404"] = {"description": "Billing is disabled"}
        return {"get": {"summary": summary, "description": description, "tags": ["Metrics"],
                        "parameters": [period] if with_period else [], "responses": responses}}

    money_point = lambda name: {
        "date": day, name: money, "prior_date": day, f"prior_{name}": money, "change": money,
        "currency": {"type": "string"}}
    paths = {
        "/api/v1/metrics/kpis": op(
            "KPI tiles", "Accounts, new accounts (current and prior period), active users, active sessions "
            "(24 h); with billing: blended MRR (forward MRR), MRR at the window's start and now from the "
            "ledger, its change in percent (one decimal), lifetime net revenue ex-VAT.", "MetricsKpis", billing=False),
        "/api/v1/metrics/mrr-trend": op(
            "MRR per day", "MRR at the end of each UTC day read from the ledger, beside the prior period.",
            "MetricsMrrTrend"),
        "/api/v1/metrics/revenue-trend": op(
            "Cumulative net revenue per day", "All-time cumulative net revenue ex-VAT at the end of each day: "
            "added on the payment day, subtracted on the reversal day.", "MetricsRevenueTrend"),
        "/api/v1/metrics/movements": op(
            "MRR movements", "New, expansion, contraction, churn and reactivation in the window; they sum to "
            "closing_mrr − opening_mrr exactly.", "MetricsMovements"),
        "/api/v1/metrics/plan-distribution": op(
            "Accounts per plan", "Accounts (not deleted) per plan, cheapest first; free without a paid "
            "subscription.", "MetricsPlanDistribution", with_period=False),
        "/api/v1/metrics/growth": op("Account growth", "Accounts at the end of each day and new accounts per day.",
                                     "MetricsGrowth", billing=False),
        "/api/v1/metrics/logins": op("User logins", "Successful and failed sign-ins of platform users per day.",
                                     "MetricsLogins", billing=False),
        "/api/v1/metrics/replay": op(
            "Replay backlog", "The archived Stripe events of known accounts waiting for the replay, and how long "
            "the oldest has waited. The replay classifies an event once it is `settle_seconds` old "
            "(REPLAY_SETTLE_SECONDS), so a few seconds of lag is normal; a dashboard banner appears past a minute.",
            "MetricsReplay", billing=False, with_period=False),
    }
    schemas = {
        "MetricsKpis": {"type": "object", "properties": {
            **head, "billing_enabled": {"type": "boolean"}, "total_accounts": {"type": "integer"},
            "new_accounts": {"type": "integer"}, "new_accounts_prior": {"type": "integer"},
            "active_users": {"type": "integer"}, "active_users_prior": {"type": "integer"},
            "active_sessions": {"type": "integer"}, "currency": {"type": "string"}, "blended_mrr": money,
            "mrr_at_start": money, "mrr_ledger": money,
            "mrr_change_percent": {"type": ["string", "null"], "description": "e.g. \"25.0\"; null when MRR was 0"},
            "total_revenue": money}},
        "MetricsMrrTrend": points(money_point("mrr")),
        "MetricsRevenueTrend": points(money_point("revenue")),
        "MetricsMovements": {"type": "object", "properties": {
            **head, "currency": {"type": "string"}, "opening_mrr": money, "closing_mrr": money, "change": money,
            **{k: money for k in MOVEMENTS}}},
        "MetricsPlanDistribution": {"type": "object", "properties": {**paged, "items": {"type": "array", "items": {
            "type": "object", "properties": {"plan": {"type": "string"}, "name": {"type": "string"},
                                             "monthly_amount": money, "currency": {"type": "string"},
                                             "accounts": {"type": "integer"}}}}}},
        "MetricsGrowth": points({"date": day, "total_accounts": {"type": "integer"}, "new_accounts": {"type": "integer"},
                                 "prior_date": day, "prior_total_accounts": {"type": "integer"},
                                 "prior_new_accounts": {"type": "integer"}}),
        "MetricsLogins": points({"date": day, "logins": {"type": "integer"}, "failed_logins": {"type": "integer"},
                                 "prior_date": day, "prior_logins": {"type": "integer"}}),
        "MetricsReplay": {"type": "object", "required": ["pending_events", "oldest_pending_received_at",
                                                         "oldest_pending_age_seconds", "settle_seconds"],
                          "properties": {
                              "pending_events": {"type": "integer", "minimum": 0},
                              "oldest_pending_received_at": {"type": ["string", "null"], "format": "date-time"},
                              "oldest_pending_age_seconds": {"type": ["number", "null"], "minimum": 0},
                              "settle_seconds": {"type": "number", "minimum": 0}}},
    }
    return paths, schemas

