from __future__ import annotations

from flask import Blueprint, request

from backoffice import hx
from backoffice.accounts import queries
from backoffice.accounts.filters import AccountFilters

bp = Blueprint("accounts", __name__, url_prefix="/accounts", template_folder="templates")


@bp.get("")
def index():
    f = AccountFilters.from_args(request.args)
    return hx.render("accounts/index.html", "account_table", f=f, accounts=queries.accounts_page(f))


@bp.get("/<account_id>")
def detail(account_id: str):
    account = queries.get_account(account_id)
    return hx.render("accounts/detail.html", account=account, members=queries.account_members(account_id))
