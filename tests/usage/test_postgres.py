"""What only PostgreSQL can prove: writers serialized per deployment under real concurrency, and the
append-only triggers. SQLite runs one writer at a time, so these are skipped there."""
from __future__ import annotations

import itertools
import random
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.usage import queries
from backoffice.usage.models import AddonEvent, Deployment, SuspensionEvent
from tests.conftest import IS_POSTGRES
from tests.usage.helpers import T0, Api, iso

pytestmark = pytest.mark.skipif(
    not IS_POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL): SQLite has a single writer, so there "
                            "is no concurrency to prove and no triggers")


def _run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_concurrent_puts_never_contradict(app, api):
    api.account()
    api.deployment("hot", add_ons=["a"], at=T0)
    addons = ["a", "b", "c", "d"]
    secret = api.headers["Authorization"][7:]
    statuses = []

    def worker(i):
        rng = random.Random(i)
        client = Api(app.test_client(), secret)
        for _ in range(6):
            want = sorted(rng.sample(addons, rng.randint(0, 4)))
            resp = client.deployment("hot", add_ons=want, suspended=rng.random() < 0.5)
            statuses.append(resp.status_code)

    _run_threads(8, worker)
    assert statuses == [200] * 48
    db.session.expire_all()
    # Replayed in log order, every add-on alternates enabled/disabled and the suspension flag
    # alternates: no PUT appended a change against a state another PUT had already changed.
    rows = db.session.execute(sa.select(AddonEvent).where(AddonEvent.deployment_name == "hot")
                              .order_by(AddonEvent.occurred_at, AddonEvent.id)).scalars().all()
    assert [r.id for r in rows] == sorted(r.id for r in rows)  # time order == commit order
    on: set[str] = set()
    for r in rows:
        if r.kind == "enabled":
            assert r.addon not in on, r.id
            on.add(r.addon)
        else:
            assert r.addon in on, r.id
            on.discard(r.addon)
    susp = db.session.execute(sa.select(SuspensionEvent.kind).where(SuspensionEvent.deployment_name == "hot")
                              .order_by(SuspensionEvent.occurred_at, SuspensionEvent.id)).scalars().all()
    assert all(a != b for a, b in itertools.pairwise(susp))
    assert frozenset(on) == queries.current_state("hot").add_ons
    # The final state is what the last committed PUT said: sending it again appends nothing.
    state = queries.current_state("hot")
    again = api.deployment("hot", add_ons=sorted(state.add_ons), suspended=state.suspended)
    assert again.get_json()["appended"] == {"lifecycle": 0, "plan": 0, "add_on": 0, "suspension": 0}


def test_two_concurrent_backfills_insert_each_row_once(app, api):
    api.account()
    snapshot = {"deployments": [
        {"name": f"d-{i:03d}", "account_id": "acc_1", "created_at": iso(T0 + timedelta(hours=i)),
         "add_ons": ["threema", "mail", "web"][: i % 4], "suspended_at": iso(T0 + timedelta(days=30))
         if i % 5 == 0 else None} for i in range(60)]}
    secret = api.headers["Authorization"][7:]
    results = []
    barrier = threading.Barrier(2)

    def worker(i):
        client = Api(app.test_client(), secret)
        barrier.wait()
        resp = client.post("/deployments/backfill", snapshot)
        assert resp.status_code == 200, resp.get_json()
        results.append(resp.get_json())

    _run_threads(2, worker)
    assert [r["deployments_examined"] for r in results] == [60, 60]
    assert sum(r["lifecycle_inserted"] for r in results) == 60
    assert sum(r["events_inserted"] for r in results) == 90  # 15 × (0 + 1 + 2 + 3)
    assert sum(r["suspension_events_inserted"] for r in results) == 12
    count = lambda m: db.session.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
    assert (count(Deployment), count(AddonEvent), count(SuspensionEvent)) == (60, 90, 12)
    assert api.post("/deployments/backfill", snapshot).get_json() == {
        "deployments_examined": 60, "lifecycle_inserted": 0, "events_inserted": 0,
        "suspension_events_inserted": 0}


def _refused(sql: str, **params):
    with pytest.raises(sa.exc.DBAPIError) as info:
        db.session.execute(sa.text(sql), params)
        db.session.flush()
    db.session.rollback()
    assert "append-only" in str(info.value) or "only deleted_at" in str(info.value)


def test_event_tables_are_append_only(api):
    api.account()
    api.deployment("t1", plan="team", add_ons=["a"], suspended=True, at=T0)
    api.post("/usage", {"records": [{"deployment": "t1", "metric": "messages_in", "quantity": 3,
                                     "occurred_at": iso(T0), "idempotency_key": "k1"}]})
    for table in ("deployment_addon_events", "deployment_suspension_events", "deployment_plan_events",
                  "usage_records"):
        _refused(f"UPDATE {table} SET occurred_at = occurred_at + interval '1 day'")
        _refused(f"DELETE FROM {table}")
        _refused(f"TRUNCATE {table} CASCADE")
    _refused("UPDATE usage_records SET quantity = 0")
    # The lifecycle: deleted_at may be stamped once from NULL, nothing else ever changes.
    _refused("UPDATE deployments SET created_at = created_at - interval '1 day'")
    _refused("DELETE FROM deployments")
    db.session.execute(sa.text("UPDATE deployments SET deleted_at = created_at + interval '1 day'"))
    db.session.commit()
    _refused("UPDATE deployments SET deleted_at = created_at + interval '2 days'")
    _refused("UPDATE deployments SET deleted_at = NULL")
    assert db.session.execute(sa.select(Deployment.deleted_at)).scalar_one() == T0 + timedelta(days=1)
