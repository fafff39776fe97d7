"""The sync with the real `stripe` client on what Stripe answers today (issue 17): the app's own
gateway talks HTTP to the fake Stripe server (fake_stripe.py), whose objects carry the current
shape and its `*_decimal` strings, which stripe-python turns into Decimal."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from backoffice.accounts.models import Account
from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Discrepancy, Plan, StripeEvent, Subscription
from backoffice.stripe import drift, sync
from backoffice.stripe.gateway import StripeGateway
from backoffice.stripe.models import JobRun
from tests.stripe import fake_stripe as fake
from tests.stripe import helpers as h
from tests.stripe.conftest import make_account
from tests.stripe.stubs import days_ago, deliver

HX = {"HX-Request": "true"}
STANDARD = h.price("price_standard", 4900, product="standard", nickname="Standard")
PREMIUM = h.price("price_premium", 14900, product="premium", nickname="Premium")
OTHER_CUSTOMER_EVENTS = 120  # with the story's, more than one page of 100


def _invoice(invoice_id: str, price: dict, *, created: int,
             billing_reason: str = "subscription_create") -> dict:
    """A paid invoice of the story's subscription: the price with 19 % VAT on top."""
    amount, tax = price["unit_amount"], price["unit_amount"] * 19 // 100
    inv = h.invoice(invoice_id, "cus_1", "sub_1", amount_paid=amount + tax, total=amount + tax, tax=tax,
                    billing_reason=billing_reason, created=created, number=f"ACME-{invoice_id}")
    line = inv["lines"]["data"][0]
    line.update(id=f"il_{invoice_id}", amount=amount, quantity=1, quantity_decimal="1", subtotal=amount,
                parent={"type": "subscription_item_details", "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None, "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": "sub_1", "subscription_item": "si_sub_1"}},
                pricing={"type": "price_details", "unit_amount_decimal": str(price["unit_amount"]),
                         "price_details": {"price": price["id"], "product": price["product"]}})
    return inv


def _story(stripe_server, price: dict = STANDARD, schedule: dict | None = None, *,
           delivered: str = "customer.created", linked: bool = True) -> dict:
    """acc_1's Stripe customer subscribed to `price` ten days ago and paid its first invoice; the
    only webhook that arrived is `delivered`. Another customer's events fill Stripe's list.
    `linked=False`: no account is linked to the customer yet."""
    if linked:
        make_account("acc_1", "cus_1")
    start = days_ago(10)
    customer = stripe_server.add({**h.customer("cus_1", account_id="acc_1"), "currency": "eur"})
    stripe_server.add(price)
    sub = h.subscription("sub_1", "cus_1", price, created=start, period_end=start + 30 * 86400,
                         latest_invoice="in_1", schedule=schedule["id"] if schedule else None)
    stripe_server.add(sub)
    inv = stripe_server.add(_invoice("in_1", price, created=start + 1))
    stripe_server.add(h.charge("ch_1", "cus_1", amount=inv["amount_paid"]))
    if schedule:
        stripe_server.add(schedule)
    events = {
        "customer.created": stripe_server.add_event("customer.created", customer, start - 60),
        "payment_method.attached": stripe_server.add_event(
            "payment_method.attached", h.payment_method("pm_1", "cus_1"), start - 30),
        "customer.subscription.created": stripe_server.add_event("customer.subscription.created", sub, start),
        "invoice.created": stripe_server.add_event("invoice.created", {**inv, "status": "draft"}, start),
        "invoice.paid": stripe_server.add_event("invoice.paid", inv, start + 1),
        "invoice.payment_succeeded": stripe_server.add_event("invoice.payment_succeeded", inv, start + 1),
        "charge.succeeded": stripe_server.add_event(
            "charge.succeeded", h.charge("ch_1", "cus_1", amount=inv["amount_paid"]), start + 1),
    }
    if schedule:
        events["subscription_schedule.updated"] = stripe_server.add_event(
            "subscription_schedule.updated", schedule, start + 5 * 86400)
    other = h.customer("cus_other", account_id="acc_other")
    for n in range(OTHER_CUSTOMER_EVENTS):
        stripe_server.add_event("customer.updated", other, start + n,
                                previous_attributes={"name": f"Old {n}"})
    deliver(events[delivered])  # the one webhook that arrived
    return events


def _ledger() -> list[tuple]:
    rows = db.session.execute(
        db.select(BillingEvent).order_by(BillingEvent.occurred_at, BillingEvent.stripe_event_id)).scalars()
    return [(r.type, r.to_plan, r.new_amount, r.amount_delta, r.committed_mrr, r.currency) for r in rows]


def _current() -> Subscription:
    return db.session.execute(db.select(Subscription).where(Subscription.account_id == "acc_1",
                                                            Subscription.is_current)).scalar_one()


def _assert_synced(events: dict, delivered: str = "customer.created") -> None:
    """What a sync of the story must leave: every event archived and the account's, the
    recovered ones exactly as Stripe listed them; the ledger, the subscription and the payment to
    the cent; no drift."""
    db.session.expire_all()
    rows = {r.id: r for r in db.session.execute(db.select(StripeEvent)).scalars()}
    assert set(rows) == {e["id"] for e in events.values()}
    for kind, event in events.items():
        row = rows[event["id"]]
        assert json.loads(row.payload) == event, kind  # Stripe's JSON, not the client's objects
        recovered = None if kind == delivered else "events_list"
        assert (row.recovery_source, row.account_id) == (recovered, "acc_1")
    created = json.loads(rows[events["customer.subscription.created"]["id"]].payload)
    assert created["data"]["object"]["items"]["data"][0]["price"]["unit_amount_decimal"] == "4900"
    assert rows[events["charge.succeeded"]["id"]].state == "ignored"
    assert _ledger() == [
        # Informational rows carry the plan the replay seeds from the live subscription.
        ("billing_info_added", "standard", None, None, Decimal("0.00"), "EUR"),
        ("payment_method_updated", "standard", None, None, Decimal("0.00"), "EUR"),
        ("subscription_created", "standard", Decimal("49.00"), Decimal("49.00"), Decimal("49.00"), "EUR"),
        *sorted([("no_op", "standard", None, None, Decimal("49.00"), "EUR")] * 2),
    ]
    sub = _current()
    assert (sub.stripe_subscription_id, sub.status, sub.plan, sub.price_amount, sub.currency) == (
        "sub_1", "active", "standard", Decimal("49.00"), "EUR")
    assert (sub.scheduled_plan, sub.scheduled_price_amount, sub.drift_detected) == (None, None, False)
    tx = db.session.execute(db.select(PaymentTransaction)).scalar_one()
    assert (tx.stripe_invoice_id, tx.status, tx.amount, tx.amount_excluding_tax, tx.tax_amount,
            tx.currency) == (
        "in_1", "succeeded", Decimal("58.31"), Decimal("49.00"), Decimal("9.31"), "EUR")
    assert db.session.execute(db.select(Discrepancy)).scalars().all() == []


# -- the three doors to a sync ------------------------------------------------------------------------
def test_the_page_syncs_an_account_on_current_stripe_data(current_stripe_app, stripe_server, admin_client):
    events = _story(stripe_server)

    resp = admin_client.post("/stripe/accounts/acc_1/sync", headers={**HX, "X-CSRFToken": admin_client.csrf})

    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    run = db.session.execute(db.select(JobRun)).scalar_one()
    assert (run.status, run.error) == ("done", None)
    assert "6 missed Stripe events recovered" in html and "5 billing events appended" in html
    assert "0 discrepancies" in html
    _assert_synced(events)


def test_the_api_syncs_an_account_on_current_stripe_data(current_stripe_app, stripe_server, client):
    events = _story(stripe_server)
    _t, secret = api_services.create_token("ops", "admin")

    resp = client.post("/api/v1/accounts/acc_1/sync", headers={"Authorization": f"Bearer {secret}"})

    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert (resp.get_json()["status"], resp.get_json()["error"]) == ("done", None)
    body = resp.get_json()["result"]
    assert (body["events_recovered"], body["events_appended"], body["drift_detected"],
            body["discrepancies"]) == (6, 5, False, [])
    _assert_synced(events)


def test_the_cli_syncs_an_account_on_current_stripe_data(current_stripe_app, stripe_server, runner):
    events = _story(stripe_server)

    result = runner.invoke(args=["stripe", "sync", "--account", "acc_1"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        "1 accounts synced, 6 missed events recovered, 5 ledger rows appended, 0 with drift, 0 failed.")
    _assert_synced(events)
    again = runner.invoke(args=["stripe", "sync", "--account", "acc_1"])
    assert again.stdout.strip().splitlines()[-1] == (
        "1 accounts synced, 0 missed events recovered, 0 ledger rows appended, 0 with drift, 0 failed.")


# -- the gateway -----------------------------------------------------------------------------------------
def test_the_gateway_answers_the_json_stripe_sent(app, stripe_server):
    events = _story(stripe_server)
    gateway = StripeGateway(fake.API_KEY, stripe_server.url, max_retries=0)

    pulled = gateway.events()

    assert len(pulled) == len(events) + OTHER_CUSTOMER_EVENTS
    assert [e["id"] for e in pulled] == sorted(
        (e["id"] for e in stripe_server.events.values()),
        key=lambda i: (stripe_server.events[i]["created"], i))
    pages = stripe_server.calls("/v1/events")
    assert [(q["limit"], "starting_after" in q) for q in pages] == [("100", False), ("100", True)]
    assert {e["id"]: e for e in pulled} == stripe_server.events
    item = gateway.subscriptions("cus_1")[0]["items"]["data"][0]
    assert item["price"] == STANDARD and item["price"]["unit_amount_decimal"] == "4900"
    line = gateway.invoices("cus_1")[0]["lines"]["data"][0]
    assert (line["pricing"]["unit_amount_decimal"], line["quantity_decimal"]) == ("4900", "1")
    assert gateway.price("price_standard") == STANDARD
    assert gateway.price("price_gone") is None
    assert json.loads(json.dumps(pulled)) == pulled
    # The other reads, each with a current-shape object (credit note lines carry decimals too).
    note = stripe_server.add(h.credit_note("cn_1", "cus_1", "in_1", total=1000, created=days_ago(1)))
    refund = stripe_server.add({**h.fixture("refund"), "id": "re_1", "charge": "ch_1", "amount": 1000})
    schedule = stripe_server.add(_downgrade())
    assert gateway.credit_notes("cus_1") == [note]
    assert note["lines"]["data"][1]["unit_amount_decimal"] == "500"
    assert gateway.refunds("ch_1") == [refund] and gateway.refunds("ch_other") == []
    assert [c["id"] for c in gateway.charges("cus_1")] == ["ch_1"]
    assert gateway.customer("cus_1")["metadata"] == {"account_id": "acc_1"}
    assert gateway.customer("cus_gone") is None
    assert [c["id"] for c in gateway.customers()] == ["cus_1"]
    assert gateway.subscription_schedule("sub_sched_1") == schedule


# -- schedules -------------------------------------------------------------------------------------------
def _downgrade(price_ids=("price_premium", "price_standard")) -> dict:
    return h.schedule("sub_sched_1", "cus_1", "sub_1", list(price_ids))


def test_a_scheduled_downgrade_to_a_known_price_is_no_drift(current_stripe_app, stripe_server):
    """Stripe's schedules name prices by id: the drift check reads them with the catalog."""
    db.session.add(Plan(price_id="price_standard", plan_key="standard", name="Standard",
                        monthly_amount=Decimal("49.00"), interval="month", currency="EUR"))
    db.session.commit()
    _story(stripe_server, PREMIUM, schedule=_downgrade())

    result = sync.sync_account("acc_1")

    assert result.discrepancies == []
    sub = _current()
    assert (sub.plan, sub.price_amount, sub.scheduled_plan, sub.scheduled_price_amount,
            sub.drift_detected) == (
        "premium", Decimal("149.00"), "standard", Decimal("49.00"), False)
    assert stripe_server.calls("/v1/prices/price_standard") == []  # known: not fetched


def test_a_schedule_naming_an_unseen_price_fetches_it_and_keeps_committed_mrr(current_stripe_app,
                                                                                stripe_server):
    stripe_server.add(STANDARD)  # at Stripe, but in no event Backoffice has seen
    _story(stripe_server, PREMIUM, schedule=_downgrade())

    result = sync.sync_account("acc_1")

    plan = db.session.get(Plan, "price_standard")
    assert (plan.plan_key, plan.monthly_amount, plan.currency) == ("standard", Decimal("49.00"), "EUR")
    scheduled = db.session.execute(db.select(BillingEvent).where(
        BillingEvent.type == "subscription_downgrade_scheduled")).scalar_one()
    assert (scheduled.from_plan, scheduled.to_plan, scheduled.previous_amount, scheduled.new_amount,
            scheduled.amount_delta, scheduled.committed_mrr) == (
        "premium", "standard", Decimal("149.00"), Decimal("49.00"), Decimal("-100.00"), Decimal("49.00"))
    sub = _current()
    assert (sub.scheduled_plan, sub.scheduled_price_amount) == ("standard", Decimal("49.00"))
    assert result.discrepancies == []
    assert len(stripe_server.calls("/v1/prices/price_standard")) == 1


def test_the_drift_pass_reads_a_schedule_naming_an_unseen_price_without_writing_it(current_stripe_app,
                                                                                    stripe_server):
    """Detect mode fetches the price for its check and writes no plan (a sync will)."""
    _story(stripe_server, PREMIUM)
    sync.sync_account("acc_1")
    stripe_server.add(STANDARD)
    stripe_server.add(_downgrade())
    stripe_server.add(h.subscription("sub_1", "cus_1", PREMIUM, created=days_ago(10), schedule="sub_sched_1",
                                     period_end=days_ago(10) + 30 * 86400, latest_invoice="in_1"))

    assert drift.check_subscription(_current().id) == "processed"

    assert db.session.execute(db.select(Discrepancy)).scalars().all() == []
    assert db.session.get(Plan, "price_standard") is None
    assert len(stripe_server.calls("/v1/prices/price_standard")) == 1


# -- the drift pass ----------------------------------------------------------------------------------------
def test_the_drift_pass_checks_an_account_with_payments_but_no_subscription_row(current_stripe_app,
                                                                                 stripe_server):
    """Its subscription events were missed: the pass still checks it, and MissingEvent shows."""
    from backoffice.stripe import tasks

    make_account("acc_1", "cus_1")
    paid = days_ago(2)
    inv = stripe_server.add(_invoice("in_1", STANDARD, created=paid, billing_reason="subscription_cycle"))
    stripe_server.add_event("invoice.paid", inv, paid)
    db.session.add(PaymentTransaction(
        account_id="acc_1", stripe_invoice_id="in_1", status="succeeded",
        date=datetime.fromtimestamp(paid, UTC), currency="EUR", amount=Decimal("58.31"),
        amount_excluding_tax=Decimal("49.00"), tax_amount=Decimal("9.31"), invoice_total=Decimal("58.31")))
    db.session.commit()

    run = tasks.run_drift_pass()

    assert (run.total, run.processed, run.skipped, run.failed) == (1, 1, 0, 0)
    found = db.session.execute(db.select(Discrepancy)).scalars().all()
    assert [(d.kind, d.severity, d.message) for d in found] == [
        ("MissingEvent", "warning",
         "1 succeeded payment(s) but no billing events: the ledger misses this account's history.")]
    sub = _current()
    assert (sub.stripe_subscription_id, sub.plan, sub.price_amount, sub.drift_detected) == (
        None, "free", Decimal("0.00"), True)
    assert sub.drift_checked_at is not None and found[0].subscription_id == sub.id
    assert tasks.run_drift_pass().total == 0  # checked: due again in 23 h


# -- events that waited for their customer ---------------------------------------------------------------
def test_a_sync_replays_the_events_that_waited_for_their_customer(current_stripe_app, stripe_server, runner):
    """customer.created was missed: the subscription's webhook waited, pending, for the customer,
    which the platform then linked to its account (`PUT /api/v1/accounts/<id>` is tested with
    the webhook); a sync of the account replays it."""
    events = _story(stripe_server, delivered="customer.subscription.created", linked=False)
    waiting = db.session.get(StripeEvent, events["customer.subscription.created"]["id"])
    assert (waiting.account_id, waiting.state) == (None, "pending")
    make_account("acc_1", "cus_1")

    result = sync.sync_account("acc_1")

    assert (result.events_recovered, result.events_appended, result.discrepancies) == (6, 5, [])
    _assert_synced(events, delivered="customer.subscription.created")


def test_syncing_all_accounts_first_fetches_the_customers_events_wait_for(current_stripe_app, stripe_server,
                                                                          runner):
    """No account knows the customer yet: `stripe sync --all` fetches it from Stripe, which
    links (or creates) its account, and syncs that account."""
    events = _story(stripe_server, delivered="customer.subscription.created", linked=False)

    result = runner.invoke(args=["stripe", "sync", "--all"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        "1 accounts synced, 6 missed events recovered, 5 ledger rows appended, 0 with drift, 0 failed.")
    account = db.session.get(Account, "acc_1")
    assert (account.name, account.email, account.stripe_customer_id) == (
        "Acme AG", "billing@acme.test", "cus_1")
    _assert_synced(events, delivered="customer.subscription.created")


# -- baseline ----------------------------------------------------------------------------------------------
def test_the_baseline_writes_history_from_current_stripe_data(current_stripe_app, stripe_server, runner):
    """Resources older than Stripe's 30-day window become baseline events, Stripe's JSON inside."""
    make_account("acc_1", "cus_1")
    start = days_ago(200)
    stripe_server.add(h.subscription("sub_1", "cus_1", STANDARD, created=start,
                                     period_end=days_ago(5) + 30 * 86400))
    stripe_server.add(_invoice("in_1", STANDARD, created=start + 1))

    result = runner.invoke(args=["stripe", "baseline"])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        "1 accounts baselined: 2 baseline events, 1 baseline ledger rows; Stripe unavailable for 0.")
    rows = db.session.execute(db.select(StripeEvent).order_by(StripeEvent.id)).scalars().all()
    assert [(r.id, r.recovery_source, r.state) for r in rows] == [
        ("baseline:customer.subscription.created:sub_1", "baseline", "processed"),
        ("baseline:invoice.created:in_1", "baseline", "processed"),
    ]
    price = json.loads(rows[0].payload)["data"]["object"]["items"]["data"][0]["price"]
    assert price == STANDARD and price["unit_amount_decimal"] == "4900"
    assert _ledger() == [("subscription_created", "standard", Decimal("49.00"), Decimal("49.00"),
                          Decimal("49.00"), "EUR")]
