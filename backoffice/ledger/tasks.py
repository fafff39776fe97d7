"""Background jobs of the ledger. With no broker configured they run in-process (eager)."""
from __future__ import annotations

from backoffice.dbtypes import utcnow
from backoffice.jobs import celery_app
from backoffice.ledger import drain, services


@celery_app.task(name="ledger.replay_account")
def replay_account(account_id: str | None) -> dict:
    """Replays the pending archived events of one account (None: the plan catalog only)."""
    return services.replay_account(account_id).as_dict()


@celery_app.task(name="ledger.drain_pending")
def drain_pending() -> dict:
    """Replays every settled pending event of every account (coalesced: one task per settle
    window per web process, not one per event); while younger events wait, enqueues itself
    again for when they settle."""
    settle = drain.settle_seconds()
    replayed, due = drain.drain_settled(settle)
    if due is not None:
        countdown = max(drain.drain_interval(settle), (due - utcnow()).total_seconds())
        drain_pending.apply_async(countdown=countdown)
    return {"events": replayed, "next_in_s": None if due is None else round(countdown, 3)}
