"""An account's billing posture: how it pays (card or invoice), whether its month-end invoice and
reminders go out on their own, and its payment terms. Edited by admins on the account's Billing page
and by the platform through PUT /api/v1/accounts/<id>."""
from __future__ import annotations

from backoffice.accounts.models import Account
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db
from backoffice.operators.models import Operator
from backoffice.operators.services import audit, audit_now

POSTURE_FIELDS = ("pay_by", "auto_invoice", "auto_reminders", "payment_terms_days")


def posture_of(account: Account) -> dict:
    return {f: getattr(account, f) for f in POSTURE_FIELDS}


def from_form(form) -> dict:
    """The posture an admin submitted on the Billing page (checked by `check_posture`)."""
    values = {
        "pay_by": form.get("pay_by", ""),
        "auto_invoice": form.get("auto_invoice") == "1",
        "auto_reminders": form.get("auto_reminders") == "1",
    }
    try:
        values["payment_terms_days"] = int(form.get("payment_terms_days", ""))
    except ValueError:
        values["payment_terms_days"] = -1  # refused by check_posture with the field named
    return values


def check_posture(values: dict, prefix: str = "") -> dict:
    """Validates a (partial) billing posture; returns the typed values."""
    out = {}
    if "pay_by" in values:
        if values["pay_by"] not in ("card", "invoice"):
            raise BadRequest("pay_by must be card or invoice.", field=f"{prefix}pay_by")
        out["pay_by"] = values["pay_by"]
    for flag in ("auto_invoice", "auto_reminders"):
        if flag in values:
            if not isinstance(values[flag], bool):
                raise BadRequest(f"{flag} must be true or false.", field=f"{prefix}{flag}")
            out[flag] = values[flag]
    if "payment_terms_days" in values:
        days = values["payment_terms_days"]
        if isinstance(days, float) and days.is_integer():  # 30.0 is JSON's 30
            days = int(days)
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 365:
            raise BadRequest("payment_terms_days must be a whole number from 0 to 365.",
                             field=f"{prefix}payment_terms_days")
        out["payment_terms_days"] = days
    return out


def update_billing_posture(account_id: str, values: dict, actor: Operator) -> Account:
    """An admin changes how an account pays; audited with before and after."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account with id {account_id}.")
    before = posture_of(account)
    try:
        typed = check_posture(values)
    except BadRequest as e:
        audit_now(actor, "account.billing_posture", target_type="account", target_id=account.id, before=before,
                  result="error", detail=e.message)
        raise
    for k, v in typed.items():
        setattr(account, k, v)
    audit(actor, "account.billing_posture", "account", account.id, before=before, after=posture_of(account))
    db.session.commit()
    return account
