"""Messages of reconciliation, which runs in requests, on the CLI and on workers."""
from __future__ import annotations

from flask import has_request_context
from flask_babel import gettext


def _(message: str, **params) -> str:
    """Translated in a request (the operator's language); English on the CLI and on workers,
    where no request chooses a language."""
    if has_request_context():
        return gettext(message, **params)
    return message % params if params else message
