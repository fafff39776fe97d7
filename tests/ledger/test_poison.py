"""A poisoned event never blocks its account (DOMAIN §3): a value the ledger cannot store (an
amount that is a float, NaN, infinite or beyond a Money column, a currency that is not a code, an
id with a lone surrogate) fails that event alone with a Critical discrepancy naming the field, and
the account's later events still replay. A negative invoice total is a real credit, not poison."""
from __future__ import annotations

from decimal import Decimal

import pytest

from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Discrepancy, StripeEvent
from tests.stripe import helpers as h

ACC, CUS, SUB = "acc-poison", "cus_poison", "sub_poison"
BASIC = h.price("price_basic", 4900, product="basic")


def _send(client, event) -> None:
    body = event if isinstance(event, bytes) else h.encode(event)
    resp = h.deliver(client, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)


def _state(event_id: str) -> str:
    db.session.expire_all()
    return db.session.get(StripeEvent, event_id).state


@pytest.fixture
def subscribed(client):
    _send(client, h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-01-01")))
    _send(client, h.envelope("customer.subscription.created", h.subscription(SUB, CUS, BASIC, created=h.ts("2026-01-02")),
                             h.ts("2026-01-02")))


def _invoice_body(event_id: str, raw_total: str, currency: str = "eur") -> bytes:
    """An invoice.paid whose `total` is written as raw JSON (NaN, 1e400 and 1.5 are JSON json reads)."""
    event = h.envelope("invoice.paid", h.invoice(f"in_{event_id}", CUS, SUB, amount_paid=4900, total=4900,
                                                 currency=currency, created=h.ts("2026-02-02")),
                       h.ts("2026-02-02"), event_id=event_id)
    return h.encode(event).replace(b'"total":4900', b'"total":' + raw_total.encode(), 1)


@pytest.mark.parametrize(("raw", "field"), [
    ("NaN", "data.object.total"), ("1e400", "data.object.total"), ("1.5", "data.object.total"),
    ("100000000000000000000", "data.object.total"),
])
def test_an_unstorable_amount_fails_its_event_alone(client, subscribed, raw, field):
    body = _invoice_body("evt_poison", raw)
    assert b'"total":' + raw.encode() in body
    _send(client, body)
    assert _state("evt_poison") == "failed"
    (d,) = db.session.execute(db.select(Discrepancy).where(Discrepancy.stripe_event_id == "evt_poison")).scalars()
    assert (d.kind, d.severity, d.field, d.account_id) == ("UnreadablePayload", "critical", field, ACC)
    later = h.envelope("customer.subscription.updated",
                       h.subscription(SUB, CUS, BASIC, cancel_at_period_end=True, created=h.ts("2026-01-02")),
                       h.ts("2026-02-10"), previous_attributes={"cancel_at_period_end": False})
    _send(client, later)
    assert _state(later["id"]) == "processed"
    row = db.session.execute(db.select(BillingEvent).where(BillingEvent.stripe_event_id == later["id"])).scalar_one()
    assert (row.type, row.amount_delta) == ("subscription_cancelled", Decimal("-49.0000"))


def test_a_ten_letter_currency_and_a_price_beyond_any_column_fail_naming_the_field(client, subscribed):
    _send(client, _invoice_body("evt_currency", "4900", currency="chfchfchfc"))
    huge = h.price("price_huge", 10**30, product="huge")
    upgrade = h.envelope("customer.subscription.updated", h.subscription(SUB, CUS, huge, created=h.ts("2026-01-02")),
                         h.ts("2026-02-03"), previous_attributes={"items": {"data": [{"price": BASIC}]}})
    _send(client, upgrade)
    found = dict(db.session.execute(db.select(Discrepancy.stripe_event_id, Discrepancy.field)
                                    .where(Discrepancy.kind == "UnreadablePayload")).all())
    assert found == {"evt_currency": "data.object.currency", upgrade["id"]: "data.object.unit_amount"}
    assert (_state("evt_currency"), _state(upgrade["id"])) == ("failed", "failed")


def test_a_lone_surrogate_in_an_id_fails_its_event_alone(client, subscribed):
    event = h.envelope("customer.subscription.updated", h.subscription(SUB, CUS, BASIC, created=h.ts("2026-01-02")),
                       h.ts("2026-02-04"), previous_attributes={"cancel_at_period_end": True}, event_id="evt_sur")
    body = h.encode(event).replace(b'"price_basic"', b'"price_\\ud800basic"')
    assert b"\\ud800" in body
    _send(client, body)
    assert _state("evt_sur") == "failed"
    (d,) = db.session.execute(db.select(Discrepancy).where(Discrepancy.stripe_event_id == "evt_sur")).scalars()
    assert d.field == "data.object.items (price id)"


def test_a_negative_invoice_total_is_a_credit_not_poison(client, subscribed):
    """A proration credit: Stripe marks the invoice paid with a negative total and adds it to the
    customer's credit balance. It earns nothing, owes nothing, and is no clamp."""
    credit = h.invoice("in_credit", CUS, SUB, amount_paid=0, total=-2500, billing_reason="subscription_update",
                       created=h.ts("2026-02-05"))
    event = h.envelope("invoice.paid", credit, h.ts("2026-02-05"))
    _send(client, event)
    assert _state(event["id"]) == "processed"
    pt = db.session.execute(db.select(PaymentTransaction).where(PaymentTransaction.stripe_invoice_id == "in_credit")
                            ).scalar_one()
    assert (pt.amount, pt.invoice_total, pt.amount_excluding_tax, pt.tax_amount) == (
        Decimal("0.0000"), Decimal("0.0000"), Decimal("0.0000"), Decimal("0.0000"))
    assert db.session.execute(db.select(db.func.count(Discrepancy.id))).scalar_one() == 0
