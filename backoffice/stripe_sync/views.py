from __future__ import annotations

from flask import Blueprint

bp = Blueprint("stripe_sync", __name__, template_folder="templates")
