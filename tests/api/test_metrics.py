"""/api/v1/metrics/* and the bearer tokens that guard them."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.api import services as token_services
from backoffice.api.models import ApiToken
from backoffice.extensions import db
from tests.factories import (
    AccountFactory,
    BillingEventFactory,
    LoginFactory,
    PaymentTransactionFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)

D = Decimal
ENDPOINTS = ["kpis", "mrr-trend", "revenue-trend", "movements", "plan-distribution", "growth", "logins"]
BILLING_ENDPOINTS = ["mrr-trend", "revenue-trend", "movements", "plan-distribution"]


def _now():
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def subscribe(price, days, plan="pro", **kw):
    now = _now()
    account = AccountFactory(created_at=now - timedelta(days=days))
    sub = SubscriptionFactory(account_id=account.id, plan=plan, price_amount=D(price), **kw)
    BillingEventFactory(subscription=sub, previous_amount=D(0), new_amount=D(price), to_plan=plan,
                        occurred_at=now - timedelta(days=days))
    return sub


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def read_token(app):
    return token_services.create_token("bi tool", "read")[1]


@pytest.fixture
def issue_example(app):
    subscribe("100", 90)
    subscribe("100", 90)
    subscribe("49.99", 5)
    db.session.commit()


# --- tokens --------------------------------------------------------------------------------

def test_token_created_once_stored_hashed_listed_without_secret_and_revocable(app, client, runner):
    result = runner.invoke(args=["tokens", "create", "--name", "BI tool", "--scope", "read"])
    assert result.exit_code == 0, result.output
    header, secret = result.output.strip().splitlines()
    assert header == "Token 1 (read) created. Copy it now, it is not shown again:"
    assert secret.startswith("bo_") and len(secret) == 46
    row = db.session.get(ApiToken, 1)
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (row.token_hash, row.prefix) and row.prefix == secret[:8]
    listing = runner.invoke(args=["tokens", "list"]).output
    assert listing == f"1\t{secret[:8]}…\tread\tactive\tBI tool\n"
    assert secret not in listing
    assert client.get("/api/v1/metrics/kpis", headers=bearer(secret)).status_code == 200
    assert runner.invoke(args=["tokens", "revoke", "1"]).output == "Token 1 revoked.\n"
    resp = client.get("/api/v1/metrics/kpis", headers=bearer(secret))
    assert resp.status_code == 401
    assert resp.get_json() == {"error": {"code": "unauthorized", "message": "The bearer token is unknown or revoked.",
                                         "field": None}}
    assert "revoked" in runner.invoke(args=["tokens", "list"]).output


@pytest.mark.parametrize("name", ENDPOINTS)
def test_401_without_or_with_a_wrong_token(client, app, name):
    resp = client.get(f"/api/v1/metrics/{name}")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"
    assert client.get(f"/api/v1/metrics/{name}", headers=bearer("bo_not-a-token")).status_code == 401


@pytest.mark.parametrize("name", ENDPOINTS)
def test_403_with_the_wrong_scope_and_200_with_read_or_admin(client, app, name):
    ingest = token_services.create_token("platform", "ingest")[1]
    resp = client.get(f"/api/v1/metrics/{name}", headers=bearer(ingest))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"
    for scope in ("read", "admin"):
        secret = token_services.create_token(f"t-{scope}", scope)[1]
        assert client.get(f"/api/v1/metrics/{name}", headers=bearer(secret)).status_code == 200


def test_account_scoped_token_cannot_read_platform_metrics(client, app):
    account = AccountFactory()
    db.session.commit()
    secret = token_services.create_token("one customer", "account", account.id)[1]
    assert client.get("/api/v1/metrics/kpis", headers=bearer(secret)).status_code == 403


# --- metrics -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["kpis", "mrr-trend", "growth", "logins", "movements"])
@pytest.mark.parametrize("bad", ["14", "x", ""])
def test_bad_period_is_a_400_naming_it(client, read_token, name, bad):
    resp = client.get(f"/api/v1/metrics/{name}?period={bad}", headers=bearer(read_token))
    assert resp.status_code == 400
    assert resp.get_json() == {"error": {"code": "bad_request", "message": "period must be 7, 30 or 90.",
                                         "field": "period"}}


def test_kpis_issue_example(client, read_token, issue_example):
    body = client.get("/api/v1/metrics/kpis?period=30", headers=bearer(read_token)).get_json()
    w_end = (_now() + timedelta(days=1)).date()
    assert body == {
        "period": 30,
        "from": f"{(w_end - timedelta(days=30)).isoformat()}T00:00:00Z",
        "to": f"{w_end.isoformat()}T00:00:00Z",
        "billing_enabled": True,
        "total_accounts": 3,
        "new_accounts": 1,
        "new_accounts_prior": 0,
        "active_users": 0,
        "active_users_prior": 0,
        "active_sessions": 0,
        "currency": "EUR",
        "blended_mrr": "249.99",
        "mrr_at_start": "200.00",
        "mrr_ledger": "249.99",
        "mrr_change_percent": "25.0",
        "total_revenue": "0.00",
    }


def test_kpis_scheduled_downgrade_and_canceling(client, read_token):
    subscribe("299", 60)
    subscribe("299", 60, scheduled_plan="basic", scheduled_price_amount=D("149"))
    subscribe("149", 60, cancel_at_period_end=True)
    db.session.commit()
    body = client.get("/api/v1/metrics/kpis", headers=bearer(read_token)).get_json()
    assert body["blended_mrr"] == "448.00"


def test_mrr_trend_items(client, read_token, issue_example):
    body = client.get("/api/v1/metrics/mrr-trend?period=7", headers=bearer(read_token)).get_json()
    assert (body["total"], body["page"], body["page_size"]) == (7, 1, 7)
    today = _now().date()
    assert body["items"][0] == {"date": (today - timedelta(days=6)).isoformat(), "mrr": "200.00",
                                "prior_date": (today - timedelta(days=13)).isoformat(), "prior_mrr": "200.00",
                                "change": "0.00", "currency": "EUR"}
    assert [i["mrr"] for i in body["items"]] == ["200.00"] + ["249.99"] * 6
    assert [i["change"] for i in body["items"]] == ["0.00"] + ["49.99"] * 6


def test_revenue_trend_refund(client, read_token):
    now = _now()
    PaymentTransactionFactory(amount_excluding_tax=D("149"), date=now - timedelta(days=5),
                              refunded_at=now - timedelta(days=1))
    db.session.commit()
    body = client.get("/api/v1/metrics/revenue-trend?period=7", headers=bearer(read_token)).get_json()
    assert [i["revenue"] for i in body["items"]] == ["0.00", "149.00", "149.00", "149.00", "149.00", "0.00", "0.00"]


def test_movements_sum_to_change(client, read_token, issue_example):
    now = _now()
    sub = db.session.execute(sa.select(SubscriptionFactory._meta.model).limit(1)).scalar_one()
    BillingEventFactory(subscription=sub, type="subscription_upgraded", previous_amount=D("100"),
                        new_amount=D("150"), occurred_at=now - timedelta(days=2))
    db.session.commit()
    body = client.get("/api/v1/metrics/movements?period=30", headers=bearer(read_token)).get_json()
    assert {k: body[k] for k in ("opening_mrr", "closing_mrr", "change", "new", "expansion", "contraction", "churn",
                                 "reactivation", "currency")} == {
        "opening_mrr": "200.00", "closing_mrr": "299.99", "change": "99.99", "new": "49.99", "expansion": "50.00",
        "contraction": "0.00", "churn": "0.00", "reactivation": "0.00", "currency": "EUR"}


def test_plan_distribution_growth_logins(client, read_token):
    PlanFactory(plan_key="pro", name="Pro", monthly_amount=D("149"))
    subscribe("149", 3)
    AccountFactory(created_at=_now() - timedelta(days=1))
    user = UserFactory()
    LoginFactory(user_id=user.id, at=_now())
    db.session.commit()
    plans = client.get("/api/v1/metrics/plan-distribution", headers=bearer(read_token)).get_json()
    assert plans == {"items": [
        {"plan": "free", "name": "Free", "monthly_amount": "0.00", "currency": "EUR", "accounts": 1},
        {"plan": "pro", "name": "Pro", "monthly_amount": "149.00", "currency": "EUR", "accounts": 1}],
        "total": 2, "page": 1, "page_size": 2}
    growth = client.get("/api/v1/metrics/growth?period=7", headers=bearer(read_token)).get_json()
    assert [i["total_accounts"] for i in growth["items"]] == [0, 0, 0, 1, 1, 2, 2]
    assert [i["new_accounts"] for i in growth["items"]] == [0, 0, 0, 1, 0, 1, 0]
    logins = client.get("/api/v1/metrics/logins?period=7", headers=bearer(read_token)).get_json()
    assert [i["logins"] for i in logins["items"]] == [0, 0, 0, 0, 0, 0, 1]


def test_billing_disabled_answers_404_for_billing_metrics(app, client, read_token):
    app.config["BILLING_ENABLED"] = False
    for name in BILLING_ENDPOINTS:
        resp = client.get(f"/api/v1/metrics/{name}", headers=bearer(read_token))
        assert resp.status_code == 404, name
        assert resp.get_json()["error"]["code"] == "not_found"
    body = client.get("/api/v1/metrics/kpis", headers=bearer(read_token)).get_json()
    assert body["billing_enabled"] is False and "blended_mrr" not in body


def test_openapi_describes_the_metrics(client, app):
    doc = client.get("/api/v1/openapi.json").get_json()
    for name in ENDPOINTS:
        op = doc["paths"][f"/api/v1/metrics/{name}"]["get"]
        assert {"200", "400", "401", "403"} <= set(op["responses"])
    assert doc["paths"]["/api/v1/metrics/kpis"]["get"]["parameters"][0]["schema"]["enum"] == [7, 30, 90]
    assert "MetricsKpis" in doc["components"]["schemas"]
