"""Disaster recovery: replay archived events Stripe no longer returns that have no ledger row."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent, StripeEvent
from backoffice.operators.models import AuditEntry
from backoffice.stripe import recovery, sync
from backoffice.stripe.models import Discrepancy
from tests.stripe import helpers as h
from tests.stripe.conftest import make_account
from tests.stripe.stubs import RecordedGateway, days_ago

HX = {"HX-Request": "true"}
STANDARD = h.price("price_standard", 4900, product="standard")
PREMIUM = h.price("price_premium", 14900, product="premium")


def _archived_without_ledger_row(event: dict) -> None:
    """An event an earlier Backoffice archived and processed, whose ledger row was lost (a
    database restored from an older backup): the situation disaster recovery exists for."""
    body = json.dumps(event)
    db.session.add(StripeEvent(
        id=event["id"], type=event["type"], api_version=event["api_version"],
        stripe_created_at=datetime.fromtimestamp(event["created"], UTC), payload=body,
        payload_sha256=hashlib.sha256(body.encode()).hexdigest(), customer_id="cus_1", state="processed",
        processed_at=datetime.fromtimestamp(event["created"], UTC), account_id="acc_1",
        stripe_subscription_id="sub_1"))


def _story():
    make_account("acc_1", "cus_1")
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=days_ago(50))
    upgraded = h.subscription("sub_1", "cus_1", PREMIUM, created=days_ago(50))
    old = [
        h.envelope("customer.created", h.customer("cus_1", account_id="acc_1"), days_ago(50, -10)),
        h.envelope("customer.subscription.created", sub, days_ago(50)),
        h.envelope("customer.subscription.updated", upgraded, days_ago(40),
                   previous_attributes={"items": sub["items"]}),
    ]
    recent = [h.envelope("customer.updated", h.customer("cus_1", account_id="acc_1", name="Acme Holding"),
                         days_ago(3), previous_attributes={"name": "Acme AG"})]
    for event in old + recent:
        _archived_without_ledger_row(event)
    db.session.commit()
    return old, recent, upgraded


def test_disaster_recovery_appends_only_the_rows_stripe_no_longer_returns(app, admin_client):
    old, recent, _live = _story()
    plan = recovery.recovery_plan("acc_1")
    assert (plan.awaiting.count, plan.offered) == (3, True)
    assert plan.awaiting.oldest == datetime.fromtimestamp(old[0]["created"], UTC)
    assert plan.awaiting.newest == datetime.fromtimestamp(old[-1]["created"], UTC)

    dialog = admin_client.get("/stripe/accounts/acc_1/disaster-recovery", headers=HX).get_data(as_text=True)
    assert "3 archived events that Stripe no longer returns have no ledger row." in dialog
    assert plan.awaiting.oldest.strftime("%b %-d, %Y") in dialog and "Replay 3 events" in dialog

    resp = admin_client.post("/stripe/accounts/acc_1/disaster-recovery",
                             headers={**HX, "X-CSRFToken": admin_client.csrf})

    assert resp.status_code == 200
    assert "3 billing events appended." in resp.get_data(as_text=True)
    rows = list(db.session.execute(db.select(BillingEvent).order_by(BillingEvent.occurred_at)).scalars())
    assert [(r.stripe_event_id, r.type) for r in rows] == [
        (old[0]["id"], "billing_info_added"),
        (old[1]["id"], "subscription_created"),
        (old[2]["id"], "subscription_upgraded"),
    ]
    assert (rows[2].previous_amount, rows[2].new_amount, rows[2].amount_delta) == (
        Decimal("49.00"), Decimal("149.00"), Decimal("100.00"))
    assert recent[0]["id"] not in {r.stripe_event_id for r in rows}  # Stripe still returns it: a sync's job
    entry = db.session.execute(
        db.select(AuditEntry).where(AuditEntry.action == "stripe.disaster_recovery")).scalar_one()
    assert (entry.operator_email, entry.after["events_appended"], entry.after["candidates"]) == (
        "admin@example.com", 3, 3)
    # Nothing is left to recover: a second run appends nothing.
    assert recovery.recovery_plan("acc_1").awaiting.count == 0
    again = admin_client.post("/stripe/accounts/acc_1/disaster-recovery",
                              headers={**HX, "X-CSRFToken": admin_client.csrf})
    assert "0 billing events appended." in again.get_data(as_text=True)
    # The dialog now says there is nothing to recover, and claims no critical drift that is not open.
    dialog = admin_client.get("/stripe/accounts/acc_1/disaster-recovery", headers=HX).get_data(as_text=True)
    assert 'data-recovery="nothing"' in dialog and "remain" not in dialog
    db.session.add(Discrepancy(account_id="acc_1", kind="UnreadablePayload", severity="critical",
                               message="invoice.paid evt_x: the payload has no readable amount_paid"))
    db.session.commit()
    dialog = admin_client.get("/stripe/accounts/acc_1/disaster-recovery", headers=HX).get_data(as_text=True)
    assert 'data-recovery="critical-remains"' in dialog and "1 critical finding remains open" in dialog


def test_a_sync_reports_the_archived_events_awaiting_confirmation(app):
    old, _recent, live = _story()
    app.extensions["stripe_gateway"] = RecordedGateway(subscriptions=[live])
    app.config["STRIPE_SECRET_KEY"] = "sk_test_recorded"

    result = sync.sync_account("acc_1")

    assert result.as_dict()["awaiting_confirmation"] == {
        "count": 3,
        "oldest": datetime.fromtimestamp(old[0]["created"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "newest": datetime.fromtimestamp(old[-1]["created"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_baseline_history_is_marked_and_never_mistaken_for_real_events(app):
    make_account("acc_1", "cus_1")
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=days_ago(400))
    inv = h.invoice("in_1", "cus_1", "sub_1", amount_paid=4900, total=4900, created=days_ago(370))
    gateway = RecordedGateway(subscriptions=[sub], invoices=[inv])
    app.config["STRIPE_SECRET_KEY"] = "sk_test_recorded"

    result = recovery.baseline(gateway)

    assert (result.accounts, result.events, result.ledger_rows) == (1, 2, 1)
    events = list(db.session.execute(db.select(StripeEvent).order_by(StripeEvent.stripe_created_at)).scalars())
    assert [(e.id, e.recovery_source, e.state) for e in events] == [
        ("baseline:customer.subscription.created:sub_1", "baseline", "processed"),
        ("baseline:invoice.created:in_1", "baseline", "processed"),
    ]
    (row,) = db.session.execute(db.select(BillingEvent)).scalars()
    assert (row.type, row.baseline, row.new_amount, row.to_plan) == (
        "subscription_created", True, Decimal("49.00"), "standard")
    assert recovery.baseline(gateway).events == 0  # idempotent
