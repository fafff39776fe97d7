"""Issue 17: every API version's payloads read like their current-shape twins (DOMAIN §3: read by
shape, new-first with the old as fallback). The fixtures are tests/ledger/shapes.py."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.ledger import readers
from backoffice.ledger.classifier import Catalog, CatalogPrice, SubscriptionState, classify
from tests.ledger import shapes

OLD_LABELS = [label for label in shapes.LABELS if label != shapes.CURRENT]
TWINS = shapes.story(shapes.CURRENT)
CATALOG = Catalog.of([CatalogPrice("standard-monthly-eur", "prod_QxStandardPlan", "Standard", Decimal("49.00"), "EUR"),
                      CatalogPrice("premium-monthly-eur", "prod_QxPremiumPlan0", "Premium", Decimal("149.00"), "EUR")])


@pytest.mark.parametrize("label", OLD_LABELS)
def test_every_event_reads_like_its_current_shape_twin(label):
    events = shapes.story(label)
    names = [name for name in events if name in TWINS]
    assert len(names) == len(TWINS)  # every current-shape event has its twin in this label
    for name in names:
        got, want = shapes.meaning(readers.read_event(events[name])), shapes.meaning(readers.read_event(TWINS[name]))
        if name.startswith("catalog."):
            got.pop("type"), want.pop("type")  # plan.created / price.created
            got.pop("object_type"), want.pop("object_type")
        assert got == want, name


def test_the_twins_read_as_the_story_says():
    """The current shape itself, read field by field, so a twin's sameness means something."""
    read = {name: readers.read_event(event) for name, event in TWINS.items()}
    created, seats = read["customer.subscription.created"], read["customer.subscription.updated.seats"]
    assert (created.subscription_id, created.customer_id, created.currency, created.price_id, created.plan_key,
            created.monthly_amount, created.current_period_end) == (
        shapes.SUB, shapes.CUS, "EUR", "standard-monthly-eur", "prod_QxStandardPlan", Decimal("49.00"),
        datetime(2026, 2, 5, 9, 1, tzinfo=UTC))
    assert (seats.monthly_amount, seats.previous_monthly_amount, seats.lines[0].quantity) == (
        Decimal("298.00"), Decimal("149.00"), 2)
    upgrade = read["customer.subscription.updated.upgrade"]
    assert (upgrade.previous_price_id, upgrade.price_id, upgrade.previous_monthly_amount) == (
        "standard-monthly-eur", "premium-monthly-eur", Decimal("49.00"))
    schedule = read["subscription_schedule.updated"]
    assert [(p.price_id, p.lines[0].quantity, p.end) for p in schedule.schedule_phases] == [
        ("premium-monthly-eur", 2, datetime(2026, 4, 5, 9, 1, tzinfo=UTC)),
        ("standard-monthly-eur", 2, datetime(2026, 5, 5, 9, 1, tzinfo=UTC))]
    recovered = read["invoice.paid.recovered"]
    assert (recovered.invoice_id, recovered.subscription_id, recovered.billing_reason, recovered.attempt_count) == (
        shapes.IN_3, shapes.SUB, "subscription_cycle", 2)
    refund = read["charge.refunded"]
    assert (refund.charge_id, refund.customer_id, refund.currency) == (shapes.CH_1, shapes.CUS, "EUR")
    assert read["subscription_schedule.released"].subscription_id == shapes.SUB


MONEY = ("invoice_id", "currency", "billing_reason", "subscription_id", "amount_due", "amount_paid", "subtotal",
         "total", "tax", "amount_excluding_tax", "clamped", "amount_from_credit")


def _money(amounts: readers.InvoiceAmounts) -> dict:
    return {name: getattr(amounts, name) for name in MONEY}


def _invoices(events: dict[str, dict]) -> dict[str, dict]:
    return {name: e for name, e in events.items() if e["data"]["object"]["object"] == "invoice"}


@pytest.mark.parametrize("label", OLD_LABELS)
def test_invoice_money_is_the_same_in_every_shape(label):
    for name, event in _invoices(shapes.story(label)).items():
        got = readers.invoice_amounts(event["data"]["object"], label)
        want = readers.invoice_amounts(TWINS[name]["data"]["object"], shapes.CURRENT)
        assert _money(got) == _money(want), name


def test_invoice_money_of_the_twins():
    paid = readers.invoice_amounts(TWINS["invoice.paid.recovered"]["data"]["object"], shapes.CURRENT)
    assert _money(paid) == {
        "invoice_id": shapes.IN_3, "currency": "EUR", "billing_reason": "subscription_cycle",
        "subscription_id": shapes.SUB, "amount_due": Decimal("322.14"), "amount_paid": Decimal("322.14"),
        "subtotal": Decimal("298.00"), "total": Decimal("322.14"), "tax": Decimal("24.14"),
        "amount_excluding_tax": Decimal("298.00"), "clamped": False, "amount_from_credit": Decimal("0.00")}
    failed = readers.invoice_amounts(TWINS["invoice.payment_failed"]["data"]["object"], shapes.CURRENT)
    assert (failed.amount_paid, failed.amount_excluding_tax, failed.status) == (
        Decimal("0.00"), Decimal("298.00"), "open")


@pytest.mark.parametrize("label", OLD_LABELS)
def test_invoice_dates_are_read_from_date_before_2019_03_14(label):
    """`date` was renamed `created` in 2019-03-14; `paid_at` exists since (status_transitions)."""
    for name, event in _invoices(shapes.story(label)).items():
        got = readers.invoice_amounts(event["data"]["object"], label)
        want = readers.invoice_amounts(TWINS[name]["data"]["object"], shapes.CURRENT)
        assert got.created_at == want.created_at, name
        if label >= "2019-03-14":
            assert got.paid_at == want.paid_at, name


# What 2016's flags can say: there were no drafts nor voids, and `closed` only stopped automatic
# collection (changelog 2018-11-08: `closed` → `auto_advance`), so an unpaid invoice is open.
_FLAG_STATUS = {"draft": "open", "void": "open"}


@pytest.mark.parametrize("label", OLD_LABELS)
def test_invoice_status_is_the_same_in_every_shape(label):
    """An invoice without `status` (2016) says it with `paid`, `closed` and `forgiven`."""
    for name, event in _invoices(shapes.story(label)).items():
        obj = event["data"]["object"]
        got = readers.invoice_amounts(obj, label)
        want = readers.invoice_amounts(TWINS[name]["data"]["object"], shapes.CURRENT).status
        if "status" not in obj:
            want = _FLAG_STATUS.get(want, want)
        assert got.status == want, name


@pytest.mark.parametrize("label", OLD_LABELS)
def test_an_invoice_names_its_charge_before_basil_and_its_payment_intent_after(label):
    """`invoice.charge` is gone in basil: its payments name a payment intent, not a charge."""
    events = shapes.story(label)
    charges = {name: readers.read_event(events[name]).charge_id
               for name in ("invoice.paid.create", "invoice.paid.cycle", "invoice.paid.recovered",
                            "invoice.payment_failed")}
    if label < "2025-03-31":
        assert charges == {"invoice.paid.create": shapes.CH_1, "invoice.paid.cycle": shapes.CH_2,
                           "invoice.paid.recovered": shapes.CH_4, "invoice.payment_failed": None}
    else:
        assert set(charges.values()) == {None}


@pytest.mark.parametrize("label", [label for label in OLD_LABELS if label < "2025-03-31"])
def test_a_charge_names_its_invoice_before_basil(label):
    parsed = readers.read_event(shapes.story(label)["charge.refunded"])
    assert (parsed.charge_id, parsed.invoice_id) == (shapes.CH_1, shapes.IN_1)


@pytest.mark.parametrize("label", [label for label in OLD_LABELS if label < "2020-08-27"])
def test_a_tax_id_on_the_customer_is_billing_info(label):
    """Before 2020-08-27 a VAT id shows on the customer (business_vat_id, tax_info, tax_ids)."""
    event = shapes.story(label)["customer.updated.tax"]
    assert readers.read_event(event).customer_touched == ("tax_ids",)


def _rows(events: list[dict]) -> list[tuple]:
    result = classify(events, SubscriptionState(), CATALOG)
    assert result.discrepancies == () and result.skipped_event_ids == ()
    return [(r.stripe_event_id, r.type.value, r.from_plan, r.to_plan, r.previous_amount, r.new_amount,
             r.amount_delta, r.committed_mrr, r.currency, r.occurred_at) for r in result.rows]


def _subscription_events(events: dict[str, dict]) -> list[dict]:
    """What the classifier replays for the subscription: everything but the catalog and the
    customer-only events (these have their twins checked above)."""
    return [e for name, e in events.items() if not name.startswith("catalog.")
            and name != "customer.updated.tax"]


EXPECTED_MOVES = [
    ("customer.subscription.created", "subscription_created", "free", "prod_QxStandardPlan", Decimal("0.00"),
     Decimal("49.00"), Decimal("49.00"), Decimal("49.00")),
    ("customer.subscription.updated.upgrade", "subscription_upgraded", "prod_QxStandardPlan", "prod_QxPremiumPlan0",
     Decimal("49.00"), Decimal("149.00"), Decimal("100.00"), Decimal("149.00")),
    ("customer.subscription.updated.seats", "subscription_upgraded", "prod_QxPremiumPlan0", "prod_QxPremiumPlan0",
     Decimal("149.00"), Decimal("298.00"), Decimal("149.00"), Decimal("298.00")),
]


def test_the_current_story_classifies_as_written():
    rows = {row[0]: row for row in _rows(_subscription_events(TWINS))}
    for name, *want in EXPECTED_MOVES:
        assert list(rows[TWINS[name]["id"]][1:8]) == want, name
    types = [rows[TWINS[name]["id"]][1] for name in (
        "invoice.payment_succeeded.cycle", "invoice.paid.cycle", "invoice.payment_failed",
        "customer.subscription.updated.past_due", "invoice.paid.recovered", "charge.refunded",
        "subscription_schedule.updated", "subscription_schedule.released", "subscription_schedule.created.again",
        "subscription_schedule.canceled", "customer.tax_id.created", "customer.subscription.updated.cancel",
        "customer.subscription.deleted", "customer.deleted")]
    assert types == ["subscription_renewed", "no_op", "payment_failed", "subscription_past_due",
                     "payment_recovered", "payment_refunded", "subscription_downgrade_scheduled",
                     "subscription_downgrade_cancelled", "subscription_downgrade_scheduled",
                     "subscription_downgrade_cancelled", "billing_info_updated", "subscription_cancelled",
                     "subscription_expired", "subscription_suspended"]


@pytest.mark.parametrize("label", OLD_LABELS)
def test_the_story_classifies_the_same_in_every_shape(label):
    assert _rows(_subscription_events(shapes.story(label))) == _rows(_subscription_events(TWINS))
