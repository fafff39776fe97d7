"""The Usage pages: deployments and their logs, the backfill button."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from backoffice import hx
from backoffice.accounts.queries import get_account
from backoffice.auth import admin_required
from backoffice.errors import BadRequest
from backoffice.pagination import parse_int, parse_page, parse_search
from backoffice.usage import queries, services
from backoffice.usage.models import METRICS

bp = Blueprint("usage", __name__, url_prefix="/usage", template_folder="templates")


_month_bounds = queries.month_bounds  # shared with the account's Deployments tab


def _rows(page) -> list[dict]:
    """A page of (deployment, account name) rows with their state and usage this month."""
    names = [r.Deployment.name for r in page.items]
    states = queries.states_for(names)
    start, end = _month_bounds(datetime.now(UTC))
    usage = queries.usage_totals(names, start, end)
    return [{"dep": r.Deployment, "account_name": r.account_name, "state": states[r.Deployment.name],
             "usage": usage.get(r.Deployment.name, {})} for r in page.items]


@bp.get("")
def index():
    page, page_size = parse_page(request.args)
    search = parse_search(request.args)
    deployments = queries.deployments_page(page, page_size, search=search)
    return hx.render("usage/index.html", "deployment_table", deployments=deployments, rows=_rows(deployments),
                     search=search, snapshot=queries.last_snapshot_run(), runs=queries.recent_runs(),
                     totals=queries.counts(), metrics=METRICS)


@bp.post("/backfill")
@admin_required
def backfill():
    run = services.rerun_last_backfill(current_user)
    flash(_("Backfill done: %(examined)s deployments examined, %(lifecycle)s lifecycle rows, %(events)s add-on "
            "events and %(suspensions)s suspension events inserted.", examined=run.deployments_examined,
            lifecycle=run.lifecycle_inserted, events=run.events_inserted,
            suspensions=run.suspension_events_inserted), "success")
    return hx.redirect_response(url_for("usage.index"))


@bp.get("/accounts/<account_id>")
def account(account_id: str):
    acc = get_account(account_id)
    page, page_size = parse_page(request.args)
    deployments = queries.deployments_page(page, page_size, account_id=account_id)
    return hx.render("usage/account.html", "deployment_table", account=acc, deployments=deployments,
                     rows=_rows(deployments), metrics=METRICS)


@bp.get("/deployments/<name>")
def deployment(name: str):
    dep = queries.get_deployment(name)
    page = parse_int(request.args, "page", 1)
    at = _parse_at(request.args.get("at"))
    start, end = _month_bounds(datetime.now(UTC))
    return hx.render("usage/deployment.html", "timeline", dep=dep, account=get_account(dep.account_id),
                     state=queries.current_state(name), events=queries.timeline_page(name, page, 50),
                     at=at, addons_at=queries.addons_enabled_at(name, at) if at else None,
                     usage=queries.usage_totals([name], start, end).get(name, {}), metrics=METRICS)


def _parse_at(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(_("at must be a time like 2026-01-31T12:00."), field="at") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
