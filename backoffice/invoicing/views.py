"""The price book pages (admin only): every price with its valid-from date, added, edited, removed."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from backoffice import hx
from backoffice.auth import admin_required
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest
from backoffice.invoicing import pricebook, queries, services
from backoffice.invoicing.pricebook import KINDS, get_kind
from backoffice.pagination import parse_int

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
