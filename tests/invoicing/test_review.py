"""Operators review the drafts (issue 20 part 4): the list with its URL state and CSV, one draft
with the evidence of every line, an admin's rebuild and delete, the account's tab."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

from backoffice.extensions import db
from backoffice.invoicing.cli import invoicing
from backoffice.invoicing.models import PlatformInvoice
from backoffice.operators.models import AuditEntry
from tests.invoicing.test_run import NOVEMBER, _invoice, chf_book, the_chf_account, usage
from tests.usage.helpers import make_api


def _drafts(client, runner) -> None:
    chf_book()
    api = make_api(client)
    the_chf_account(api)
    the_chf_account(api, "acc_de", country="DE", vat_id="DE123456789")
    assert runner.invoke(invoicing, ["run", "--period", NOVEMBER]).exit_code == 0


def test_the_list_filters_sorts_and_exports(app, client, viewer_client, runner):
    _drafts(client, runner)
    page = viewer_client.get("/invoicing/invoices").get_data(as_text=True)
    assert page.count('data-invoice="') == 2 and 'data-amount="145.46"' in page and 'data-amount="134.56"' in page
    only = viewer_client.get("/invoicing/invoices?search=acc_de&period=2026-11&status=draft&sort=total")
    assert only.status_code == 200 and only.get_data(as_text=True).count('data-invoice="') == 1
    fragment = viewer_client.get("/invoicing/invoices?period=2026-10", headers={"HX-Request": "true"})
    assert "No platform invoices match your filters." in fragment.get_data(as_text=True)
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="invoice-table"')
    for bad in ("period=2026-13", "status=paid", "sort=price"):
        resp = viewer_client.get(f"/invoicing/invoices?{bad}")
        assert resp.status_code == 400, bad
    exported = viewer_client.get("/invoicing/invoices?format=csv&sort=-total")
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0][:3] == ["Period", "Account id", "Account"]
    assert [(r[1], r[-2], r[-1]) for r in rows[1:]] == [("acc_chf", "145.46", "domestic"),
                                                         ("acc_de", "134.56", "reverse_charge")]


def test_a_draft_shows_the_evidence_of_every_line(app, client, viewer_client, runner):
    _drafts(client, runner)
    invoice = _invoice("acc_de")
    html = viewer_client.get(f"/invoicing/invoices/{invoice.id}").get_data(as_text=True)
    assert "Days: 2026-11-17 – 2026-11-30" in html  # the base fee's billable days
    assert "Days: 2026-11-20 – 2026-11-25" in html  # the add-on's enabled days
    assert "3,417 used, 1,000 included" in html and "Price valid from 2026-01-01" in html
    assert "reverse charge" in html and "DE123456789" in html and 'data-total="134.56"' in html
    assert "Rebuild draft" not in html  # a viewer reads
    assert viewer_client.get("/invoicing/invoices/999").status_code == 404


def test_an_admin_rebuilds_and_deletes_a_draft(app, client, admin_client, runner):
    _drafts(client, runner)
    invoice = _invoice("acc_chf")
    usage(make_api(client), "acc_chf-web", "messages_out", [1000], "2026-11-29")
    resp = admin_client.post(f"/invoicing/invoices/{invoice.id}/rebuild", data={"csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    rebuilt = _invoice("acc_chf")
    assert rebuilt.lines[-1].amount == Decimal("17.09")
    assert admin_client.get(resp.headers["Location"]).status_code == 200
    resp = admin_client.post(f"/invoicing/invoices/{rebuilt.id}/delete", data={"csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    assert db.session.scalar(db.select(db.func.count()).select_from(PlatformInvoice)) == 1
    actions = db.session.execute(db.select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[-2:] == ["invoicing.draft_rebuild", "invoicing.draft_delete"]


def test_an_issued_invoice_is_not_rebuilt_or_deleted(app, client, admin_client, runner):
    _drafts(client, runner)
    invoice = _invoice("acc_chf")
    invoice.status, invoice.number = "issued", "2026-000001"
    db.session.commit()
    for action in ("rebuild", "delete"):
        resp = admin_client.post(f"/invoicing/invoices/{invoice.id}/{action}", data={"csrf_token": admin_client.csrf})
        assert resp.status_code == 409, action
    assert _invoice("acc_chf").status == "issued"


def test_viewers_cannot_change_drafts(app, client, viewer_client, runner):
    _drafts(client, runner)
    invoice = _invoice("acc_chf")
    for action in ("rebuild", "delete"):
        resp = viewer_client.post(f"/invoicing/invoices/{invoice.id}/{action}", data={"csrf_token": viewer_client.csrf})
        assert resp.status_code == 403


def test_the_accounts_platform_invoices_tab(app, client, viewer_client, runner):
    _drafts(client, runner)
    html = viewer_client.get("/accounts/acc_de/platform-invoices").get_data(as_text=True)
    assert html.count('data-invoice="') == 1 and 'data-amount="134.56"' in html
    assert 'href="/accounts/acc_de/platform-invoices"' in viewer_client.get("/accounts/acc_de").get_data(as_text=True)


def _stripe_invoice(account_id: str = "acc_chf") -> None:
    from datetime import UTC, datetime

    from backoffice.invoices.models import PaymentTransaction

    db.session.add(PaymentTransaction(account_id=account_id, stripe_invoice_id="in_1", date=datetime(
        2026, 11, 3, tzinfo=UTC), status="succeeded", currency="EUR", amount=Decimal("49.00"),
        invoice_total=Decimal("49.00"), amount_excluding_tax=Decimal("49.00"), tax_amount=Decimal(0)))
    db.session.commit()


def test_one_list_of_invoices_with_their_source(app, client, viewer_client, runner):
    _drafts(client, runner)
    _stripe_invoice()
    html = viewer_client.get("/invoices").get_data(as_text=True)
    assert html.count('data-source="backoffice"') == 2 and html.count('data-source="stripe"') == 1
    only = viewer_client.get("/invoices?source=backoffice").get_data(as_text=True)
    assert only.count('data-source="backoffice"') == 2 and 'data-source="stripe"' not in only
    assert viewer_client.get("/invoices?source=paypal").status_code == 400
    exported = viewer_client.get("/invoices?format=csv&source=stripe").get_data(as_text=True).splitlines()
    assert exported[0].split(",")[-1] == "Source" and [line.split(",")[-1] for line in exported[1:]] == ["stripe"]
    assert 'data-source="backoffice"' in viewer_client.get("/accounts/acc_chf/invoices").get_data(as_text=True)


def test_the_api_lists_both_and_reads_a_platform_invoice(app, client, runner):
    from backoffice.api import services as api_services

    _drafts(client, runner)
    _stripe_invoice()
    _token, read = api_services.create_token("bi", "read")
    headers = {"Authorization": f"Bearer {read}"}
    items = client.get("/api/v1/invoices", headers=headers).get_json()["items"]
    assert sorted(i["source"] for i in items) == ["backoffice", "backoffice", "stripe"]
    ours = client.get("/api/v1/invoices?source=backoffice&sort=-total", headers=headers).get_json()["items"]
    assert [(i["id"].split(":")[0], i["total"], i["status"]) for i in ours] == [("backoffice", "145.46", "draft"),
                                                                                ("backoffice", "134.56", "draft")]
    detail = client.get(f"/api/v1/invoices/{ours[0]['id']}", headers=headers).get_json()
    assert (detail["period_start"], detail["period_end"], detail["status"], detail["payment_status"]) == (
        "2026-11-01", "2026-11-30", "draft", None)
    assert (detail["subtotal"], detail["tax"], detail["total"]) == ("134.56", "10.90", "145.46")
    assert [line["kind"] for line in detail["lines"]] == ["plan_base", "setup", "addon", "overage"]
    assert detail["vat"] == {"rate": "8.1", "reason": "domestic", "note": ""}
    for missing in ("backoffice:999", "1:invoice", "backoffice:x"):
        assert client.get(f"/api/v1/invoices/{missing}", headers=headers).status_code == 404


def test_an_account_token_sees_its_own_accounts_invoices_only(app, client, runner):
    from backoffice.api import services as api_services

    _drafts(client, runner)
    _stripe_invoice("acc_de")
    _token, own = api_services.create_token("acc_de portal", "account", "acc_de")
    headers = {"Authorization": f"Bearer {own}"}
    items = client.get("/api/v1/invoices", headers=headers).get_json()["items"]
    assert {i["account_id"] for i in items} == {"acc_de"} and sorted(i["source"] for i in items) == [
        "backoffice", "stripe"]
    assert client.get("/api/v1/invoices?account=acc_chf", headers=headers).status_code == 403
    assert client.get("/api/v1/invoices?account=acc_de", headers=headers).status_code == 200
    mine, theirs = _invoice("acc_de"), _invoice("acc_chf")
    assert client.get(f"/api/v1/invoices/backoffice:{mine.id}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/invoices/backoffice:{theirs.id}", headers=headers).status_code == 404
    for elsewhere in ("/api/v1/accounts", "/api/v1/users", "/api/v1/metrics/kpis"):
        assert client.get(elsewhere, headers=headers).status_code == 403, elsewhere
    _token, read = api_services.create_token("bi", "read")
    every = client.get("/api/v1/invoices", headers={"Authorization": f"Bearer {read}"}).get_json()["items"]
    assert {i["account_id"] for i in every} == {"acc_chf", "acc_de"}


def test_a_rebuild_that_is_skipped_says_so(app, client, admin_client, runner):
    _drafts(client, runner)
    invoice = _invoice("acc_chf")
    make_api(client).put("/accounts/acc_chf", {"billing_posture": {"auto_invoice": False}})
    resp = admin_client.post(f"/invoicing/invoices/{invoice.id}/rebuild", data={"csrf_token": admin_client.csrf})
    assert resp.headers["Location"].endswith(f"/invoicing/invoices/{invoice.id}")
    html = admin_client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "The draft could not be rebuilt: auto-invoice off" in html and "Draft rebuilt" not in html
