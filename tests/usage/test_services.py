"""The usage logs, driven through the ingest API like the platform drives them; exact rows asserted.
The figures come from the PieCed billing phase 1 manual test plan (seed 000)."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.usage import queries
from backoffice.usage.models import AddonEvent, BackfillRun, Deployment, PlanEvent, SuspensionEvent
from tests.usage.helpers import T0, iso


def _addon_rows(name):
    return [(r.addon, r.kind, r.occurred_at, r.source) for r in db.session.execute(
        sa.select(AddonEvent).where(AddonEvent.deployment_name == name).order_by(AddonEvent.id)).scalars()]


def _suspension_rows(name):
    return [(r.kind, r.occurred_at) for r in db.session.execute(
        sa.select(SuspensionEvent).where(SuspensionEvent.deployment_name == name)
        .order_by(SuspensionEvent.id)).scalars()]


def _snapshot():
    """Four live deployments with 12 add-ons between them, none suspended (test plan step 2)."""
    addons = [["threema", "searxng-local-search", "calendar"],
              ["threema", "calendar", "mail", "web"],
              ["searxng-local-search", "mail"],
              ["threema", "calendar", "web"]]
    return {"deployments": [
        {"name": f"tenant-{i}", "account_id": "acc_1", "created_at": iso(T0 + timedelta(days=i)),
         "add_ons": a, "suspended_at": None} for i, a in enumerate(addons)]}


def test_backfill_counts_then_zeros(api):
    api.account()
    first = api.post("/deployments/backfill", _snapshot())
    assert first.status_code == 200
    assert first.get_json() == {"deployments_examined": 4, "lifecycle_inserted": 4, "events_inserted": 12,
                                "suspension_events_inserted": 0}
    second = api.post("/deployments/backfill", _snapshot())
    assert second.get_json() == {"deployments_examined": 4, "lifecycle_inserted": 0, "events_inserted": 0,
                                 "suspension_events_inserted": 0}
    # Step 3: every add-on in the snapshot has exactly one `enabled` row, at the creation time.
    assert _addon_rows("tenant-0") == [
        ("calendar", "enabled", T0, "backfill"),
        ("searxng-local-search", "enabled", T0, "backfill"),
        ("threema", "enabled", T0, "backfill"),
    ]
    assert db.session.execute(sa.select(sa.func.count()).select_from(AddonEvent)).scalar_one() == 12
    assert db.session.execute(sa.select(sa.func.count()).select_from(Deployment)).scalar_one() == 4
    runs = db.session.execute(sa.select(BackfillRun).order_by(BackfillRun.id)).scalars().all()
    assert [r.counts()["lifecycle_inserted"] for r in runs] == [4, 0]
    assert runs[-1].snapshot == _snapshot()


def test_backfill_suspended_and_existing_rules(api):
    api.account()
    api.deployment("live-one", add_ons=["threema"], at=T0)  # already tracked: gets nothing new
    body = {"deployments": [
        {"name": "live-one", "account_id": "acc_1", "created_at": iso(T0 - timedelta(days=30)),
         "add_ons": ["threema", "mail"], "suspended_at": None},
        {"name": "paused", "account_id": "acc_1", "created_at": iso(T0), "add_ons": [],
         "suspended_at": iso(T0 + timedelta(days=2))},
    ]}
    assert api.post("/deployments/backfill", body).get_json() == {
        "deployments_examined": 2, "lifecycle_inserted": 1, "events_inserted": 0,
        "suspension_events_inserted": 1}
    # Re-creating never moves created_at.
    assert db.session.get(Deployment, "live-one").created_at == T0
    assert _suspension_rows("paused") == [("suspended", T0 + timedelta(days=2))]
    assert api.post("/deployments/backfill", body).get_json()["suspension_events_inserted"] == 0


def test_live_addon_enable_then_disable(api):
    api.account()
    assert api.deployment("t1", plan="team", add_ons=[], at=T0).status_code == 201
    api.deployment("t1", plan="team", add_ons=["searxng-local-search"], at=T0 + timedelta(hours=1))
    api.deployment("t1", plan="team", add_ons=[], at=T0 + timedelta(hours=2))
    assert _addon_rows("t1") == [
        ("searxng-local-search", "enabled", T0 + timedelta(hours=1), "state"),
        ("searxng-local-search", "disabled", T0 + timedelta(hours=2), "state"),
    ]


def test_suspend_then_resume_two_rows(api):
    api.account()
    api.deployment("t1", at=T0)
    api.deployment("t1", suspended=True, at=T0 + timedelta(days=1))
    api.deployment("t1", suspended=False, at=T0 + timedelta(days=3))
    assert _suspension_rows("t1") == [("suspended", T0 + timedelta(days=1)), ("resumed", T0 + timedelta(days=3))]


def test_delete_is_stamped_once(api):
    api.account()
    api.deployment("t1", at=T0)
    first = api.delete("/deployments/t1", {"occurred_at": iso(T0 + timedelta(days=10))})
    assert first.status_code == 200
    assert first.get_json()["deleted_at"] == "2026-01-15T09:00:00Z"
    assert first.get_json()["stamped"] is True
    again = api.delete("/deployments/t1")
    assert again.get_json()["deleted_at"] == "2026-01-15T09:00:00Z"
    assert again.get_json()["stamped"] is False
    dep = db.session.get(Deployment, "t1")
    assert (dep.created_at, dep.deleted_at) == (T0, T0 + timedelta(days=10))
    # A deleted deployment's name is not reused; its lifecycle stays as it was.
    resp = api.deployment("t1", at=T0 + timedelta(days=11))
    assert resp.status_code == 409
    assert resp.get_json()["error"]["field"] == "name"


def test_same_state_twice_appends_nothing(api):
    api.account()
    first = api.deployment("t1", plan="team", add_ons=["a", "b"], suspended=False, at=T0)
    assert first.get_json()["appended"] == {"lifecycle": 1, "plan": 1, "add_on": 2, "suspension": 0}
    second = api.deployment("t1", plan="team", add_ons=["b", "a"], suspended=False)
    assert second.status_code == 200
    assert second.get_json()["appended"] == {"lifecycle": 0, "plan": 0, "add_on": 0, "suspension": 0}
    assert len(_addon_rows("t1")) == 2
    assert db.session.execute(sa.select(sa.func.count()).select_from(PlanEvent)).scalar_one() == 1


def test_put_diff_appends_exactly_the_changes(api):
    api.account()
    api.deployment("t1", plan="team", add_ons=["a", "b"], at=T0)
    resp = api.deployment("t1", plan="business", add_ons=["b", "c"], suspended=True, at=T0 + timedelta(days=1))
    assert resp.get_json()["appended"] == {"lifecycle": 0, "plan": 1, "add_on": 2, "suspension": 1}
    assert resp.get_json()["deployment"] == {
        "name": "t1", "account_id": "acc_1", "created_at": "2026-01-05T09:00:00Z", "deleted_at": None,
        "plan": "business", "add_ons": ["b", "c"], "suspended": True}
    assert _addon_rows("t1")[2:] == [("c", "enabled", T0 + timedelta(days=1), "state"),
                                     ("a", "disabled", T0 + timedelta(days=1), "state")]
    state = queries.current_state("t1")
    assert (state.plan, state.add_ons, state.suspended) == ("business", frozenset({"b", "c"}), True)


def test_stale_state_is_refused(api):
    api.account()
    api.deployment("t1", at=T0)
    api.deployment("t1", add_ons=["a"], at=T0 + timedelta(days=2))
    resp = api.deployment("t1", add_ons=[], at=T0 + timedelta(days=1))
    assert resp.status_code == 409
    assert resp.get_json()["error"]["field"] == "occurred_at"
    before_creation = api.deployment("t1", add_ons=[], at=T0 - timedelta(days=1))
    assert before_creation.status_code == 409
    assert before_creation.get_json()["error"]["field"] == "occurred_at"
    assert len(_addon_rows("t1")) == 1


def test_addons_enabled_at_around_same_day_toggles(api):
    api.account()
    day = T0.replace(hour=0)
    api.deployment("t1", add_ons=["x"], at=day + timedelta(hours=1))
    api.deployment("t1", add_ons=[], at=day + timedelta(hours=9))
    api.deployment("t1", add_ons=["x", "y"], at=day + timedelta(hours=15))
    api.deployment("t1", add_ons=["y"], at=day + timedelta(hours=20))
    # Two events at the same instant: the one recorded last decides.
    api.post("/deployments/t1/events", {"events": [
        {"type": "add_on_enabled", "add_on": "z", "occurred_at": iso(day + timedelta(hours=22))},
        {"type": "add_on_disabled", "add_on": "z", "occurred_at": iso(day + timedelta(hours=22))},
    ]})
    at = queries.addons_enabled_at
    assert at("t1", day) == []
    assert at("t1", day + timedelta(hours=1)) == ["x"]  # inclusive
    assert at("t1", day + timedelta(hours=8, minutes=59)) == ["x"]
    assert at("t1", day + timedelta(hours=9)) == []
    assert at("t1", day + timedelta(hours=15)) == ["x", "y"]
    assert at("t1", day + timedelta(hours=20)) == ["y"]
    assert at("t1", day + timedelta(hours=22)) == ["y"]
    assert at("t1") == ["y"]
    assert at("unknown") == []


def test_explicit_events_and_retries(api):
    api.account()
    api.deployment("t1", at=T0)
    body = {"events": [
        {"type": "add_on_enabled", "add_on": "threema", "occurred_at": iso(T0 + timedelta(hours=1))},
        {"type": "suspended", "occurred_at": iso(T0 + timedelta(hours=2))},
        {"type": "resumed", "occurred_at": iso(T0 + timedelta(hours=3))},
        {"type": "plan_changed", "plan": "team", "occurred_at": iso(T0 + timedelta(hours=4))},
    ]}
    resp = api.post("/deployments/t1/events", body)
    assert resp.status_code == 201
    assert resp.get_json() == {"add_on_events_inserted": 1, "suspension_events_inserted": 2,
                               "plan_events_inserted": 1, "duplicates": 0}
    assert api.post("/deployments/t1/events", body).get_json() == {
        "add_on_events_inserted": 0, "suspension_events_inserted": 0, "plan_events_inserted": 0,
        "duplicates": 4}
    before_creation = api.post("/deployments/t1/events", {"events": [
        {"type": "resumed", "occurred_at": iso(T0 + timedelta(hours=5))},
        {"type": "suspended", "occurred_at": iso(T0 - timedelta(days=1))}]})
    assert before_creation.status_code == 409
    assert before_creation.get_json()["error"]["field"] == "events[1].occurred_at"
    assert len(_suspension_rows("t1")) == 2


def test_timeline_and_states_for(api):
    api.account()
    api.deployment("t1", plan="team", add_ons=["a"], at=T0)
    api.deployment("t1", plan="team", add_ons=["a"], suspended=True, at=T0 + timedelta(days=1))
    api.deployment("t2", plan="pro", add_ons=["b", "c"], at=T0)
    page = queries.timeline_page("t1", 1, 50)
    assert [(r.at, r.kind, r.detail) for r in page.items] == [
        (T0 + timedelta(days=1), "suspended", None),
        (T0, "enabled", "a"),
        (T0, "plan", "team"),
        (T0, "created", None),
    ]
    states = queries.states_for(["t1", "t2", "t3"])
    assert states["t1"] == queries.DeploymentState("team", frozenset({"a"}), True)
    assert states["t2"] == queries.DeploymentState("pro", frozenset({"b", "c"}), False)
    assert states["t3"] == queries.EMPTY_STATE


def test_usage_batch_is_stored_like_the_orm_stores_it(api):
    """The batch insert bypasses the ORM for speed; its rows must compare, sum and sort exactly like
    rows the ORM writes (times in SQLAlchemy's text form, quantities exact)."""
    from decimal import Decimal

    from backoffice.usage.models import UsageRecord

    api.account()
    api.deployment("t1", at=T0)
    at = T0 + timedelta(hours=15)
    resp = api.post("/usage", {"records": [
        {"deployment": "t1", "metric": "resource_hours", "quantity": q, "occurred_at": iso(at),
         "idempotency_key": f"k-{i}"} for i, q in enumerate(["0.0001", "24.5", 3])]})
    assert resp.get_json() == {"received": 3, "inserted": 3, "duplicates": 0}
    db.session.add(UsageRecord(idempotency_key="orm", deployment_name="t1", account_id="acc_1",
                               metric="resource_hours", quantity=Decimal("1.25"), occurred_at=at))
    db.session.commit()
    same_time = sa.select(sa.func.count(), sa.func.sum(UsageRecord.quantity)).where(UsageRecord.occurred_at == at)
    assert db.session.execute(same_time).one() == (4, Decimal("28.7501"))
    assert queries.usage_totals(["t1"], at, at + timedelta(seconds=1)) == {"t1": {"resource_hours": Decimal("28.7501")}}
