"""The header search: grouped results as the operator types (an htmx fragment), or as a page."""
from __future__ import annotations

from flask import Blueprint, request

from backoffice import hx
from backoffice.pagination import parse_search
from backoffice.search import queries

bp = Blueprint("search", __name__, url_prefix="/search", template_folder="templates")


@bp.get("")
def index():
    q = parse_search(request.args, "q")
    return hx.render("search/index.html", "search_results", q=q, results=queries.search(q),
                     limit=queries.LIMIT, min_length=queries.MIN_LENGTH)
