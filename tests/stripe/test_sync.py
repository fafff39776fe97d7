"""Sync an account with Stripe (DOMAIN §4) against localstripe."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import stripe

from backoffice.api import services as api_services
from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.ledger import archive
from backoffice.ledger.models import BillingEvent, StripeEvent, Subscription
from backoffice.operators.models import AuditEntry
from backoffice.stripe import drift, sync
from backoffice.stripe import gateway as gw
from backoffice.stripe.models import JobRun
from tests.stripe.conftest import make_account

HX = {"HX-Request": "true"}


def _story(fake_stripe, account_id="acc_1", plan="standard", amount=4900):
    fake_stripe.plan(plan, amount)
    customer = fake_stripe.customer(account_id)
    make_account(account_id, customer)
    sub = fake_stripe.subscribe(customer, plan)
    return customer, sub


def _archive_as_webhook(event: dict) -> None:
    archive.archive_event(json.dumps(event).encode(), event)


def _sub(account_id="acc_1") -> Subscription:
    return db.session.execute(db.select(Subscription).where(Subscription.account_id == account_id,
                                                            Subscription.is_current)).scalar_one()


def test_a_missed_webhook_is_recovered_by_a_sync(stripe_app, fake_stripe):
    customer, sub = _story(fake_stripe)
    events = [e for e in fake_stripe.events() if gw.event_customer(e) == customer]
    delivered = next(e for e in events if e["type"] == "customer.created")
    _archive_as_webhook(delivered)  # the only webhook that arrived

    result = sync.sync_account("acc_1")

    rows = {r.id: r for r in db.session.execute(db.select(StripeEvent)).scalars()}
    assert set(rows) == {e["id"] for e in events}
    assert rows[delivered["id"]].recovery_source is None
    recovered = [r for r in rows.values() if r.id != delivered["id"]]
    assert {r.recovery_source for r in recovered} == {"events_list"}
    assert {r.recovered_at for r in recovered} == {result.synced_at}
    assert result.events_recovered == 5
    created = db.session.execute(
        db.select(BillingEvent).where(BillingEvent.type == "subscription_created")).scalar_one()
    assert (created.to_plan, created.new_amount, created.committed_mrr) == ("standard", Decimal("49.00"), Decimal("49.00"))
    assert result.events_appended == db.session.execute(
        db.select(db.func.count()).select_from(BillingEvent)).scalar_one()
    assert result.drift_detected is False and result.discrepancies == []
    assert result.awaiting.count == 0
    s = _sub()
    assert (s.plan, s.price_amount, s.currency, s.stripe_subscription_id) == ("standard", Decimal("49.00"), "EUR", sub["id"])
    assert s.events_anchor == datetime.fromtimestamp(max(e["created"] for e in events), UTC)
    assert s.drift_checked_at == result.synced_at
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "stripe.sync")).scalar_one()
    assert (entry.target_id, entry.result, entry.after["events_recovered"]) == ("acc_1", "ok", 5)

    again = sync.sync_account("acc_1")
    assert (again.events_recovered, again.events_appended, again.discrepancies) == (0, 0, [])
    assert again.nothing_new


def test_the_anchor_does_not_move_when_pagination_fails_midway(stripe_app, fake_stripe, monkeypatch):
    customer, _sub_obj = _story(fake_stripe)
    sync.sync_account("acc_1")
    anchor, checked = _sub().events_anchor, _sub().drift_checked_at
    archived = db.session.execute(db.select(db.func.count()).select_from(StripeEvent)).scalar_one()
    # New events at Stripe, then a pull whose second page fails.
    fake_stripe.client.v1.customers.update(customer, {"name": "Acme Holding AG"})
    fake_stripe.subscribe(fake_stripe.customer("acc_other"), "standard")
    monkeypatch.setattr(gw, "PAGE_SIZE", 2)
    gateway = stripe_app.extensions["stripe_gateway"]
    gateway.max_retries = 1
    real = gateway.client.v1.events.list

    def second_page_fails(params):
        if "starting_after" in params:
            raise stripe.APIError("bad gateway", http_status=502)
        return real(params)

    monkeypatch.setattr(gateway.client.v1.events, "list", second_page_fails)
    with pytest.raises(BadRequest) as e:
        sync.sync_account("acc_1")
    assert (e.value.status, e.value.code) == (503, "stripe_unavailable")
    db.session.expire_all()
    assert anchor is not None and _sub().events_anchor == anchor
    assert _sub().drift_checked_at == checked
    assert db.session.execute(db.select(db.func.count()).select_from(StripeEvent)).scalar_one() == archived
    failed = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "stripe.sync", AuditEntry.result == "error")).scalar_one()
    assert "unavailable" in failed.detail


def test_stripe_down_leaves_pending_events_pending_and_the_check_time_unmoved(app, down_gateway, admin_client):
    make_account("acc_1", "cus_1")
    checked = datetime(2026, 11, 1, tzinfo=UTC)
    db.session.add(Subscription(account_id="acc_1", stripe_subscription_id="sub_1", plan="standard",
                                price_amount=Decimal("49.00"), currency="EUR", status="active",
                                drift_checked_at=checked))
    db.session.commit()
    event = {"id": "evt_pending", "object": "event", "api_version": "2017-08-15", "created": 1795000000,
             "type": "customer.updated", "data": {"object": {"id": "cus_1", "object": "customer", "name": "Acme"},
                                                  "previous_attributes": {"name": "Old"}}}
    _archive_as_webhook(event)

    resp = admin_client.post("/stripe/accounts/acc_1/sync", headers={**HX, "X-CSRFToken": admin_client.csrf})

    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "The sync did not complete" in html and "Stripe is unavailable" in html
    db.session.expire_all()
    assert db.session.get(StripeEvent, "evt_pending").state == "pending"
    assert _sub().drift_checked_at == checked
    assert _sub().events_anchor is None
    run = db.session.execute(db.select(JobRun)).scalar_one()
    assert (run.kind, run.status, run.target_id) == ("account_sync", "failed", "acc_1")
    # The drift pass's detect mode: unavailable, nothing written, the row stays due.
    assert drift.check_subscription(_sub().id) == "unavailable"
    assert _sub().drift_checked_at == checked
    assert drift.due_subscription_ids() == [_sub().id]


def test_preconditions(app, admin_client, viewer):
    make_account("acc_1", "cus_1")
    make_account("acc_nocus", None)
    make_account("acc_chf", "cus_chf")
    db.session.add(Subscription(account_id="acc_chf", plan="pro", price_amount=Decimal(10), currency="CHF"))
    db.session.commit()
    _t, secret = api_services.create_token("ops", "admin")
    auth = {"Authorization": f"Bearer {secret}"}

    # The set-up's or the account's state is in the way, not the request: 409.
    resp = admin_client.post("/api/v1/accounts/acc_1/sync", headers=auth)
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "stripe_not_configured"
    app.config["STRIPE_SECRET_KEY"] = "sk_test_x"
    resp = admin_client.post("/api/v1/accounts/acc_nocus/sync", headers=auth)
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (409, "no_stripe_customer")
    resp = admin_client.post("/api/v1/accounts/acc_chf/sync", headers=auth)
    assert (resp.status_code, resp.get_json()["error"]["field"]) == (409, "currency")
    assert "CHF" in resp.get_json()["error"]["message"]
    resp = admin_client.post("/api/v1/accounts/nope/sync", headers=auth)
    assert resp.status_code == 404
    _t, read = api_services.create_token("reader", "read")
    assert admin_client.post("/api/v1/accounts/acc_1/sync", headers={"Authorization": f"Bearer {read}"}).status_code == 403
    # The page: the confirmation dialog says why instead of offering the button.
    html = admin_client.get("/stripe/accounts/acc_nocus/sync", headers=HX).get_data(as_text=True)
    assert "no Stripe customer" in html and "Sync now" not in html
    assert admin_client.get("/stripe/accounts/nope/sync", headers=HX).status_code == 404
    resp = admin_client.post("/stripe/accounts/acc_nocus/sync", headers={**HX, "X-CSRFToken": admin_client.csrf})
    assert resp.status_code == 409


def test_viewer_is_refused_and_csrf_is_required(app, client, viewer, admin):
    from tests.conftest import sign_in

    make_account("acc_1", "cus_1")
    client.csrf = sign_in(client, viewer.email)
    assert client.get("/stripe/accounts/acc_1/sync", headers=HX).status_code == 403
    assert client.post("/stripe/accounts/acc_1/sync", headers={"X-CSRFToken": client.csrf}).status_code == 403
    assert client.post("/stripe/accounts/acc_1/drift/acknowledge", headers={"X-CSRFToken": client.csrf}).status_code == 403
    assert client.post("/stripe/accounts/acc_1/disaster-recovery", headers={"X-CSRFToken": client.csrf}).status_code == 403
    assert client.get("/stripe/jobs").status_code == 403
    client.post("/sign-out", data={"csrf_token": client.csrf})
    client.csrf = sign_in(client, admin.email)
    assert client.post("/stripe/accounts/acc_1/sync").status_code == 400  # no CSRF token
    assert db.session.execute(db.select(db.func.count()).select_from(JobRun)).scalar_one() == 0


def test_the_page_flow_confirm_then_result(stripe_app, fake_stripe, admin_client):
    _story(fake_stripe)
    page = admin_client.get("/stripe/accounts/acc_1/sync")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    fragment = admin_client.get("/stripe/accounts/acc_1/sync", headers=HX).get_data(as_text=True)
    assert "Sync with Stripe?" in fragment and "<html" not in fragment and "Sync now" in fragment

    resp = admin_client.post("/stripe/accounts/acc_1/sync", headers={**HX, "X-CSRFToken": admin_client.csrf})
    html = resp.get_data(as_text=True)
    appended = db.session.execute(db.select(db.func.count()).select_from(BillingEvent)).scalar_one()
    assert resp.status_code == 200 and "<html" not in html
    assert f"{appended} billing events appended" in html
    assert "6 missed Stripe events recovered" in html
    assert "0 discrepancies" in html

    resp = admin_client.post("/stripe/accounts/acc_1/sync", headers={**HX, "X-CSRFToken": admin_client.csrf})
    assert "Nothing new" in resp.get_data(as_text=True)
    # Without htmx: a redirect to the run's page, which renders whole.
    resp = admin_client.post("/stripe/accounts/acc_1/sync", data={"csrf_token": admin_client.csrf})
    assert resp.status_code == 303
    page = admin_client.get(resp.headers["Location"])
    assert page.status_code == 200 and "Nothing new" in page.get_data(as_text=True)
    jobs = admin_client.get("/stripe/jobs").get_data(as_text=True)
    assert jobs.count("· admin@example.com") == 3  # three syncs, each with who started it


def test_api_sync_answers_the_result(stripe_app, fake_stripe, client):
    _story(fake_stripe)
    _t, secret = api_services.create_token("ops", "admin")
    resp = client.post("/api/v1/accounts/acc_1/sync", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 202
    assert (resp.get_json()["kind"], resp.get_json()["status"]) == ("account_sync", "done")
    body = resp.get_json()["result"]
    assert body["account_id"] == "acc_1"
    assert body["events_recovered"] == 6
    assert body["drift_detected"] is False and body["discrepancies"] == []
    assert body["awaiting_confirmation"] is None
    assert body["synced_at"].endswith("Z")
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "stripe.sync")).scalar_one()
    assert (entry.operator_id, entry.operator_email.startswith("api token "), entry.result) == (None, True, "ok")
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "post" in doc["paths"]["/api/v1/accounts/{account_id}/sync"]


def test_a_failed_replay_rolls_the_whole_sync_back(stripe_app, fake_stripe, monkeypatch):
    """One transaction per account: the recovered archive rows, the refreshed subscription and
    the anchor are written with the ledger rows or not at all."""
    from backoffice.ledger import replay_adapter

    _story(fake_stripe)

    def broken(*args, **kwargs):
        raise RuntimeError("classifier exploded")

    monkeypatch.setattr(replay_adapter, "classify", broken)
    with pytest.raises(BadRequest) as e:
        sync.sync_account("acc_1")
    assert (e.value.status, e.value.code) == (500, "replay_failed")
    db.session.expire_all()
    assert db.session.execute(db.select(db.func.count()).select_from(StripeEvent)).scalar_one() == 0
    assert db.session.execute(db.select(db.func.count()).select_from(BillingEvent)).scalar_one() == 0
    assert db.session.execute(db.select(Subscription.events_anchor)).scalars().all() in ([], [None])
    failed = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "stripe.sync", AuditEntry.result == "error")).scalar_one()
    assert "classifier exploded" in failed.detail

    monkeypatch.undo()
    result = sync.sync_account("acc_1")  # the next sync recovers everything
    assert result.events_recovered == 6 and result.events_appended > 0


def test_a_failed_sync_says_what_stripe_said_and_is_audited(stripe_app, fake_stripe):
    """Issue 22: a customer Stripe does not know, through the real client against localstripe."""
    from backoffice.stripe import tasks

    make_account("acc_gone", "cus_unknown_to_stripe")
    run = tasks.start_run(tasks.ACCOUNT_SYNC, target_id="acc_gone")
    answer = tasks.sync_account_task(run.id, "acc_gone", None)
    db.session.expire_all()
    run = db.session.get(JobRun, run.id)
    assert run.status == "failed"
    assert "Error" not in run.error.split(":")[0]  # words, not an exception class
    assert run.error.startswith(("Stripe does not know", "Stripe refused the request")), run.error
    assert answer == {"error": run.error}
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "stripe.sync")
                               .order_by(AuditEntry.id.desc())).scalars().first()
    assert (entry.target_id, entry.result) == ("acc_gone", "error") and entry.detail


@pytest.mark.parametrize(("error", "words"), [
    (stripe.AuthenticationError("Invalid API Key provided: sk_test_****"), "Stripe refused the API key"),
    (stripe.PermissionError("The provided key does not have access"), "The API key may not do this"),
    (stripe.RateLimitError("Too many requests"), "Stripe is limiting the requests"),
    (stripe.APIConnectionError("timed out"), "Stripe could not be reached"),
    (stripe.InvalidRequestError("No such customer: 'cus_x'", "customer", code="resource_missing"),
     "Stripe does not know customer"),
    (gw.StripeUnavailable("Stripe is unavailable: 503"), "Stripe is unavailable: 503"),
    (RuntimeError("boom"), "Unexpected RuntimeError: boom"),
])
def test_stripe_errors_are_described_in_words_an_operator_can_act_on(error, words):
    assert gw.describe_error(error).startswith(words)
