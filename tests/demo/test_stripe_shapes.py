"""The renderer of the simulator's events in older API shapes (issue 17): fields move as Stripe
moves them, nothing else changes, and the one reader reads every rendering like the original."""
from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from backoffice.demo import stripe_shapes as shapes
from backoffice.demo import stripe_sim as sim
from backoffice.ledger import readers
from tests.demo.test_stripe_sim import NOW, PRICES, of_type, story
from tests.ledger.shapes import meaning

PRICE_OBJECTS = [sim._price_obj(p) for p in PRICES.values()]


def rendered(kind: str, shape: str, api_version: str | None = None) -> list[dict]:
    return shapes.render_all(story(kind), shape, api_version=api_version, prices=PRICE_OBJECTS)


def first(events: list[dict], event_type: str) -> dict:
    return of_type(events, event_type)[0]["data"]


@pytest.mark.parametrize(("label", "shape"), [
    ("2016-07-06", "2016"), ("2019-12-03", "2016"), ("2020-08-27", "2020"), ("2020-08-27; orders_beta=v3", "2020"),
    ("2025-02-24.acacia", "2020"), ("2025-03-31.basil", "2025"), ("2026-11-18.endive", "2025"),
])
def test_a_label_is_read_by_its_date(label, shape):
    assert shapes.shape_of(label) == shape


def test_unknown_shapes_and_labels_of_another_shape_are_refused():
    event = story("steady_monthly")[0]
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.render(event, "2018")
    with pytest.raises(ValueError, match="not a label of the 2016 shape"):
        shapes.render(event, "2016", api_version="2024-06-20")
    with pytest.raises(ValueError, match="needs its shape"):
        sim.StripeSimulator(1, NOW, api_version="2024-06-20")
    with pytest.raises(ValueError, match="unknown shape"):
        sim.StripeSimulator(1, NOW, shape="2018")


def test_rendering_leaves_the_original_alone():
    events = story("upgrade")
    before = copy.deepcopy(events)
    shapes.render_all(events, "2016", prices=PRICE_OBJECTS)
    assert events == before


def test_2016_subscriptions_carry_plans_and_their_own_period():
    events = rendered("upgrade", "2016")
    assert {e["api_version"] for e in events} == {"2019-12-03"}
    sub = first(events, "customer.subscription.created")["object"]
    item = sub["items"]["data"][0]
    original = first(story("upgrade"), "customer.subscription.created")["object"]["items"]["data"][0]
    assert "price" not in item and "current_period_end" not in item
    assert (item["plan"]["id"], item["plan"]["amount"], item["plan"]["interval"], item["plan"]["product"]) == (
        "price_standard_monthly_eur", 4900, "month", "prod_standard")
    assert (sub["plan"]["id"], sub["quantity"]) == ("price_standard_monthly_eur", 1)
    assert (sub["current_period_start"], sub["current_period_end"]) == (
        original["current_period_start"], original["current_period_end"])
    previous = [sorted(e["data"]["previous_attributes"]) for e in of_type(events, "customer.subscription.updated")]
    renewal = ["current_period_end", "current_period_start", "latest_invoice"]
    changes = [keys for keys in previous if keys != renewal]
    assert changes == [["items", "latest_invoice", "plan"]] and len(previous) > 2
    upgrade = next(e["data"]["previous_attributes"] for e in of_type(events, "customer.subscription.updated")
                   if "plan" in e["data"]["previous_attributes"])
    assert upgrade["plan"]["amount"] == upgrade["items"]["data"][0]["plan"]["amount"] == 4900


def test_2020_items_carry_price_and_plan_and_the_period_stays_on_the_subscription():
    sub = first(rendered("upgrade", "2020"), "customer.subscription.created")["object"]
    item = sub["items"]["data"][0]
    assert (item["price"]["id"], item["plan"]["id"]) == ("price_standard_monthly_eur", "price_standard_monthly_eur")
    assert "plan" not in sub and "current_period_end" not in item
    assert sub["current_period_end"] - sub["current_period_start"] in (28 * 86400, 29 * 86400, 30 * 86400,
                                                                       31 * 86400)


def test_old_invoices_name_subscription_charge_and_tax_at_the_top():
    events = rendered("refund", "2020")
    original = first(story("refund"), "invoice.paid")["object"]
    invoice = first(events, "invoice.paid")["object"]
    refunded = first(events, "charge.refunded")["object"]
    assert "parent" not in invoice and "total_taxes" not in invoice and "payments" not in invoice
    assert invoice["subscription"] == original["parent"]["subscription_details"]["subscription"]
    assert (invoice["tax"], invoice["total_tax_amounts"]) == (397, [{
        "amount": 397, "inclusive": False, "tax_rate": "txr_vat_ch_8_1", "taxability_reason": "standard_rated",
        "taxable_amount": 4900}])
    assert (invoice["paid"], invoice["payment_intent"]) == (
        True, original["payments"]["data"][0]["payment"]["payment_intent"])
    line = invoice["lines"]["data"][0]
    assert (line["type"], line["proration"], line["subscription"], line["price"]["unit_amount"],
            line["plan"]["amount"], line["tax_amounts"][0]["amount"]) == (
        "subscription", False, invoice["subscription"], 4900, 4900, 397)
    assert "pricing" not in line and "parent" not in line and "taxes" not in line
    # The refunded charge is the invoice's; the others share their payment intent's id tail.
    note = first(events, "credit_note.created")["object"]
    paid = {e["data"]["object"]["id"]: e["data"]["object"] for e in of_type(events, "invoice.paid")}
    assert paid[note["invoice"]]["charge"] == refunded["id"]
    assert refunded["invoice"] == note["invoice"]
    assert all(i["charge"] == "ch_" + i["payment_intent"][3:] for i in paid.values() if i["id"] != note["invoice"])
    assert (note["refund"], note["tax_amounts"][0]["amount"]) == (
        first(story("refund"), "credit_note.created")["object"]["refunds"][0]["refund"],
        first(story("refund"), "credit_note.created")["object"]["total_taxes"][0]["amount"])


def test_charges_stop_including_refunds_at_2022_11_15():
    assert "refunds" in first(rendered("refund", "2016"), "charge.refunded")["object"]
    assert "refunds" not in first(rendered("refund", "2020", "2022-11-15"), "charge.refunded")["object"]
    assert "refunds" not in first(rendered("refund", "2025"), "charge.refunded")["object"]
    assert "invoice" not in first(rendered("refund", "2025"), "charge.refunded")["object"]


def test_schedule_phases_list_plans_before_2020_08_27():
    old = first(rendered("downgrade_cancelled", "2016"), "subscription_schedule.updated")
    new = first(rendered("downgrade_cancelled", "2020"), "subscription_schedule.updated")
    assert [p["plans"][0]["plan"] for p in old["object"]["phases"]] == [
        "price_business_monthly_eur", "price_premium_monthly_eur"]
    assert "items" not in old["object"]["phases"][0] and len(old["previous_attributes"]["phases"][0]["plans"]) == 1
    assert [p["items"][0]["price"] for p in new["object"]["phases"]] == [
        "price_business_monthly_eur", "price_premium_monthly_eur"]


def test_catalog_and_customers_in_old_shapes():
    old = sim.StripeSimulator(7, NOW, shape="2016").catalog_events()
    assert [e["type"] for e in old][:3] == ["product.created", "plan.created", "plan.created"]
    assert old[1]["data"]["object"]["amount"] == 4900 and old[1]["data"]["object"]["object"] == "plan"
    assert [e["type"] for e in sim.StripeSimulator(7, NOW, shape="2020").catalog_events()][1] == "price.created"
    assert "tax_ids" in first(rendered("steady_monthly", "2016"), "customer.created")["object"]
    assert "tax_ids" not in first(rendered("steady_monthly", "2020"), "customer.created")["object"]


def test_the_simulator_default_is_unchanged_and_its_shapes_are_renderings():
    profile = sim.CustomerProfile(id="acc_1", name="A AG", email="a@a.example", country="CH",
                                  created_at=NOW - timedelta(days=300))
    plan = sim.Plan(profile, "upgrade", NOW - timedelta(days=200), NOW)
    default = sim.StripeSimulator(7, NOW).events_for(plan)
    assert [sim.encode(e) for e in default] == [sim.encode(e) for e in sim.StripeSimulator(
        7, NOW, shape=None).events_for(plan)]
    assert {e["api_version"] for e in default} == {sim.API_VERSION}
    basil = sim.StripeSimulator(7, NOW, shape="2025", api_version="2025-03-31.basil").events_for(plan)
    assert [e["id"] for e in basil] == [e["id"] for e in default]
    assert {e["api_version"] for e in basil} == {"2025-03-31.basil"}
    assert sim.StripeSimulator(7, NOW, shape="2016").events_for(plan) == shapes.render_all(
        default, "2016", prices=[sim._price_obj(p) for p in sim.StripeSimulator(7, NOW).prices.values()])


@pytest.mark.parametrize("shape", shapes.SHAPES)
@pytest.mark.parametrize("kind", sim.STORIES)
def test_every_rendering_reads_like_the_original(kind, shape):
    """The one reader (readers.read_event) makes the same of each rendered event as of its
    original: ids, currency, prices and amounts, periods, phases, invoice fields."""
    events = story(kind)
    for original, old in zip(events, shapes.render_all(events, shape, prices=PRICE_OBJECTS), strict=True):
        assert meaning(readers.read_event(old)) == meaning(readers.read_event(original)), original["type"]
        if original["data"]["object"]["object"] == "invoice":
            want = readers.invoice_amounts(original["data"]["object"], original["api_version"])
            assert readers.invoice_amounts(old["data"]["object"], old["api_version"]) == want

