"""Users of the platform: the list, the detail page and its tabs, the CSV export."""
from __future__ import annotations

from flask import Blueprint, request
from flask_babel import gettext as _

from backoffice import exports, hx
from backoffice.accounts.filters import parse_id
from backoffice.pagination import parse_page
from backoffice.users import queries
from backoffice.users.agents import describe
from backoffice.users.filters import UserFilters

bp = Blueprint("users", __name__, url_prefix="/users", template_folder="templates")


@bp.app_context_processor
def _agents():
    return {"describe_agent": describe}


def csv_export(f: UserFilters):
    headers = [_("Id"), _("E-mail"), _("First name"), _("Last name"), _("Created"), _("Last seen")]

    def cells(r):
        return (r.id, r.email, r.first_name, r.last_name, r.created_at, r.last_seen_at)

    return exports.csv_response("users.csv", headers, queries.users_export_stmt(f), cells)


@bp.get("")
def index():
    f = UserFilters.from_args(request.args)
    if exports.wants_csv(request.args):
        return csv_export(f)
    page = queries.users_page(f)
    return hx.render("users/index.html", "user_table", f=f, users=page,
                     accounts=queries.accounts_of([u.id for u in page.items]))


def _detail(user_id: str, tab: str, **tab_context):
    """The detail page around one tab's block (`overview_tab`, `logins_tab`, `sessions_tab`), or
    only that block for an htmx request."""
    user = queries.get_user(user_id)
    tab_block = f"{tab}_tab"
    return hx.render("users/detail.html", tab_block, user=user, tab_block=tab_block,
                     tiles=queries.user_tiles(user_id), **tab_context)


@bp.get("/<user_id>")
def detail(user_id: str):
    user_id = parse_id(user_id, "user_id")
    return _detail(user_id, "overview", memberships=queries.memberships(user_id),
                   logins=queries.recent_logins(user_id))


@bp.get("/<user_id>/logins")
def logins(user_id: str):
    user_id = parse_id(user_id, "user_id")
    page, page_size = parse_page(request.args)
    queries.get_user(user_id)
    return _detail(user_id, "logins", logins=queries.logins_page(user_id, page, page_size))


@bp.get("/<user_id>/sessions")
def sessions(user_id: str):
    user_id = parse_id(user_id, "user_id")
    page, page_size = parse_page(request.args)
    queries.get_user(user_id)
    return _detail(user_id, "sessions", sessions=queries.sessions_page(user_id, page, page_size))
