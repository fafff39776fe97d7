from __future__ import annotations

import secrets

from backoffice.accounts.models import Account
from backoffice.api.models import ApiToken
from backoffice.auth import hash_secret
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db

SCOPES = ("read", "ingest", "admin", "account")


def create_token(name: str, scope: str, account_id: str | None = None) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise BadRequest("A token needs a name of 1 to 100 characters.", field="name")
    if scope not in SCOPES:
        raise BadRequest("Scope must be read, ingest, admin or account.", field="scope")
    if scope == "account":
        if not account_id or db.session.get(Account, account_id) is None:
            raise BadRequest("An account-scoped token needs an existing --account.", field="account")
    elif account_id:
        raise BadRequest("--account goes only with --scope account.", field="account")
    secret = "bo_" + secrets.token_urlsafe(32)
    token = ApiToken(name=name, scope=scope, account_id=account_id, token_hash=hash_secret(secret),
                     prefix=secret[:8])
    db.session.add(token)
    db.session.commit()
    return token, secret


def list_tokens() -> list[ApiToken]:
    return list(db.session.execute(db.select(ApiToken).order_by(ApiToken.id)).scalars())


def revoke_token(token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"No token with id {token_id}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token
