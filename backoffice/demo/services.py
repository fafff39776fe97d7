"""The demo's use cases that write: its admin operator, the "seeded" marker, Stripe history.

The marker is an audit-log entry (`demo.seed`) written when a data set is complete, so a demo
database says itself which seed and size it holds, and a half-built one is never reused.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from backoffice.accounts.models import Account
from backoffice.demo.stripe_sim import DeliveryReport, deliver
from backoffice.extensions import db
from backoffice.jobs import celery_app
from backoffice.ledger import services as ledger
from backoffice.ledger.models import BillingEvent, StripeEvent
from backoffice.operators import services as operators
from backoffice.operators.models import AuditEntry, Operator

DEMO_EMAIL = "demo@backoffice.local"
PASSWORD_ENV = "BACKOFFICE_DEMO_PASSWORD"
MARKER_ACTION = "demo.seed"


@dataclass(frozen=True)
class DemoOperator:
    email: str
    password: str
    created: bool


def ensure_operator(password_file: Path) -> DemoOperator:
    """The demo's admin: created, or reused. Its password is BACKOFFICE_DEMO_PASSWORD if set, else
    the one kept in `password_file` (made once, 0600), so a restarted demo keeps everyone signed in;
    only a changed password resets it (and ends the old one's sessions)."""
    password = os.environ.get(PASSWORD_ENV) or _kept_password(password_file)
    operators.check_password_rules(password)
    op = db.session.execute(select(Operator).where(Operator.email == DEMO_EMAIL)).scalar_one_or_none()
    if op is None:
        operators.create_operator(DEMO_EMAIL, password, "admin")
        return DemoOperator(DEMO_EMAIL, password, created=True)
    if check_password_hash(op.password_hash, password) and op.role == "admin" and op.active and not op.kiosk:
        return DemoOperator(DEMO_EMAIL, password, created=False)
    before = {"role": op.role, "active": op.active}
    op.password_hash = generate_password_hash(password)
    op.role, op.active, op.kiosk = "admin", True, False
    op.session_version += 1  # the old password's sessions end
    operators.audit(None, "operator.reset_password", "operator", op.id, before=before,
                    after={"role": op.role, "active": op.active}, detail="backoffice demo")
    db.session.commit()
    return DemoOperator(DEMO_EMAIL, password, created=False)


def _kept_password(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password)
    path.chmod(0o600)
    return password


def seeded_marker() -> dict | None:
    """What the latest complete demo seeding recorded (seed, accounts, ...), or None."""
    entry = db.session.execute(
        select(AuditEntry).where(AuditEntry.action == MARKER_ACTION).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one_or_none()
    return dict(entry.after or {}) if entry is not None else None


def record_marker(facts: dict) -> None:
    operators.audit(None, MARKER_ACTION, "demo", "demo", after=facts)
    db.session.commit()


def holds_data() -> bool:
    return db.session.execute(select(Account.id).limit(1)).first() is not None


def stripe_counts() -> dict[str, int]:
    def n(model, *where) -> int:
        return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()

    return {"stripe_events": n(StripeEvent), "billing_events": n(BillingEvent, BillingEvent.current())}


@contextmanager
def _replay_by_a_worker():
    """While delivering, the webhook enqueues its replay (as with a broker) instead of running it
    per event; `replay_pending` then replays each account once: the worker's catch-up pass,
    about three times faster than a replay per webhook. Only for the demo's in-memory broker."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = eager


def _drop_queued_replays() -> None:
    with celery_app.connection_for_write() as conn:
        celery_app.control.purge(connection=conn)


def deliver_history(client, secret: str, batches: Iterable[list[dict]],
                    on_batch: Callable[[int], None] | None = None, replay_every: int = 50):
    """Delivers each account's events, in order, through the real webhook, then replays them."""
    if not str(celery_app.conf.broker_url or "").startswith("memory://"):
        raise RuntimeError("the demo delivers its Stripe history with the in-process broker only")
    report = DeliveryReport()
    waiting = 0

    def catch_up() -> None:
        _drop_queued_replays()
        ledger.replay_pending()
        db.session.remove()

    with _replay_by_a_worker():
        for events in batches:
            deliver(events, secret, client=client, report=report)
            waiting += 1
            if waiting >= replay_every:
                catch_up()
                if on_batch:
                    on_batch(waiting)
                waiting = 0
        catch_up()
    if on_batch and waiting:
        on_batch(waiting)
    return report
