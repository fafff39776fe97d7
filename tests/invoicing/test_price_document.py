"""The price book as one JSON document (issue 20 parts 6 and 9): export, import and the API read
and write the same document; a bad entry refuses all of it, naming the entry, nothing written."""
from __future__ import annotations

import json

import pytest

from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.invoicing import price_document
from backoffice.invoicing.cli import invoicing
from backoffice.invoicing.models import PlanPrice
from backoffice.operators.models import AuditEntry
from tests.invoicing.test_run import chf_book

BOOK = {
    "plans": [{"plan": "team", "name": "Team", "currency": "CHF", "monthly_base": "49", "setup_fee": "99",
               "included": {"messages_out": "1000"}, "valid_from": "2026-01-01"},
              {"plan": "team", "name": "Team", "currency": "CHF", "monthly_base": "59", "setup_fee": "99",
               "included": {"messages_out": "1500"}, "valid_from": "2026-07-01"}],
    "add_ons": [{"addon": "support", "period": "day", "price": "0.1", "currency": "CHF", "valid_from": "2026-01-01"}],
    "metered": [{"metric": "messages_out", "unit_price": "0.005", "currency": "CHF", "valid_from": "2026-01-01"}],
    "vat": [{"seller_country": "CH", "domestic_countries": ["CH", "LI"], "domestic_rate": "8.1",
             "valid_from": "2026-01-01"}],
}


def _admin(client):
    _token, secret = api_services.create_token("ops", "admin")
    return {"Authorization": f"Bearer {secret}"}


def test_export_is_what_the_book_holds_and_import_round_trips(app, runner, tmp_path):
    chf_book()
    out = tmp_path / "prices.json"
    assert runner.invoke(invoicing, ["prices", "export", str(out)]).exit_code == 0
    exported = json.loads(out.read_text())
    assert exported["plans"] == [{"plan": "team", "name": "Team", "currency": "CHF", "monthly_base": "49",
                                  "setup_fee": "99", "included": {"messages_out": "1000"},
                                  "valid_from": "2026-01-01"}]
    assert exported["vat"][0]["domestic_countries"] == ["CH", "LI"]
    (tmp_path / "new.json").write_text(json.dumps(BOOK))
    result = runner.invoke(invoicing, ["prices", "import", str(tmp_path / "new.json")])
    assert result.exit_code == 0, result.output
    assert "2 plan versions, 1 add-on prices, 1 metered prices, 1 VAT settings" in result.output
    db.session.expire_all()
    assert price_document.export() == BOOK
    entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "price_book.replace")).scalar_one()
    assert entry.before["plans"][0]["monthly_base"] == "49" and len(entry.after["plans"]) == 2


def test_the_api_reads_and_replaces_the_book(app, client):
    chf_book()
    headers = _admin(client)
    assert client.get("/api/v1/price-book", headers=headers).get_json() == price_document.export()
    resp = client.put("/api/v1/price-book", json=BOOK, headers=headers)
    assert resp.status_code == 200 and resp.get_json() == BOOK
    _t, read = api_services.create_token("bi", "read")
    assert client.get("/api/v1/price-book", headers={"Authorization": f"Bearer {read}"}).status_code == 403
    assert client.put("/api/v1/price-book", json=BOOK, headers={"Authorization": f"Bearer {read}"}).status_code == 403


def _with(section: str, index: int, **change) -> dict:
    book = json.loads(json.dumps(BOOK))
    book[section][index].update(change)
    return book


@pytest.mark.parametrize(("book", "field"), [
    (_with("plans", 1, valid_from="2026-01-01"), "plans[1].valid_from"),  # a duplicate valid-from
    (_with("add_ons", 0, price="-1"), "add_ons[0].price"),  # a negative price
    (_with("plans", 0, included={"coffee": "1"}), "plans[0].included.coffee"),  # an unknown metric
    (_with("metered", 0, metric="coffee"), "metered[0].metric"),
    (_with("plans", 0, monthly_base=49.0), "plans[0].monthly_base"),  # a float, not a decimal string
    (_with("plans", 0, colour="red"), "plans[0].colour"),
    (_with("vat", 0, domestic_rate="100"), "vat[0].domestic_rate"),
    (_with("vat", 0, domestic_countries="CH"), "vat[0].domestic_countries"),
    ({**BOOK, "discounts": []}, "discounts"),
    ({**BOOK, "plans": {"team": {}}}, "plans"),
])
def test_a_bad_entry_refuses_the_whole_book_naming_it(app, client, runner, tmp_path, book, field):
    chf_book()
    before = price_document.export()
    resp = client.put("/api/v1/price-book", json=book, headers=_admin(client))
    expected = 422 if field == "plans[1].valid_from" else 400  # a second version of a day: a rule, not a shape
    assert resp.status_code == expected and resp.get_json()["error"]["field"] == field, resp.get_json()
    (tmp_path / "bad.json").write_text(json.dumps(book))
    result = runner.invoke(invoicing, ["prices", "import", str(tmp_path / "bad.json")])
    assert result.exit_code == 1 and field in result.output
    db.session.expire_all()
    assert price_document.export() == before
    assert db.session.scalar(db.select(db.func.count()).select_from(PlanPrice)) == 1


def test_import_of_a_file_that_is_not_json(app, runner, tmp_path):
    (tmp_path / "x.json").write_text("{nope")
    result = runner.invoke(invoicing, ["prices", "import", str(tmp_path / "x.json")])
    assert result.exit_code == 1 and "is not JSON" in result.output


def test_accounts_take_their_invoices_language_and_billing_posture(app, client):
    from tests.usage.helpers import make_api

    api = make_api(client)
    resp = api.put("/accounts/acc_l", {"name": "Lingua SA", "language": "fr",
                                       "billing_posture": {"auto_invoice": False, "payment_terms_days": 10}})
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["language"] == "fr" and body["billing_posture"]["auto_invoice"] is False
    assert api.put("/accounts/acc_l", {"language": "xx"}).get_json()["error"]["field"] == "language"
    assert api.put("/accounts/acc_n", {"name": "New"}).get_json()["language"] == "en"
