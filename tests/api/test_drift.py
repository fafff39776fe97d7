"""Drift and disaster recovery through the JSON API: GET /api/v1/accounts/<id>/drift (read),
POST .../drift/acknowledge and POST .../recovery (admin), GET .../recovery (read)."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.api import services
from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent, Discrepancy, StripeEvent, Subscription
from backoffice.operators.models import AuditEntry
from backoffice.stripe.models import JobRun
from tests.factories import AccountFactory, SubscriptionFactory
from tests.stripe import helpers as h

CHECKED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
STANDARD = h.price("price_standard", 4900, product="standard")


def _bearer(scope: str) -> tuple[dict, str]:
    """Authorization headers of a new token, and the label the use cases record for it."""
    token, secret = services.create_token(f"{scope} script", scope)
    return {"Authorization": f"Bearer {secret}"}, f"api token {token.prefix} ({token.name})"


@pytest.fixture
def read(app):
    return _bearer("read")[0]


@pytest.fixture
def admin_api(app):
    return _bearer("admin")


@pytest.fixture
def drifted(app):
    """acc_1: drift flagged by the check of 2026-11-30 06:00, two open findings and a resolved one."""
    AccountFactory(id="acc_1")
    sub = SubscriptionFactory(account_id="acc_1", drift_detected=True, drift_checked_at=CHECKED)
    db.session.add_all([
        Discrepancy(account_id="acc_1", subscription_id=sub.id, kind="SubscriptionStateMismatch",
                    severity="critical", field="price", stripe_event_id=None,
                    message="Stripe says 59.00, the ledger 49.00.", detected_at=datetime(2026, 11, 30, 6, 0, tzinfo=UTC)),
        Discrepancy(account_id="acc_1", subscription_id=sub.id, kind="UnclassifiedStripeEvent", severity="warning",
                    field=None, stripe_event_id="evt_odd", message="evt_odd was not classified.",
                    detected_at=datetime(2026, 11, 29, 6, 0, tzinfo=UTC)),
        Discrepancy(account_id="acc_1", subscription_id=sub.id, kind="MissingEvent", severity="warning",
                    field=None, stripe_event_id=None, message="Payments but no ledger rows.",
                    detected_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
                    resolved_at=datetime(2026, 11, 21, 6, 0, tzinfo=UTC)),
    ])
    db.session.commit()
    return sub


def _ids(body: dict) -> list[str]:
    return [i["kind"] for i in body["items"]]


def test_drift_lists_the_findings_with_the_flag_and_the_last_check(client, read, drifted):
    resp = client.get("/api/v1/accounts/acc_1/drift", headers=read)
    assert resp.status_code == 200
    ids = [str(d.id) for d in db.session.execute(db.select(Discrepancy).order_by(Discrepancy.id)).scalars()]
    assert resp.get_json() == {
        "account_id": "acc_1", "drift_detected": True, "drift_checked_at": "2026-11-30T06:00:00Z",
        "acknowledged_at": None, "acknowledged_by": None,
        "items": [
            {"id": ids[0], "kind": "SubscriptionStateMismatch", "severity": "critical", "field": "price",
             "stripe_event_id": None, "message": "Stripe says 59.00, the ledger 49.00.",
             "detected_at": "2026-11-30T06:00:00Z", "resolved_at": None, "state": "open"},
            {"id": ids[1], "kind": "UnclassifiedStripeEvent", "severity": "warning", "field": None,
             "stripe_event_id": "evt_odd", "message": "evt_odd was not classified.",
             "detected_at": "2026-11-29T06:00:00Z", "resolved_at": None, "state": "open"},
            {"id": ids[2], "kind": "MissingEvent", "severity": "warning", "field": None, "stripe_event_id": None,
             "message": "Payments but no ledger rows.", "detected_at": "2026-11-20T06:00:00Z",
             "resolved_at": "2026-11-21T06:00:00Z", "state": "resolved"},
        ],
        "total": 3, "page": 1, "page_size": 25,
    }


def test_drift_is_paged_and_sorted_like_every_list(client, read, drifted):
    body = client.get("/api/v1/accounts/acc_1/drift?page=2&page_size=2", headers=read).get_json()
    assert (_ids(body), body["total"], body["page"], body["page_size"]) == (["MissingEvent"], 3, 2, 2)
    body = client.get("/api/v1/accounts/acc_1/drift?sort=kind", headers=read).get_json()
    assert _ids(body) == ["MissingEvent", "SubscriptionStateMismatch", "UnclassifiedStripeEvent"]
    body = client.get("/api/v1/accounts/acc_1/drift?sort=-severity", headers=read).get_json()
    assert _ids(body) == ["UnclassifiedStripeEvent", "MissingEvent", "SubscriptionStateMismatch"]
    resp = client.get("/api/v1/accounts/acc_1/drift?sort=message", headers=read)
    assert resp.status_code == 400
    assert resp.get_json()["error"] == {
        "code": "bad_request", "field": "sort",
        "message": "Unknown sort column message; use one of detected, severity, kind."}
    resp = client.get("/api/v1/accounts/acc_1/drift?page_size=101", headers=read)
    assert (resp.status_code, resp.get_json()["error"]["field"]) == (400, "page_size")


def test_an_account_never_checked_answers_no_drift(client, read):
    AccountFactory(id="acc_new")
    db.session.commit()
    assert client.get("/api/v1/accounts/acc_new/drift", headers=read).get_json() == {
        "account_id": "acc_new", "drift_detected": False, "drift_checked_at": None, "acknowledged_at": None,
        "acknowledged_by": None, "items": [], "total": 0, "page": 1, "page_size": 25}


NOT_FOUND = {"error": {"code": "not_found", "message": "No account with id acc_nope.", "field": "account_id"}}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/accounts/acc_nope/drift"), ("POST", "/api/v1/accounts/acc_nope/drift/acknowledge"),
    ("GET", "/api/v1/accounts/acc_nope/recovery"), ("POST", "/api/v1/accounts/acc_nope/recovery"),
])
def test_an_unknown_account_is_404(client, admin_api, method, path):
    resp = client.open(path, method=method, headers=admin_api[0])
    assert (resp.status_code, resp.get_json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("path", ["/api/v1/accounts/acc_1/drift/acknowledge", "/api/v1/accounts/acc_1/recovery"])
def test_the_actions_need_an_admin_token(client, read, drifted, path):
    assert client.post(path).status_code == 401
    assert client.post(path).get_json()["error"]["code"] == "unauthorized"
    resp = client.post(path, headers=read)
    assert (resp.status_code, resp.get_json()) == (403, {"error": {
        "code": "forbidden", "message": "This token's scope does not allow this call.", "field": None}})
    db.session.expire_all()
    assert db.session.get(Subscription, drifted.id).drift_detected is True
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEntry).where(AuditEntry.action.like("stripe.%"))).scalar_one() == 0


def test_the_reads_need_a_token(client, drifted):
    for path in ("/api/v1/accounts/acc_1/drift", "/api/v1/accounts/acc_1/recovery"):
        resp = client.get(path)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (401, "unauthorized")


def test_acknowledge_clears_the_flag_keeps_the_list_and_is_audited(client, read, admin_api, drifted):
    resp = client.post("/api/v1/accounts/acc_1/drift/acknowledge", headers=admin_api[0])
    assert resp.status_code == 200
    db.session.expire_all()
    sub = db.session.get(Subscription, drifted.id)
    who = admin_api[1]
    assert (sub.drift_detected, sub.drift_acknowledged_by) == (False, who)
    assert (datetime.now(UTC) - sub.drift_acknowledged_at) < timedelta(seconds=60)
    acknowledged_at = sub.drift_acknowledged_at.isoformat().replace("+00:00", "Z")  # microseconds, as every time
    assert resp.get_json() == {"account_id": "acc_1", "drift_detected": False,
                               "drift_checked_at": "2026-11-30T06:00:00Z", "acknowledged_at": acknowledged_at,
                               "acknowledged_by": who}
    body = client.get("/api/v1/accounts/acc_1/drift", headers=read).get_json()
    assert (body["drift_detected"], body["acknowledged_by"], body["total"]) == (False, who, 3)
    assert [i["state"] for i in body["items"]] == ["acknowledged", "acknowledged", "resolved"]
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action.like("stripe.%"))).scalar_one()
    assert (entry.action, entry.operator_id, entry.operator_email, entry.target_type, entry.target_id) == (
        "stripe.acknowledge_drift", None, who, "account", "acc_1")
    assert entry.before == {"drift_detected": True, "drift_acknowledged_at": None, "drift_acknowledged_by": None}
    assert entry.after == {"drift_detected": False, "drift_acknowledged_by": who,
                           "drift_acknowledged_at": sub.drift_acknowledged_at.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_acknowledge_without_drift_is_409(client, admin_api, drifted):
    assert client.post("/api/v1/accounts/acc_1/drift/acknowledge", headers=admin_api[0]).status_code == 200
    resp = client.post("/api/v1/accounts/acc_1/drift/acknowledge", headers=admin_api[0])
    assert (resp.status_code, resp.get_json()) == (409, {"error": {
        "code": "no_drift", "message": "This account has no drift to acknowledge.", "field": None}})
    assert db.session.execute(db.select(db.func.count()).select_from(AuditEntry).where(AuditEntry.action.like("stripe.%"))).scalar_one() == 1


def test_the_account_object_carries_the_drift_flag_and_the_last_check(client, read, drifted):
    item = client.get("/api/v1/accounts/acc_1", headers=read).get_json()
    assert (item["drift_detected"], item["drift_checked_at"]) == (True, "2026-11-30T06:00:00Z")
    (listed,) = client.get("/api/v1/accounts?drift=1", headers=read).get_json()["items"]
    assert (listed["id"], listed["drift_detected"], listed["drift_checked_at"]) == (
        "acc_1", True, "2026-11-30T06:00:00Z")


# -- disaster recovery ------------------------------------------------------------------------------
def _archived_without_ledger_row(event: dict) -> None:
    """An event archived and processed long ago whose ledger row was lost (a restore from an
    older backup): what disaster recovery is for."""
    body = json.dumps(event)
    created = datetime.fromtimestamp(event["created"], UTC)
    db.session.add(StripeEvent(
        id=event["id"], type=event["type"], api_version=event["api_version"], stripe_created_at=created,
        payload=body, payload_sha256=hashlib.sha256(body.encode()).hexdigest(), customer_id="cus_1",
        state="processed", processed_at=created, account_id="acc_1", stripe_subscription_id="sub_1"))


@pytest.fixture
def lost_rows(app):
    """acc_1 with two archived events 50 days old (outside Stripe's window) and no ledger rows."""
    AccountFactory(id="acc_1", stripe_customer_id="cus_1")
    start = int((datetime.now(UTC) - timedelta(days=50)).timestamp())
    events = [
        h.envelope("customer.created", h.customer("cus_1", account_id="acc_1"), start - 10, event_id="evt_lost_1"),
        h.envelope("customer.subscription.created", h.subscription("sub_1", "cus_1", STANDARD, created=start),
                   start, event_id="evt_lost_2"),
    ]
    for event in events:
        _archived_without_ledger_row(event)
    db.session.commit()
    return [datetime.fromtimestamp(e["created"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for e in events]


def test_recovery_plan_then_recovery_appends_the_lost_rows_and_is_audited(client, read, admin_api, lost_rows):
    oldest, newest = lost_rows
    resp = client.get("/api/v1/accounts/acc_1/recovery", headers=read)
    assert (resp.status_code, resp.get_json()) == (200, {
        "account_id": "acc_1", "offered": True, "awaiting": {"count": 2, "oldest": oldest, "newest": newest},
        "critical": 0})

    resp = client.post("/api/v1/accounts/acc_1/recovery", headers=admin_api[0])
    job = resp.get_json()
    assert (resp.status_code, resp.headers["Location"]) == (202, f"/api/v1/jobs/{job['id']}")
    assert (job["kind"], job["status"], job["account_id"], job["error"], job["result"]) == (
        "disaster_recovery", "done", "acc_1", None,
        {"account_id": "acc_1", "candidates": 2, "events_appended": 2, "oldest": oldest, "newest": newest})
    assert client.get(resp.headers["Location"], headers=admin_api[0]).get_json() == job
    rows = db.session.execute(db.select(BillingEvent.stripe_event_id, BillingEvent.type)
                              .order_by(BillingEvent.occurred_at)).all()
    assert [tuple(r) for r in rows] == [("evt_lost_1", "billing_info_added"), ("evt_lost_2", "subscription_created")]
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action.like("stripe.%"))).scalar_one()
    assert (entry.action, entry.operator_email, entry.target_id, entry.after) == (
        "stripe.disaster_recovery", admin_api[1], "acc_1",
        {"account_id": "acc_1", "candidates": 2, "events_appended": 2, "oldest": oldest, "newest": newest})

    # Nothing is left: the plan offers nothing, a second run appends nothing.
    assert client.get("/api/v1/accounts/acc_1/recovery", headers=read).get_json()["awaiting"] == {
        "count": 0, "oldest": None, "newest": None}
    assert client.post("/api/v1/accounts/acc_1/recovery", headers=admin_api[0]).get_json()["result"] == {
        "account_id": "acc_1", "candidates": 0, "events_appended": 0, "oldest": None, "newest": None}


def test_a_job_is_read_with_an_admin_token_and_only_a_sync_or_a_recovery(client, read, admin_api, lost_rows):
    location = client.post("/api/v1/accounts/acc_1/recovery", headers=admin_api[0]).headers["Location"]
    assert client.get(location).status_code == 401
    assert client.get(location, headers=read).status_code == 403
    drift_pass = JobRun(kind="drift_pass", status="done")
    db.session.add(drift_pass)
    db.session.commit()
    for path in (f"/api/v1/jobs/{drift_pass.id}", "/api/v1/jobs/999999"):
        resp = client.get(path, headers=admin_api[0])
        assert (resp.status_code, resp.get_json()["error"]) == (404, {
            "code": "not_found", "message": "No such job.", "field": "run_id"})


def test_openapi_lists_the_drift_and_recovery_paths_with_their_status_codes(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]

    def codes(path: str, method: str) -> list[str]:
        return sorted(paths[path][method]["responses"])

    assert codes("/api/v1/accounts/{account_id}/drift", "get") == ["200", "400", "401", "403", "404"]
    assert codes("/api/v1/accounts/{account_id}/drift/acknowledge", "post") == [
        "200", "400", "401", "403", "404", "409"]
    assert codes("/api/v1/accounts/{account_id}/recovery", "get") == ["200", "400", "401", "403", "404"]
    assert codes("/api/v1/accounts/{account_id}/recovery", "post") == ["202", "400", "401", "403", "404"]
    assert codes("/api/v1/jobs/{run_id}", "get") == ["200", "400", "401", "403", "404"]
    assert [p["name"] for p in paths["/api/v1/accounts/{account_id}/drift"]["get"]["parameters"]] == [
        "account_id", "page", "page_size", "sort"]
    schemas = doc["components"]["schemas"]
    assert schemas["DriftState"]["required"] == [
        "account_id", "drift_detected", "drift_checked_at", "acknowledged_at", "acknowledged_by"]
    assert sorted(schemas["DriftFinding"]["properties"]) == [
        "detected_at", "field", "id", "kind", "message", "resolved_at", "severity", "state", "stripe_event_id"]
    assert "drift_checked_at" in schemas["Account"]["properties"]
