"""DOMAIN §3 "Classification", rule by rule, on hand-built envelopes. Pure: no app, no database."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.ledger.classifier import (
    DELTA_TYPES,
    MRR_VIEW_TYPES,
    OTHER_VIEW_TYPES,
    STATE_VIEW_TYPES,
    Catalog,
    CatalogPrice,
    EventType,
    SubscriptionState,
    classify,
    forward_mrr,
    invoice_amounts,
)
from backoffice.ledger.labels import EVENT_LABELS
from backoffice.ledger.readers import (
    CURRENT_API_VERSION,
    LEGACY_API_VERSION,
    UnreadablePayload,
    monthly_amount,
    read_event,
    shape_of,
)
from tests.ledger import payloads as p

T = EventType
PRO = p.price("price_pro_monthly", "prod_pro", 14900)
BUSINESS = p.price("price_business_monthly", "prod_business", 29900)
STARTER = p.price("price_starter_monthly", "prod_starter", 4900)
CATALOG = Catalog.of([
    CatalogPrice("price_starter_monthly", "prod_starter", "Starter", Decimal("49.00"), "CHF"),
    CatalogPrice("price_pro_monthly", "prod_pro", "Pro", Decimal("149.00"), "CHF"),
    CatalogPrice("price_business_monthly", "prod_business", "Business", Decimal("299.00"), "CHF"),
])
ON_PRO = SubscriptionState(plan="prod_pro", price=Decimal("149.00"), currency="CHF", status="active",
                           price_id="price_pro_monthly", committed_mrr=Decimal("149.00"))
ON_BUSINESS = SubscriptionState(plan="prod_business", price=Decimal("299.00"), currency="CHF", status="active",
                                price_id="price_business_monthly", committed_mrr=Decimal("299.00"))


def run(events, state=None, catalog=CATALOG):
    return classify(events, SubscriptionState() if state is None else state, catalog)


def only_row(result):
    assert len(result.rows) == 1, result.rows
    return result.rows[0]


# -- public API ---------------------------------------------------------------------------------
def test_event_types_are_the_twenty_domain_names():
    assert len(EventType) == 20
    assert {t.value for t in EventType} == set(EVENT_LABELS)
    assert str(T.NO_OP) == "no_op" and T("payment_recovered") is T.PAYMENT_RECOVERED


def test_view_sets():
    assert MRR_VIEW_TYPES == DELTA_TYPES
    assert T.SUSPENDED in MRR_VIEW_TYPES and T.PAST_DUE not in MRR_VIEW_TYPES
    assert STATE_VIEW_TYPES == {T.CREATED, T.UPGRADED, T.DOWNGRADED, T.IMMEDIATELY_CANCELLED, T.EXPIRED,
                                T.SUSPENDED, T.CANCELLED, T.REACTIVATED, T.PAST_DUE}
    assert set(EventType) == MRR_VIEW_TYPES | STATE_VIEW_TYPES | OTHER_VIEW_TYPES
    assert {T.RENEWED, T.NO_OP, T.UNCLASSIFIED, T.BILLING_INFO_UPDATED} <= OTHER_VIEW_TYPES


def test_forward_mrr():
    assert forward_mrr(SubscriptionState()) == Decimal("0.00")
    assert forward_mrr(ON_PRO) == Decimal("149.00")
    assert forward_mrr(SubscriptionState(plan="prod_pro", price=Decimal("149.00"), cancel_at_period_end=True)) == 0
    scheduled = SubscriptionState(plan="prod_pro", price=Decimal("149.00"), scheduled_plan="prod_starter",
                                  scheduled_price=Decimal("49.00"))
    assert forward_mrr(scheduled) == Decimal("49.00")


def test_catalog_names_plans_and_prices():
    assert CATALOG.plan_name("prod_pro") == "Pro" and CATALOG.plan_name("free") == "Free"
    assert CATALOG.price("price_business_monthly").monthly_amount == Decimal("299.00")
    assert CATALOG.price("nope") is None


# -- Created ------------------------------------------------------------------------------------
def test_created_carries_price_minus_previous_committed():
    ev = p.sub_created(p.subscription(PRO), created=p.ts(2026, 1, 5), event_id="evt_1")
    result = run([ev])
    row = only_row(result)
    assert row.type is T.CREATED
    assert (row.from_plan, row.to_plan) == ("free", "prod_pro")
    assert (row.previous_amount, row.new_amount, row.amount_delta) == (Decimal("0.00"), Decimal("149.00"),
                                                                     Decimal("149.00"))
    assert row.committed_mrr == Decimal("149.00")
    assert row.currency == "CHF"
    assert row.occurred_at == datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert result.state.plan == "prod_pro" and result.state.price == Decimal("149.00")


def test_trial_is_no_op_and_its_activation_is_the_created_row():
    trial = p.sub_created(p.subscription(PRO, status="trialing"), created=p.ts(2026, 1, 1), event_id="evt_1")
    active = p.sub_updated(p.subscription(PRO), {"status": "trialing"}, created=p.ts(2026, 1, 15),
                           event_id="evt_2")
    result = run([trial, active])
    assert [r.type for r in result.rows] == [T.NO_OP, T.CREATED]
    assert result.rows[0].committed_mrr == Decimal("0.00") and result.rows[0].amount_delta is None
    created = result.rows[1]
    assert (created.previous_amount, created.new_amount, created.amount_delta) == (
        Decimal("0.00"), Decimal("149.00"), Decimal("149.00"))
    assert forward_mrr(result.state) == Decimal("149.00")


def test_incomplete_start_is_no_op_until_paid():
    start = p.sub_created(p.subscription(PRO, status="incomplete"), created=p.ts(2026, 1, 1), event_id="evt_1")
    result = run([start])
    assert only_row(result).type is T.NO_OP
    assert forward_mrr(result.state) == 0 and result.state.awaiting_activation


def test_trial_deleted_before_converting_is_immediately_cancelled_with_zero_delta():
    trial = p.sub_created(p.subscription(PRO, status="trialing"), created=p.ts(2026, 1, 1), event_id="evt_1")
    gone = p.sub_deleted(p.subscription(PRO, status="trialing", reason="cancellation_requested"),
                         created=p.ts(2026, 1, 14), event_id="evt_2")
    rows = run([trial, gone]).rows
    assert [r.type for r in rows] == [T.NO_OP, T.IMMEDIATELY_CANCELLED]
    assert (rows[1].previous_amount, rows[1].new_amount, rows[1].amount_delta) == (
        Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))
    assert rows[1].reason == "cancellation_requested"


# -- customer.subscription.updated --------------------------------------------------------------
def test_upgrade_payload_unit_amount_wins_over_catalog():
    catalog = Catalog.of([
        CatalogPrice("price_pro_monthly", "prod_pro", "Pro", Decimal("149.00"), "CHF"),
        CatalogPrice("price_business_monthly", "prod_business", "Business", Decimal("159.00"), "CHF"),
    ])
    business_in_payload = p.price("price_business_monthly", "prod_business", 14900 + 1)
    # Catalog says 159 for the new price; the payload's unit_amount (149.01) must win.
    ev = p.plan_change(PRO, business_in_payload, created=p.ts(2026, 2, 1), event_id="evt_1")
    row = only_row(run([ev], ON_PRO, catalog))
    assert row.type is T.UPGRADED
    assert row.new_amount == Decimal("149.01")


def test_upgrade_with_unit_amount_14900_while_catalog_says_159():
    catalog = Catalog.of([
        CatalogPrice("price_starter_monthly", "prod_starter", "Starter", Decimal("49.00"), "CHF"),
        CatalogPrice("price_pro_monthly", "prod_pro", "Pro", Decimal("159.00"), "CHF"),
    ])
    ev = p.plan_change(STARTER, PRO, created=p.ts(2026, 2, 1), event_id="evt_1")
    state = SubscriptionState(plan="prod_starter", price=Decimal("49.00"), currency="CHF", status="active",
                              committed_mrr=Decimal("49.00"))
    row = only_row(run([ev], state, catalog))
    assert row.type is T.UPGRADED
    assert (row.from_plan, row.to_plan) == ("prod_starter", "prod_pro")
    assert row.new_amount == Decimal("149.00")
    assert (row.previous_amount, row.amount_delta, row.committed_mrr) == (
        Decimal("49.00"), Decimal("100.00"), Decimal("149.00"))


def test_catalog_is_next_when_the_payload_has_no_amount_then_zero():
    tiered = p.price("price_pro_monthly", "prod_pro", None)
    ev = p.plan_change(STARTER, tiered, created=p.ts(2026, 2, 1), event_id="evt_1")
    state = SubscriptionState(plan="prod_starter", price=Decimal("49.00"), currency="CHF",
                              committed_mrr=Decimal("49.00"))
    assert only_row(run([ev], state)).new_amount == Decimal("149.00")

    unknown = p.price("price_mystery", "prod_mystery", None)
    ev = p.plan_change(STARTER, unknown, created=p.ts(2026, 2, 1), event_id="evt_2")
    row = only_row(run([ev], state))
    assert row.type is T.DOWNGRADED and row.new_amount == Decimal("0.00")
    assert row.warnings == ("price_unknown",)


def test_downgrade_by_price():
    ev = p.plan_change(BUSINESS, PRO, created=p.ts(2026, 2, 1), event_id="evt_1")
    row = only_row(run([ev], ON_BUSINESS))
    assert row.type is T.DOWNGRADED
    assert (row.previous_amount, row.new_amount, row.amount_delta) == (
        Decimal("299.00"), Decimal("149.00"), Decimal("-150.00"))


def test_quantity_change_is_a_plan_change_by_price():
    ev = p.plan_change(PRO, PRO, quantity=3, created=p.ts(2026, 2, 1), event_id="evt_1")
    row = only_row(run([ev], ON_PRO))
    assert row.type is T.UPGRADED and row.new_amount == Decimal("447.00")


def test_cancel_toggle_from_committed_299_drops_to_zero():
    ev = p.cancel_toggle(BUSINESS, True, created=p.ts(2026, 2, 15), event_id="evt_1",
                         reason="cancellation_requested")
    result = run([ev], ON_BUSINESS)
    row = only_row(result)
    assert row.type is T.CANCELLED
    assert (row.previous_amount, row.new_amount, row.amount_delta, row.committed_mrr) == (
        Decimal("299.00"), Decimal("0.00"), Decimal("-299.00"), Decimal("0.00"))
    assert row.reason == "cancellation_requested"
    assert result.state.cancel_at_period_end and result.state.plan == "prod_business"


def test_cancel_on_feb_15_then_deletion_on_mar_15_is_cancelled_then_expired():
    cancel = p.cancel_toggle(PRO, True, created=p.ts(2026, 2, 15), event_id="evt_b")
    end = p.sub_deleted(p.subscription(PRO, cancel_at_period_end=True, reason="cancellation_requested"),
                        created=p.ts(2026, 3, 15), event_id="evt_a")
    result = run([end, cancel], ON_PRO)  # input order does not matter: Stripe's created does
    cancelled, expired = result.rows
    assert (cancelled.type, expired.type) == (T.CANCELLED, T.EXPIRED)
    assert cancelled.occurred_at == datetime(2026, 2, 15, 12, tzinfo=UTC)
    assert expired.occurred_at == datetime(2026, 3, 15, 12, tzinfo=UTC)
    assert cancelled.amount_delta == Decimal("-149.00")
    assert (expired.previous_amount, expired.new_amount, expired.amount_delta) == (
        Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))
    assert (expired.from_plan, expired.to_plan) == ("prod_pro", "free")
    assert result.state == SubscriptionState(currency="CHF", status="canceled")


def test_reactivation_goes_back_to_plan_price():
    cancel = p.cancel_toggle(PRO, True, created=p.ts(2026, 2, 15), event_id="evt_1")
    back = p.cancel_toggle(PRO, False, created=p.ts(2026, 2, 20), event_id="evt_2")
    rows = run([cancel, back], ON_PRO).rows
    assert [r.type for r in rows] == [T.CANCELLED, T.REACTIVATED]
    assert (rows[1].previous_amount, rows[1].new_amount, rows[1].amount_delta) == (
        Decimal("0.00"), Decimal("149.00"), Decimal("149.00"))


def test_plan_change_while_cancelling_commits_zero():
    cancelling = SubscriptionState(plan="prod_pro", price=Decimal("149.00"), currency="CHF",
                                   cancel_at_period_end=True, committed_mrr=Decimal("0.00"))
    ev = p.plan_change(PRO, BUSINESS, cancel_at_period_end=True, created=p.ts(2026, 2, 1), event_id="evt_1")
    row = only_row(run([ev], cancelling))
    assert row.type is T.UPGRADED and row.committed_mrr == Decimal("0.00")
    assert (row.from_plan, row.to_plan) == ("prod_pro", "prod_business")


def test_cancel_toggle_and_plan_change_in_one_payload_is_unclassified():
    ev = p.plan_change(PRO, BUSINESS, cancel_at_period_end=True, previous_extra={"cancel_at_period_end": False},
                       created=p.ts(2026, 2, 1), event_id="evt_1")
    result = run([ev], ON_PRO)
    row = only_row(result)
    assert row.type is T.UNCLASSIFIED
    assert row.amount_delta is None and row.committed_mrr == Decimal("149.00")
    assert result.state == ON_PRO
    [d] = result.discrepancies
    assert (d.kind, d.severity, d.stripe_event_id) == ("UnclassifiedStripeEvent", "warning", "evt_1")


def test_active_to_past_due_is_past_due_without_mrr_change():
    ev = p.sub_updated(p.subscription(PRO, status="past_due"), {"status": "active"},
                       created=p.ts(2026, 3, 1), event_id="evt_1")
    result = run([ev], ON_PRO)
    row = only_row(result)
    assert row.type is T.PAST_DUE and row.amount_delta is None and row.committed_mrr == Decimal("149.00")
    assert result.state.status == "past_due"


def test_latest_invoice_only_update_is_one_no_op():
    ev = p.sub_updated(p.subscription(PRO, latest_invoice="in_2"), {"latest_invoice": "in_1"},
                       created=p.ts(2026, 3, 1), event_id="evt_1")
    result = run([ev], ON_PRO)
    row = only_row(result)
    assert row.type is T.NO_OP
    assert row.committed_mrr == Decimal("149.00")  # never a phantom zero
    assert result.state == ON_PRO


def test_update_without_previous_attributes_is_no_op():
    ev = p.sub_updated(p.subscription(BUSINESS), None, created=p.ts(2026, 3, 1), event_id="evt_1")
    result = run([ev], ON_PRO)
    assert only_row(result).type is T.NO_OP and result.state == ON_PRO


# -- customer.subscription.deleted, customer.deleted --------------------------------------------
@pytest.mark.parametrize(
    ("reason", "cancelling", "expected"),
    [
        ("payment_failed", False, T.SUSPENDED),
        ("payment_failed", True, T.SUSPENDED),
        ("cancellation_requested", True, T.EXPIRED),
        ("cancellation_requested", False, T.IMMEDIATELY_CANCELLED),
        (None, False, T.IMMEDIATELY_CANCELLED),
    ],
)
def test_deletion(reason, cancelling, expected):
    state = ON_PRO if not cancelling else SubscriptionState(
        plan="prod_pro", price=Decimal("149.00"), currency="CHF", cancel_at_period_end=True)
    ev = p.sub_deleted(p.subscription(PRO, reason=reason, cancel_at_period_end=cancelling),
                       created=p.ts(2026, 3, 1), event_id="evt_1")
    result = run([ev], state)
    row = only_row(result)
    assert row.type is expected
    assert row.reason == reason
    assert row.new_amount == Decimal("0.00") and row.committed_mrr == Decimal("0.00")
    assert row.amount_delta == Decimal("0.00") - state.committed_mrr
    assert (result.state.plan, result.state.price, forward_mrr(result.state)) == ("free", Decimal("0.00"), 0)


def test_deletion_with_reason_payment_failed_is_suspended():
    ev = p.sub_deleted(p.subscription(BUSINESS, reason="payment_failed"), created=p.ts(2026, 4, 2),
                       event_id="evt_1")
    row = only_row(run([ev], ON_BUSINESS))
    assert row.type is T.SUSPENDED
    assert (row.previous_amount, row.new_amount, row.amount_delta) == (
        Decimal("299.00"), Decimal("0.00"), Decimal("-299.00"))
    assert row.reason == "payment_failed"


def test_expired_still_carries_the_delta_when_the_cancel_toggle_was_missed():
    ev = p.sub_deleted(p.subscription(PRO, cancel_at_period_end=True), created=p.ts(2026, 3, 1),
                       event_id="evt_1")
    row = only_row(run([ev], ON_PRO))
    assert row.type is T.EXPIRED and row.amount_delta == Decimal("-149.00")


def test_customer_deleted_is_suspended():
    ev = p.envelope("customer.deleted", p.customer(deleted=True), created=p.ts(2026, 3, 1), event_id="evt_1")
    result = run([ev], ON_PRO)
    row = only_row(result)
    assert row.type is T.SUSPENDED and row.reason == "customer_deleted"
    assert row.amount_delta == Decimal("-149.00") and row.currency == "CHF"
    assert result.state.plan == "free"


# -- subscription schedules ---------------------------------------------------------------------
def _downgrade_schedule(event_id, created, status="active", to="price_starter_monthly"):
    obj = p.schedule([[("price_pro_monthly", 1)], [(to, 1)]], status=status)
    return p.envelope("subscription_schedule.updated", obj, created=created, event_id=event_id,
                      previous={"phases": []})


def test_downgrade_scheduled_commits_the_scheduled_price():
    result = run([_downgrade_schedule("evt_1", p.ts(2026, 2, 1))], ON_PRO)
    row = only_row(result)
    assert row.type is T.DOWNGRADE_SCHEDULED
    assert (row.from_plan, row.to_plan) == ("prod_pro", "prod_starter")
    assert (row.previous_amount, row.new_amount, row.amount_delta, row.committed_mrr) == (
        Decimal("149.00"), Decimal("49.00"), Decimal("-100.00"), Decimal("49.00"))
    assert (result.state.scheduled_plan, result.state.scheduled_price) == ("prod_starter", Decimal("49.00"))
    assert result.state.plan == "prod_pro"


def test_downgrade_scheduled_then_released_is_downgrade_cancelled_with_null_delta():
    """The downgrade was scheduled before this batch (the state is seeded from the live
    subscription, committed MRR still at the plan price); releasing it moves nothing: null delta."""
    state = SubscriptionState(plan="prod_pro", price=Decimal("149.00"), currency="CHF", status="active",
                              scheduled_plan="prod_starter", scheduled_price=Decimal("49.00"),
                              committed_mrr=Decimal("149.00"))
    released = p.envelope("subscription_schedule.released", p.schedule(
        [[("price_pro_monthly", 1)], [("price_starter_monthly", 1)]], status="released"),
        created=p.ts(2026, 2, 10), event_id="evt_1")
    result = run([released], state)
    row = only_row(result)
    assert row.type is T.DOWNGRADE_CANCELLED
    assert row.amount_delta is None
    assert (row.previous_amount, row.new_amount, row.committed_mrr) == (
        Decimal("149.00"), Decimal("149.00"), Decimal("149.00"))
    assert (row.from_plan, row.to_plan) == ("prod_starter", "prod_pro")
    assert result.state.scheduled_plan is None and result.state.scheduled_price is None


def test_downgrade_scheduled_then_released_in_one_batch_gives_the_mrr_back():
    released = p.envelope("subscription_schedule.released", p.schedule(
        [[("price_pro_monthly", 1)], [("price_starter_monthly", 1)]], status="released"),
        created=p.ts(2026, 2, 10), event_id="evt_2")
    rows = run([_downgrade_schedule("evt_1", p.ts(2026, 2, 1)), released], ON_PRO).rows
    assert [r.type for r in rows] == [T.DOWNGRADE_SCHEDULED, T.DOWNGRADE_CANCELLED]
    assert rows[1].amount_delta == Decimal("100.00") and rows[1].committed_mrr == Decimal("149.00")
    assert sum(r.amount_delta for r in rows) == 0


def test_schedule_canceled_without_tracked_downgrade_is_no_op():
    ev = p.envelope("subscription_schedule.canceled", p.schedule([[("price_pro_monthly", 1)]], status="canceled"),
                    created=p.ts(2026, 2, 10), event_id="evt_1")
    assert only_row(run([ev], ON_PRO)).type is T.NO_OP


def test_schedule_to_a_dearer_plan_is_unclassified():
    result = run([_downgrade_schedule("evt_1", p.ts(2026, 2, 1), to="price_business_monthly")], ON_PRO)
    assert only_row(result).type is T.UNCLASSIFIED
    assert result.state == ON_PRO
    assert [d.kind for d in result.discrepancies] == ["UnclassifiedStripeEvent"]


def test_terminal_status_schedule_update_is_no_op():
    result = run([_downgrade_schedule("evt_1", p.ts(2026, 2, 1), status="completed")], ON_PRO)
    assert only_row(result).type is T.NO_OP and result.state == ON_PRO


def test_single_phase_schedule_is_no_op():
    obj = p.schedule([[("price_starter_monthly", 1)]])
    ev = p.envelope("subscription_schedule.updated", obj, created=p.ts(2026, 2, 1), event_id="evt_1")
    assert only_row(run([ev], ON_PRO)).type is T.NO_OP


def test_scheduled_downgrade_taking_effect_is_downgraded_with_no_further_delta():
    apply = p.plan_change(PRO, STARTER, created=p.ts(2026, 3, 1), event_id="evt_2")
    seen_again = _downgrade_schedule("evt_3", p.ts(2026, 3, 1))  # Stripe's phase change, same second
    rows = run([_downgrade_schedule("evt_1", p.ts(2026, 2, 1)), apply, seen_again], ON_PRO)
    assert [r.type for r in rows.rows] == [T.DOWNGRADE_SCHEDULED, T.DOWNGRADED, T.NO_OP]
    assert rows.rows[1].amount_delta == Decimal("0.00") and rows.rows[1].committed_mrr == Decimal("49.00")
    assert rows.state.scheduled_plan is None and rows.state.plan == "prod_starter"


def test_an_unknown_scheduled_price_is_unknown_never_zero():
    """Stripe's schedules name prices by id: one neither the payload nor the catalog knows leaves
    committed MRR as it was (the sync fetches the price) and is flagged, never counted as 0."""
    result = run([_downgrade_schedule("evt_1", p.ts(2026, 2, 1), to="price_unknown")], ON_PRO)
    row = only_row(result)
    assert (row.type, row.amount_delta, row.committed_mrr) == (T.UNCLASSIFIED, None, Decimal("149.00"))
    assert sorted((d.kind, d.severity) for d in result.discrepancies) == [
        ("ScheduledPriceMissing", "critical"), ("UnclassifiedStripeEvent", "warning")]
    assert result.state.scheduled_plan is None and forward_mrr(result.state) == Decimal("149.00")


# -- invoices, charges --------------------------------------------------------------------------
def test_invoice_paid_and_payment_succeeded_for_the_same_invoice_are_renewed_then_no_op():
    inv = p.invoice("in_9", attempt_count=1)
    paid = p.envelope("invoice.paid", inv, created=p.ts(2026, 3, 1), event_id="evt_b")
    succeeded = p.envelope("invoice.payment_succeeded", inv, created=p.ts(2026, 3, 1), event_id="evt_a")
    result = run([paid, succeeded], ON_PRO)
    assert [(r.stripe_event_id, r.type) for r in result.rows] == [("evt_a", T.RENEWED), ("evt_b", T.NO_OP)]
    assert all(r.amount_delta is None and r.committed_mrr == Decimal("149.00") for r in result.rows)
    assert result.state.classified_invoice_ids == ("in_9",)
    # The next batch still knows the invoice was classified.
    again = run([p.envelope("invoice.paid", inv, created=p.ts(2026, 3, 2), event_id="evt_c")], result.state)
    assert only_row(again).type is T.NO_OP


def test_second_attempt_is_payment_recovered():
    failed = p.envelope("invoice.payment_failed", p.invoice("in_9", amount_paid=0, total=14900, status="open"),
                        created=p.ts(2026, 3, 1), event_id="evt_1")
    recovered = p.envelope("invoice.payment_succeeded", p.invoice("in_9", attempt_count=2),
                           created=p.ts(2026, 3, 4), event_id="evt_2")
    rows = run([failed, recovered], ON_PRO).rows
    assert [r.type for r in rows] == [T.PAYMENT_FAILED, T.PAYMENT_RECOVERED]


def test_non_cycle_invoices_are_no_ops():
    paid = p.envelope("invoice.paid", p.invoice("in_1", billing_reason="subscription_create"),
                      created=p.ts(2026, 1, 1), event_id="evt_1")
    failed = p.envelope("invoice.payment_failed", p.invoice("in_2", billing_reason="manual", status="open"),
                        created=p.ts(2026, 1, 2), event_id="evt_2")
    assert [r.type for r in run([paid, failed], ON_PRO).rows] == [T.NO_OP, T.NO_OP]


def test_charge_refunded_is_payment_refunded():
    ev = p.envelope("charge.refunded", p.charge(), created=p.ts(2026, 3, 5), event_id="evt_1")
    row = only_row(run([ev], ON_PRO))
    assert row.type is T.PAYMENT_REFUNDED and row.amount_delta is None and row.currency == "CHF"


def test_invoice_amounts_clamp_when_taxes_exceed_what_was_paid():
    inv = p.invoice(amount_paid=1000, total=1000, taxes=1611)
    amounts = invoice_amounts(inv, CURRENT_API_VERSION)
    assert amounts.amount_excluding_tax == Decimal("0.00")
    assert amounts.tax == Decimal("16.11")
    assert amounts.clamped is True
    assert amounts.total == Decimal("10.00") and amounts.amount_paid == Decimal("10.00")
    legacy = invoice_amounts(p.to_legacy(p.envelope("invoice.paid", inv, created=1, event_id="e"))["data"]["object"],
                             LEGACY_API_VERSION)
    assert (legacy.amount_excluding_tax, legacy.tax, legacy.clamped) == (Decimal("0.00"), Decimal("16.11"), True)


def test_invoice_amounts_regular_invoice():
    inv = p.invoice(amount_paid=16107, taxes=1207, paid_at=p.ts(2026, 3, 1), starting_balance=-2000,
                    ending_balance=0)
    amounts = invoice_amounts(inv, CURRENT_API_VERSION)
    assert (amounts.amount_excluding_tax, amounts.tax, amounts.clamped) == (Decimal("149.00"), Decimal("12.07"),
                                                                           False)
    assert amounts.amount_from_credit == Decimal("20.00")
    assert amounts.paid_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert amounts.subscription_id == p.SUBSCRIPTION and amounts.currency == "CHF"
    assert invoice_amounts(inv, "2099-01-01.future") == amounts  # read by shape, not by label
    with pytest.raises(UnreadablePayload) as info:
        invoice_amounts({**inv, "currency": "chfchfchfc"})
    assert info.value.field == "data.object.currency"


def test_clamped_paid_invoice_raises_a_warning_discrepancy():
    ev = p.envelope("invoice.paid", p.invoice(amount_paid=1000, total=1000, taxes=1611),
                    created=p.ts(2026, 3, 1), event_id="evt_1")
    result = run([ev], ON_PRO)
    assert [(d.kind, d.severity) for d in result.discrepancies] == [("AmountExcludingTaxClamped", "warning")]


# -- customers, payment methods -----------------------------------------------------------------
def test_customer_and_payment_method_events():
    events = [
        p.envelope("customer.created", p.customer(), created=p.ts(2026, 1, 1), event_id="evt_1"),
        p.envelope("customer.updated", p.customer(), created=p.ts(2026, 1, 2), event_id="evt_2",
                   previous={"email": "old@example.com"}),
        p.envelope("customer.updated", p.customer(), created=p.ts(2026, 1, 3), event_id="evt_3",
                   previous={"invoice_settings": {"default_payment_method": None}}),
        p.envelope("customer.tax_id.created", {"id": "txi_1", "object": "tax_id", "customer": p.CUSTOMER,
                                               "type": "ch_vat", "value": "CHE-123.456.789 MWST"},
                   created=p.ts(2026, 1, 4), event_id="evt_4"),
        p.envelope("payment_method.attached", p.payment_method(), created=p.ts(2026, 1, 5), event_id="evt_5"),
    ]
    result = run(events)  # no currency known anywhere: these are still recorded
    assert [r.type for r in result.rows] == [T.BILLING_INFO_ADDED, T.BILLING_INFO_UPDATED, T.NO_OP,
                                             T.BILLING_INFO_UPDATED, T.PAYMENT_METHOD_UPDATED]
    assert all(r.currency is None and r.committed_mrr == 0 and r.amount_delta is None for r in result.rows)
    assert result.skipped_event_ids == ()


@pytest.mark.parametrize("touched", ["address", "email", "name", "tax_ids"])
def test_customer_updated_billing_fields(touched):
    ev = p.envelope("customer.updated", p.customer(currency="eur"), created=p.ts(2026, 1, 2), event_id="evt_1",
                    previous={touched: None})
    row = only_row(run([ev], ON_PRO))
    assert row.type is T.BILLING_INFO_UPDATED and row.currency == "EUR"


# -- prices, currencies, versions, ordering ------------------------------------------------------
def test_yearly_price_is_normalised_to_a_month():
    yearly = p.price("price_pro_yearly", "prod_pro", 118800, interval="year")
    row = only_row(run([p.sub_created(p.subscription(yearly), created=p.ts(2026, 1, 1), event_id="evt_1")]))
    assert row.new_amount == Decimal("99.00")


def test_monthly_normalisation():
    assert monthly_amount(118800, 1, "year", 1, "CHF") == Decimal("99.00")
    assert monthly_amount(1000, 1, "week", 1, "CHF") == Decimal("43.33")
    assert monthly_amount(4900, 3, "month", 1, "CHF") == Decimal("147.00")
    assert monthly_amount(30000, 1, "month", 3, "CHF") == Decimal("100.00")
    assert monthly_amount(1200, 1, "month", 1, "JPY") == Decimal("1200.00")
    assert monthly_amount(None, 1, "month", 1, "CHF") is None


def test_currency_is_upper_case_from_payload_else_from_state():
    ev = p.sub_created(p.subscription(p.price(currency="eur")), created=p.ts(2026, 1, 1), event_id="evt_1")
    assert only_row(run([ev])).currency == "EUR"
    pm = p.envelope("payment_method.attached", p.payment_method(), created=p.ts(2026, 1, 1), event_id="evt_2")
    assert only_row(run([pm], ON_PRO)).currency == "CHF"


def test_event_with_no_currency_anywhere_is_skipped():
    obj = p.subscription(PRO)
    obj["currency"] = None
    obj["items"]["data"][0]["price"]["currency"] = None
    ev = p.sub_created(obj, created=p.ts(2026, 1, 1), event_id="evt_1")
    result = run([ev])
    assert result.rows == () and result.skipped_event_ids == ("evt_1",)
    assert result.state == SubscriptionState()


@pytest.mark.parametrize("label", ["2099-01-01.future", "2026-11-18.endive", "2025-04-30.basil",
                                   "2020-08-27; orders_beta=v3", "", None, "not a date"])
def test_any_api_version_label_is_read_by_shape(label):
    ev = p.sub_created(p.subscription(PRO), created=p.ts(2026, 1, 1), event_id="evt_1")
    ev["api_version"] = label
    row = only_row(run([ev]))
    assert (row.type, row.new_amount, row.currency) == (T.CREATED, Decimal("149.00"), "CHF")


@pytest.mark.parametrize(("label", "shape"), [
    ("2016-07-06", "2016"), ("2017-08-15", "2016"), ("2020-03-02", "2016"), ("2020-08-27", "2020"),
    ("2020-08-27; orders_beta=v3", "2020"), ("2024-06-20", "2020"), ("2025-02-24.acacia", "2020"),
    ("2025-03-31.basil", "2025"), ("2025-04-30.basil", "2025"), ("2026-11-18.endive", "2025"),
    ("2099-01-01.future", "2025"), (None, "2025"), ("garbage", "2025"),
])
def test_labels_are_parsed_by_their_date(label, shape):
    assert shape_of(label) == shape


def test_a_payload_without_what_its_type_needs_fails_critical_naming_the_field():
    sub = p.subscription(PRO)
    del sub["items"]
    ev = p.sub_created(sub, created=p.ts(2026, 1, 1), event_id="evt_1")
    ev["api_version"] = "2031-01-01.zinnia"
    later = p.cancel_toggle(PRO, True, created=p.ts(2026, 1, 2), event_id="evt_2")
    result = run([ev, later], ON_PRO)
    assert result.unreadable_event_ids == ("evt_1",)
    assert [r.stripe_event_id for r in result.rows] == ["evt_2"]  # the later event still classifies
    [d] = result.discrepancies
    assert (d.kind, d.severity, d.stripe_event_id, d.field) == (
        "UnreadablePayload", "critical", "evt_1", "data.object.items")
    assert "2031-01-01.zinnia" in d.message
    with pytest.raises(UnreadablePayload) as info:
        read_event(ev)
    assert info.value.field == "data.object.items"


def test_an_event_whose_object_is_not_of_its_type_is_unreadable():
    ev = p.envelope("invoice.paid", p.charge(), created=p.ts(2026, 3, 5), event_id="evt_1")
    with pytest.raises(UnreadablePayload) as info:
        read_event(ev)
    assert info.value.field == "data.object"


def test_unrecognised_types_are_not_rows():
    ev = p.envelope("invoice.created", p.invoice(status="draft"), created=p.ts(2026, 1, 1), event_id="evt_1")
    result = run([ev], ON_PRO)
    assert result.rows == () and result.ignored_event_ids == ("evt_1",)


def test_events_are_ordered_by_created_then_id_and_deduplicated():
    a = p.cancel_toggle(PRO, True, created=p.ts(2026, 2, 1), event_id="evt_b")
    b = p.cancel_toggle(PRO, False, created=p.ts(2026, 2, 1), event_id="evt_c")
    c = p.sub_updated(p.subscription(PRO), {"latest_invoice": None}, created=p.ts(2026, 2, 1), event_id="evt_a")
    result = run([b, a, c, a], ON_PRO)
    assert [r.stripe_event_id for r in result.rows] == ["evt_a", "evt_b", "evt_c"]
    assert [r.type for r in result.rows] == [T.NO_OP, T.CANCELLED, T.REACTIVATED]


def test_same_input_gives_byte_identical_output():
    events = [
        p.sub_created(p.subscription(PRO), created=p.ts(2026, 1, 1), event_id="evt_1"),
        _downgrade_schedule("evt_2", p.ts(2026, 1, 10)),
        p.cancel_toggle(PRO, True, created=p.ts(2026, 1, 20), event_id="evt_3"),
    ]
    first = run(events)
    second = run(list(reversed(events)))
    assert repr(first) == repr(second)


# -- API versions: 2017-08-15 reads the same as today's shape --------------------------------------
def _life_story():
    return [
        p.envelope("customer.created", p.customer(currency="chf"), created=p.ts(2026, 1, 1), event_id="evt_01"),
        p.sub_created(p.subscription(STARTER), created=p.ts(2026, 1, 1, 12, 0, 1), event_id="evt_02"),
        p.envelope("invoice.paid", p.invoice("in_1", billing_reason="subscription_create", amount_paid=4900),
                   created=p.ts(2026, 1, 1, 12, 0, 2), event_id="evt_03"),
        p.plan_change(STARTER, PRO, created=p.ts(2026, 1, 10), event_id="evt_04"),
        p.envelope("invoice.payment_failed", p.invoice("in_2", amount_paid=0, total=14900, status="open"),
                   created=p.ts(2026, 2, 10), event_id="evt_05"),
        p.sub_updated(p.subscription(PRO, status="past_due"), {"status": "active"}, created=p.ts(2026, 2, 10, 13),
                      event_id="evt_06"),
        p.envelope("invoice.payment_succeeded", p.invoice("in_2", attempt_count=2, taxes=1207),
                   created=p.ts(2026, 2, 12), event_id="evt_07"),
        p.envelope("invoice.paid", p.invoice("in_2", attempt_count=2, taxes=1207),
                   created=p.ts(2026, 2, 12), event_id="evt_08"),
        _downgrade_schedule("evt_09", p.ts(2026, 2, 20)),
        p.envelope("subscription_schedule.released", p.schedule(
            [[("price_pro_monthly", 1)], [("price_starter_monthly", 1)]], status="released"),
            created=p.ts(2026, 2, 25), event_id="evt_10"),
        p.plan_change(PRO, PRO, quantity=2, created=p.ts(2026, 3, 1), event_id="evt_11"),
        p.envelope("charge.refunded", p.charge(), created=p.ts(2026, 3, 2), event_id="evt_12"),
        p.cancel_toggle(PRO, True, created=p.ts(2026, 3, 15), event_id="evt_13"),
        p.sub_deleted(p.subscription(PRO, cancel_at_period_end=True), created=p.ts(2026, 4, 10), event_id="evt_14"),
    ]


def test_old_2017_shape_is_classified_the_same_as_the_current_shape():
    current = _life_story()
    legacy = [p.to_legacy(ev) for ev in current]
    assert {ev["api_version"] for ev in legacy} == {LEGACY_API_VERSION}
    got_current, got_legacy = run(current), run(legacy)
    assert [r.type for r in got_current.rows] == [
        T.BILLING_INFO_ADDED, T.CREATED, T.NO_OP, T.UPGRADED, T.PAYMENT_FAILED, T.PAST_DUE, T.PAYMENT_RECOVERED,
        T.NO_OP, T.DOWNGRADE_SCHEDULED, T.DOWNGRADE_CANCELLED, T.UPGRADED, T.PAYMENT_REFUNDED, T.CANCELLED,
        T.EXPIRED,
    ]
    assert got_legacy.rows == got_current.rows
    assert got_legacy.state == got_current.state
    assert got_legacy.discrepancies == got_current.discrepancies == ()
    assert [r.committed_mrr for r in got_current.rows if r.type in DELTA_TYPES] == [
        Decimal("49.00"), Decimal("149.00"), Decimal("49.00"), Decimal("149.00"), Decimal("298.00"),
        Decimal("0.00"), Decimal("0.00")]


# A real localstripe (2017-08-15) plan change, trimmed to the fields that matter.
_LOCALSTRIPE_PLAN = {"active": True, "amount": 1000, "billing_scheme": "per_unit", "currency": "eur",
                     "id": "price_oubJH7zWzhzHS3", "interval": "month", "interval_count": 1, "object": "plan",
                     "product": "prod_3DDyK6sK7RD7JP", "usage_type": "licensed"}
_LOCALSTRIPE_UPDATE = {
    "api_version": "2017-08-15", "created": 1795235175, "id": "evt_VMsXweKOrJw7We", "livemode": False,
    "object": "event", "type": "customer.subscription.updated",
    "data": {
        "object": {
            "cancel_at_period_end": False, "current_period_end": 1797827175, "customer": "cus_Hdu3GOMIbymCIV",
            "id": "sub_188NkcEqvIg51K", "object": "subscription", "status": "active", "quantity": 1,
            "latest_invoice": "in_ETMSYWAdYF98gn",
            "items": {"object": "list", "data": [{
                "id": "si_dsAl2KCWiBBhwV", "object": "subscription_item", "quantity": 1,
                "plan": {**_LOCALSTRIPE_PLAN, "amount": 3000, "id": "price_QaPPePYoz8CO0r"}}]},
            "plan": {**_LOCALSTRIPE_PLAN, "amount": 3000, "id": "price_QaPPePYoz8CO0r"},
        },
        "previous_attributes": {
            "items": {"object": "list", "data": [{
                "id": "si_l1Mc1OMz65oGjN", "object": "subscription_item", "quantity": 1,
                "plan": _LOCALSTRIPE_PLAN}]},
            "plan": _LOCALSTRIPE_PLAN,
        },
    },
}


def test_reads_a_real_localstripe_envelope():
    ev = read_event(_LOCALSTRIPE_UPDATE)
    assert (ev.price_id, ev.plan_key, ev.monthly_amount, ev.currency) == (
        "price_QaPPePYoz8CO0r", "prod_3DDyK6sK7RD7JP", Decimal("30.00"), "EUR")
    assert (ev.previous_price_id, ev.previous_monthly_amount) == ("price_oubJH7zWzhzHS3", Decimal("10.00"))
    assert ev.current_period_end == datetime.fromtimestamp(1797827175, UTC)
    state = SubscriptionState(plan="prod_3DDyK6sK7RD7JP", price=Decimal("10.00"), currency="EUR",
                              committed_mrr=Decimal("10.00"), status="active")
    row = only_row(classify([_LOCALSTRIPE_UPDATE], state, Catalog()))
    # Same product, dearer price: an upgrade within the plan.
    assert (row.type, row.amount_delta, row.currency) == (T.UPGRADED, Decimal("20.00"), "EUR")


def test_reader_fields_of_the_current_shape():
    ev = read_event(p.plan_change(PRO, BUSINESS, created=p.ts(2026, 2, 1), event_id="evt_1"))
    assert ev.api_version == CURRENT_API_VERSION
    assert ev.created == datetime(2026, 2, 1, 12, tzinfo=UTC)
    assert (ev.customer_id, ev.subscription_id, ev.status) == (p.CUSTOMER, p.SUBSCRIPTION, "active")
    assert (ev.price_id, ev.plan_key, ev.monthly_amount) == ("price_business_monthly", "prod_business",
                                                             Decimal("299.00"))
    assert (ev.previous_price_id, ev.previous_lines[0].plan_key, ev.previous_monthly_amount) == (
        "price_pro_monthly", "prod_pro", Decimal("149.00"))
    assert ev.previous_keys == ("items",) and not ev.cancel_changed
    inv = read_event(p.envelope("invoice.paid", p.invoice("in_7", attempt_count=3), created=1, event_id="e"))
    assert (inv.invoice_id, inv.billing_reason, inv.attempt_count, inv.subscription_id) == (
        "in_7", "subscription_cycle", 3, p.SUBSCRIPTION)
    sched = read_event(_downgrade_schedule("evt_2", 1))
    assert [(ph.price_id, ph.monthly_amount) for ph in sched.schedule_phases] == [
        ("price_pro_monthly", None), ("price_starter_monthly", None)]
    assert sched.schedule_status == "active"
