"""Drift detection (DOMAIN §4): every kind with its severity; acknowledgement."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.accounts.models import Account
from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import readers
from backoffice.ledger.models import BillingEvent, Discrepancy, StripeEvent, Subscription
from backoffice.operators.models import AuditEntry
from backoffice.stripe import drift, sync
from tests.stripe import helpers as h
from tests.stripe.conftest import make_account
from tests.stripe.stubs import NOW, RecordedGateway, days_ago, deliver, replay

HX = {"HX-Request": "true"}
STANDARD = h.price("price_standard", 4900, product="standard")
PREMIUM = h.price("price_premium", 14900, product="premium")


def _kinds(findings):
    return [(f.kind, f.severity, f.field) for f in findings]


def _current(account_id="acc_1") -> Subscription:
    return db.session.execute(db.select(Subscription).where(Subscription.account_id == account_id,
                                                            Subscription.is_current)).scalar_one()


def _recorded_account(app, sub_obj, *events, invoices=(), schedules=None):
    """An account whose archive holds `events` (replayed) and whose Stripe answers `sub_obj`."""
    if db.session.get(Account, "acc_1") is None:
        make_account("acc_1", "cus_1")
    deliver(h.envelope("customer.created", h.customer("cus_1", account_id="acc_1"), days_ago(10)), *events)
    replay("acc_1")
    gateway = RecordedGateway(subscriptions=[sub_obj] if sub_obj else [], invoices=invoices, schedules=schedules)
    app.extensions["stripe_gateway"] = gateway
    app.config["STRIPE_SECRET_KEY"] = "sk_test_recorded"
    return gateway


def _check() -> list[Discrepancy]:
    assert drift.check_subscription(_current().id) == "processed"
    return list(db.session.execute(db.select(Discrepancy).where(Discrepancy.resolved_at.is_(None))
                                   .order_by(Discrepancy.id)).scalars())


# -- against localstripe -----------------------------------------------------------------------------
def test_local_standard_vs_stripe_premium_is_a_plan_and_a_price_mismatch(stripe_app, fake_stripe):
    fake_stripe.plan("standard", 4900)
    fake_stripe.plan("premium", 14900)
    customer = fake_stripe.customer("acc_1")
    make_account("acc_1", customer)
    sub = fake_stripe.subscribe(customer, "standard")
    assert sync.sync_account("acc_1").discrepancies == []
    fake_stripe.change_plan(sub, "premium")  # localstripe sends no customer.subscription.updated

    result = sync.sync_account("acc_1")

    # DOMAIN §4: one mismatch per field, the plan and its price.
    assert [(d["kind"], d["severity"], d["field"]) for d in result.discrepancies] == [
        ("SubscriptionStateMismatch", "critical", "plan"), ("SubscriptionStateMismatch", "critical", "price")]
    assert [d["message"] for d in result.discrepancies] == [
        "Plan: Backoffice has standard, Stripe has premium.", "Price: Backoffice has 49.00, Stripe has 149.00."]
    assert result.drift_detected is True and _current().drift_detected is True
    assert (_current().plan, _current().price_amount) == ("premium", Decimal("149.00"))


def test_a_re_pulled_event_with_a_different_body_is_a_payload_divergence(stripe_app, fake_stripe):
    from backoffice.stripe import gateway as gw

    fake_stripe.plan("standard", 4900)
    customer = fake_stripe.customer("acc_1")
    make_account("acc_1", customer)
    fake_stripe.subscribe(customer, "standard")
    event = next(e for e in fake_stripe.events() if e["type"] == "customer.created" and gw.event_customer(e) == customer)
    event["data"]["object"]["name"] = "Someone Else"
    deliver(event)

    result = sync.sync_account("acc_1")

    assert [(d["kind"], d["severity"], d["stripe_event_id"]) for d in result.discrepancies] == [
        ("PayloadDivergence", "warning", event["id"])]


# -- recorded payloads -----------------------------------------------------------------------------
def test_scheduled_plan_without_a_price_is_scheduled_price_missing(app):
    created = days_ago(10, 5)
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=created, schedule="sub_sched_1")
    schedule = h.schedule("sub_sched_1", "cus_1", "sub_1", ["price_standard", "price_unknown"])
    _recorded_account(app, sub, h.envelope("customer.subscription.created", sub, created),
                      schedules={"sub_sched_1": schedule})

    found = _check()

    assert [(d.kind, d.severity, d.field) for d in found] == [
        ("ScheduledPriceMissing", "critical", "scheduled_price_amount")]
    assert _current().drift_detected is True


def _stale_row() -> tuple[dict, dict]:
    """acc_1's subscription.created with a row written by an older Backoffice: 39.00 where a
    replay now says 49.00. Answers (the live subscription, the event)."""
    created = days_ago(10, 5)
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=created)
    event = h.envelope("customer.subscription.created", sub, created)
    make_account("acc_1", "cus_1")
    db.session.add(BillingEvent(account_id="acc_1", stripe_event_id=event["id"], type="subscription_created",
                                to_plan="standard", previous_amount=Decimal(0), new_amount=Decimal("39.00"),
                                amount_delta=Decimal("39.00"), committed_mrr=Decimal("39.00"), currency="EUR",
                                occurred_at=datetime.fromtimestamp(created, UTC)))
    db.session.commit()
    return sub, event


def test_a_stale_persisted_row_is_reported_and_never_changed(app):
    sub, event = _stale_row()
    gateway = _recorded_account(app, sub, event)
    gateway.subscriptions_[0]["items"]["data"][0]["price"]["unit_amount"] = 3900  # Stripe agrees with the row

    found = _check()

    assert [(d.kind, d.severity, d.stripe_event_id) for d in found] == [("StalePersistedRow", "warning", event["id"])]
    assert found[0].field == "amount_delta,new_amount"
    row = db.session.execute(db.select(BillingEvent).where(BillingEvent.stripe_event_id == event["id"])).scalar_one()
    assert (row.new_amount, row.amount_delta) == (Decimal("39.00"), Decimal("39.00"))


def test_a_stale_row_superseded_by_its_correction_is_no_longer_reported(app):
    """After `ledger rebuild` supersedes the stale row with its corrected one, the drift pass
    reads the current row (49.00, as a replay writes it) and finds nothing."""
    from backoffice.ledger import services

    sub, event = _stale_row()
    _recorded_account(app, sub, event)
    report = services.rebuild(["acc_1"])
    assert event["id"] in {d.stripe_event_id for d in report.differences}

    assert _check() == []
    rows = db.session.execute(db.select(BillingEvent).where(BillingEvent.stripe_event_id == event["id"])
                              .order_by(BillingEvent.id)).scalars().all()
    assert [(r.new_amount, r.superseded_at is None) for r in rows] == [
        (Decimal("39.0000"), False), (Decimal("49.0000"), True)]


def test_three_sibling_events_in_the_same_second_are_not_flagged(app):
    created = days_ago(10, 5)
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=created)
    second = days_ago(3)
    inv = h.invoice("in_1", "cus_1", "sub_1", amount_paid=4900, total=4900, created=second)
    siblings = [h.envelope(t, inv, second, event_id=f"evt_sib_{n}")
                for n, t in enumerate(("invoice.created", "invoice.payment_succeeded", "invoice.paid"))]
    gateway = _recorded_account(app, sub, h.envelope("customer.subscription.created", sub, created))
    gateway.invoices_ = [inv]
    # Stored in arrival order: invoice.paid came first and classified the invoice; a fresh
    # replay (id order) gives the Renewed row to invoice.payment_succeeded instead.
    for event_id, kind in (("evt_sib_2", "subscription_renewed"), ("evt_sib_1", "no_op")):
        db.session.add(BillingEvent(account_id="acc_1", stripe_event_id=event_id, type=kind, to_plan="standard",
                                    committed_mrr=Decimal("49.00"), currency="EUR",
                                    occurred_at=datetime.fromtimestamp(second, UTC)))
    db.session.commit()
    deliver(*siblings)
    replay("acc_1")
    fresh = drift.fresh_replay("acc_1")
    assert (fresh["evt_sib_1"]["type"], fresh["evt_sib_2"]["type"]) == ("subscription_renewed", "no_op")

    assert [(d.kind, d.message) for d in _check()] == []


def test_missing_historical_events_follow_the_30_day_rule(app):
    created = days_ago(10, 5)
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=created)
    old = h.invoice("in_old", "cus_1", "sub_1", amount_paid=4900, total=4900, created=days_ago(45))
    young = h.invoice("in_young", "cus_1", "sub_1", amount_paid=4900, total=4900, created=days_ago(5))
    listed = h.invoice("in_listed", "cus_1", "sub_1", amount_paid=4900, total=4900, created=days_ago(4))
    archived = h.invoice("in_archived", "cus_1", "sub_1", amount_paid=4900, total=4900, created=days_ago(60))
    gateway = _recorded_account(app, sub, h.envelope("customer.subscription.created", sub, created),
                                h.envelope("invoice.created", archived, days_ago(60)),
                                invoices=[old, young, listed, archived])
    gateway.events_ = [h.envelope("invoice.created", listed, days_ago(4))]
    for inv in (old, young, listed):  # the archived one is projected by the replayer
        db.session.add(PaymentTransaction(
            account_id="acc_1", stripe_invoice_id=inv["id"], status="succeeded",
            date=datetime.fromtimestamp(inv["created"], UTC), currency="EUR", amount=Decimal("49.00"),
            amount_excluding_tax=Decimal("49.00"), tax_amount=Decimal(0), invoice_total=Decimal("49.00")))
    db.session.commit()

    found = _check()

    assert [(d.kind, d.severity, d.field) for d in found] == [
        ("MissingHistoricalEvent", "critical", "invoice"),
        ("MissingHistoricalEvent", "warning", "invoice"),
    ]
    assert found[0].message.startswith("Unrecoverable: invoice in_old")
    assert "in_young" in found[1].message
    assert gateway.calls == 3  # subscriptions, invoices, one events.list for what the archive lacked

    # Baseline history covers what predates Backoffice; the young one waits for the next sync.
    from backoffice.stripe import recovery

    result = recovery.baseline(gateway)
    assert (result.accounts, result.events, result.ledger_rows) == (1, 1, 0)
    assert [(d.kind, d.severity) for d in _check()] == [("MissingHistoricalEvent", "warning")]


def test_unreadable_payloads_and_unclassified_events(app):
    created = days_ago(10, 5)
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=created)
    both = h.subscription("sub_1", "cus_1", PREMIUM, created=created, cancel_at_period_end=True)
    combined = h.envelope("customer.subscription.updated", both, days_ago(2),
                          previous_attributes={"cancel_at_period_end": False,
                                               "items": sub["items"]})
    # A label no one has seen is read by its shape: this is an ordinary billing-info update.
    future = h.envelope("customer.updated", h.customer("cus_1", account_id="acc_1", name="New"), days_ago(1),
                        previous_attributes={"name": "Acme AG"}, api_version="2099-01-01.future")
    future["data"]["object"]["currency"] = "eur"  # a customer's currency is its subscriptions'
    itemless = dict(both, cancel_at_period_end=False)
    del itemless["items"]
    unreadable = h.envelope("customer.subscription.updated", itemless, days_ago(1, 30),
                            previous_attributes={"cancel_at_period_end": True})
    gateway = _recorded_account(app, sub, h.envelope("customer.subscription.created", sub, created),
                                combined, future, unreadable)
    gateway.subscriptions_ = [sub]

    found = _check()

    found.sort(key=lambda d: d.kind)
    assert [(d.kind, d.severity, d.stripe_event_id, d.field) for d in found] == [
        ("UnclassifiedStripeEvent", "warning", combined["id"], None),
        ("UnreadablePayload", "critical", unreadable["id"], "data.object.items"),
    ]
    assert "customer.subscription.updated" in found[1].message and "items" in found[1].message
    assert _current().drift_detected is True
    assert db.session.get(StripeEvent, future["id"]).state == "processed"
    assert db.session.get(StripeEvent, unreadable["id"]).state == "failed"


def test_missing_event_and_clamped_amounts(app):
    make_account("acc_1", "cus_1")
    db.session.add(Subscription(account_id="acc_1", plan="free", price_amount=Decimal(0)))
    db.session.add(PaymentTransaction(
        account_id="acc_1", stripe_invoice_id="in_1", status="succeeded", date=NOW - timedelta(days=2),
        currency="EUR", amount=Decimal("10.00"), amount_excluding_tax=Decimal(0), tax_amount=Decimal(0),
        invoice_total=Decimal("10.00")))
    db.session.commit()
    # Taxes above what was paid: Stripe's amount excluding tax is negative (-5.00).
    negative = h.invoice("in_1", "cus_1", None, amount_paid=1000, total=1000, tax=1500, created=days_ago(2))
    assert negative["total_excluding_tax"] == -500
    gateway = RecordedGateway(invoices=[negative], events=[h.envelope("invoice.paid", negative, days_ago(2))])
    app.extensions["stripe_gateway"] = gateway

    found = _check()

    assert [(d.kind, d.severity) for d in found] == [("MissingEvent", "warning"),
                                                     ("AmountExcludingTaxClamped", "warning")]
    assert found[0].message.startswith("1 succeeded payment(s) but no billing events")


def test_state_mismatch_per_field_with_its_severity():
    state = drift.LedgerState(plan="standard", price=Decimal("49.00"), cancel_at_period_end=False,
                              currency="EUR", known=True)
    live = readers.LiveSubscription("sub_1", "active", "standard", Decimal("59.00"), "price_x", "CHF", True,
                                     None, None, None)
    assert _kinds(drift._state_mismatch(state, live)) == [
        ("SubscriptionStateMismatch", "critical", "price"),
        ("SubscriptionStateMismatch", "warning", "cancel_at_period_end"),
        ("SubscriptionStateMismatch", "warning", "currency"),
    ]
    assert drift._state_mismatch(drift.LedgerState(), live) == []  # nothing replayed yet


# -- acknowledge --------------------------------------------------------------------------------------
def test_acknowledge_clears_the_flag_keeps_the_list_and_records_who(app, admin_client):
    created = days_ago(10, 5)
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=created, schedule="sub_sched_1")
    schedule = h.schedule("sub_sched_1", "cus_1", "sub_1", ["price_standard", "price_unknown"])
    _recorded_account(app, sub, h.envelope("customer.subscription.created", sub, created),
                      schedules={"sub_sched_1": schedule})
    assert len(_check()) == 1
    csrf = {"X-CSRFToken": admin_client.csrf}

    before = admin_client.get("/accounts/acc_1/drift").get_data(as_text=True)
    assert '<span id="drift-count" class="count">1</span>' in before and "Drift detected" in before
    dialog = admin_client.get("/stripe/accounts/acc_1/drift/acknowledge", headers=HX).get_data(as_text=True)
    assert "ScheduledPriceMissing" in dialog
    resp = admin_client.post("/stripe/accounts/acc_1/drift/acknowledge", headers={**HX, **csrf})

    assert resp.status_code == 200 and "Acknowledged by admin@example.com" in resp.get_data(as_text=True)
    # The page behind the dialog is updated out of band: no badge, no open finding to count.
    body = resp.get_data(as_text=True)
    assert '<span id="drift-badge" hx-swap-oob="true"></span>' in body
    assert '<span id="drift-count" class="count" hx-swap-oob="true" hidden></span>' in body
    page = admin_client.get("/accounts/acc_1/drift").get_data(as_text=True)
    assert 'id="drift-count" class="count" hidden' in page and "Drift detected" not in page
    db.session.expire_all()
    s = _current()
    assert (s.drift_detected, s.drift_acknowledged_by) == (False, "admin@example.com")
    assert (datetime.now(UTC) - s.drift_acknowledged_at).total_seconds() < 60
    assert db.session.execute(db.select(db.func.count()).select_from(Discrepancy)
                              .where(Discrepancy.resolved_at.is_(None))).scalar_one() == 1
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "stripe.acknowledge_drift")).scalar_one()
    assert (entry.operator_email, entry.target_id, entry.after["drift_detected"]) == ("admin@example.com", "acc_1", False)

    assert admin_client.post("/stripe/accounts/acc_1/drift/acknowledge", headers={**HX, **csrf}).status_code == 409
    # The cause remains: the next check raises the flag again.
    _check()
    assert _current().drift_detected is True


def test_acknowledge_without_drift_is_409(app, admin):
    make_account("acc_1", "cus_1")
    with pytest.raises(BadRequest) as e:
        drift.acknowledge("acc_1", admin)
    assert e.value.status == 409


def test_the_events_list_rendering_of_an_archived_event_at_another_version_is_no_divergence(app):
    """Stripe's events list renders an event at its own version, a pinned endpoint at another:
    a re-pulled event that says the same thing is neither a divergence nor a second row."""
    from tests.ledger import payloads as p

    created = days_ago(10, 5)
    sub = h.subscription("sub_1", "cus_1", STANDARD, created=created, period_end=created + 30 * 86400)
    events = [h.envelope("customer.subscription.created", sub, created),
              h.envelope("invoice.paid", h.invoice("in_1", "cus_1", "sub_1", amount_paid=4900, total=4900,
                                                  created=created + 60), created + 60)]
    gateway = _recorded_account(app, sub, *events)
    rows_before = db.session.execute(db.select(db.func.count(BillingEvent.id))).scalar_one()
    gateway.events_ = [p.to_legacy(e) for e in events]
    assert {e["api_version"] for e in gateway.events_} == {"2017-08-15"}
    changed = p.to_legacy(events[1])
    changed["data"]["object"]["amount_paid"] = 100
    result = sync.sync_account("acc_1")
    assert [d["kind"] for d in result.discrepancies] == []
    assert db.session.execute(db.select(db.func.count(BillingEvent.id))).scalar_one() == rows_before
    gateway.events_ = [changed]  # one that says something else still is one
    result = sync.sync_account("acc_1")
    assert [(d["kind"], d["stripe_event_id"]) for d in result.discrepancies] == [("PayloadDivergence", events[1]["id"])]
