"""Operator use cases: accounts of the people who sign in, and the audit log every admin action writes."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from backoffice.auth import hash_secret
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db
from backoffice.operators.models import AuditEntry, Operator

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLES = ("admin", "viewer")
MIN_PASSWORD = 10
INVITE_DAYS = 7
# A real hash to compare against when the e-mail is unknown, so timing does not reveal it.
_DUMMY_HASH = generate_password_hash("not-a-real-password-" + secrets.token_hex(8))


def _hash(password: str) -> str:
    """scrypt by default; PASSWORD_HASH_METHOD lets the test suite use a cheaper work factor."""
    return generate_password_hash(password, method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))


def normalise_email(email: str | None) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise BadRequest("Enter a valid e-mail address.", field="email")
    return email


def check_password_rules(password: str | None) -> str:
    if not password or len(password) < MIN_PASSWORD:
        raise BadRequest(f"The password needs at least {MIN_PASSWORD} characters.", field="password")
    return password


@dataclass(frozen=True)
class NamedActor:
    """An actor without an operator row (an API token, a job started by one): `id` is None and
    `email` is its label in the audit log."""
    email: str
    id: None = None


def audit(actor: Operator | None, action: str, target_type: str | None = None, target_id=None,
          before: dict | None = None, after: dict | None = None, result: str = "ok",
          detail: str | None = None) -> AuditEntry:
    """Adds an audit entry to the session; the caller's use case commits it with its change."""
    entry = AuditEntry(
        operator_id=actor.id if actor else None,
        operator_email=actor.email if actor else "system",
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        before=before,
        after=after,
        result=result,
        detail=detail,
    )
    db.session.add(entry)
    return entry


def audit_now(actor: Operator | None, action: str, **kwargs) -> None:
    """Records an entry in its own transaction (for failed or refused actions)."""
    db.session.rollback()
    audit(actor, action, **kwargs)
    db.session.commit()


def _snapshot(op: Operator) -> dict:
    return {"email": op.email, "role": op.role, "active": op.active}


def create_operator(email: str, password: str | None, role: str = "viewer",
                    actor: Operator | None = None, kiosk: bool = False) -> Operator:
    """`kiosk`: a wall-screen login, view-only whatever its role, with a long session and no sign-out."""
    email = normalise_email(email)
    if role not in ROLES:
        raise BadRequest("Role must be admin or viewer.", field="role")
    if password is not None:
        check_password_rules(password)
    if db.session.execute(db.select(Operator.id).where(Operator.email == email)).first():
        raise BadRequest("An operator with this e-mail already exists.", field="email")
    op = Operator(email=email, role="viewer" if kiosk else role, active=True, kiosk=kiosk,
                  password_hash=_hash(password) if password else None)
    db.session.add(op)
    db.session.flush()
    audit(actor, "operator.create", "operator", op.id, after=_snapshot(op))
    db.session.commit()
    return op


def authenticate(email: str, password: str) -> Operator | None:
    """The operator for these credentials, or None — the same answer whether or not the e-mail exists."""
    email = (email or "").strip().lower()
    op = db.session.execute(db.select(Operator).where(Operator.email == email)).scalar_one_or_none()
    if op is None or not op.password_hash or not op.active:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(op.password_hash, password or ""):
        return None
    op.last_sign_in_at = utcnow()
    db.session.commit()
    return op


def invite(email: str, role: str, actor: Operator) -> tuple[Operator, str]:
    """Creates an operator without a password and returns the one-time invite token."""
    op = create_operator(email, None, role, actor=actor)
    token = secrets.token_urlsafe(32)
    op.invite_token_hash = hash_secret(token)
    op.invite_expires_at = utcnow() + timedelta(days=INVITE_DAYS)
    audit(actor, "operator.invite", "operator", op.id, after=_snapshot(op))
    db.session.commit()
    return op, token


def find_invite(token: str) -> Operator:
    op = db.session.execute(
        db.select(Operator).where(Operator.invite_token_hash == hash_secret(token or ""))
    ).scalar_one_or_none()
    if op is None or op.invite_expires_at is None or op.invite_expires_at < utcnow() or not op.active:
        raise NotFound("This invitation is unknown or has expired. Ask an admin for a new one.")
    return op


def accept_invite(token: str, password: str) -> Operator:
    op = find_invite(token)
    check_password_rules(password)
    op.password_hash = _hash(password)
    op.invite_token_hash = None
    op.invite_expires_at = None
    audit(op, "operator.accept_invite", "operator", op.id)
    db.session.commit()
    return op


def end_sessions(op: Operator) -> None:
    """Signs the operator out of every browser (their session cookies stop being accepted)."""
    op.session_version += 1
    db.session.commit()


def get_operator(operator_id: int) -> Operator:
    op = db.session.get(Operator, operator_id)
    if op is None:
        raise NotFound("No such operator.")
    return op


def _active_admins() -> int:
    return db.session.execute(
        db.select(db.func.count()).select_from(Operator).where(
            Operator.role == "admin", Operator.active.is_(True), Operator.kiosk.is_(False)
        )
    ).scalar_one()


def change_role(operator_id: int, role: str, actor: Operator) -> Operator:
    if role not in ROLES:
        raise BadRequest("Role must be admin or viewer.", field="role")
    op = get_operator(operator_id)
    before = _snapshot(op)
    if op.role == "admin" and role != "admin" and op.active and _active_admins() <= 1:
        message = "The last active admin cannot be demoted."
        audit_now(actor, "operator.change_role", target_type="operator", target_id=operator_id,
                  before=before, after=before, result="error", detail=message)
        raise BadRequest(message, field="role")
    op.role = role
    op.session_version += 1  # new rights take effect at once
    audit(actor, "operator.change_role", "operator", op.id, before=before, after=_snapshot(op))
    db.session.commit()
    return op


def set_active(operator_id: int, active: bool, actor: Operator) -> Operator:
    op = get_operator(operator_id)
    before = _snapshot(op)
    if not active and op.role == "admin" and op.active and _active_admins() <= 1:
        message = "The last active admin cannot be deactivated."
        audit_now(actor, "operator.deactivate", target_type="operator", target_id=operator_id,
                  before=before, after=before, result="error", detail=message)
        raise BadRequest(message, field="active")
    op.active = active
    op.session_version += 1  # signs the operator out everywhere
    audit(actor, "operator.activate" if active else "operator.deactivate", "operator", op.id,
          before=before, after=_snapshot(op))
    db.session.commit()
    return op


def set_locale(op: Operator, locale: str, languages) -> None:
    if locale not in languages:
        raise BadRequest("Unknown language.", field="locale")
    op.locale = locale
    db.session.commit()

