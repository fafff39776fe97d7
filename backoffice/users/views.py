from __future__ import annotations

from flask import Blueprint, request

from backoffice import hx
from backoffice.users import queries
from backoffice.users.filters import UserFilters

bp = Blueprint("users", __name__, url_prefix="/users", template_folder="templates")


@bp.get("")
def index():
    f = UserFilters.from_args(request.args)
    return hx.render("users/index.html", "user_table", f=f, users=queries.users_page(f))


@bp.get("/<user_id>")
def detail(user_id: str):
    user = queries.get_user(user_id)
    return hx.render("users/detail.html", user=user, memberships=queries.memberships(user_id),
                     logins=queries.recent_logins(user_id))
