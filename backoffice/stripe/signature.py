"""The webhook's gate: Stripe's signature over the raw body, the content type, then the
archive's envelope check. What it answers is an event the archive may store
(`ledger.archive.archive_event`); what it refuses is a 400 and stores nothing. It lives beside
the webhook, not in the ledger, because it needs the gateway (the one door to Stripe): the
ledger takes verified events and knows nothing of Stripe's signatures."""
from __future__ import annotations

import json
from collections.abc import Sequence

from flask_babel import gettext as _

from backoffice.errors import BadRequest
from backoffice.ledger import archive
from backoffice.stripe import gateway

SIGNATURE_TOLERANCE_SECONDS = 300


def verify_and_parse(body: bytes, header: str | None, secrets: str | Sequence[str], mimetype: str) -> dict:
    """Stripe's v1 signature over the raw body (valid for any of the `secrets`) is checked before
    anything else is looked at; then the content type and the envelope. Every refusal is a 400
    and stores nothing."""
    if not header:
        raise BadRequest(_("The Stripe-Signature header is missing."), field="Stripe-Signature")
    try:
        event = gateway.verify_webhook(body, header, secrets, tolerance=SIGNATURE_TOLERANCE_SECONDS)
    except json.JSONDecodeError:
        raise BadRequest(_("The body is not JSON."), field="body") from None
    except ValueError:  # a bad signature, or a body that is not even UTF-8
        raise BadRequest(_("The Stripe signature is invalid."), field="Stripe-Signature") from None
    if mimetype != "application/json":
        raise BadRequest(_("The content type must be application/json."), field="Content-Type")
    return archive.check_envelope(event)
