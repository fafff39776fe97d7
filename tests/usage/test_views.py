"""The Usage pages: the backfill button (admin), the deployments lists and timeline, billing posture."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.operators.models import AuditEntry
from backoffice.usage.models import BackfillRun
from tests.usage.helpers import T0, iso

HX = {"HX-Request": "true"}


def _snapshot():
    return {"deployments": [
        {"name": f"tenant-{i}", "account_id": "acc_1", "created_at": iso(T0), "add_ons": a}
        for i, a in enumerate([["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"]])]}


def test_backfill_button_reruns_the_last_snapshot(api, admin_client):
    api.account()
    assert api.post("/deployments/backfill", _snapshot()).get_json()["events_inserted"] == 12
    page = admin_client.get("/usage").get_data(as_text=True)
    assert "Run backfill from the last snapshot" in page
    resp = admin_client.post("/usage/backfill", headers={"X-CSRFToken": admin_client.csrf})
    assert resp.status_code == 302
    html = admin_client.get("/usage").get_data(as_text=True)
    assert "Backfill done: 4 deployments examined, 0 lifecycle rows, 0 add-on events and 0 suspension events " \
           "inserted." in html
    runs = db.session.execute(sa.select(BackfillRun).order_by(BackfillRun.id)).scalars().all()
    assert [(r.trigger, r.snapshot_run_id, r.counts()) for r in runs] == [
        ("api", None, {"deployments_examined": 4, "lifecycle_inserted": 4, "events_inserted": 12,
                       "suspension_events_inserted": 0}),
        ("admin", runs[0].id, {"deployments_examined": 4, "lifecycle_inserted": 0, "events_inserted": 0,
                               "suspension_events_inserted": 0}),
    ]
    entry = db.session.execute(sa.select(AuditEntry).where(AuditEntry.action == "usage.backfill")).scalar_one()
    assert (entry.operator_email, entry.after["events_inserted"]) == ("admin@example.com", 0)


def test_backfill_button_without_snapshot_is_400(admin_client):
    resp = admin_client.post("/usage/backfill", headers={"X-CSRFToken": admin_client.csrf})
    assert resp.status_code == 400


def test_viewer_sees_the_page_but_cannot_backfill(api, viewer_client):
    api.account()
    api.post("/deployments/backfill", _snapshot())
    html = viewer_client.get("/usage").get_data(as_text=True)
    assert "tenant-3" in html
    assert "Run backfill from the last snapshot" not in html
    assert viewer_client.post("/usage/backfill", headers={"X-CSRFToken": viewer_client.csrf}).status_code == 403
    assert db.session.execute(sa.select(sa.func.count()).select_from(BackfillRun)).scalar_one() == 1


def test_backfill_post_needs_csrf(admin_client):
    assert admin_client.post("/usage/backfill").status_code == 400


def test_usage_page_fragment_and_search(api, admin_client):
    api.account()
    api.deployment("alpha", plan="team", add_ons=["threema"], at=T0)
    api.deployment("beta", at=T0)
    full = admin_client.get("/usage?search=alph").get_data(as_text=True)
    assert "<html" in full and "alpha" in full and ">beta<" not in full
    frag = admin_client.get("/usage?search=alph", headers=HX).get_data(as_text=True)
    assert "<html" not in frag and frag.lstrip().startswith('<section id="deployment-table"')
    boosted = admin_client.get("/usage", headers={**HX, "HX-Boosted": "true"}).get_data(as_text=True)
    assert "<html" in boosted
    restore = admin_client.get("/usage", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_account_deployments_and_timeline(api, admin_client):
    api.account()
    api.deployment("alpha", plan="team", add_ons=["threema"], at=T0)
    api.deployment("alpha", plan="team", add_ons=["threema"], suspended=True, at=T0 + timedelta(days=1))
    api.post("/usage", {"records": [{"deployment": "alpha", "metric": "messages_out", "quantity": "12.5",
                                     "occurred_at": iso(T0), "idempotency_key": "k"}]})
    html = admin_client.get("/usage/accounts/acc_1").get_data(as_text=True)
    assert "alpha" in html and "Suspended" in html and "threema" in html
    page = admin_client.get("/usage/deployments/alpha?at=2026-01-05T10:00:00").get_data(as_text=True)
    assert "Add-on enabled" in page and "Suspended" in page
    assert 'id="addons-at"' in page
    assert admin_client.get("/usage/deployments/nope").status_code == 404
    assert admin_client.get("/usage/deployments/alpha?at=yesterday").status_code == 400
