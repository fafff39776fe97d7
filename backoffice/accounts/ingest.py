"""The platform upserts its accounts through the JSON API (PUT /api/v1/accounts/<id>).

Keys absent from the body keep their stored value (the billing posture is also edited by admins in
Backoffice); a key sent as null clears an optional field."""
from __future__ import annotations

import logging
import re

from backoffice.accounts.models import LANGUAGES, Account
from backoffice.accounts.posture import check_posture
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, Unprocessable
from backoffice.extensions import db
from backoffice.ledger import archive, drain
from backoffice.usage.parsing import parse_id, parse_time

log = logging.getLogger(__name__)

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# JSON key in "billing" -> column, max length
BILLING_FIELDS = {
    "name": ("billing_name", 200),
    "email": ("billing_email", 254),
    "line1": ("billing_line1", 200),
    "line2": ("billing_line2", 200),
    "postal_code": ("billing_postal_code", 20),
    "city": ("billing_city", 100),
    "country": ("billing_country", 2),
    "vat_id": ("vat_id", 40),
}


def _text(body: dict, key: str, limit: int, field: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{field} is required.", field=field)
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise BadRequest(f"{field} must be a string of at most {limit} characters.", field=field)
    value = value.strip()
    if field.endswith("country") and value:
        value = value.upper()
        if not COUNTRY_RE.match(value):
            raise BadRequest(f"{field} must be a two-letter ISO country code.", field=field)
    if field.endswith("email") and value and not EMAIL_RE.match(value):
        raise BadRequest(f"{field} is not an e-mail address.", field=field)
    return value or None


def upsert_account(account_id: str, body: dict) -> tuple[Account, bool]:
    """Creates or updates an account from the platform's JSON. Returns (account, created)."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    parse_id(account_id, "account_id")
    account = db.session.get(Account, account_id)
    created = account is None
    values: dict = {}
    if created and body.get("name") is None:
        raise Unprocessable("name is required for a new account.", field="name")
    if created or "name" in body:
        values["name"] = _text(body, "name", 200, "name", required=True)
    for key, column, limit in (("country", "country", 2), ("email", "email", 254), ("logo_url", "logo_url", 500),
                               ("logo", "logo_url", 500), ("stripe_customer_id", "stripe_customer_id", 255)):
        if key in body:
            values[column] = _text(body, key, limit, key)
    if "billing" in body:
        billing = body["billing"]
        if billing is not None and not isinstance(billing, dict):
            raise BadRequest("billing must be an object.", field="billing")
        for key, (column, limit) in BILLING_FIELDS.items():
            if billing is None:
                values[column] = None
            elif key in billing:
                values[column] = _text(billing, key, limit, f"billing.{key}")
    if "billing_posture" in body:
        posture = body["billing_posture"]
        if not isinstance(posture, dict):
            raise BadRequest("billing_posture must be an object.", field="billing_posture")
        values.update(check_posture(posture, prefix="billing_posture."))
    if "language" in body:
        if body["language"] not in LANGUAGES:
            raise BadRequest(f"language must be one of {', '.join(LANGUAGES)} (the invoices' language).",
                             field="language")
        values["language"] = body["language"]
    if "created_at" in body:
        values["created_at"] = parse_time(body["created_at"], "created_at")
    if "deleted_at" in body:
        values["deleted_at"] = parse_time(body["deleted_at"], "deleted_at", required=False)
    sid = values.get("stripe_customer_id")
    if sid and db.session.execute(db.select(Account.id).where(
            Account.stripe_customer_id == sid, Account.id != account_id)).first():
        raise BadRequest(f"stripe_customer_id {sid} belongs to another account.", field="stripe_customer_id",
                         status=409, code="conflict")
    if created:
        account = Account(id=account_id, **values)
        db.session.add(account)
    else:
        for k, v in values.items():
            setattr(account, k, v)
        account.modified_at = utcnow()
    released = archive.release_waiting_events(sid, account_id) if sid else 0
    db.session.commit()
    if released:
        drain.request_replay(account_id)  # the events that waited for the account
    return account, created
