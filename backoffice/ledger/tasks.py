"""Background jobs of the ledger. With no broker configured they run in-process (eager)."""
from __future__ import annotations

from backoffice.jobs import celery_app


@celery_app.task(name="ledger.replay_account")
def replay_account(account_id: str | None) -> dict:
    """Replays the pending archived events of one account (None: the plan catalog only)."""
    from backoffice.ledger import services

    return services.replay_account(account_id).as_dict()
