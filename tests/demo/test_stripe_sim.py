"""The Stripe simulator: deterministic, signed, current-API-shaped events for each life story,
and what the real classifier makes of them."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import stripe

from backoffice.demo import stripe_sim as sim
from backoffice.ledger.classifier import Catalog, CatalogPrice, SubscriptionState, classify

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = NOW - timedelta(days=400)
SECRET = "whsec_test_simulator"
PROFILE = sim.CustomerProfile(
    id="acc_demo", name="Alpine Data AG", email="hello@alpinedata.example", country="CH",
    created_at=NOW - timedelta(days=500), billing_name="Alpine Data AG",
    billing_email="billing@alpinedata.example", line1="Bahnhofstrasse 12", postal_code="8001",
    city="Zürich", vat_id="CHE-123.456.789 MWST", language="de",
)
PRICES = sim.catalog("EUR")


def story(kind: str, seed: str = "test") -> list[dict]:
    return sim.build_story(kind, PROFILE, random.Random(f"{seed}:{kind}"), PRICES, START, NOW)


def of_type(events: list[dict], event_type: str) -> list[dict]:
    return [e for e in events if e["type"] == event_type]


@pytest.mark.parametrize("kind", sim.STORIES)
def test_story_is_deterministic_chronological_and_bounded(kind):
    events = story(kind)
    assert [sim.encode(e) for e in events] == [sim.encode(e) for e in story(kind)]
    assert [e["id"] for e in events] != [e["id"] for e in story(kind, seed="other")]
    created = [e["created"] for e in events]
    assert created == sorted(created) and len(set(created)) == len(created)  # strictly increasing
    assert created[0] >= int(START.timestamp()) and created[-1] <= int(NOW.timestamp())
    assert len({e["id"] for e in events}) == len(events)
    assert {e["api_version"] for e in events} == {"2026-10-28.endive"}
    assert all(e["object"] == "event" and e["livemode"] is False for e in events)
    customer = events[0]["data"]["object"]
    assert events[0]["type"] == "customer.created"
    assert customer["metadata"] == {"account_id": "acc_demo"}


def test_signature_verifies_with_the_official_client():
    event = story("steady_monthly")[3]
    body = sim.encode(event)
    header = sim.signature_header(body, SECRET)
    verified = stripe.Webhook.construct_event(body, header, SECRET)
    assert verified.id == event["id"]
    assert sim.signature_header(body, SECRET, timestamp=1_700_000_000) == \
        stripe.WebhookSignature.generate_signature_header(body, SECRET, timestamp=1_700_000_000)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, sim.signature_header(body, "whsec_wrong"), SECRET)


def test_subscription_shape_and_upgrade_previous_attributes():
    events = story("upgrade")
    created = of_type(events, "customer.subscription.created")[0]["data"]["object"]
    item = created["items"]["data"][0]
    assert item["price"]["id"] == "price_standard_monthly_eur"
    assert item["price"]["unit_amount"] == 4900 and item["price"]["currency"] == "eur"
    assert item["price"]["recurring"]["interval"] == "month"
    assert item["price"]["product"] == "prod_standard"
    assert (item["current_period_end"] - item["current_period_start"]) // 86400 in (28, 29, 30, 31)
    assert created["metadata"] == {"account_id": "acc_demo"}
    upgrades = [e for e in of_type(events, "customer.subscription.updated")
                if "items" in e["data"]["previous_attributes"]
                and e["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"]
                != e["data"]["object"]["items"]["data"][0]["price"]["id"]]
    assert len(upgrades) == 1
    upgrade = upgrades[0]["data"]
    assert upgrade["previous_attributes"]["items"]["data"][0]["price"]["unit_amount"] == 4900
    assert upgrade["object"]["items"]["data"][0]["price"]["unit_amount"] == 14900
    proration = [e["data"]["object"] for e in of_type(events, "invoice.paid")
                 if e["data"]["object"]["billing_reason"] == "subscription_update"]
    assert len(proration) == 1 and proration[0]["lines"]["data"][0]["amount"] < 0


def test_invoice_shape_with_swiss_vat():
    invoice = of_type(story("steady_monthly"), "invoice.paid")[0]["data"]["object"]
    assert invoice["parent"]["subscription_details"]["subscription"].startswith("sub_1")
    assert invoice["billing_reason"] == "subscription_create"
    assert invoice["attempt_count"] == 1 and invoice["status"] == "paid"
    assert invoice["total_excluding_tax"] == 4900
    assert invoice["total_taxes"][0]["amount"] == 397  # 8.1 % of 49.00, half up
    assert invoice["total"] == invoice["amount_paid"] == 5297
    assert invoice["customer_tax_ids"] == [{"type": "ch_vat", "value": "CHE-123.456.789 MWST"}]


def test_payment_failures_retry_and_recover():
    events = story("payment_recovered")
    failed = of_type(events, "invoice.payment_failed")
    assert [f["data"]["object"]["attempt_count"] for f in failed] == [1]
    invoice_id = failed[0]["data"]["object"]["id"]
    paid = [e["data"]["object"] for e in of_type(events, "invoice.paid") if e["data"]["object"]["id"] == invoice_id]
    assert [p["attempt_count"] for p in paid] == [2]
    statuses = [(e["data"]["previous_attributes"].get("status"), e["data"]["object"]["status"])
                for e in of_type(events, "customer.subscription.updated")
                if "status" in e["data"]["previous_attributes"]]
    assert statuses == [("active", "past_due"), ("past_due", "active")]


def test_suspension_after_failed_payments():
    events = story("suspended")
    assert [e["data"]["object"]["attempt_count"] for e in of_type(events, "invoice.payment_failed")] == [1, 2, 3, 4]
    deleted = of_type(events, "customer.subscription.deleted")[0]["data"]["object"]
    assert deleted["cancellation_details"]["reason"] == "payment_failed"
    assert deleted["status"] == "canceled"
    assert "previous_attributes" not in of_type(events, "customer.subscription.deleted")[0]["data"]


def test_refund_credit_note_and_charge():
    events = story("refund")
    note = of_type(events, "credit_note.created")[0]["data"]["object"]
    charge_event = of_type(events, "charge.refunded")[0]["data"]
    charge = charge_event["object"]
    assert note["refunds"][0]["refund"] == charge["refunds"]["data"][0]["id"]
    assert note["lines"]["data"][0]["type"] == "invoice_line_item"
    assert note["total"] == charge["amount_refunded"] == note["subtotal"] + note["total_taxes"][0]["amount"]
    assert charge["refunded"] is (charge["amount_refunded"] == charge["amount"])
    assert charge_event["previous_attributes"]["amount_refunded"] == 0
    paid = next(e["data"]["object"] for e in of_type(events, "invoice.paid")
                if e["data"]["object"]["id"] == note["invoice"])
    assert paid["payments"]["data"][0]["payment"]["payment_intent"] == charge["payment_intent"]


def test_schedule_downgrade_phases_and_release():
    events = story("downgrade_cancelled")
    updated = of_type(events, "subscription_schedule.updated")[0]["data"]
    phases = updated["object"]["phases"]
    assert [p["items"][0]["price"] for p in phases] == ["price_business_monthly_eur", "price_premium_monthly_eur"]
    assert len(updated["previous_attributes"]["phases"]) == 1
    released = of_type(events, "subscription_schedule.released")[0]["data"]["object"]
    assert released["status"] == "released" and released["released_subscription"].startswith("sub_1")


def test_card_and_billing_updates():
    events = story("free_with_card")
    assert [e["type"] for e in events] == ["customer.created", "payment_method.attached", "customer.updated",
                                           "customer.updated"]
    pm = events[1]["data"]["object"]
    assert pm["customer"] == events[0]["data"]["object"]["id"] and pm["type"] == "card"
    assert events[2]["data"]["previous_attributes"] == {"invoice_settings": {"default_payment_method": None}}
    assert set(events[3]["data"]["previous_attributes"]) <= {"address", "email"}


def test_yearly_prices_are_ten_months():
    assert PRICES["premium_year"].unit_amount == 149000
    assert PRICES["premium_year"].monthly_amount == Decimal("124.1667")
    assert [p.id for p in PRICES.values()][:2] == ["price_standard_monthly_eur", "price_standard_yearly_eur"]


CATALOG = Catalog.of([CatalogPrice(p.id, p.product, p.name, p.monthly_amount, p.currency.upper())
                      for p in PRICES.values()])
MOVES = {"subscription_created", "subscription_upgraded", "subscription_downgrade_scheduled",
         "subscription_downgrade_cancelled", "subscription_downgraded", "subscription_cancelled",
         "subscription_reactivated", "subscription_expired", "subscription_immediately_cancelled",
         "subscription_suspended", "subscription_past_due", "payment_failed", "payment_recovered",
         "payment_refunded"}
EXPECTED = {
    "steady_monthly": ["subscription_created"],
    "steady_yearly": ["subscription_created"],
    "trial_to_paid": ["subscription_created"],
    "trial_abandoned": ["subscription_immediately_cancelled"],
    "upgrade": ["subscription_created", "subscription_upgraded"],
    "scheduled_downgrade": ["subscription_created", "subscription_downgrade_scheduled", "subscription_downgraded"],
    "downgrade_cancelled": ["subscription_created", "subscription_downgrade_scheduled",
                            "subscription_downgrade_cancelled"],
    "cancel_reactivate": ["subscription_created", "subscription_cancelled", "subscription_reactivated"],
    "cancel_expire": ["subscription_created", "subscription_cancelled", "subscription_expired"],
    "immediate_cancel": ["subscription_created", "subscription_immediately_cancelled", "payment_refunded"],
    "payment_recovered": ["subscription_created", "payment_failed", "subscription_past_due", "payment_recovered"],
    "suspended": ["subscription_created", "payment_failed", "subscription_past_due", "payment_failed",
                  "payment_failed", "payment_failed", "subscription_suspended"],
    "refund": ["subscription_created", "payment_refunded"],
    "free_with_card": [],
}


@pytest.mark.parametrize("kind", sim.STORIES)
def test_classifier_reads_each_story_as_intended(kind):
    events = story(kind)
    result = classify(events, SubscriptionState(), CATALOG)
    assert result.discrepancies == () and result.skipped_event_ids == ()
    assert [r.type.value for r in result.rows if r.type.value in MOVES] == EXPECTED[kind]
    types = [r.type.value for r in result.rows]
    assert types[:2] == ["billing_info_added", "payment_method_updated"]
    assert result.state.committed_mrr >= 0


def test_trial_to_paid_is_a_no_op_then_created():
    events = story("trial_to_paid")
    rows = {r.stripe_event_id: r for r in classify(events, SubscriptionState(), CATALOG).rows}
    created = of_type(events, "customer.subscription.created")[0]
    converted = next(e for e in of_type(events, "customer.subscription.updated")
                     if e["data"]["previous_attributes"].get("status") == "trialing")
    assert rows[created["id"]].type.value == "no_op"
    assert rows[converted["id"]].type.value == "subscription_created"
    assert rows[converted["id"]].new_amount == Decimal("149.00")


def test_simulator_chooses_about_seventy_percent_deterministically():
    profiles = [sim.CustomerProfile(id=f"acc_{i}", name=f"Company {i}", email=f"a@c{i}.example", country="DE",
                                    created_at=NOW - timedelta(days=300)) for i in range(200)]
    simulator = sim.StripeSimulator(7, NOW)
    plans = simulator.choose(profiles)
    assert len(plans) == 148  # 74 % of 200
    assert [p.profile.id for p in plans] == [p.profile.id for p in sim.StripeSimulator(7, NOW).choose(profiles)]
    subset = simulator.choose(profiles, limit=10)
    assert len(subset) == 10 and subset[0] is not None
    assert simulator.events_for(plans[0]) == sim.StripeSimulator(7, NOW).events_for(plans[0])
