"""Invoicing pages: quotes (any operator), the month-end runs and the price book (admin only)."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from backoffice import exports, hx
from backoffice.auth import admin_required
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest
from backoffice.invoicing import pricebook, queries, quotes, review, run, services, tasks
from backoffice.invoicing.models import INVOICE_STATUSES
from backoffice.invoicing.pricebook import KINDS, get_kind
from backoffice.pagination import parse_int
from backoffice.usage.models import METRICS

bp = Blueprint("invoicing", __name__, url_prefix="/invoicing", template_folder="templates")


@bp.get("/price-book")
@admin_required
def price_book():
    page = parse_int(request.args, "page", 1)
    sections = [(kind, queries.entries_page(kind, page if kind.slug == request.args.get("section") else 1))
                for kind in KINDS.values()]
    return hx.render("invoicing/price_book.html", sections=sections, vat=queries.vat_on(_today()),
                     pricebook=pricebook)


def _today():

    return utcnow().date()


@bp.get("/quotes")
def quote():
    """The planned deployment's fields in the query string (a quote is a link); its lines below."""
    args = request.args
    book = queries.price_book(date.max)
    document, error, status = None, None, 200
    if "plan" in args:
        try:
            planned = quotes.parse({
                "plan": args.get("plan"), "add_ons": args.getlist("add_ons"), "start_day": args.get("start_day"),
                "usage": {m: args.get(f"usage_{m}") for m in METRICS if args.get(f"usage_{m}")},
                "customer_country": args.get("customer_country"), "customer_vat_id": args.get("customer_vat_id")})
            document = quotes.quote_json(planned, quotes.quote(planned))
        except BadRequest as e:
            error, status = e, 400
    return hx.render("invoicing/quotes.html", "result", book=book, args=args, metrics=METRICS,
                     today=_today(), document=document, error=error), status


@bp.get("/invoices")
def invoices():
    """The platform invoices (drafts and, later, issued ones): period, status, account search, sort,
    paging and the CSV export, all in the query string."""
    f = review.DraftFilters.from_args(request.args)
    if exports.wants_csv(request.args):
        headers = [_("Period"), _("Account id"), _("Account"), _("Status"), _("Number"), _("Currency"),
                   _("Excl. VAT"), _("VAT"), _("Total"), _("VAT reason")]
        return exports.csv_response("platform-invoices.csv", headers, review.invoices_stmt(f), lambda r: (
            r.PlatformInvoice.period, r.PlatformInvoice.account_id, r.account_name, r.PlatformInvoice.status,
            r.PlatformInvoice.number, r.PlatformInvoice.currency, r.PlatformInvoice.subtotal,
            r.PlatformInvoice.tax, r.PlatformInvoice.total, r.PlatformInvoice.vat_reason))
    return hx.render("invoicing/invoices.html", "invoice_table", f=f, rows=review.invoices_page(f),
                     statuses=INVOICE_STATUSES)


@bp.get("/invoices/<int:invoice_id>")
def invoice(invoice_id: int):
    found = review.get_invoice(invoice_id)
    return hx.render("invoicing/invoice.html", invoice=found, document=review.document(found),
                     vat_why=review.vat_why(found))


@bp.post("/invoices/<int:invoice_id>/rebuild")
@admin_required
def rebuild_invoice(invoice_id: int):
    done = review.rebuild_draft(invoice_id, current_user)
    found = review.invoice_of(done.account_id, done.period)
    if done.rebuilt != 1 or found is None:  # failed, or skipped (auto-invoice off, nothing billable)
        reason = "; ".join(f["reason"] for f in done.summary["failures"]) or ", ".join(done.summary["skipped"])
        flash(_("The draft could not be rebuilt: %(reason)s", reason=reason), "error")
        target = url_for("invoicing.invoice", invoice_id=found.id) if found else url_for("invoicing.invoices")
        return hx.redirect_response(target)
    flash(_("Draft rebuilt from the usage logs and the price book."), "success")
    return hx.redirect_response(url_for("invoicing.invoice", invoice_id=found.id))


@bp.post("/invoices/<int:invoice_id>/delete")
@admin_required
def delete_invoice(invoice_id: int):
    review.delete_draft(invoice_id, current_user)
    flash(_("Draft deleted; the next run of its month drafts it again."), "success")
    return hx.redirect_response(url_for("invoicing.invoices"))


@bp.get("")
@admin_required
def runs():
    page = parse_int(request.args, "page", 1)
    return hx.render("invoicing/runs.html", runs=queries.runs_page(page), default_period=str(run.previous_period()))


@bp.post("/runs")
@admin_required
def start_run():
    form = request.form
    try:
        started = run.start(run.parse_period(form.get("period", "").strip()), force=bool(form.get("force")),
                            account_id=form.get("account_id", "").strip() or None, trigger="page",
                            actor=current_user.email)
    except BadRequest as e:
        flash(e.message, "error")
        return hx.redirect_response(url_for("invoicing.runs"))
    launched = tasks.launch(started)
    if launched.status == "running":
        flash(_("Run %(id)s of %(period)s started in the background; this page shows its result when it is done.",
                id=launched.id, period=launched.period), "success")
    else:
        s = launched.summary
        flash(_("Run %(id)s of %(period)s: %(created)s created, %(rebuilt)s rebuilt, %(skipped)s skipped, "
                "%(failed)s failed.", id=launched.id, period=launched.period, created=s["created"],
                rebuilt=s["rebuilt"], skipped=launched.skipped, failed=launched.failed),
              "success" if launched.status == "done" and not launched.failed else "error")
    return hx.redirect_response(url_for("invoicing.runs"))


def _form(kind, values: dict, entry_id: int | None, error: str | None, status: int = 200):
    return hx.render("invoicing/entry_form.html", "entry_form", kind=kind, values=values, entry_id=entry_id,
                     error=error), status


@bp.route("/price-book/<kind_slug>/new", methods=["GET", "POST"])
@admin_required
def new_entry(kind_slug: str):
    kind = get_kind(kind_slug)
    if request.method == "GET":
        defaults = {"valid_from": _today().replace(day=1).isoformat(), "currency": _currency(),
                    "seller_country": "CH", "domestic_countries": "CH,LI", "domestic_rate": "8.1", "period": "day"}
        return _form(kind, defaults, None, None)
    try:
        services.create_entry(kind, pricebook.parse_form(kind, request.form), current_user)
    except BadRequest as e:
        return _form(kind, request.form.to_dict(), None, e.message, 422)
    flash(_("Price book entry added."), "success")
    return hx.redirect_response(url_for("invoicing.price_book") + f"#{kind.slug}")


@bp.route("/price-book/<kind_slug>/<int:entry_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_entry(kind_slug: str, entry_id: int):
    kind = get_kind(kind_slug)
    if request.method == "GET":
        return _form(kind, pricebook.form_values(kind, queries.get_entry(kind, entry_id)), entry_id, None)
    try:
        services.update_entry(kind, entry_id, pricebook.parse_form(kind, request.form), current_user)
    except BadRequest as e:
        if e.status == 404:
            raise
        return _form(kind, request.form.to_dict(), entry_id, e.message, 422)
    flash(_("Price book entry saved."), "success")
    return hx.redirect_response(url_for("invoicing.price_book") + f"#{kind.slug}")


@bp.post("/price-book/<kind_slug>/<int:entry_id>/delete")
@admin_required
def delete_entry(kind_slug: str, entry_id: int):
    kind = get_kind(kind_slug)
    services.delete_entry(kind, entry_id, current_user)
    flash(_("Price book entry removed."), "success")
    return hx.redirect_response(url_for("invoicing.price_book") + f"#{kind.slug}")


def _currency() -> str:

    return current_app.config["PLATFORM_CURRENCY"]
