"""The platform's ingest API: auth, validation naming field and record, exact stored rows."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.usage.models import UsageRecord
from backoffice.users.models import Login, Membership, User, UserSession
from tests.usage.helpers import T0, iso, make_api


@pytest.fixture
def api(app, client):
    return make_api(client)

INGEST_CALLS = [
    ("put", "/api/v1/accounts/acc_1"),
    ("put", "/api/v1/users/usr_1"),
    ("put", "/api/v1/accounts/acc_1/members/usr_1"),
    ("delete", "/api/v1/accounts/acc_1/members/usr_1"),
    ("post", "/api/v1/logins"),
    ("put", "/api/v1/sessions/ses_1"),
    ("post", "/api/v1/sessions/ses_1/touch"),
    ("post", "/api/v1/sessions/ses_1/revoke"),
    ("put", "/api/v1/deployments/t1"),
    ("delete", "/api/v1/deployments/t1"),
    ("post", "/api/v1/deployments/t1/events"),
    ("post", "/api/v1/deployments/backfill"),
    ("post", "/api/v1/usage"),
]


@pytest.mark.parametrize("method,path", INGEST_CALLS)
def test_401_without_token_403_with_read_token(app, client, method, path):
    resp = getattr(client, method)(path, json={})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"
    _t, secret = api_services.create_token("reader", "read")
    resp = getattr(client, method)(path, json={}, headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_deployment_put_for_unknown_account_is_404_naming_it(api):
    resp = api.deployment("t1", account_id="acc_missing")
    assert resp.status_code == 404
    err = resp.get_json()["error"]
    assert err["field"] == "account_id"
    assert "acc_missing" in err["message"]
    assert db.session.execute(sa.text("SELECT count(*) FROM deployments")).scalar_one() == 0


def test_deployment_put_validation_names_the_field(api):
    api.account()
    resp = api.put("/deployments/t1", {"account_id": "acc_1", "add_ons": ["ok", "not ok"]})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == "add_ons[1]"
    resp = api.put("/deployments/t1", {"account_id": "acc_1", "occurred_at": "2026-01-05T09:00:00"})
    assert resp.get_json()["error"]["field"] == "occurred_at"
    assert "time zone" in resp.get_json()["error"]["message"]
    resp = api.put("/deployments/t1", {"account_id": "acc_1", "suspended": "no"})
    assert resp.get_json()["error"]["field"] == "suspended"
    assert api.put("/deployments/bad%20name", {"account_id": "acc_1"}).get_json()["error"]["field"] == "name"
    other = api.account("acc_2", "Other")
    assert other.status_code == 201
    api.deployment("t1", at=T0)
    moved = api.deployment("t1", account_id="acc_2")
    assert moved.status_code == 409
    assert moved.get_json()["error"]["field"] == "account_id"


def _records(n, start=0, deployment="t1", quantity=1):
    return [{"deployment": deployment, "metric": "messages_out", "quantity": quantity,
             "occurred_at": iso(T0 + timedelta(minutes=i)), "idempotency_key": f"k-{i}"}
            for i in range(start, start + n)]


def test_usage_batch_inserts_and_counts_duplicates(api):
    api.account()
    api.deployment("t1", at=T0)
    resp = api.post("/usage", {"records": _records(3) + [
        {"deployment": "t1", "metric": "resource_hours", "quantity": "24.5", "occurred_at": iso(T0),
         "idempotency_key": "h-1"}]})
    assert resp.status_code == 201
    assert resp.get_json() == {"received": 4, "inserted": 4, "duplicates": 0}
    # A retried batch with one new record: the three known keys are ignored and counted.
    resp = api.post("/usage", {"records": _records(4)})
    assert resp.get_json() == {"received": 4, "inserted": 1, "duplicates": 3}
    # The same key twice within one batch counts once.
    resp = api.post("/usage", {"records": _records(1, start=9) + _records(1, start=9)})
    assert resp.get_json() == {"received": 2, "inserted": 1, "duplicates": 1}
    total = db.session.execute(sa.select(sa.func.sum(UsageRecord.quantity))
                               .where(UsageRecord.metric == "messages_out")).scalar_one()
    assert total == Decimal("5.0000")
    hours = db.session.execute(sa.select(UsageRecord).where(UsageRecord.idempotency_key == "h-1")).scalar_one()
    assert (hours.quantity, hours.account_id, hours.occurred_at) == (Decimal("24.5000"), "acc_1", T0)


def test_usage_batch_with_one_bad_record_is_refused_whole(api):
    api.account()
    api.deployment("t1", at=T0)
    records = _records(5)
    records[3]["quantity"] = -2
    resp = api.post("/usage", {"records": records})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == {
        "code": "bad_request", "field": "records[3].quantity",
        "message": "Record 3: quantity must not be negative (got -2)."}
    records[3]["quantity"] = 2
    records[4]["deployment"] = "t-unknown"
    resp = api.post("/usage", {"records": records})
    assert resp.status_code == 404
    assert resp.get_json()["error"]["field"] == "records[4].deployment"
    assert db.session.execute(sa.select(sa.func.count()).select_from(UsageRecord)).scalar_one() == 0
    too_many = api.post("/usage", {"records": _records(1001)})
    assert too_many.status_code == 400
    assert too_many.get_json()["error"]["field"] == "records"
    precise = api.post("/usage", {"records": _records(1, quantity="0.00001")})
    assert precise.get_json()["error"]["field"] == "records[0].quantity"


def test_usage_after_deletion_is_refused(api):
    api.account()
    api.deployment("t1", at=T0)
    api.delete("/deployments/t1", {"occurred_at": iso(T0 + timedelta(minutes=1))})
    resp = api.post("/usage", {"records": _records(3)})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["field"] == "records[2].occurred_at"


def test_delete_unknown_deployment_is_404(api):
    resp = api.delete("/deployments/nope")
    assert resp.status_code == 404
    assert resp.get_json()["error"]["field"] == "name"


def test_backfill_refused_whole_naming_the_index(api):
    api.account()
    body = {"deployments": [
        {"name": "a", "account_id": "acc_1", "created_at": iso(T0), "add_ons": ["x"]},
        {"name": "b", "account_id": "acc_nope", "created_at": iso(T0), "add_ons": ["x"]},
    ]}
    resp = api.post("/deployments/backfill", body)
    assert resp.status_code == 404
    assert resp.get_json()["error"]["field"] == "deployments[1].account_id"
    body["deployments"][1] = {"name": "a", "account_id": "acc_1", "created_at": iso(T0)}
    assert api.post("/deployments/backfill", body).get_json()["error"]["field"] == "deployments[1].name"
    assert db.session.execute(sa.text("SELECT count(*) FROM deployments")).scalar_one() == 0


def test_account_upsert_keeps_absent_fields(api):
    resp = api.put("/accounts/acc_9", {
        "name": "Acme AG", "country": "ch", "email": "it@acme.example", "logo_url": "https://acme.example/l.png",
        "billing": {"name": "Acme AG", "line1": "Bahnhofstrasse 1", "postal_code": "8001", "city": "Zürich",
                    "country": "CH", "vat_id": "CHE-123.456.789 MWST"},
        "billing_posture": {"pay_by": "invoice", "auto_invoice": False, "auto_reminders": True,
                            "payment_terms_days": 10},
        "stripe_customer_id": "cus_1", "created_at": "2025-06-01T00:00:00Z"})
    assert resp.status_code == 201
    assert resp.get_json()["billing_posture"] == {"pay_by": "invoice", "auto_invoice": False,
                                                  "auto_reminders": True, "payment_terms_days": 10}
    resp = api.put("/accounts/acc_9", {"name": "Acme Group AG"})
    assert resp.status_code == 200
    a = db.session.get(Account, "acc_9")
    db.session.refresh(a)
    assert (a.name, a.country, a.billing_city, a.vat_id, a.pay_by, a.payment_terms_days, a.stripe_customer_id) == (
        "Acme Group AG", "CH", "Zürich", "CHE-123.456.789 MWST", "invoice", 10, "cus_1")
    assert a.created_at.isoformat() == "2025-06-01T00:00:00+00:00"
    bad = api.put("/accounts/acc_9", {"billing_posture": {"payment_terms_days": -1}})
    assert bad.status_code == 400
    assert bad.get_json()["error"]["field"] == "billing_posture.payment_terms_days"
    assert api.put("/accounts/acc_10", {"country": "CH"}).get_json()["error"]["field"] == "name"


def test_users_memberships_logins_sessions(api):
    api.account()
    assert api.put("/users/usr_1", {"email": "ada@acme.example", "first_name": "Ada"}).status_code == 201
    assert api.put("/accounts/acc_1/members/usr_1", {"role": "owner"}).status_code == 201
    assert api.put("/accounts/acc_1/members/usr_1", {"role": "admin"}).get_json()["role"] == "admin"
    assert api.put("/accounts/acc_1/members/usr_404", {}).get_json()["error"]["field"] == "user_id"
    logins = {"logins": [
        {"user_id": "usr_1", "at": iso(T0), "method": "password", "outcome": "success", "ip": "203.0.113.9"},
        {"user_id": "usr_1", "at": iso(T0 + timedelta(hours=1)), "method": "password", "outcome": "failure"},
    ]}
    assert api.post("/logins", logins).get_json() == {"inserted": 2}
    bad = api.post("/logins", {"logins": [logins["logins"][0], {"user_id": "usr_2", "at": iso(T0),
                                                                 "method": "password"}]})
    assert bad.status_code == 404
    assert bad.get_json()["error"]["field"] == "logins[1].user_id"
    assert api.put("/sessions/ses_1", {"user_id": "usr_1", "created_at": iso(T0)}).status_code == 201
    assert api.post("/sessions/ses_1/touch", {"at": iso(T0 + timedelta(hours=2))}).status_code == 200
    revoked = api.post("/sessions/ses_1/revoke", {"at": iso(T0 + timedelta(hours=3))}).get_json()
    assert revoked["revoked_at"] == "2026-01-05T12:00:00Z"
    assert api.post("/sessions/ses_1/revoke", {"at": iso(T0 + timedelta(hours=4))}).get_json()[
        "revoked_at"] == "2026-01-05T12:00:00Z"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Login)).scalar_one() == 2
    user = db.session.get(User, "usr_1")
    db.session.refresh(user)
    assert user.last_seen_at == T0 + timedelta(hours=2)
    s = db.session.get(UserSession, "ses_1")
    assert s.last_seen_at == T0 + timedelta(hours=2)
    assert api.delete("/accounts/acc_1/members/usr_1").get_json()["removed"] is True
    assert db.session.execute(sa.select(sa.func.count()).select_from(Membership)).scalar_one() == 0


def test_openapi_describes_ingest_with_examples(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, method in [("/api/v1/deployments/{name}", "put"), ("/api/v1/deployments/{name}", "delete"),
                         ("/api/v1/deployments/{name}/events", "post"), ("/api/v1/deployments/backfill", "post"),
                         ("/api/v1/usage", "post"), ("/api/v1/accounts/{account_id}", "put"),
                         ("/api/v1/users/{user_id}", "put"), ("/api/v1/logins", "post"),
                         ("/api/v1/sessions/{session_id}", "put")]:
        op = doc["paths"][path][method]
        assert op["responses"]["401"]["content"]["application/json"]["example"]["error"]["code"] == "unauthorized"
        if "requestBody" in op:
            assert op["requestBody"]["content"]["application/json"]["example"]
    backfill = doc["paths"]["/api/v1/deployments/backfill"]["post"]
    assert backfill["responses"]["200"]["content"]["application/json"]["example"] == {
        "deployments_examined": 4, "lifecycle_inserted": 4, "events_inserted": 12, "suspension_events_inserted": 0}
    assert "BackfillIn" in doc["components"]["schemas"]
