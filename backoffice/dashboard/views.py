"""The dashboard: a shell that lists the cards, one fragment URL per card, and the banners."""
from __future__ import annotations

from flask import Blueprint, current_app, request

from backoffice import hx
from backoffice.auth import is_kiosk
from backoffice.dashboard import cards, queries
from backoffice.dashboard.filters import parse_period
from backoffice.dashboard.mrr import PERIODS, Window
from backoffice.dbtypes import utcnow
from backoffice.errors import NotFound

bp = Blueprint("dashboard", __name__, template_folder="templates")


def _billing() -> bool:
    return bool(current_app.config["BILLING_ENABLED"])


def _context(period: int, loaded: dict) -> dict:
    return {
        "period": period,
        "periods": PERIODS,
        "kiosk": is_kiosk(),
        "refresh": int(current_app.config.get("KIOSK_REFRESH_SECONDS", 60)),
        "billing": _billing(),
        "specs": {c.name: c for c in cards.visible(_billing())},
        "loaded": loaded,
        "now": utcnow(),
    }


@bp.get("/")
@bp.get("/dashboard", endpoint="alias")
def index():
    period = parse_period(request.args)
    return hx.render("dashboard/index.html", **_context(period, {}))


@bp.get("/dashboard/cards/<name>")
def card(name: str):
    spec = cards.CARDS.get(name)
    if spec is None or (spec.billing and not _billing()):
        raise NotFound(f"No dashboard card {name}.")
    period = parse_period(request.args)
    data = cards.load(spec, Window.ending(period, utcnow()), _billing())
    return hx.render("dashboard/index.html", spec.block, **_context(period, {name: data}))


@bp.get("/banners")
def banners():
    """The data-quality banners, polled by every page; empty when all is well."""
    b = queries.banners() if _billing() else None
    return hx.render_fragment("dashboard/_banners.html", "banner_list", b=b)
