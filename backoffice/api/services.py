"""API tokens, created and revoked alike by `backoffice tokens` and the API tokens page: each change
is audited (the CLI's as `system`), and the secret exists only in create_token's answer."""
from __future__ import annotations

import secrets

from backoffice.accounts.models import Account
from backoffice.api.models import ApiToken
from backoffice.api.queries import get_token
from backoffice.auth import hash_secret
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.operators.models import Operator
from backoffice.operators.services import audit
from backoffice.stripe.text import _  # translated in a request, English on the CLI

SCOPES = ("read", "ingest", "admin", "account")


def _snapshot(token: ApiToken) -> dict:
    """What the audit log keeps of a token: never its secret or its hash."""
    return {"name": token.name, "scope": token.scope, "account_id": token.account_id, "prefix": token.prefix,
            "revoked": token.revoked_at is not None}


def create_token(name: str, scope: str, account_id: str | None = None,
                 actor: Operator | None = None) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    account_id = (account_id or "").strip() or None
    if not name or len(name) > 100:
        raise BadRequest(_("A token needs a name of 1 to 100 characters."), field="name")
    if scope not in SCOPES:
        raise BadRequest(_("Scope must be read, ingest, admin or account."), field="scope")
    if scope == "account":
        if not account_id or db.session.get(Account, account_id) is None:
            raise BadRequest(_("A token of scope account needs the id of an existing account."), field="account")
    elif account_id:
        raise BadRequest(_("Only a token of scope account takes an account id."), field="account")
    secret = "bo_" + secrets.token_urlsafe(32)
    token = ApiToken(name=name, scope=scope, account_id=account_id, token_hash=hash_secret(secret),
                     prefix=secret[:8])
    db.session.add(token)
    db.session.flush()
    audit(actor, "api_token.create", "api_token", token.id, after=_snapshot(token))
    db.session.commit()
    return token, secret


def revoke_token(token_id: int, actor: Operator | None = None) -> ApiToken:
    """Calls with the token are refused from now on. A revoked token stays revoked: revoking it
    again changes nothing and is not audited."""
    token = get_token(token_id)
    if token.revoked_at is None:
        before = _snapshot(token)
        token.revoked_at = utcnow()
        audit(actor, "api_token.revoke", "api_token", token.id, before=before, after=_snapshot(token))
        db.session.commit()
    return token
