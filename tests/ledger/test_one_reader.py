"""One reader for events and live objects (issue 17, part 2): the replayer, the sync, the drift
detector and the catalog read a price, a subscription, a schedule and an invoice alike, in every
shape, and zero-decimal currencies are right everywhere. Pure: no app, no database."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.ledger import readers, replay_adapter
from tests.ledger import payloads as p

# A yen price with a lookup_key and metadata (Stripe puts unit_amount_decimal on every price).
YEN = {**p.price("price_yen_pro", "prod_X", 1000, currency="jpy"), "lookup_key": "pro_monthly",
       "metadata": {"plan": "pro"}, "nickname": "Pro (JPY)"}


def test_a_yen_price_reads_the_same_in_the_event_the_live_subscription_and_the_catalog():
    event = readers.read_event(p.sub_created(p.subscription(YEN), created=p.ts(2026, 1, 1), event_id="evt_1"))
    live = readers.read_subscription(p.subscription(YEN))
    catalog = replay_adapter.plan_values(YEN)
    assert (event.plan_key, event.monthly_amount, event.currency) == ("prod_X", Decimal("1000.00"), "JPY")
    assert (live.plan, live.price, live.currency) == ("prod_X", Decimal("1000.00"), "JPY")
    assert (catalog["plan_key"], catalog["monthly_amount"], catalog["currency"], catalog["name"]) == (
        "prod_X", Decimal("1000.00"), "JPY", "Pro (JPY)")


@pytest.mark.parametrize(("currency", "minor", "major"), [
    ("jpy", 4900, Decimal("4900.00")), ("krw", 15000, Decimal("15000.00")), ("chf", 4900, Decimal("49.00")),
    ("kwd", 4905, Decimal("4.91")),
])
def test_invoice_money_of_live_and_archived_invoices_is_one_reading(currency, minor, major):
    inv = p.invoice(amount_paid=minor, taxes=0)
    inv["currency"] = currency
    inv["total"] = inv["amount_due"] = inv["subtotal"] = minor
    live = readers.read_invoice(inv)
    archived = readers.invoice_amounts(inv)
    assert live.amount == archived.amount_paid == major
    assert live.invoice_total == archived.total == major
    assert live.currency == archived.currency == currency.upper()


def test_a_2016_shape_subscription_without_items_reads_its_plan():
    plan = {"id": "gold", "object": "plan", "amount": 2000, "currency": "usd", "interval": "month",
            "interval_count": 1, "name": "Gold", "livemode": False, "metadata": {}, "statement_descriptor": None,
            "trial_period_days": None, "created": 1_460_000_000}
    sub = {"id": "sub_8epEF0PuRhmltU", "object": "subscription", "customer": "cus_8epDebVEl8Bs2V",
           "status": "active", "cancel_at_period_end": False, "current_period_end": 1_462_600_000,
           "plan": plan, "quantity": 2, "start": 1_460_000_000}
    event = {"id": "evt_18NB", "object": "event", "api_version": "2016-03-07", "created": 1_460_000_000,
             "type": "customer.subscription.created", "data": {"object": sub}}
    read = readers.read_event(event)
    live = readers.read_subscription(sub)
    # A plan object without a product (2016) is a plan of its own.
    assert (read.plan_key, read.monthly_amount, read.currency) == ("gold", Decimal("40.00"), "USD")
    assert (live.plan, live.price) == ("gold", Decimal("40.00"))
    assert read.current_period_end == live.current_period_end == datetime.fromtimestamp(1_462_600_000, UTC)


def test_a_schedule_naming_prices_by_id_reads_its_amount_from_the_catalog():
    schedule = {"id": "sub_sched_1", "object": "subscription_schedule", "status": "active",
                "subscription": "sub_1", "phases": [
                    {"start_date": 1, "end_date": 2, "items": [{"price": "price_pro", "quantity": 1}]},
                    {"start_date": 2, "end_date": None, "items": [{"price": "price_basic", "quantity": 1}]}]}
    change = readers.read_schedule(schedule, "prod_pro", {"price_basic": "prod_basic", "price_pro": "prod_pro"},
                                   {"price_basic": Decimal("49.00"), "price_pro": Decimal("149.00")})
    assert (change.plan, change.price, change.price_id) == ("prod_basic", Decimal("49.00"), "price_basic")
    unknown = readers.read_schedule(schedule, "prod_pro")
    assert (unknown.plan, unknown.price) == ("price_basic", None)  # unknown is unknown, never 0
    assert readers.schedule_price_ids(schedule) == ("price_pro", "price_basic")
    # 2019's schedules named the phases' prices `plans`.
    old = {**schedule, "phases": [{**ph, "plans": [{"plan": it["price"], "quantity": 1} for it in ph["items"]],
                                   "items": None} for ph in schedule["phases"]]}
    assert readers.schedule_price_ids(old) == ("price_pro", "price_basic")


def test_invoice_fields_new_first_with_the_old_as_fallback():
    basil = {"object": "invoice", "id": "in_1", "currency": "eur", "total": 1190, "amount_paid": 1190,
             "amount_due": 1190, "status": "paid", "total_taxes": [{"amount": 190}],
             "parent": {"subscription_details": {"subscription": "sub_new"}},
             "lines": {"data": [{"pricing": {"price_details": {"price": "price_new"}}}]},
             "payments": {"data": [{"payment": {"type": "charge", "charge": "ch_new"}}]}}
    # Stripe adds new fields to old renderings: a 2020-shape invoice that also has `parent`.
    mixed = {**basil, "subscription": "sub_old", "tax": 190, "charge": "ch_old", "total_taxes": None,
             "lines": {"data": [{"price": {"id": "price_old"}, "plan": {"id": "plan_old"}}]}}
    old_2016 = {"object": "invoice", "id": "in_2", "currency": "usd", "total": 2000, "amount_due": 2000,
                "paid": True, "closed": True, "date": 1_460_000_000, "subscription": "sub_2016",
                "tax": None, "charge": "ch_2016", "lines": {"data": [{"plan": {"id": "gold"}}]}}
    assert (readers.invoice_subscription(basil), readers.invoice_tax(basil), readers.invoice_charge(basil),
            readers.invoice_line_prices(basil)) == ("sub_new", 190, "ch_new", ("price_new",))
    assert (readers.invoice_subscription(mixed), readers.invoice_tax(mixed), readers.invoice_charge(mixed),
            readers.invoice_line_prices(mixed)) == ("sub_new", 190, "ch_old", ("price_old",))
    amounts = readers.invoice_amounts(old_2016)
    assert (amounts.status, amounts.amount_paid, amounts.tax, amounts.created_at) == (
        "paid", Decimal("20.00"), Decimal("0.00"), datetime.fromtimestamp(1_460_000_000, UTC))
    assert readers.invoice_charge(old_2016) == "ch_2016"
