"""What every part of the API writes alike: times as ISO 8601 UTC with Z, the actor a token's call
is audited as, a JSON object body, and the one account an account-scoped token may read."""
from __future__ import annotations

import json
from datetime import datetime

from flask import g, request

from backoffice.dbtypes import UNSTORABLE_TEXT
from backoffice.errors import BadRequest
from backoffice.operators.services import NamedActor


def iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def token_actor() -> NamedActor:
    """A token's call is audited as the token: it has no operator row."""
    token = g.api_token
    return NamedActor(f"api token {token.prefix} ({token.name})")


# Every body the API reads is at most 5 levels deep; 32 leaves room and refuses a body meant to
# exhaust a parser's stack (documented in the OpenAPI document's description).
MAX_JSON_DEPTH = 32


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def object_body(optional: bool = False) -> dict:
    """The request's JSON object, every string and key in it storable and no deeper than
    MAX_JSON_DEPTH, or a 400 naming the place (`records[3].deployment`); `optional`: an empty
    body is {}. The one reader of every API body, so no parser needs to look for these."""
    data = request.get_data(cache=True)
    if optional and not data:
        return {}
    if not request.is_json:
        raise BadRequest("The request body must be JSON (Content-Type: application/json).", field="body",
                         status=415, code="unsupported_media_type")
    try:
        body = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest(f"The body is nested deeper than {MAX_JSON_DEPTH} levels.", field="body") from None
    except ValueError as exc:  # also bytes that are not UTF-8
        raise BadRequest(f"The request body is not JSON: {str(exc)[:80]}.", field="body") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", field="body")
    _check_tree(body)
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


def _check_tree(body: dict) -> None:
    stack: list[tuple[object, str, int]] = [(body, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"{path} is nested deeper than {MAX_JSON_DEPTH} levels.", field=path)
        if isinstance(node, dict):
            for key, value in node.items():
                inner = f"{path}.{key}" if path else key
                if UNSTORABLE_TEXT.search(key):
                    raise BadRequest(f"The key {key!r} holds a NUL byte or a lone surrogate.", field=path or "body")
                stack.append((value, inner, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, f"{path}[{i}]", depth + 1) for i, value in enumerate(node))
        elif isinstance(node, str) and UNSTORABLE_TEXT.search(node):
            raise BadRequest(f"{path} holds a NUL byte or a lone surrogate, which no text can store.", field=path)
