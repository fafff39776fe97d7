"""What every part of the API writes alike: times as ISO 8601 UTC with Z, the actor a token's call
is audited as, and a JSON object body."""
from __future__ import annotations

from datetime import datetime

from flask import g, request

from backoffice.errors import BadRequest
from backoffice.operators.services import NamedActor


def iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def token_actor() -> NamedActor:
    """A token's call is audited as the token: it has no operator row."""
    token = g.api_token
    return NamedActor(f"api token {token.prefix} ({token.name})")


def object_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object (Content-Type: application/json).")
    return body
