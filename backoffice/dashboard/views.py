from __future__ import annotations

from flask import Blueprint

from backoffice import hx
from backoffice.dashboard import queries

bp = Blueprint("dashboard", __name__, template_folder="templates")


@bp.get("/")
def index():
    return hx.render("dashboard/index.html", kpis=queries.shell_kpis())
