"""Reads of the API tokens, for the CLI's list and the API tokens page (never their secrets: only
a hash is stored)."""
from __future__ import annotations

from backoffice.api.models import ApiToken
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.pagination import Page, paginate
from backoffice.stripe.text import _  # translated in a request, English on the CLI


def list_tokens() -> list[ApiToken]:
    return list(db.session.execute(db.select(ApiToken).order_by(ApiToken.id)).scalars())


def tokens_page(page: int, page_size: int) -> Page:
    """The newest first, the revoked ones too: the page says which they are."""
    return paginate(db.select(ApiToken).order_by(ApiToken.id.desc()), page, page_size)


def get_token(token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(_("No token with id %(id)s.", id=token_id))
    return token
