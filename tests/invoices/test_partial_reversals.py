"""A credit note or refund takes back the part it credits (issue 22 part 5, DOMAIN §3).

The rule: a reversal reduces net revenue by the amount it credits (a credit note's total, else
the refund's amount) less that amount's VAT share, pro rata to the invoice's ex-VAT and VAT
amounts, rounded half up to the currency's minor unit, never more than the invoice's ex-VAT; an
unknown amount takes back all of it. Before, any credit note or refund dropped the whole invoice.
The invoice list shows a reversal's own ex-VAT, VAT and total, signed, so every row adds up."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from backoffice.accounts.queries import lifetime_value
from backoffice.dashboard import queries as dashboard
from backoffice.dashboard.queries import Window
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.readers import reversed_excluding_tax
from tests.conftest import IS_POSTGRES
from tests.stripe import helpers as h

CUS, ACC, SUB = "cus_parts", "acc-parts", "sub_parts"
BASIC = h.price("price_basic", 4900, product="basic")


def send(client, *events):
    for event in events:
        assert h.deliver(client, event).status_code == 200


@pytest.fixture
def reversed_in_parts(client):
    """Three paid invoices: 108.10 (100.00 + 8.10 VAT) half credit-noted (54.05); 49.00 (no VAT)
    half refunded (24.50); 29.00 credit-noted in full."""
    created = h.ts("2026-01-10T08:00:00")
    send(client,
         h.envelope("customer.created", h.customer(CUS, account_id=ACC), created - 60),
         h.envelope("customer.subscription.created", h.subscription(SUB, CUS, BASIC, created=created), created))
    for number, (total, tax, day) in enumerate([(10810, 810, "2026-02-10"), (4900, 0, "2026-03-10"),
                                                (2900, 0, "2026-04-10")], start=1):
        invoice = h.invoice(f"in_{number}", CUS, SUB, amount_paid=total, total=total, tax=tax, created=h.ts(day))
        send(client, h.envelope("invoice.paid", invoice, h.ts(day)))
    send(client,
         h.envelope("credit_note.created", h.credit_note("cn_1", CUS, "in_1", total=5405, created=h.ts("2026-02-15")),
                    h.ts("2026-02-15")),
         h.envelope("charge.refunded", h.charge("ch_2", CUS, amount=4900, amount_refunded=2450, invoice_id="in_2"),
                    h.ts("2026-03-12")),
         h.envelope("credit_note.created", h.credit_note("cn_3", CUS, "in_3", total=2900, created=h.ts("2026-04-11")),
                    h.ts("2026-04-11")))


def test_each_reversal_takes_back_its_part_to_the_cent(reversed_in_parts):
    taken = dict(db.session.execute(db.select(PaymentTransaction.stripe_invoice_id,
                                              PaymentTransaction.reversed_excluding_tax)).all())
    assert taken == {"in_1": D("50.00"), "in_2": D("24.50"), "in_3": D("29.00")}
    # Gross 100.00 + 49.00 + 29.00 = 178.00; taken back 50.00 + 24.50 + 29.00 = 103.50.
    assert dashboard.net_revenue() == D("74.50")
    window = Window.ending(7, datetime(2026, 5, 1, tzinfo=UTC))
    assert dashboard.revenue_trend(window).last == D("74.50")
    assert lifetime_value(ACC) == D("74.50")
    if IS_POSTGRES:  # the triggers' summary is what a rebuild from the payments gives
        db.session.execute(db.text("SELECT dashboard_rebuild_summaries()"))
        assert dashboard.net_revenue() == D("74.50")


def test_the_trend_takes_each_part_back_on_its_day(reversed_in_parts):
    window = Window.ending(10, datetime(2026, 2, 19, tzinfo=UTC))
    assert dashboard.revenue_trend(window).values == [D("100.00")] * 5 + [D("50.00")] * 5  # cn_1 on 02-15


def test_the_list_shows_a_reversal_signed_and_adding_up(reversed_in_parts, admin_client):
    html = admin_client.get("/invoices?view=reversals").get_data(as_text=True)
    assert html.count('class="invoice-row kind-') == 3
    for ex_vat, vat, total in (("-€50.00", "-€4.05", "-54.05"), ("-€24.50", "€0.00", "-24.50"),
                               ("-€29.00", "€0.00", "-29.00")):
        assert ex_vat in html and vat in html and f'data-amount="{total}"' in html
    assert "-€0.00" not in html

    exported = admin_client.get("/invoices?view=reversals&format=csv").get_data(as_text=True)
    rows = {r["Number"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert [(r["Kind"], r["Excl. VAT"], r["VAT"], r["Total"]) for r in rows.values()] == [
        ("credit_note", "-29.00", "0.00", "-29.00"), ("refund", "-24.50", "0.00", "-24.50"),
        ("credit_note", "-50.00", "-4.05", "-54.05")]


def _row(**values):
    row = dict.fromkeys(("credit_noted_at", "credit_note_url", "credit_note_amount", "refunded_at", "refund_amount"))
    return row | {"currency": "EUR", "amount_excluding_tax": D("100.00"), "tax_amount": D("8.10")} | values


WHEN = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(("row", "taken"), [
    (_row(), None),  # nothing reversed it
    (_row(credit_noted_at=WHEN, credit_note_amount=D("54.05")), D("50.00")),
    (_row(credit_noted_at=WHEN, credit_note_amount=D("10.00")), D("9.25")),  # 9.2507 half up
    (_row(refunded_at=WHEN, refund_amount=D("108.10")), D("100.00")),
    (_row(credit_noted_at=WHEN, credit_note_amount=D("500.00")), D("100.00")),  # never more than the payment
    (_row(credit_note_url="https://credit.stripe.test/cn.pdf"), D("100.00")),  # amount unknown: all of it
    (_row(credit_noted_at=WHEN, credit_note_amount=D("20.00"), refunded_at=WHEN, refund_amount=D("108.10")),
     D("18.50")),  # the credit note when there is one (its refund is the same money)
    (_row(currency="JPY", amount_excluding_tax=D(1000), tax_amount=D(100), refunded_at=WHEN, refund_amount=D(555)),
     D(505)),  # 504.545 yen, whole yen half up
    (_row(currency="KWD", amount_excluding_tax=D("10.000"), tax_amount=D("0.500"), credit_noted_at=WHEN,
          credit_note_amount=D("1.000")), D("0.952")),  # three places
    (_row(amount_excluding_tax=D("0.00"), tax_amount=D("0.00"), credit_noted_at=WHEN, credit_note_amount=D("5.00")),
     D("0.00")),  # a free invoice earns nothing to take back
])
def test_the_rule(row, taken):
    assert reversed_excluding_tax(row) == taken
