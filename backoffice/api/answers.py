"""What every part of the API writes alike: times as ISO 8601 UTC with Z, the actor a token's call
is audited as, a JSON object body, and the one account an account-scoped token may read."""
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


def own_account() -> str | None:
    """An account-scoped token's account, the only one its calls may read; None for any other token."""
    token = g.api_token
    return token.account_id if token.scope == "account" else None


def confine(named: str | None, field: str) -> str:
    """The account a call that accepts account-scoped tokens (`token_required(..., "account")`)
    reads: the token's own, whatever the request leaves out; "" for any other token (which reads
    what it names). A request naming another account is refused with a 403 naming `field`, the
    same whether or not that account exists, so the answer tells nothing about it."""
    own = own_account()
    if own is None:
        return ""
    if (named or "").strip() not in ("", own):
        raise BadRequest(f"This token reads only its own account, {own}.", field=field, status=403,
                         code="forbidden")
    return own
