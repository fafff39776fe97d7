"""The dashboard's one filter: the period, kept in the URL."""
from __future__ import annotations

from flask_babel import gettext as _

from backoffice.dashboard.mrr import PERIODS
from backoffice.errors import BadRequest

DEFAULT_PERIOD = 30


def parse_period(args) -> int:
    """`period` is 7, 30 or 90 (days); absent means 30; anything else is a 400 naming it."""
    raw = args.get("period")
    if raw is None:
        return DEFAULT_PERIOD
    if raw not in {str(p) for p in PERIODS}:
        raise BadRequest(_("period must be 7, 30 or 90."), field="period")
    return int(raw)
