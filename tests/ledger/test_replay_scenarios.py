"""Issue 3 item 7 and 8: exact scenarios, delivered as signed events through the real webhook,
replayed in-process (no broker), asserted on the ledger, the archive and the projections."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Discrepancy, Plan, StripeEvent, Subscription
from tests.stripe import helpers as h

CUS = "cus_story"
ACC = "acc-story"
SUB = "sub_story"
BASIC = h.price("price_basic", 4900, product="basic")
PRO = h.price("price_pro", 15900, product="pro")
BUSINESS = h.price("price_business", 29900, product="business")


def rows() -> list[BillingEvent]:
    return list(db.session.execute(db.select(BillingEvent).order_by(BillingEvent.occurred_at, BillingEvent.id))
                .scalars())


def by_event(event: dict) -> BillingEvent:
    return db.session.execute(
        db.select(BillingEvent).where(BillingEvent.stripe_event_id == event["id"])).scalar_one()


def archived(event: dict) -> StripeEvent:
    db.session.expire_all()
    return db.session.get(StripeEvent, event["id"])


def current_sub() -> Subscription:
    db.session.expire_all()
    return db.session.execute(
        db.select(Subscription).where(Subscription.account_id == ACC, Subscription.is_current)).scalar_one()


def send(client, *events):
    for event in events:
        resp = h.deliver(client, event)
        assert resp.status_code == 200, resp.get_data(as_text=True)


@pytest.fixture
def subscribed(client):
    """acc-story subscribed to basic (49.00 EUR) on 2026-01-10."""
    created = h.ts("2026-01-10T08:00:00")
    events = [
        h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-01-10T07:59:00")),
        h.envelope("customer.subscription.created",
                   h.subscription(SUB, CUS, BASIC, created=created, period_end=h.ts("2026-02-10")), created),
    ]
    send(client, *events)
    return events


def _updated(price, created, *, previous, **kw):
    return h.envelope("customer.subscription.updated",
                      h.subscription(SUB, CUS, price, created=h.ts("2026-01-10T08:00:00"), **kw), created,
                      previous_attributes=previous)


def test_created_row_and_projection(subscribed):
    (info, created) = rows()
    assert (info.type, info.committed_mrr) == ("billing_info_added", Decimal("0.0000"))
    assert (created.type, created.to_plan, created.previous_amount, created.new_amount, created.amount_delta,
            created.committed_mrr, created.currency) == (
        "subscription_created", "basic", Decimal("0.0000"), Decimal("49.0000"), Decimal("49.0000"),
        Decimal("49.0000"), "EUR")
    assert created.occurred_at == datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
    sub = current_sub()
    assert (sub.stripe_subscription_id, sub.plan, sub.price_amount, sub.currency, sub.status,
            sub.cancel_at_period_end, sub.current_period_end, sub.subscribed_since) == (
        SUB, "basic", Decimal("49.0000"), "EUR", "active", False, datetime(2026, 2, 10, tzinfo=UTC),
        datetime(2026, 1, 10, 8, 0, tzinfo=UTC))
    assert created.subscription_id == sub.id
    assert {e.state for e in db.session.execute(db.select(StripeEvent)).scalars()} == {"processed"}
    assert db.session.get(Plan, "price_basic").monthly_amount == Decimal("49.0000")


def test_upgrade_payload_unit_amount_wins_over_catalog(client, subscribed):
    db.session.add(Plan(price_id="price_pro", plan_key="pro", name="Pro", monthly_amount=Decimal(159),
                        interval="month", currency="EUR"))
    db.session.commit()
    upgrade = _updated(h.price("price_pro", 14900, product="pro"), h.ts("2026-01-20"),
                       previous={"items": {"data": [{"price": BASIC}]}})
    send(client, upgrade)
    row = by_event(upgrade)
    assert (row.type, row.from_plan, row.to_plan, row.previous_amount, row.new_amount, row.amount_delta,
            row.committed_mrr) == ("subscription_upgraded", "basic", "pro", Decimal("49.0000"),
                                   Decimal("149.0000"), Decimal("100.0000"), Decimal("149.0000"))
    assert (current_sub().plan, current_sub().price_amount) == ("pro", Decimal("149.0000"))


def test_cancel_toggle_then_deletion_is_cancelled_then_expired(client, subscribed):
    cancel = _updated(BASIC, h.ts("2026-02-15"), cancel_at_period_end=True,
                      previous={"cancel_at_period_end": False})
    send(client, cancel)
    assert current_sub().cancel_at_period_end is True
    deleted = h.envelope("customer.subscription.deleted",
                         h.subscription(SUB, CUS, BASIC, status="canceled", cancel_at_period_end=True,
                                        cancellation_reason="cancellation_requested"), h.ts("2026-03-15"))
    send(client, deleted)
    c, e = by_event(cancel), by_event(deleted)
    assert (c.type, c.previous_amount, c.new_amount, c.amount_delta, c.committed_mrr) == (
        "subscription_cancelled", Decimal("49.0000"), Decimal("0.0000"), Decimal("-49.0000"), Decimal("0.0000"))
    assert c.occurred_at == datetime(2026, 2, 15, tzinfo=UTC)
    assert (e.type, e.committed_mrr, e.occurred_at) == (
        "subscription_expired", Decimal("0.0000"), datetime(2026, 3, 15, tzinfo=UTC))
    sub = current_sub()
    assert (sub.status, sub.plan, sub.price_amount, sub.cancel_at_period_end) == (
        "canceled", "free", Decimal("0.0000"), False)


def test_deletion_for_failed_payment_is_suspended(client, subscribed):
    deleted = h.envelope("customer.subscription.deleted",
                         h.subscription(SUB, CUS, BASIC, status="canceled", cancellation_reason="payment_failed"),
                         h.ts("2026-03-01"))
    send(client, deleted)
    row = by_event(deleted)
    assert (row.type, row.previous_amount, row.new_amount, row.amount_delta, row.committed_mrr) == (
        "subscription_suspended", Decimal("49.0000"), Decimal("0.0000"), Decimal("-49.0000"), Decimal("0.0000"))


def test_downgrade_scheduled_then_released(client):
    created = h.ts("2026-01-10T08:00:00")
    send(client,
         h.envelope("customer.created", h.customer(CUS, account_id=ACC), created - 60),
         h.envelope("price.created", BASIC, created - 120),
         h.envelope("customer.subscription.created", h.subscription(SUB, CUS, PRO, created=created), created))
    scheduled = h.envelope("subscription_schedule.updated",
                           h.schedule("sub_sched_1", CUS, SUB, ["price_pro", "price_basic"]), h.ts("2026-02-01"),
                           previous_attributes={"phases": []})
    send(client, scheduled)
    s = by_event(scheduled)
    assert (s.type, s.from_plan, s.to_plan, s.previous_amount, s.new_amount, s.amount_delta, s.committed_mrr) == (
        "subscription_downgrade_scheduled", "pro", "basic", Decimal("159.0000"), Decimal("49.0000"),
        Decimal("-110.0000"), Decimal("49.0000"))
    sub = current_sub()
    assert (sub.scheduled_plan, sub.scheduled_price_amount) == ("basic", Decimal("49.0000"))
    released = h.envelope("subscription_schedule.released",
                          h.schedule("sub_sched_1", CUS, SUB, ["price_pro", "price_basic"], status="released"),
                          h.ts("2026-02-03"))
    send(client, released)
    r = by_event(released)
    assert (r.type, r.from_plan, r.to_plan, r.previous_amount, r.new_amount, r.amount_delta, r.committed_mrr) == (
        "subscription_downgrade_cancelled", "basic", "pro", Decimal("49.0000"), Decimal("159.0000"),
        Decimal("110.0000"), Decimal("159.0000"))
    sub = current_sub()
    assert (sub.scheduled_plan, sub.scheduled_price_amount, sub.plan) == (None, None, "pro")


def test_downgrade_released_with_nothing_moving_has_a_null_delta(client):
    created = h.ts("2026-01-10T08:00:00")
    sched = h.schedule("sub_sched_2", CUS, SUB, ["price_pro", "price_basic"])
    send(client,
         h.envelope("customer.created", h.customer(CUS, account_id=ACC), created - 60),
         h.envelope("price.created", BASIC, created - 120),
         h.envelope("customer.subscription.created", h.subscription(SUB, CUS, PRO, created=created), created),
         h.envelope("subscription_schedule.updated", sched, h.ts("2026-02-01"), previous_attributes={"phases": []}),
         _updated(PRO, h.ts("2026-02-02"), cancel_at_period_end=True, previous={"cancel_at_period_end": False}))
    released = h.envelope("subscription_schedule.released",
                          h.schedule("sub_sched_2", CUS, SUB, ["price_pro", "price_basic"], status="released"),
                          h.ts("2026-02-03"))
    send(client, released)
    r = by_event(released)
    assert (r.type, r.previous_amount, r.new_amount, r.amount_delta, r.committed_mrr) == (
        "subscription_downgrade_cancelled", Decimal("0.0000"), Decimal("0.0000"), None, Decimal("0.0000"))


def test_invoice_with_tax_above_total_is_clamped(client, subscribed):
    paid = h.envelope("invoice.paid",
                      h.invoice("in_clamp", CUS, SUB, amount_paid=1000, total=1000, tax=1611,
                                created=h.ts("2026-02-10")), h.ts("2026-02-10"))
    send(client, paid)
    pt = db.session.execute(db.select(PaymentTransaction)).scalar_one()
    assert (pt.stripe_invoice_id, pt.status, pt.currency, pt.amount, pt.invoice_total, pt.tax_amount,
            pt.amount_excluding_tax, pt.amount_from_credit) == (
        "in_clamp", "succeeded", "EUR", Decimal("10.0000"), Decimal("10.0000"), Decimal("16.1100"),
        Decimal("0.0000"), Decimal("0.0000"))
    assert pt.date == datetime(2026, 2, 10, tzinfo=UTC)
    assert pt.subscription_id == current_sub().id
    (disc,) = db.session.execute(db.select(Discrepancy)).scalars()
    assert (disc.kind, disc.severity, disc.account_id, disc.stripe_event_id) == (
        "AmountExcludingTaxClamped", "warning", ACC, paid["id"])
    assert by_event(paid).type == "subscription_renewed"


def test_paid_and_payment_succeeded_classify_once(client, subscribed):
    inv = h.invoice("in_cycle", CUS, SUB, amount_paid=4900, total=4900, created=h.ts("2026-02-10"))
    first = h.envelope("invoice.payment_succeeded", inv, h.ts("2026-02-10T00:00:01"))
    second = h.envelope("invoice.paid", inv, h.ts("2026-02-10T00:00:02"))
    send(client, first)
    send(client, second)
    assert (by_event(first).type, by_event(second).type) == ("subscription_renewed", "no_op")


def test_refund_and_credit_note_project_onto_the_payment(client, subscribed):
    inv = h.invoice("in_r", CUS, SUB, amount_paid=4900, total=4900, created=h.ts("2026-02-10"))
    send(client, h.envelope("invoice.paid", inv, h.ts("2026-02-10")))
    refunded = h.envelope("charge.refunded", h.charge("ch_r", CUS, amount=4900, amount_refunded=4900),
                          h.ts("2026-02-12"))
    note = h.envelope("credit_note.created", h.credit_note("cn_r", CUS, "in_r", total=4900,
                                                           created=h.ts("2026-02-13")), h.ts("2026-02-13"))
    send(client, refunded, note)
    pt = db.session.execute(db.select(PaymentTransaction)).scalar_one()
    assert (pt.refunded_at, pt.refund_amount, pt.stripe_charge_id) == (
        datetime(2026, 2, 12, tzinfo=UTC), Decimal("49.0000"), "ch_r")
    assert (pt.credit_noted_at, pt.credit_note_amount, pt.credit_note_url) == (
        datetime(2026, 2, 13, tzinfo=UTC), Decimal("49.0000"), "https://credit.stripe.test/cn_r.pdf")
    assert by_event(refunded).type == "payment_refunded"
    assert archived(note).state == "processed"


def test_latest_invoice_only_update_is_one_noop(client, subscribed):
    update = _updated(BASIC, h.ts("2026-02-10"), latest_invoice="in_2", previous={"latest_invoice": "in_1"})
    send(client, update)
    matching = [r for r in rows() if r.stripe_event_id == update["id"]]
    assert [(r.type, r.committed_mrr) for r in matching] == [("no_op", Decimal("49.0000"))]


def test_redelivery_writes_no_new_row(client, subscribed):
    before = len(rows())
    send(client, subscribed[1])
    assert len(rows()) == before == 2


def test_persisted_history_seeds_committed_mrr_never_a_phantom_zero(client):
    when = datetime(2026, 1, 1, tzinfo=UTC)
    db.session.add(Account(id=ACC, name="Story AG", stripe_customer_id=CUS))
    db.session.flush()
    sub = Subscription(account_id=ACC, stripe_subscription_id=SUB, plan="business", price_amount=Decimal(299),
                       currency="EUR", status="active", subscribed_since=when)
    db.session.add(sub)
    db.session.flush()
    db.session.add(BillingEvent(account_id=ACC, subscription_id=sub.id, stripe_event_id="evt_history",
                                type="subscription_created", to_plan="business", previous_amount=Decimal(0),
                                new_amount=Decimal(299), amount_delta=Decimal(299),
                                committed_mrr=Decimal(299), currency="EUR", occurred_at=when))
    db.session.commit()
    cancel = h.envelope("customer.subscription.updated",
                        h.subscription(SUB, CUS, BUSINESS, cancel_at_period_end=True), h.ts("2026-02-15"),
                        previous_attributes={"cancel_at_period_end": False})
    send(client, cancel)
    row = by_event(cancel)
    assert (row.type, row.previous_amount, row.new_amount, row.amount_delta, row.committed_mrr) == (
        "subscription_cancelled", Decimal("299.0000"), Decimal("0.0000"), Decimal("-299.0000"),
        Decimal("0.0000"))


# -- item 8: bad input loses nothing -------------------------------------------------------------
def test_event_without_any_currency_is_archived_and_skipped(client):
    no_currency = dict(h.price("price_x", 4900), currency=None)
    sub = h.subscription("sub_nc", CUS, no_currency, created=h.ts("2026-01-10"))
    sub["currency"] = None
    event = h.envelope("customer.subscription.created", sub, h.ts("2026-01-10"))
    send(client, h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-01-09")), event)
    row = archived(event)
    assert (row.state, row.account_id) == ("ignored", ACC)
    assert row.error
    assert [r.stripe_event_id for r in rows() if r.stripe_event_id == event["id"]] == []


def test_a_label_newer_than_any_known_replays_by_its_shape(client):
    send(client, h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-01-09")))
    event = h.envelope("customer.subscription.created", h.subscription(SUB, CUS, BASIC, created=h.ts("2026-01-10")),
                       h.ts("2026-01-10"), api_version="2099-01-01.future")
    send(client, event)
    assert (archived(event).state, archived(event).api_version) == ("processed", "2099-01-01.future")
    assert (by_event(event).type, by_event(event).new_amount) == ("subscription_created", Decimal("49.0000"))


def test_an_unreadable_payload_fails_flags_drift_and_blocks_nothing(client, runner):
    send(client, h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-01-09")))
    sub = h.subscription(SUB, CUS, BASIC, created=h.ts("2026-01-10"))
    del sub["items"]
    event = h.envelope("customer.subscription.created", sub, h.ts("2026-01-10"), api_version="2031-01-01.zinnia")
    send(client, event)
    row = archived(event)
    assert row.state == "failed" and "data.object.items" in row.error
    assert db.session.execute(
        db.select(BillingEvent).where(BillingEvent.stripe_event_id == event["id"])).first() is None
    (disc,) = db.session.execute(db.select(Discrepancy).where(Discrepancy.stripe_event_id == event["id"])).scalars()
    assert (disc.kind, disc.severity, disc.account_id, disc.field) == (
        "UnreadablePayload", "critical", ACC, "data.object.items")
    # The account is flagged (a placeholder free subscription, no Stripe id: nothing else was made).
    (current,) = db.session.execute(db.select(Subscription).where(Subscription.account_id == ACC)).scalars()
    assert (current.stripe_subscription_id, current.plan, current.drift_detected) == (None, "free", True)
    # A later event of the account still replays; the failed one is not read again.
    later = h.envelope("customer.updated", h.customer(CUS, account_id=ACC, name="Acme Holding"), h.ts("2026-01-11"),
                       previous_attributes={"name": "Acme"})
    send(client, later)
    assert archived(later).state == "processed" and by_event(later).type == "billing_info_updated"
    assert archived(event).state == "failed"
    from backoffice.ledger import services
    assert services.replay_account(ACC).events == 0  # nothing pending: the failed event is not re-read
    assert db.session.execute(db.select(db.func.count(Discrepancy.id))).scalar_one() == 1
    # A rebuild names it and exits 1; `ledger replay` reports it and exits 0; --failed reads it again.
    result = runner.invoke(args=["ledger", "rebuild", "--account", ACC])
    assert result.exit_code == 1 and f"FAILED {event['id']}: " in result.output
    result = runner.invoke(args=["ledger", "replay", "--failed"])
    assert result.exit_code == 0, result.output
    assert f"UNREADABLE {ACC}: 1 events could not be read" in result.output
    assert db.session.execute(db.select(db.func.count(Discrepancy.id))).scalar_one() == 1


def test_events_out_of_order_lose_nothing(client):
    created = h.ts("2026-01-10T08:00:00")
    story = [
        h.envelope("customer.created", h.customer(CUS, account_id=ACC), created - 60),
        h.envelope("customer.subscription.created", h.subscription(SUB, CUS, BASIC, created=created), created),
        _updated(PRO, created + 86400, previous={"items": {"data": [{"price": BASIC}]}}),
        h.envelope("invoice.paid", h.invoice("in_o", CUS, SUB, amount_paid=15900, total=15900,
                                             created=created + 2 * 86400), created + 2 * 86400),
    ]
    send(client, *reversed(story))
    db.session.expire_all()
    states = {e.id: e.state for e in db.session.execute(db.select(StripeEvent)).scalars()}
    assert states == {e["id"]: "processed" for e in story}
    assert {r.stripe_event_id for r in rows()} == {e["id"] for e in story}
    assert db.session.execute(db.select(PaymentTransaction.status)).scalar_one() == "succeeded"


def test_failing_replay_still_answers_200_and_retries_later(client, monkeypatch):
    from backoffice.ledger import replay_adapter

    def boom(*args, **kwargs):
        raise RuntimeError("classifier exploded")

    monkeypatch.setattr(replay_adapter, "classify", boom)
    event = h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-01-09"))
    resp = h.deliver(client, event)
    assert resp.status_code == 200
    row = archived(event)
    assert (row.state, row.error) == ("pending", "RuntimeError: classifier exploded")
    monkeypatch.undo()
    from backoffice.ledger import services
    report = services.replay_account(ACC)
    assert (report.processed, report.rows_appended) == (1, 1)
    assert archived(event).state == "processed"


def test_a_late_older_event_replays_the_whole_archive_in_stripes_order(viewer_client, subscribed):
    """basic → business (day 2) arrives after business → pro (day 3) was replayed: the account's
    whole archive is replayed from the empty state. The late row is what delivery in Stripe's
    order writes; the stored day-3 row, classified without it, is superseded by its corrected
    row (and kept as the audit trail, naming the late event); the projection is day 3's. The
    account's billing-events tab lists current rows only and shows the correction."""
    from backoffice.ledger import services

    client = viewer_client

    day = 86400
    start = h.ts("2026-01-10T08:00:00")
    to_business = _updated(BUSINESS, start + 2 * day, previous={"items": {"data": [{"price": BASIC}]}})
    to_pro = _updated(PRO, start + 3 * day, previous={"items": {"data": [{"price": BUSINESS}]}})
    send(client, to_pro)
    stored = by_event(to_pro)
    # Classified against the live state (basic, 49.00): the payload names business as before.
    assert (stored.type, stored.from_plan, stored.to_plan, stored.previous_amount, stored.new_amount,
            stored.amount_delta, stored.committed_mrr) == (
        "subscription_downgraded", "business", "pro", Decimal("49.0000"), Decimal("159.0000"),
        Decimal("110.0000"), Decimal("159.0000"))
    stored_id = stored.id
    send(client, to_business)

    late = by_event(to_business)
    assert (late.type, late.from_plan, late.to_plan, late.previous_amount, late.new_amount, late.amount_delta,
            late.committed_mrr, late.occurred_at) == (
        "subscription_upgraded", "basic", "business", Decimal("49.0000"), Decimal("299.0000"),
        Decimal("250.0000"), Decimal("299.0000"), datetime(2026, 1, 12, 8, 0, tzinfo=UTC))
    db.session.expire_all()
    assert [(r.stripe_event_id, r.type, r.amount_delta, r.superseded_at is None) for r in rows()] == [
        (subscribed[0]["id"], "billing_info_added", None, True),
        (subscribed[1]["id"], "subscription_created", Decimal("49.0000"), True),
        (to_business["id"], "subscription_upgraded", Decimal("250.0000"), True),
        (to_pro["id"], "subscription_downgraded", Decimal("110.0000"), False),  # as stored, superseded
        (to_pro["id"], "subscription_downgraded", Decimal("-140.0000"), True),  # the correction
    ]
    superseded = db.session.get(BillingEvent, stored_id)
    correction = db.session.execute(db.select(BillingEvent).where(
        BillingEvent.stripe_event_id == to_pro["id"], BillingEvent.current())).scalar_one()
    assert superseded.superseded_by == correction.id and correction.previous_amount == Decimal("299.0000")
    assert superseded.superseded_because == to_business["id"]  # the event that arrived late
    tab = client.get(f"/accounts/{ACC}/ledger")
    assert tab.status_code == 200
    html = tab.get_data(as_text=True)
    assert html.count('data-type="subscription_downgraded"') == 1  # the current row only
    assert "−€140.00" in html and "+€110.00" not in html
    assert 'data-corrections="1"' in html and "1 row of this account was corrected" in html
    page = client.get(f"/accounts/{ACC}/ledger/corrections")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'data-event="{to_pro["id"]}"' in html and f"{to_business['id']} arrived late" in html
    assert "+€110.00" in html and "−€140.00" in html  # as it was, and as it is now
    assert {e.id: e.state for e in db.session.execute(db.select(StripeEvent)).scalars()} == {
        e["id"]: "processed" for e in [*subscribed, to_business, to_pro]}
    sub = current_sub()
    assert (sub.plan, sub.price_amount, sub.status) == ("pro", Decimal("159.0000"), "active")
    # A rebuild now agrees with every current row.
    report = services.rebuild([ACC])
    assert (report.differences, report.rows_corrected, report.rows_appended) == ([], 0, 0)


def test_refunds_find_their_payment_in_the_same_replay(client, subscribed, monkeypatch):
    """Invoices and the refunds of their charges archived together, replayed in one batch: a
    refund whose charge names no invoice takes the latest unrefunded payment of the same amount
    (not one already refunded in the batch); a refund of a known charge id takes its payment."""
    from backoffice.ledger import drain, services

    monkeypatch.setattr(drain, "request_replay", lambda account_id: None)  # archive only
    first = h.invoice("in_a", CUS, SUB, amount_paid=4900, total=4900, created=h.ts("2026-02-10"))
    second = h.invoice("in_b", CUS, SUB, amount_paid=4900, total=4900, created=h.ts("2026-03-10"))
    second["charge"] = "ch_b"
    send(client,
         h.envelope("invoice.paid", first, h.ts("2026-02-10")),
         h.envelope("invoice.paid", second, h.ts("2026-03-10")),
         h.envelope("charge.refunded", h.charge("ch_x", CUS, amount=4900, amount_refunded=4900), h.ts("2026-03-12")),
         h.envelope("charge.refunded", h.charge("ch_y", CUS, amount=4900, amount_refunded=4900), h.ts("2026-03-13")),
         h.envelope("charge.refunded", h.charge("ch_b", CUS, amount=4900, amount_refunded=2000), h.ts("2026-03-14")))
    reports = services.replay_pending()
    assert [r.error for r in reports] == [None]
    db.session.expire_all()
    got = {pt.stripe_invoice_id: (pt.stripe_charge_id, pt.refunded_at, pt.refund_amount)
           for pt in db.session.execute(db.select(PaymentTransaction)).scalars()}
    # ch_x: the latest unrefunded 49.00 payment is in_b (which keeps its own charge id ch_b);
    # ch_y: in_a, in_b being refunded already; ch_b: in_b by its charge id (the amount refunded
    # is the charge's latest, the refund time the first).
    assert got == {"in_b": ("ch_b", datetime(2026, 3, 12, tzinfo=UTC), Decimal("20.0000")),
                   "in_a": ("ch_y", datetime(2026, 3, 13, tzinfo=UTC), Decimal("49.0000"))}


def _story_of_two_subscriptions(account: str, customer: str) -> list[dict]:
    day = 86400
    t0 = h.ts("2026-01-10T08:00:00")
    first = h.subscription(f"sub_first_{account}", customer, BASIC, created=t0)
    second = h.subscription(f"sub_second_{account}", customer, PRO, created=t0 + 20 * day)
    return [
        h.envelope("customer.created", h.customer(customer, account_id=account), t0 - 60),
        h.envelope("customer.subscription.created", first, t0),
        h.envelope("payment_method.attached", {"id": f"pm_{account}", "object": "payment_method",
                                               "customer": customer, "type": "card"}, t0 + 60),
        h.envelope("customer.updated", h.customer(customer, account_id=account, name="Acme Holding"), t0 + day,
                   previous_attributes={"name": "Acme AG"}),
        h.envelope("customer.subscription.deleted", dict(first, status="canceled"), t0 + 10 * day),
        h.envelope("customer.subscription.created", second, t0 + 20 * day),
        h.envelope("customer.updated", h.customer(customer, account_id=account, name="Acme Group"), t0 + 21 * day,
                   previous_attributes={"name": "Acme Holding"}),
    ]


def _links(account: str) -> list[str | None]:
    """The subscription each of the account's ledger rows belongs to, in Stripe's order, named
    without the account's own prefix."""
    db.session.expire_all()
    stripe_id = {s.id: s.stripe_subscription_id for s in db.session.execute(db.select(Subscription)).scalars()}
    linked = [stripe_id.get(r.subscription_id) for r in rows() if r.account_id == account]
    return [s.replace(f"_{account}", "") if s else None for s in linked]


def test_customer_rows_link_to_the_same_subscription_however_delivery_batched_them(client):
    """A customer's events belong to the subscription its events named last before them (none
    before the first): the same whether each event was replayed on its own (the webhook) or the
    whole story in one batch (a catch-up), so identical archives give identical ledgers."""
    from backoffice.ledger import archive, services

    send(client, *_story_of_two_subscriptions("acc-a", "cus_a"))
    one_by_one = _links("acc-a")
    assert one_by_one == [None, "sub_first", "sub_first", "sub_first", "sub_first", "sub_second", "sub_second"]
    for event in _story_of_two_subscriptions("acc-b", "cus_b"):  # the same story, replayed in one batch
        assert archive.archive_event(h.encode(event), event).outcome == "stored"
    services.replay_pending()
    assert _links("acc-b") == one_by_one


def test_a_tax_id_event_is_replayed_into_billing_info_updated(client, subscribed):
    """customer.tax_id.* are among the types the replayer reads (archive.HANDLED_TYPES, the list
    `backoffice stripe connect` subscribes the endpoint to), not archived as ignored."""
    tax_id = {"id": "txi_story", "object": "tax_id", "customer": CUS, "type": "ch_vat",
              "value": "CHE-123.456.789 MWST", "country": "CH", "created": h.ts("2026-01-12")}
    event = h.envelope("customer.tax_id.created", tax_id, h.ts("2026-01-12T09:00:00"))
    send(client, event)
    assert (archived(event).state, archived(event).account_id) == ("processed", ACC)
    row = by_event(event)
    assert (row.type, row.account_id, row.committed_mrr, row.occurred_at) == (
        "billing_info_updated", ACC, Decimal("49.0000"), datetime(2026, 1, 12, 9, 0, tzinfo=UTC))
