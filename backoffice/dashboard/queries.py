"""Reads for the dashboard. (Issue 5 grows this into the full metrics set.)"""
from __future__ import annotations

from datetime import timedelta

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.extensions import db
from backoffice.users.models import User, UserSession


def shell_kpis() -> dict:
    now = utcnow()
    accounts = db.session.execute(
        db.select(db.func.count()).select_from(Account).where(Account.deleted_at.is_(None))
    ).scalar_one()
    users = db.session.execute(db.select(db.func.count()).select_from(User)).scalar_one()
    sessions = db.session.execute(
        db.select(db.func.count()).select_from(UserSession).where(
            UserSession.revoked_at.is_(None), UserSession.last_seen_at >= now - timedelta(hours=24)
        )
    ).scalar_one()
    return {"accounts": accounts, "users": users, "active_sessions": sessions}
