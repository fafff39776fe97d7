"""What every part of the API writes alike: times as ISO 8601 UTC with Z, the actor a token's call
is audited as, and a JSON object body."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g, request

from backoffice.errors import BadRequest


def iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class TokenActor:
    """Who an API call acted as, for the use cases' audit entry and acknowledgement: a token
    has no operator row (`id` None), and `email` is the token's label."""
    email: str
    id: None = None


def token_actor() -> TokenActor:
    token = g.api_token
    return TokenActor(f"api token {token.prefix} ({token.name})")


def object_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object (Content-Type: application/json).")
    return body
