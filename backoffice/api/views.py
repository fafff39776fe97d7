"""JSON API v1. Each endpoint parses input, calls a feature's service or query, answers JSON."""
from __future__ import annotations

from flask import Blueprint, jsonify

from backoffice.api.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


# Each feature's endpoints live in their own module and register on `bp` (one import each).
from backoffice.api import endpoints_registry  # noqa: F401
