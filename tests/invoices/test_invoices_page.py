"""The invoices page: Invoice rows plus Credit note or Refund rows, as one SQL UNION ALL."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.extensions import db
from backoffice.invoices.filters import InvoiceFilters
from backoffice.invoices.queries import invoice_rows_page
from tests.factories import AccountFactory, PaymentTransactionFactory

T = datetime(2025, 5, 1, tzinfo=UTC)


@pytest.fixture
def three(app):
    acc = AccountFactory(id="acc_inv", name="Invoiced AG")
    PaymentTransactionFactory(account_id=acc.id, date=T, number="INV-1")
    PaymentTransactionFactory(account_id=acc.id, date=T + timedelta(days=1), number="INV-2",
                              credit_noted_at=T + timedelta(days=5), credit_note_url="https://cn/2",
                              credit_note_amount=Decimal("108.10"))
    PaymentTransactionFactory(account_id=acc.id, date=T + timedelta(days=2), number="INV-3",
                              refunded_at=T + timedelta(days=6), refund_amount=Decimal("108.10"),
                              credit_noted_at=T + timedelta(days=7), credit_note_url="https://cn/3")
    db.session.commit()
    return acc


def test_three_transactions_make_three_invoices_and_two_credit_notes(three):
    page = invoice_rows_page(InvoiceFilters())
    assert page.total == 5
    assert [(r.kind, r.number, r.row_date.date().isoformat()) for r in page.items] == [
        ("credit_note", "INV-3", "2025-05-08"),
        ("credit_note", "INV-2", "2025-05-06"),
        ("invoice", "INV-3", "2025-05-03"),
        ("invoice", "INV-2", "2025-05-02"),
        ("invoice", "INV-1", "2025-05-01"),
    ]
    # every invoice keeps its original outcome
    assert {r.status for r in page.items if r.kind == "invoice"} == {"succeeded"}
    assert [r.total for r in page.items if r.kind == "credit_note"] == [Decimal("108.10"), Decimal("108.10")]


def test_refund_without_credit_note_is_an_invoice_and_a_refund_row(app):
    acc = AccountFactory()
    PaymentTransactionFactory(account_id=acc.id, date=T, amount_excluding_tax=Decimal("80.00"),
                              tax_amount=Decimal("20.00"), refunded_at=T + timedelta(days=2))
    db.session.commit()
    page = invoice_rows_page(InvoiceFilters())
    assert [(r.kind, r.row_date) for r in page.items] == [("refund", T + timedelta(days=2)), ("invoice", T)]
    assert [r.total for r in page.items] == [Decimal("100.00"), Decimal("100.00")]


def test_credit_note_without_date_falls_back_to_refund_then_payment_date(app):
    acc = AccountFactory()
    PaymentTransactionFactory(account_id=acc.id, date=T, credit_note_url="https://cn/x")
    PaymentTransactionFactory(account_id=acc.id, date=T + timedelta(days=1), credit_note_url="https://cn/y",
                              refunded_at=T + timedelta(days=4))
    db.session.commit()
    rows = invoice_rows_page(InvoiceFilters(view="reversals")).items
    assert [(r.kind, r.row_date) for r in rows] == [("credit_note", T + timedelta(days=4)), ("credit_note", T)]


def test_views_search_and_sort(three, admin_client):
    assert invoice_rows_page(InvoiceFilters(view="invoices")).total == 3
    assert invoice_rows_page(InvoiceFilters(view="reversals")).total == 2
    assert invoice_rows_page(InvoiceFilters(search="nothing")).total == 0
    assert invoice_rows_page(InvoiceFilters(search="invoiced")).total == 5
    rows = invoice_rows_page(InvoiceFilters(sort="date")).items
    assert rows[0].number == "INV-1"
    for sort in ("account", "-account", "total", "-total", "status", "-status"):
        assert admin_client.get(f"/invoices?sort={sort}").status_code == 200


def test_page_signs_reversal_amounts(three, admin_client):
    html = admin_client.get("/invoices").get_data(as_text=True)
    assert html.count('data-kind="invoice"') == 3 and html.count('data-kind="credit_note"') == 2
    assert html.count('data-amount="-108.10"') == 2 and "<s>" not in html and "<s " not in html
    frag = admin_client.get("/invoices?view=reversals", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert frag.lstrip().startswith('<section id="invoice-table"') and frag.count('data-kind="invoice"') == 0


def test_empty_states(app, admin_client):
    assert "No invoices yet." in admin_client.get("/invoices").get_data(as_text=True)
    AccountFactory()
    db.session.commit()
    html = admin_client.get("/invoices?search=zzz").get_data(as_text=True)
    assert "No invoices match your filters." in html and "Clear filters" in html


@pytest.mark.parametrize("url,field", [
    ("/invoices?sort=amount", "sort"), ("/invoices?page=-2", "page"), ("/invoices?page_size=101", "page_size"),
    ("/invoices?search=" + "y" * 101, "search"), ("/invoices?view=drafts", "view"),
    ("/invoices?account=bad%20id", "account"),
])
def test_bad_input_is_a_clear_400(three, admin_client, url, field):
    resp = admin_client.get(url)
    assert resp.status_code == 400
    assert f"Parameter: {field}" in resp.get_data(as_text=True)


def test_csv_export(three, admin_client):
    resp = admin_client.get("/invoices?format=csv&view=reversals")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0][:3] == ["Date", "Kind", "Account id"]
    assert [(r[0], r[1], r[9]) for r in rows[1:]] == [
        ("2025-05-08T00:00:00Z", "credit_note", "-108.10"), ("2025-05-06T00:00:00Z", "credit_note", "-108.10")]


def test_long_lists_count_up_to_a_cap(three, app, admin_client):
    app.config["LIST_COUNT_CAP"] = 3
    page = invoice_rows_page(InvoiceFilters(page_size=2))
    assert (page.total, page.capped, page.has_next, len(page.items)) == (3, True, True, 2)
    html = admin_client.get("/invoices?page_size=2").get_data(as_text=True)
    assert "1–2 of more than 3" in html and 'rel="next"' in html
    last = invoice_rows_page(InvoiceFilters(page_size=2, page=3))
    assert (len(last.items), last.has_next) == (1, False)
    past = admin_client.get("/invoices?page_size=2&page=4")
    assert past.status_code == 200 and "Page 4 is beyond the end of the list." in past.get_data(as_text=True)
    body = admin_client.get("/invoices?page_size=2&page=3").get_data(as_text=True)
    assert "5–5 of more than 3" in body and 'rel="next"' not in body
