"""Accounts: the list (with its side pane), the detail page and its tabs, the billing posture, the CSV
export."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.routing import BuildError

from backoffice import exports, hx
from backoffice.accounts import posture, queries
from backoffice.accounts.filters import STATUS_LABELS, STATUS_TONES, STATUSES, AccountFilters, parse_id
from backoffice.auth import admin_required
from backoffice.errors import BadRequest
from backoffice.invoices.filters import InvoiceFilters
from backoffice.invoices.queries import invoice_rows_page, invoice_rows_preview
from backoffice.invoicing import review
from backoffice.ledger.filters import EventFilters
from backoffice.ledger.queries import (
    billing_events_page,
    billing_events_preview,
    correction_count,
    corrections_page,
)
from backoffice.pagination import parse_int, parse_page
from backoffice.stripe.queries import account_runs
from backoffice.usage import queries as usage_queries
from backoffice.usage.models import METRICS

bp = Blueprint("accounts", __name__, url_prefix="/accounts", template_folder="templates")

# The reconciliation actions (another feature's endpoints), shown only when they exist.
ACTION_ENDPOINTS = ("stripe.account_sync", "stripe.acknowledge_drift", "stripe.disaster_recovery")
DEPLOYMENTS_PER_PAGE = 10
TIMELINE_EVENTS = 10  # per deployment on the tab; the deployment's own page has the whole timeline


@bp.app_template_global()
def url_map_has(endpoint: str) -> bool:
    """True when `endpoint` is registered, so a page can link to a feature that may be absent."""
    return endpoint in current_app.view_functions


@bp.app_template_filter("flag")
def flag(country: str | None) -> str:
    """A country code as its flag emoji (regional indicator letters)."""
    if not country or len(country) != 2 or not country.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in country.upper())


@bp.app_context_processor
def _account_labels():
    return {"status_labels": STATUS_LABELS, "status_tones": STATUS_TONES}


def _url_or_none(endpoint: str, **values) -> str | None:
    if not url_map_has(endpoint):
        return None
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def stripe_url(stripe_customer_id: str | None) -> str | None:
    """The customer in Stripe's dashboard; `/test` for test keys (or when no key is set)."""
    if not stripe_customer_id:
        return None
    key = current_app.config.get("STRIPE_SECRET_KEY") or ""
    test = "/test" if (not key or key.startswith(("sk_test_", "rk_test_"))) else ""
    return f"https://dashboard.stripe.com{test}/customers/{stripe_customer_id}"


def csv_export(f: AccountFilters):
    catalog = queries.plan_catalog()
    headers = [_("Id"), _("Name"), _("Plan"), _("Status"), _("Price"), _("MRR"), _("Currency"),
               _("Renewal"), _("Country"), _("Created"), _("Modified")]

    def cells(r):
        return (r.id, r.name, queries.plan_name(catalog, r.plan), r.status, r.price, r.mrr, r.currency,
                r.current_period_end, r.country, r.created_at, r.modified_at)

    return exports.csv_response("accounts.csv", headers, queries.accounts_export_stmt(f), cells)


@bp.get("")
def index():
    f = AccountFilters.from_args(request.args)
    if exports.wants_csv(request.args):
        return csv_export(f)
    deleted_totals = None if f.active else queries.mrr_totals(AccountFilters(deleted=True))
    return hx.render("accounts/index.html", "account_table", f=f, accounts=queries.accounts_page(f),
                     totals=queries.mrr_totals(f), deleted_totals=deleted_totals, yearly=queries.yearly_prices(),
                     catalog=queries.plan_catalog(), statuses=STATUSES, pane=None)


@bp.get("/<account_id>/pane")
def pane(account_id: str):
    account_id = parse_id(account_id, "account_id")
    summary = queries.account_summary(account_id)
    return hx.render_fragment(
        "accounts/index.html", "side_pane", pane=summary, catalog=queries.plan_catalog(), yearly=queries.yearly_prices(),
        owners=queries.owners(account_id), top_users=queries.top_users(account_id))


def _account_jobs(account_id: str) -> list:
    """The account's latest syncs and recoveries (admins start them; everyone sees the results),
    when the reconciliation feature is there."""
    return account_runs(account_id) if url_map_has("stripe.jobs") else []


def _detail(account_id: str, tab_block: str, **tab_context):
    """The detail page around one tab's block (`overview_tab`, ..., `corrections_tab`), or only
    that block for an htmx request."""
    summary = queries.account_summary(account_id)
    actions = {}
    if current_user.is_admin:  # the menu is rendered for admins only
        actions = {
            "sync": _url_or_none("stripe.account_sync", account_id=account_id),
            "acknowledge": _url_or_none("stripe.acknowledge_drift", account_id=account_id),
            "recovery": _url_or_none("stripe.disaster_recovery", account_id=account_id),
            "stripe": stripe_url(summary.account.stripe_customer_id),
        }
    return hx.render(
        "accounts/detail.html", tab_block, s=summary, account=summary.account, tab_block=tab_block,
        catalog=queries.plan_catalog(), yearly=queries.yearly_prices(), can_act=current_user.is_admin, actions=actions,
        drift_open=queries.drift_count(account_id), **tab_context)


@bp.get("/<account_id>")
def detail(account_id: str):
    account_id = parse_id(account_id, "account_id")
    return _detail(account_id, "overview_tab", owners=queries.owners(account_id),
                   invoice_preview=invoice_rows_preview(account_id),
                   event_preview=billing_events_preview(account_id))


@bp.get("/<account_id>/users")
def users(account_id: str):
    account_id = parse_id(account_id, "account_id")
    page, page_size = parse_page(request.args)
    queries.get_account(account_id)
    return _detail(account_id, "users_tab", members=queries.members_page(account_id, page, page_size))


@bp.get("/<account_id>/invoices")
def invoices(account_id: str):
    account_id = parse_id(account_id, "account_id")
    f = InvoiceFilters.from_args(request.args, account=account_id)
    queries.get_account(account_id)
    return _detail(account_id, "invoices_tab", inv_f=f, rows=invoice_rows_page(f))


@bp.get("/<account_id>/platform-invoices")
def platform_invoices(account_id: str):
    """Backoffice's own invoices of the account (the month-end run's drafts and, later, issued ones)."""
    account_id = parse_id(account_id, "account_id")
    f = review.DraftFilters.from_args(request.args, account=account_id)
    queries.get_account(account_id)
    return _detail(account_id, "platform_invoices_tab", draft_f=f, drafts=review.invoices_page(f))


@bp.get("/<account_id>/ledger")
def ledger(account_id: str):
    account_id = parse_id(account_id, "account_id")
    f = EventFilters.from_args(request.args, account=account_id)
    queries.get_account(account_id)
    return _detail(account_id, "ledger_tab", ev_f=f, events=billing_events_page(f),
                   corrections=correction_count(account_id))


@bp.get("/<account_id>/ledger/corrections")
def corrections(account_id: str):
    """The account's superseded ledger rows beside the rows that corrected them (DOMAIN §3)."""
    account_id = parse_id(account_id, "account_id")
    page, page_size = parse_page(request.args)
    queries.get_account(account_id)
    return _detail(account_id, "corrections_tab", corrected=corrections_page(account_id, page, page_size))


@bp.get("/<account_id>/deployments")
def deployments(account_id: str):
    """Each deployment: lifecycle, add-ons on now, suspension, usage this month, latest events."""
    account_id = parse_id(account_id, "account_id")
    page = parse_int(request.args, "page", 1)
    queries.get_account(account_id)
    deps = usage_queries.deployments_page(page, DEPLOYMENTS_PER_PAGE, account_id=account_id)
    names = [r.Deployment.name for r in deps.items]
    start, end = usage_queries.month_bounds(datetime.now(UTC))
    return _detail(account_id, "deployments_tab", deployments=deps, metrics=METRICS,
                   states=usage_queries.states_for(names), usage=usage_queries.usage_totals(names, start, end),
                   timelines=usage_queries.recent_timelines(names, TIMELINE_EVENTS))


@bp.get("/<account_id>/drift")
def drift(account_id: str):
    account_id = parse_id(account_id, "account_id")
    page, page_size = parse_page(request.args)
    queries.get_account(account_id)
    return _detail(account_id, "drift_tab", discrepancies=queries.discrepancies_page(account_id, page, page_size),
                   jobs=_account_jobs(account_id))


@bp.get("/<account_id>/billing")
def billing(account_id: str):
    """The account's billing posture: a form for admins, the facts for everyone else."""
    account_id = parse_id(account_id, "account_id")
    return hx.render("accounts/billing.html", "posture_form", account=queries.get_account(account_id), error=None)


@bp.post("/<account_id>/billing")
@admin_required
def update_billing(account_id: str):
    account_id = parse_id(account_id, "account_id")
    try:
        posture.update_billing_posture(account_id, posture.from_form(request.form), current_user)
    except BadRequest as e:
        if e.status == 404:
            raise
        return hx.render("accounts/billing.html", "posture_form", account=queries.get_account(account_id),
                         error=_("Check %(field)s: %(message)s", field=e.field, message=e.message)), 422
    flash(_("Billing posture saved."), "success")
    return hx.redirect_response(url_for("accounts.billing", account_id=account_id))
