"""The demo feed goes through the API and leaves consistent logs."""
from __future__ import annotations

import random
from datetime import UTC, datetime

import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.usage.demo import feed_demo
from backoffice.usage.models import Deployment, UsageRecord
from tests.factories import AccountFactory


def test_feed_demo_through_the_api(app):
    accounts = [AccountFactory() for _ in range(4)]
    db.session.commit()
    calls = []
    summary = feed_demo(app, accounts, random.Random(42), datetime(2026, 6, 1, tzinfo=UTC), months=3,
                        progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (4, 4)
    n = lambda stmt: db.session.execute(stmt).scalar_one()
    deployments = n(sa.select(sa.func.count()).select_from(Deployment))
    live = n(sa.select(sa.func.count()).select_from(Deployment).where(Deployment.deleted_at.is_(None)))
    assert deployments == summary["deployments"] + 2  # the two legacy ones came with the backfill
    assert n(sa.select(sa.func.count()).select_from(UsageRecord)) == summary["usage_records"]
    # Every tracked deployment already had its rows: the backfill only added the two legacy ones
    # (2 + 3 add-ons, one of them suspended).
    assert summary["backfill"] == {"deployments_examined": live, "lifecycle_inserted": 2,
                                   "events_inserted": 5, "suspension_events_inserted": 1}
