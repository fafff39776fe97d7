from __future__ import annotations

from flask import Blueprint, request

from backoffice import hx
from backoffice.ledger import queries
from backoffice.ledger.labels import event_label
from backoffice.pagination import parse_page, parse_search

bp = Blueprint("ledger", __name__, url_prefix="/billing-events", template_folder="templates")


@bp.app_context_processor
def _labels():
    return {"event_label": event_label}


@bp.get("")
def index():
    page, page_size = parse_page(request.args)
    search = parse_search(request.args)
    args = {k: v for k, v in {"search": search}.items() if v}
    return hx.render("ledger/index.html", "event_table", events=queries.billing_events_page(search, page, page_size),
                     search=search, args=args)
