from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from flask_babel import gettext as _

from backoffice.errors import BadRequest
from backoffice.extensions import limiter
from backoffice.ledger import archive, drain
from backoffice.stripe import signature

log = logging.getLogger(__name__)

bp = Blueprint("stripe", __name__, template_folder="templates")


@bp.post("/stripe/webhook")
@limiter.exempt  # no limit applies to it
def webhook():
    """Stripe's webhook: verify, archive, acknowledge. Classification is the replayer's job, so a
    slow or failing replay never makes Stripe retry an event that is stored; the replay is only
    requested (ledger/drain.py: it runs once the event has settled, in bulk). An event that is stored,
    a duplicate or divergent is answered the same way in front of Flask (webhook_fast.py); this
    view answers what that hands over: the refusals, and a failed archive."""
    secrets = current_app.config.get("STRIPE_WEBHOOK_SECRET")  # a tuple (config.webhook_secrets)
    if not secrets:
        raise BadRequest(_("The Stripe webhook is not configured (STRIPE_WEBHOOK_SECRET)."),
                         status=503, code="not_configured")
    body = request.get_data(cache=False)  # 413 above MAX_CONTENT_LENGTH
    event = signature.verify_and_parse(body, request.headers.get("Stripe-Signature"), secrets, request.mimetype)
    return acknowledge(archive.archive_event(body, event))


def acknowledge(result: archive.ArchiveResult):
    """Stripe's acknowledgement of an archived event. The replay is requested, never run, here
    (ledger/drain.py: the web process's drain thread, or one coalesced Celery drain per settle
    window; under TESTING the account is replayed at once, so tests see the ledger)."""
    if result.needs_replay:
        drain.request_replay(result.account_id)
    return jsonify(received=True, id=result.event_id, outcome=result.outcome)


@limiter.request_filter
def _webhook_unlimited() -> bool:
    """The webhook is exempt; this also spares it the limiter's lookup of the limits that do
    not apply (a noticeable share of its answer time)."""
    return request.endpoint == "stripe.webhook"


# --------------------------------------------------------------------------------------------
# Reconciliation on the account page (admin only): sync, acknowledge drift, disaster recovery.
# Each GET renders its confirmation dialog (a page without htmx, the dialog block with it);
# each POST does the action. The blueprint is CSRF-exempt for the webhook, so these views
# check the token themselves.
# --------------------------------------------------------------------------------------------
import functools

from flask import redirect, url_for
from flask_login import current_user

from backoffice import hx, schedule
from backoffice.accounts.queries import drift_count
from backoffice.auth import admin_required
from backoffice.extensions import csrf
from backoffice.pagination import parse_page
from backoffice.stripe import drift, queries, recovery, services, sync, tasks

DIALOGS = "stripe/dialogs.html"


def _csrf_checked(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.method == "POST":
            csrf.protect()
        return view(*args, **kwargs)

    return wrapper


def _dialog(block: str, status: int = 200, **context):
    return hx.render(DIALOGS, block, dialog=block, **context), status


def _started(run, status_view: str):
    """A job just started: its status dialog (which polls it), or without htmx its status page."""
    if not hx.wants_fragment():
        return redirect(url_for(f"stripe.{status_view}", run_id=run.id), code=303)
    return _dialog(status_view, run=run)


@bp.route("/stripe/accounts/<account_id>/sync", methods=["GET", "POST"])
@admin_required
@_csrf_checked
def account_sync(account_id: str):
    """GET: the confirmation dialog (or why a sync cannot run). POST: start the sync."""
    if request.method == "GET":
        try:
            account = sync.get_syncable_account(account_id)
            problem = None
        except BadRequest as e:
            if e.status == 404:
                raise
            account, problem = None, e.message
        return _dialog("sync_confirm", account_id=account_id, account=account, problem=problem)
    return _started(services.start_account_sync(account_id, current_user), "sync_status")


@bp.get("/stripe/syncs/<int:run_id>")
@admin_required
def sync_status(run_id: int):
    """The sync's progress (polled while it runs), then its result."""
    return _dialog("sync_status", run=queries.get_run(run_id, tasks.ACCOUNT_SYNC))


@bp.route("/stripe/accounts/<account_id>/drift/acknowledge", methods=["GET", "POST"])
@admin_required
@_csrf_checked
def acknowledge_drift(account_id: str):

    if request.method == "GET":
        return _dialog("acknowledge_confirm", account_id=account_id,
                       discrepancies=queries.open_discrepancies(account_id))
    sub = drift.acknowledge(account_id, current_user)
    if not hx.wants_fragment():
        return redirect(url_for("accounts.detail", account_id=account_id), code=303)

    return _dialog("acknowledge_done", account_id=account_id, subscription=sub, drift_open=drift_count(account_id))


@bp.route("/stripe/accounts/<account_id>/disaster-recovery", methods=["GET", "POST"])
@admin_required
@_csrf_checked
def disaster_recovery(account_id: str):
    """GET: the second confirmation with the count and date range. POST: replay them, as a
    background job whose dialog polls its row."""
    if request.method == "GET":
        return _dialog("recovery_confirm", account_id=account_id, plan=recovery.recovery_plan(account_id))
    return _started(services.start_disaster_recovery(account_id, current_user), "recovery_status")


@bp.get("/stripe/recoveries/<int:run_id>")
@admin_required
def recovery_status(run_id: int):
    """The recovery's progress (polled while it runs), then its result."""
    return _dialog("recovery_status", run=queries.get_run(run_id, tasks.DISASTER_RECOVERY))


@bp.get("/stripe/jobs")
@admin_required
def jobs():
    """Background job runs: drift passes (totals) and account syncs."""
    page, page_size = parse_page(request.args)
    return hx.render("stripe/jobs.html", "job_table", runs=queries.job_runs_page(page, page_size),
                     backlog=queries.archive_backlog(), settle=drain.settle_seconds(), schedules=schedule.states(),
                     beat=schedule.owned_by_beat(), scheduler_on=current_app.config.get("SCHEDULER_ENABLED", True))
