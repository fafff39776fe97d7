from __future__ import annotations

from flask import Blueprint, request

from backoffice import hx
from backoffice.invoices import queries
from backoffice.pagination import parse_page, parse_search

bp = Blueprint("invoices", __name__, url_prefix="/invoices", template_folder="templates")


@bp.get("")
def index():
    page, page_size = parse_page(request.args)
    search = parse_search(request.args)
    args = {k: v for k, v in {"search": search}.items() if v}
    return hx.render("invoices/index.html", "invoice_table",
                     rows=queries.transactions_page(search, page, page_size), search=search, args=args)
