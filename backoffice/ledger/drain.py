"""The replay after the webhook (DOMAIN §3; issue 18): the webhook only verifies, archives and
acknowledges; the pending events are replayed later, in bulk, once they are a few seconds old
(REPLAY_SETTLE_SECONDS, default 5), oldest first. Waiting lets the siblings Stripe sends for one
change (an `invoice.paid` and its `invoice.payment_succeeded`, a subscription's created and
updated) arrive before their account is classified, so a late event rarely has to correct rows.

- No broker (the embedded default): one background thread per web process, woken by each
  webhook; it waits until the oldest waiting event has settled and drains every settled pending
  event of every account with one `replay_pending` (batches of accounts, one commit each).
- With a broker: each web process enqueues one `ledger.drain_pending` task per settle window
  (not one per event); a worker drains every settled pending event and, while younger ones
  wait, enqueues itself again for when they settle.
- TESTING: the account is replayed inline, before the webhook answers (deterministic tests).

Several drains at once (threads, processes, workers) are safe: replays of one account take
turns (replay.serialized / replay.lock_accounts), and a drain finds only what is still pending.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app

from backoffice.dbtypes import utcnow
from backoffice.extensions import db
from backoffice.jobs import celery_app
from backoffice.ledger import archive, services
from backoffice.ledger.models import StripeEvent

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 30.0  # the thread looks for stray pending events this often, even unwoken


def drain_interval(settle: float) -> float:
    """The least time between two drains while events keep arriving: each drain takes every
    event settled by then, so under a steady stream the ledger is at most settle + this behind
    (6 s with the default 5 s) and a drain is one bulk replay, not one per event."""
    return max(0.25, settle / 5)


@dataclass(frozen=True)
class Backlog:
    """The archived events waiting for the replay (of known accounts) and the oldest's receipt."""
    pending: int
    oldest_received_at: datetime | None

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.oldest_received_at is None:
            return None
        return max(0.0, ((now or utcnow()) - self.oldest_received_at).total_seconds())


def backlog() -> Backlog:
    """One query over the pending events (the partial index of the events still to replay)."""
    count, oldest = db.session.execute(
        db.select(db.func.count(), db.func.min(StripeEvent.received_at))
        .where(StripeEvent.state == "pending", StripeEvent.account_id.is_not(None))).one()
    return Backlog(int(count), oldest)


def settle_seconds(app: Flask | None = None) -> float:
    return float((app or current_app).config.get("REPLAY_SETTLE_SECONDS", 5))


def drain_settled(settle: float) -> tuple[int, datetime | None]:
    """Replays every pending event received at least `settle` seconds ago; answers how many
    events were replayed and when the oldest still waiting will have settled (or None)."""
    cutoff = utcnow() - timedelta(seconds=settle)
    archive.release_resolvable_events()
    db.session.commit()  # released or not: the UPDATE's transaction ends here
    reports = services.replay_pending(received_before=cutoff)
    left = backlog()
    due = None if left.oldest_received_at is None else left.oldest_received_at + timedelta(seconds=settle)
    return sum(r.events for r in reports), due


# -- no broker: the web process's own drain thread -------------------------------------------------
class DrainThread:
    """The embedded default's background replay: one daemon thread per process, started by the
    first webhook. `wake()` costs the webhook a lock and an Event.set. Idle, the thread waits
    for a webhook (or IDLE_POLL_SECONDS); once it knows when the oldest waiting event settles it
    sleeps until then, however many webhooks arrive meanwhile: one drain takes them all."""

    def __init__(self, app: Flask):
        self.app = app
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.drains = 0  # drains that replayed something (the tests, the log)
        self.events = 0

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="replay-drain", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        settle = settle_seconds(self.app)
        due: datetime | None = None
        while not self._stop.is_set():
            if due is None:
                self._wake.wait(IDLE_POLL_SECONDS)
            else:
                self._stop.wait(max(0.0, (due - utcnow()).total_seconds()))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                with self.app.app_context():
                    try:
                        replayed, due = drain_settled(settle)
                    finally:
                        db.session.remove()
            except Exception:  # the thread must survive a bad drain: the events stay pending
                log.exception("background replay drain failed; trying again in %s s", max(settle, 1.0))
                due = utcnow() + timedelta(seconds=max(settle, 1.0))
                continue
            if replayed:
                self.drains += 1
                self.events += replayed
            if due is not None:
                due = max(due, utcnow() + timedelta(seconds=drain_interval(settle)))


def drain_thread(app: Flask) -> DrainThread:
    thread = app.extensions.get("replay_drain")
    if thread is None:
        thread = app.extensions.setdefault("replay_drain", DrainThread(app))
    return thread


# -- with a broker: coalesced Celery drains ----------------------------------------------------------
_last_enqueued = 0.0  # monotonic time this process last enqueued a drain
_enqueue_lock = threading.Lock()


def enqueue_drain(settle: float) -> bool:
    """Enqueues one drain for when the events arriving now have settled, unless this process
    already enqueued one within the window (it will find them). Answers whether it enqueued."""
    global _last_enqueued

    now = time.monotonic()
    with _enqueue_lock:
        if now - _last_enqueued < max(settle, 0.5) / 2:
            return False
        _last_enqueued = now
    celery_app.send_task("ledger.drain_pending", countdown=settle)  # ledger/tasks.py
    return True


def request_replay(account_id: str | None) -> None:
    """What the webhook and the ingest API call once they stored events that need a replay.
    Never fails the caller: the events are stored, and a later drain (or `ledger replay`)
    replays what is pending."""
    app = current_app._get_current_object()
    try:
        if app.config.get("CELERY_BROKER_URL"):
            enqueue_drain(settle_seconds(app))
        elif app.testing:
            services.replay_account(account_id)
        else:
            drain_thread(app).wake()
    except Exception:
        log.exception("replay of account %s requested, but not started", account_id)
