"""Integration against a real fake Stripe: localstripe (a separate process) sends its signed
webhooks over loopback to the live app; the test drives localstripe with the official `stripe`
client and reads archive, ledger and projections from the app's database.

What localstripe 1.15 emits for a subscription's life (asserted below), all with API version
2017-08-15, in the second of the API call that caused it:
  customer create            customer.created
  product / plan create      product.created (ignored by Backoffice), plan.created
  default payment method     customer.updated (no previous_attributes)
  subscription create        invoice.created, payment_intent.succeeded (ignored),
                             invoice.payment_succeeded (billing_reason null), customer.subscription.created
  subscription cancel        customer.subscription.deleted
and nothing at all for a payment-method attach, a plan change, a cancel-at-period-end toggle or a
refund. `test_story_completed_with_the_events_localstripe_does_not_send` adds those events the
way Stripe sends them, built from localstripe's own objects right after each change, signed and
posted to the same endpoint.

localstripe's events of one API call share a second and have random ids, so the ledger order
(Stripe's created, then id) is computed from the ids it chose; the expected rows are computed by
walking that order. Deliveries arrive in no guaranteed order: the tests assert the final state.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import stripe

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Plan, StripeEvent, Subscription
from tests.integration.conftest import WEBHOOK_SECRET
from tests.stripe.conftest import API_KEY, FakeStripe

API_VERSION = "2017-08-15"
WAIT_SECONDS = 20.0  # bounded wait for webhooks (localstripe sends ~1 s after each event)
ACCOUNT_ID = "acct-live-1"
BASIC, PRO = Decimal("49.00"), Decimal("149.00")
ZERO = Decimal("0.00")

# What localstripe emits for `_localstripe_story` (a multiset: its order within a second is random).
LOCALSTRIPE_STORY_TYPES = Counter({
    "customer.created": 1, "product.created": 2, "plan.created": 2, "customer.updated": 1,
    "invoice.created": 1, "payment_intent.succeeded": 1, "invoice.payment_succeeded": 1,
    "customer.subscription.created": 1, "customer.subscription.deleted": 1,
})
IGNORED_TYPES = {"product.created", "payment_intent.succeeded"}
CATALOG_TYPES = {"plan.created", "product.created"}


# --------------------------------------------------------------------------------------------
# Driving localstripe
# --------------------------------------------------------------------------------------------
def next_second() -> None:
    """Waits into a later wall-clock second: localstripe stamps `created` in whole seconds, and
    each step of a story must sort after the previous one."""
    start = int(time.time())
    time.sleep(0.3)
    while int(time.time()) <= start:
        time.sleep(0.05)


@dataclass
class Story:
    customer_id: str
    subscription_id: str
    invoice: dict  # the paid first invoice, as localstripe holds it at the end
    extra_events: list[dict]  # events posted by the test (what localstripe does not send)


def post_event(live_app: str, event: dict) -> requests.Response:
    """Signs an event envelope like Stripe does and posts it to the live webhook endpoint."""
    body = json.dumps(event, indent=2, sort_keys=True)
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
    response = requests.post(f"{live_app}/stripe/webhook", data=body.encode(), timeout=10,
                             headers={"Stripe-Signature": header, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response


def envelope(event_type: str, obj: dict, previous: dict | None = None) -> dict:
    """A v1 event envelope in localstripe's API version, stamped now."""
    data: dict = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": f"evt_bo{secrets.token_hex(8)}", "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "livemode": False, "type": event_type, "data": data}


def localstripe_story(ls: FakeStripe, live_app: str | None = None) -> Story:
    """Customer (metadata.account_id), plans basic 49 and pro 149 EUR, card, subscription on basic;
    then, each in a later second: upgrade to pro, cancel at period end, undo it and refund the
    paid invoice, cancel. With `live_app`, the events localstripe does not send are posted there
    right after the call that Stripe would send them for."""
    v1 = ls.client.v1
    extra: list[dict] = []

    def send(event_type: str, obj: dict, previous: dict | None = None) -> None:
        if live_app is not None:
            if event_type != "payment_method.attached":
                settle(ls.url)  # what localstripe sent for the earlier steps has arrived
            event = envelope(event_type, obj, previous)
            post_event(live_app, event)
            extra.append(event)

    customer = ls.customer(ACCOUNT_ID, name="Live GmbH")
    ls.plan("basic", 4900)
    ls.plan("pro", 14900)
    pm = v1.payment_methods.attach("pm_card_visa", {"customer": customer}).to_dict()
    send("payment_method.attached", pm)
    v1.customers.update(customer, {"invoice_settings": {"default_payment_method": pm["id"]}})
    sub = v1.subscriptions.create({"customer": customer, "items": [{"plan": "basic"}]}).to_dict()
    assert sub["status"] == "active"

    next_second()
    upgraded = ls.change_plan(sub, "pro")
    assert [i["plan"]["id"] for i in upgraded["items"]["data"]] == ["pro"]
    send("customer.subscription.updated", upgraded, {"items": sub["items"], "plan": sub["plan"]})

    next_second()
    cancelling = v1.subscriptions.update(sub["id"], {"cancel_at_period_end": True}).to_dict()
    assert cancelling["cancel_at_period_end"] is True
    send("customer.subscription.updated", cancelling, {"cancel_at_period_end": False})

    next_second()
    reactivated = v1.subscriptions.update(sub["id"], {"cancel_at_period_end": False}).to_dict()
    send("customer.subscription.updated", reactivated, {"cancel_at_period_end": True})
    invoices = [i.to_dict() for i in v1.invoices.list({"customer": customer}).data]
    assert [(i["status"], i["amount_paid"]) for i in invoices] == [("paid", 4900)]
    charge_id = invoices[0]["charge"]["id"]  # localstripe expands the charge on an invoice
    refund = v1.refunds.create({"charge": charge_id}).to_dict()
    assert (refund["amount"], refund["status"]) == (4900, "succeeded")
    send("charge.refunded", v1.charges.retrieve(charge_id).to_dict())

    next_second()
    cancelled = v1.subscriptions.cancel(sub["id"]).to_dict()
    assert cancelled["status"] == "canceled"
    return Story(customer, sub["id"], invoices[0], extra)


def settle(url: str) -> None:
    """Waits (bounded) until the app has processed every event localstripe holds so far, so an
    event the test posts is never older than one still in flight (see the out-of-order test below)."""
    wait_until_processed({e["id"] for e in localstripe_events(url)})


def localstripe_events(url: str) -> list[dict]:
    """Every event localstripe holds, as its API answers them."""
    events: list[dict] = []
    params: dict = {"limit": 100}
    while True:
        page = requests.get(f"{url}/v1/events", params=params, timeout=10,
                            headers={"Authorization": f"Bearer {API_KEY}"})
        page.raise_for_status()
        body = page.json()
        events.extend(body["data"])
        if not body.get("has_more"):
            return events
        params["starting_after"] = body["data"][-1]["id"]


def settled_localstripe_events(url: str, expected: int) -> list[dict]:
    """localstripe's events once it holds `expected` of them (bounded), plus the second in which
    its last webhook goes out."""
    deadline = time.monotonic() + WAIT_SECONDS
    while len(events := localstripe_events(url)) < expected:
        if time.monotonic() > deadline:
            pytest.fail(f"localstripe holds {len(events)} events, expected {expected}")
        time.sleep(0.1)
    return events


# --------------------------------------------------------------------------------------------
# Reading the app
# --------------------------------------------------------------------------------------------
def wait_until_processed(event_ids: set[str]) -> dict[str, StripeEvent]:
    """Polls the archive (bounded) until every id is stored and none is pending any more."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = db.session.execute(
            db.select(StripeEvent).where(StripeEvent.id.in_(sorted(event_ids)))).scalars().all()
        if {r.id for r in rows if r.state != "pending"} == event_ids:
            return {r.id: r for r in rows}
        db.session.remove()  # ends the read transaction: the server's threads are writing
        if time.monotonic() > deadline:
            missing = sorted(event_ids - {r.id for r in rows})
            pending = sorted(r.id for r in rows if r.state == "pending")
            pytest.fail(f"after {WAIT_SECONDS} s: not archived {missing}, still pending {pending}")
        time.sleep(0.2)


def ledger_rows() -> list[tuple]:
    rows = db.session.execute(
        db.select(BillingEvent).where(BillingEvent.current()).order_by(BillingEvent.occurred_at, BillingEvent.stripe_event_id)).scalars()
    return [(r.stripe_event_id, r.type, r.from_plan, r.to_plan, r.previous_amount, r.new_amount,
             r.amount_delta, r.committed_mrr, r.currency, r.occurred_at, r.account_id) for r in rows]


def assert_ledger(expected: list[tuple]) -> None:
    """The ledger equals `expected`. Rows that move no MRR are compared without their context
    columns (from_plan, to_plan, committed_mrr, currency): for localstripe's sibling events of one
    second those depend on which arrived first (see the out-of-order test below)."""
    actual = ledger_rows()
    assert [r[0] for r in actual] == [r[0] for r in expected]
    for got, want in zip(actual, expected, strict=True):
        if want[4] is None:
            got, want = got[:2] + got[4:7] + got[9:], want[:2] + want[4:7] + want[9:]
        assert got == want


def expected_ledger(events: list[dict]) -> list[tuple]:
    """DOMAIN §3 walked over the events in Stripe's order (created, then id)."""
    plan, price, committed = "free", ZERO, ZERO
    rows = []
    for e in sorted(events, key=lambda e: (e["created"], e["id"])):
        obj, previous = e["data"]["object"], e["data"].get("previous_attributes") or {}
        before = (plan, committed)
        if e["type"] == "customer.created":
            kind = "billing_info_added"
        elif e["type"] == "payment_method.attached":
            kind = "payment_method_updated"
        elif e["type"] in ("customer.updated", "invoice.payment_succeeded"):
            kind = "no_op"  # no billing fields touched; a first invoice is not a renewal
        elif e["type"] == "charge.refunded":
            kind = "payment_refunded"
        elif e["type"] == "customer.subscription.created":
            kind, plan, price = "subscription_created", "basic", BASIC
            committed = price
        elif e["type"] == "customer.subscription.updated" and "plan" in previous:
            kind, plan, price = "subscription_upgraded", obj["plan"]["id"], Decimal(obj["plan"]["amount"]) / 100
            committed = price
        elif e["type"] == "customer.subscription.updated" and obj["cancel_at_period_end"]:
            kind, committed = "subscription_cancelled", ZERO
        elif e["type"] == "customer.subscription.updated":
            kind, committed = "subscription_reactivated", price
        elif e["type"] == "customer.subscription.deleted":
            kind, plan, price, committed = "subscription_immediately_cancelled", "free", ZERO, ZERO
        else:
            continue  # archived, not a ledger row
        moved = kind.startswith("subscription_")
        rows.append((e["id"], kind, before[0], plan,
                     before[1] if moved else None, committed if moved else None,
                     committed - before[1] if moved else None, committed, "EUR",
                     datetime.fromtimestamp(e["created"], UTC), ACCOUNT_ID))
    return rows


def assert_archived(events: list[dict], rows: dict[str, StripeEvent], customer_id: str) -> None:
    for e in events:
        row = rows[e["id"]]
        assert (row.type, row.api_version, row.stripe_created_at) == (
            e["type"], API_VERSION, datetime.fromtimestamp(e["created"], UTC))
        assert row.payload_sha256 == hashlib.sha256(row.payload.encode()).hexdigest()
        assert json.loads(row.payload) == e  # the body as sent, equal to what the API lists
        if e["type"] in CATALOG_TYPES:
            assert (row.customer_id, row.account_id) == (None, None)
        else:
            assert (row.customer_id, row.account_id) == (customer_id, ACCOUNT_ID)
        assert row.state == ("ignored" if e["type"] in IGNORED_TYPES else "processed"), (e["type"], row.error)
        assert row.error == ("unrecognised event type" if e["type"] in IGNORED_TYPES else None)


def assert_account_and_catalog(customer_id: str) -> None:
    account = db.session.get(Account, ACCOUNT_ID)
    assert (account.stripe_customer_id, account.name, account.billing_email) == (
        customer_id, "Live GmbH", f"billing@{ACCOUNT_ID}.test")
    assert db.session.execute(db.select(db.func.count()).select_from(Account)).scalar_one() == 1
    plans = db.session.execute(db.select(Plan).order_by(Plan.monthly_amount)).scalars().all()
    assert [(p.price_id, p.plan_key, p.monthly_amount, p.interval, p.currency) for p in plans] == [
        ("basic", "basic", BASIC, "month", "EUR"), ("pro", "pro", PRO, "month", "EUR")]


def subscription_projection() -> tuple:
    sub = db.session.execute(db.select(Subscription)).scalar_one()  # one subscription in the DB
    return (sub.account_id, sub.stripe_subscription_id, sub.is_current, sub.status, sub.plan,
            sub.price_amount, sub.cancel_at_period_end)


def payment_transaction(story: Story) -> PaymentTransaction:
    pt = db.session.execute(db.select(PaymentTransaction)).scalar_one()
    assert (pt.account_id, pt.stripe_invoice_id, pt.status, pt.currency, pt.plan) == (
        ACCOUNT_ID, story.invoice["id"], "succeeded", "EUR", "basic")
    assert (pt.amount, pt.amount_excluding_tax, pt.tax_amount, pt.invoice_total, pt.amount_from_credit) == (
        BASIC, BASIC, ZERO, BASIC, ZERO)
    assert pt.date == datetime.fromtimestamp(story.invoice["status_transitions"]["paid_at"], UTC)
    return pt


# --------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------
def test_localstripe_webhooks_fill_archive_ledger_and_projections(stripe_webhook, live_app):
    story = localstripe_story(stripe_webhook)
    events = settled_localstripe_events(stripe_webhook.url, sum(LOCALSTRIPE_STORY_TYPES.values()))

    assert Counter(e["type"] for e in events) == LOCALSTRIPE_STORY_TYPES
    assert {e["api_version"] for e in events} == {API_VERSION}
    rows = wait_until_processed({e["id"] for e in events})
    assert_archived(events, rows, story.customer_id)
    assert_account_and_catalog(story.customer_id)

    # localstripe sent no update for the upgrade: the ledger sees basic 49 until the deletion.
    expected = expected_ledger(events)
    assert [r[1] for r in expected if r[1] != "no_op" and r[1] != "billing_info_added"] == [
        "subscription_created", "subscription_immediately_cancelled"]
    assert_ledger(expected)
    assert subscription_projection() == (ACCOUNT_ID, story.subscription_id, True, "canceled", "free", ZERO, False)
    pt = payment_transaction(story)
    assert (pt.refunded_at, pt.refund_amount) == (None, None)  # no charge.refunded from localstripe


def test_story_completed_with_the_events_localstripe_does_not_send(stripe_webhook, live_app):
    story = localstripe_story(stripe_webhook, live_app)
    events = settled_localstripe_events(stripe_webhook.url, sum(LOCALSTRIPE_STORY_TYPES.values()))
    everything = events + story.extra_events
    assert [e["type"] for e in story.extra_events] == [
        "payment_method.attached", "customer.subscription.updated", "customer.subscription.updated",
        "customer.subscription.updated", "charge.refunded"]

    rows = wait_until_processed({e["id"] for e in everything})
    assert_archived(everything, rows, story.customer_id)
    assert_account_and_catalog(story.customer_id)

    expected = expected_ledger(everything)
    moves = [(r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in expected if r[4] is not None]
    assert moves == [
        ("subscription_created", "free", "basic", ZERO, BASIC, BASIC, BASIC),
        ("subscription_upgraded", "basic", "pro", BASIC, PRO, Decimal("100.00"), PRO),
        ("subscription_cancelled", "pro", "pro", PRO, ZERO, -PRO, ZERO),
        ("subscription_reactivated", "pro", "pro", ZERO, PRO, PRO, PRO),
        ("subscription_immediately_cancelled", "pro", "free", PRO, ZERO, -PRO, ZERO),
    ]
    assert_ledger(expected)
    assert subscription_projection() == (ACCOUNT_ID, story.subscription_id, True, "canceled", "free", ZERO, False)
    pt = payment_transaction(story)
    refunded = next(e for e in story.extra_events if e["type"] == "charge.refunded")
    assert (pt.refunded_at, pt.refund_amount) == (datetime.fromtimestamp(refunded["created"], UTC), BASIC)
    assert pt.stripe_charge_id == story.invoice["charge"]["id"]


def test_redelivered_localstripe_events_change_nothing(stripe_webhook, live_app):
    """Stripe delivers at least once: every event posted again answers 200 "duplicate" and
    adds no archive row, no ledger row."""
    localstripe_story(stripe_webhook)
    events = settled_localstripe_events(stripe_webhook.url, sum(LOCALSTRIPE_STORY_TYPES.values()))
    wait_until_processed({e["id"] for e in events})
    ledger_before = ledger_rows()
    db.session.remove()

    for event in sorted(events, key=lambda e: (e["created"], e["id"]), reverse=True):
        assert post_event(live_app, event).json()["outcome"] == "duplicate"

    count = db.session.execute(db.select(db.func.count()).select_from(StripeEvent)).scalar_one()
    assert count == len(events)
    assert ledger_rows() == ledger_before
    assert_ledger(expected_ledger(events))


def test_out_of_order_delivery_gives_the_ledger_of_stripes_order(fake_stripe, live_app):
    """No webhook: localstripe's events are posted by the test, the deletion (newest) first, then
    the customer (which releases both to the replayer), then the rest in Stripe's order. The
    subscription.created then arrives after its own deletion was replayed."""
    from backoffice.ledger import services

    story = localstripe_story(fake_stripe)
    events = sorted(settled_localstripe_events(fake_stripe.url, sum(LOCALSTRIPE_STORY_TYPES.values())),
                    key=lambda e: (e["created"], e["id"]))
    first = [next(e for e in events if e["type"] == t)
             for t in ("customer.subscription.deleted", "customer.created")]
    for event in first + [e for e in events if e not in first]:
        post_event(live_app, event)
    wait_until_processed({e["id"] for e in events})

    assert subscription_projection() == (ACCOUNT_ID, story.subscription_id, True, "canceled", "free", ZERO, False)
    # The deletion, replayed before its subscription existed, first moved 0 -> 0. When the late
    # events arrived the account's whole archive was replayed: the current ledger is what delivery
    # in Stripe's order writes, and the early deletion row is kept, superseded by its correction.
    assert_ledger(expected_ledger(events))
    deletion = first[0]["id"]
    stored = db.session.execute(db.select(BillingEvent).where(BillingEvent.stripe_event_id == deletion)
                                .order_by(BillingEvent.id)).scalars().all()
    assert [(r.amount_delta, r.superseded_at is not None) for r in stored] == [(ZERO, True), (-BASIC, False)]
    assert stored[0].superseded_by == stored[1].id
    # Nothing is left for `ledger rebuild` to correct.
    report = services.rebuild([ACCOUNT_ID])
    assert (report.differences, report.rows_corrected) == ([], 0)


def test_concurrent_deliveries_give_the_same_result(threaded_stripe_webhook, threaded_live_app):
    story = localstripe_story(threaded_stripe_webhook)
    events = settled_localstripe_events(threaded_stripe_webhook.url, sum(LOCALSTRIPE_STORY_TYPES.values()))
    rows = wait_until_processed({e["id"] for e in events})
    assert_archived(events, rows, story.customer_id)
    assert_account_and_catalog(story.customer_id)
    assert_ledger(expected_ledger(events))
    assert subscription_projection() == (ACCOUNT_ID, story.subscription_id, True, "canceled", "free", ZERO, False)
    payment_transaction(story)
