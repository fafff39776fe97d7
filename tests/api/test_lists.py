"""GET /api/v1/accounts, /accounts/<id>, /users, /billing-events, /invoices."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.api import services
from backoffice.extensions import db
from tests.accounts.test_accounts import five  # noqa: F401  (fixture)
from tests.factories import BillingEventFactory, PaymentTransactionFactory, UserFactory

T = datetime(2025, 5, 1, tzinfo=UTC)


@pytest.fixture
def token(app):
    _token, secret = services.create_token("lists", "read")
    return {"Authorization": f"Bearer {secret}"}


def test_accounts_list_and_filters(five, client, token):  # noqa: F811
    body = client.get("/api/v1/accounts?status=downgrading", headers=token).get_json()
    assert body["total"] == 1 and body["page"] == 1 and body["page_size"] == 25
    item = body["items"][0]
    assert item["id"] == "acc_down" and item["status"] == "downgrading"
    assert item["price"] == "100.00" and item["mrr"] == "50.00" and item["currency"] == "EUR"
    assert item["plan"] == "pro" and item["plan_name"] == "Pro" and item["created_at"] == "2026-01-01T00:00:00Z"
    body = client.get("/api/v1/accounts?status=active&status=free&sort=name&page_size=1&page=2",
                      headers=token).get_json()
    assert body["total"] == 2 and [i["id"] for i in body["items"]] == ["acc_free"]


def test_account_detail(five, client, token):  # noqa: F811
    PaymentTransactionFactory(account_id="acc_active", amount_excluding_tax=Decimal("80.00"), date=T)
    db.session.commit()
    body = client.get("/api/v1/accounts/acc_active", headers=token).get_json()
    assert body["lifetime_value"] == "80.00" and body["status"] == "active"
    assert body["users"] == {"total": 0, "active": 0, "inactive": 0, "pending": 0}
    assert body["last_invoice"]["date"] == "2025-05-01T00:00:00Z"
    assert client.get("/api/v1/accounts/acc_nope", headers=token).status_code == 404


def test_users_events_invoices(five, client, token):  # noqa: F811
    UserFactory(id="usr_1", email="one@example.com")
    PaymentTransactionFactory(account_id="acc_active", date=T, refunded_at=T + timedelta(days=1))
    db.session.commit()
    users = client.get("/api/v1/users?search=one@", headers=token).get_json()
    assert [u["id"] for u in users["items"]] == ["usr_1"]
    events = client.get("/api/v1/billing-events?view=mrr&account=acc_active", headers=token).get_json()
    assert events["total"] == 1
    ev = events["items"][0]
    assert ev["type"] == "subscription_created" and ev["amount_delta"] == "100.00" and ev["currency"] == "EUR"
    invoices = client.get("/api/v1/invoices?account=acc_active", headers=token).get_json()
    assert [(i["kind"], i["date"]) for i in invoices["items"]] == [
        ("refund", "2025-05-02T00:00:00Z"), ("invoice", "2025-05-01T00:00:00Z")]
    assert invoices["items"][0]["total"] == "108.10"


def test_billing_events_no_op_hidden_unless_other(five, client, token):  # noqa: F811
    sub = db.session.execute(db.select(BillingEventFactory._meta.model)).scalars().first()
    BillingEventFactory(subscription=type("S", (), {"id": sub.subscription_id, "account_id": sub.account_id})(),
                        type="no_op", previous_amount=None, new_amount=None, committed_mrr=Decimal(0))
    db.session.commit()
    all_types = {i["type"] for i in client.get("/api/v1/billing-events", headers=token).get_json()["items"]}
    other = {i["type"] for i in client.get("/api/v1/billing-events?view=other", headers=token).get_json()["items"]}
    assert "no_op" not in all_types and other == {"no_op"}


@pytest.mark.parametrize("url,field", [
    ("/api/v1/accounts?sort=bogus", "sort"),
    ("/api/v1/accounts?page=1000000001", "page"),
    ("/api/v1/accounts?page_size=101", "page_size"),
    ("/api/v1/accounts?search=" + "s" * 101, "search"),
    ("/api/v1/accounts?status=zombie", "status"),
    ("/api/v1/accounts/bad%20id!", "account_id"),
    ("/api/v1/users?sort=bogus", "sort"),
    ("/api/v1/users?page_size=101", "page_size"),
    ("/api/v1/users?search=" + "s" * 101, "search"),
    ("/api/v1/billing-events?sort=bogus", "sort"),
    ("/api/v1/billing-events?to=9999-12-31", "to"),
    ("/api/v1/billing-events?page_size=101", "page_size"),
    ("/api/v1/billing-events?search=" + "s" * 101, "search"),
    ("/api/v1/billing-events?account=bad%20id", "account"),
    ("/api/v1/billing-events?view=x", "view"),
    ("/api/v1/billing-events?from=yesterday", "from"),
    ("/api/v1/invoices?sort=bogus", "sort"),
    ("/api/v1/invoices?page_size=101", "page_size"),
    ("/api/v1/invoices?search=" + "s" * 101, "search"),
    ("/api/v1/invoices?account=bad%20id", "account"),
])
def test_bad_input_names_the_parameter(five, client, token, url, field):  # noqa: F811
    resp = client.get(url, headers=token)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["field"] == field and error["code"] == "bad_request" and error["message"]


@pytest.mark.parametrize("path", ["/api/v1/accounts", "/api/v1/users", "/api/v1/billing-events", "/api/v1/invoices"])
def test_a_page_past_the_end_is_empty_with_the_real_total(five, client, token, path):  # noqa: F811
    total = client.get(path, headers=token).get_json()["total"]
    body = client.get(f"{path}?page=99&page_size=2", headers=token).get_json()
    assert (body["items"], body["total"], body["page"], body["page_size"]) == ([], total, 99, 2)


def test_needs_a_token(client):
    for path in ("/api/v1/accounts", "/api/v1/accounts/acc_x", "/api/v1/users", "/api/v1/billing-events",
                 "/api/v1/invoices"):
        resp = client.get(path)
        assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


def test_ingest_token_is_refused(app, client):
    _t, secret = services.create_token("ingest", "ingest")
    assert client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {secret}"}).status_code == 403


def test_openapi_describes_the_lists(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/accounts", "/api/v1/accounts/{account_id}", "/api/v1/users", "/api/v1/billing-events",
                 "/api/v1/invoices"):
        assert "get" in doc["paths"][path]
    params = {p["name"] for p in doc["paths"]["/api/v1/accounts"]["get"]["parameters"]}
    assert {"search", "plan", "status", "unsynced", "drift", "sort", "page", "page_size"} <= params
    assert {"Account", "User", "BillingEvent", "InvoiceRow"} <= set(doc["components"]["schemas"])


@pytest.mark.parametrize(("path", "alias", "key"), [
    ("/api/v1/billing-events", "occurred_at", "occurred"), ("/api/v1/billing-events", "-type", "-event"),
    ("/api/v1/users", "-created_at", "-created"), ("/api/v1/users", "last_seen_at", "last_seen"),
    ("/api/v1/accounts", "modified_at", "modified"), ("/api/v1/invoices", "-account_name", "-account"),
])
def test_sort_accepts_the_field_names_as_aliases(five, client, token, path, alias, key):  # noqa: F811
    """Issue 21: `sort=occurred_at` sorts as `sort=occurred`; both are in the OpenAPI enum."""
    by_alias = client.get(f"{path}?sort={alias}", headers=token)
    by_key = client.get(f"{path}?sort={key}", headers=token)
    assert by_alias.status_code == by_key.status_code == 200
    assert by_alias.get_json() == by_key.get_json()
    doc = client.get("/api/v1/openapi.json").get_json()
    sort = next(p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "sort")
    assert {alias, key} <= set(sort["schema"]["enum"])
    bad = client.get(f"{path}?sort=nope", headers=token)
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "sort"
