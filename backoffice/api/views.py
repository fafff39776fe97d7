"""JSON API v1: the blueprint at /api/v1 and its OpenAPI document. Each endpoint parses input, calls a
feature's service or query, answers JSON; the parts are nested in this blueprint by api/blueprints.py."""
from __future__ import annotations

from flask import Blueprint, jsonify

from backoffice.api.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())

