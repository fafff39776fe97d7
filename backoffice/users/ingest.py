"""The platform's users, memberships, logins and sessions, upserted through the JSON API."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, NotFound, Unprocessable
from backoffice.extensions import db
from backoffice.usage.parsing import MAX_BATCH, parse_id, parse_time
from backoffice.users.models import Login, Membership, User, UserSession

LOGIN_OUTCOMES = ("success", "failure")
ROLES = ("owner", "admin", "member")
STATES = ("active", "pending")


def _obj(body) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _str(body: dict, key: str, limit: int, field: str | None = None, required: bool = False) -> str | None:
    field = field or key
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{field} is required.", field=field)
        return None
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise BadRequest(f"{field} must be a string of at most {limit} characters.", field=field)
    return value.strip() or None


def upsert_user(user_id: str, body) -> tuple[User, bool]:
    body = _obj(body)
    parse_id(user_id, "user_id")
    user = db.session.get(User, user_id)
    created = user is None
    values: dict = {}
    if created and body.get("email") is None:
        raise Unprocessable("email is required for a new user.", field="email")
    if created or "email" in body:
        email = _str(body, "email", 254, required=True)
        if "@" not in email:
            raise BadRequest("email is not an e-mail address.", field="email")
        values["email"] = email
    for key in ("first_name", "last_name"):
        if key in body:
            values[key] = _str(body, key, 100)
    for key in ("created_at", "last_seen_at"):
        if key in body:
            values[key] = parse_time(body[key], key, required=key == "created_at")
    if created:
        user = User(id=user_id, **values)
        db.session.add(user)
    else:
        for k, v in values.items():
            setattr(user, k, v)
    db.session.commit()
    return user, created


def _need(model, key: str, what: str, field: str):
    row = db.session.get(model, key)
    if row is None:
        raise NotFound(f"No {what} with id {key!r}.", field=field)
    return row


def upsert_membership(account_id: str, user_id: str, body) -> tuple[Membership, bool]:
    body = _obj(body)
    _need(Account, account_id, "account", "account_id")
    _need(User, user_id, "user", "user_id")
    role = body.get("role", "member")
    if role not in ROLES:
        raise BadRequest("role must be owner, admin or member.", field="role")
    state = body.get("state", "active")
    if state not in STATES:
        raise BadRequest("state must be active or pending.", field="state")
    # Checked also when the membership exists (and its first time stays).
    created_at = parse_time(body["created_at"], "created_at") if "created_at" in body else None
    m = db.session.execute(sa.select(Membership).where(
        Membership.account_id == account_id, Membership.user_id == user_id)).scalar_one_or_none()
    created = m is None
    if created:
        m = Membership(account_id=account_id, user_id=user_id, role=role, state=state)
        if created_at is not None:
            m.created_at = created_at
        db.session.add(m)
    else:
        m.role, m.state = role, state
    db.session.commit()
    return m, created


def remove_membership(account_id: str, user_id: str) -> bool:
    parse_id(account_id, "account_id")
    parse_id(user_id, "user_id")
    m = db.session.execute(sa.select(Membership).where(
        Membership.account_id == account_id, Membership.user_id == user_id)).scalar_one_or_none()
    if m is None:
        return False
    db.session.delete(m)
    db.session.commit()
    return True


def record_logins(body) -> int:
    """A batch of up to 1,000 logins, all or nothing; errors name the record's index."""
    body = _obj(body)
    items = body.get("logins")
    if not isinstance(items, list) or not items:
        raise BadRequest("logins must be a non-empty list.", field="logins")
    if len(items) > MAX_BATCH:
        raise BadRequest(f"logins holds {len(items)} entries; at most {MAX_BATCH:,} per call.", field="logins")
    rows = []
    for i, raw in enumerate(items):
        f = f"logins[{i}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"Login {i}: must be an object.", field=f)
        user_id = _str(raw, "user_id", 64, f"{f}.user_id", required=True)
        method = _str(raw, "method", 20, f"{f}.method", required=True)
        outcome = raw.get("outcome", "success")
        if outcome not in LOGIN_OUTCOMES:
            raise BadRequest(f"Login {i}: outcome must be success or failure.", field=f"{f}.outcome")
        rows.append({"user_id": user_id, "method": method, "outcome": outcome,
                     "at": parse_time(raw.get("at"), f"{f}.at", prefix=f"Login {i}: "),
                     "ip": _str(raw, "ip", 45, f"{f}.ip"), "user_agent": _str(raw, "user_agent", 500, f"{f}.user_agent")})
    known = set(db.session.execute(sa.select(User.id).where(User.id.in_({r["user_id"] for r in rows}))).scalars())
    for i, r in enumerate(rows):
        if r["user_id"] not in known:
            raise NotFound(f"Login {i}: no user with id {r['user_id']!r}.", field=f"logins[{i}].user_id")
    db.session.execute(sa.insert(Login), rows)
    # The user's last-seen moves forward to their latest successful login.
    latest: dict[str, datetime] = {}
    for r in rows:
        if r["outcome"] == "success" and (r["user_id"] not in latest or r["at"] > latest[r["user_id"]]):
            latest[r["user_id"]] = r["at"]
    for user in db.session.execute(sa.select(User).where(User.id.in_(latest))).scalars():
        if user.last_seen_at is None or user.last_seen_at < latest[user.id]:
            user.last_seen_at = latest[user.id]
    db.session.commit()
    return len(rows)


def create_session(session_id: str, body) -> tuple[UserSession, bool]:
    body = _obj(body)
    parse_id(session_id, "session_id")
    user_id = _str(body, "user_id", 64, required=True)
    # The whole body is checked, also when the session exists (a retry answers it as it is).
    at = parse_time(body.get("created_at"), "created_at", required=False) or utcnow()
    ip, user_agent = _str(body, "ip", 45), _str(body, "user_agent", 500)
    _need(User, user_id, "user", "user_id")
    s = db.session.get(UserSession, session_id)
    if s is not None:
        if s.user_id != user_id:
            raise BadRequest(f"Session {session_id} belongs to another user.", field="user_id", status=409,
                             code="conflict")
        return s, False
    s = UserSession(id=session_id, user_id=user_id, created_at=at, last_seen_at=at, ip=ip, user_agent=user_agent)
    db.session.add(s)
    db.session.commit()
    return s, True


def touch_session(session_id: str, body) -> UserSession:
    body = _obj(body or {})
    s = _need(UserSession, session_id, "session", "session_id")
    at = parse_time(body.get("at"), "at", required=False) or utcnow()
    if at > s.last_seen_at:
        s.last_seen_at = at
        user = db.session.get(User, s.user_id)
        if user.last_seen_at is None or user.last_seen_at < at:
            user.last_seen_at = at
    db.session.commit()
    return s


def revoke_session(session_id: str, body) -> UserSession:
    body = _obj(body or {})
    s = _need(UserSession, session_id, "session", "session_id")
    at = parse_time(body.get("at"), "at", required=False)  # checked also when the first time stays
    if s.revoked_at is None:
        s.revoked_at = at or utcnow()
        db.session.commit()
    return s
