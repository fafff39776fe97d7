"""The invoicing endpoints' answers checked against their own OpenAPI document by an outside
validator (jsonschema, JSON Schema 2020-12 as OpenAPI 3.1 uses it): the document a client
generates code from says what the endpoints really answer."""
from __future__ import annotations

import jsonschema

from backoffice.api import services as api_services
from tests.invoicing.test_price_document import BOOK
from tests.invoicing.test_run import NOVEMBER, PLANNED, chf_book, the_chf_account
from tests.usage.helpers import make_api


def _check(doc: dict, schema: str, answer: dict) -> None:
    validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}",
                                                 "components": doc["components"]})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(answer)]
    assert errors == [], errors


def test_quotes_runs_invoices_and_the_price_book_answer_as_documented(app, client):
    chf_book()
    the_chf_account(make_api(client))
    doc = client.get("/api/v1/openapi.json").get_json()
    _t, admin = api_services.create_token("ops", "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    _check(doc, "Quote", client.post("/api/v1/quotes", json=PLANNED, headers=headers).get_json())
    started = client.post("/api/v1/invoicing/runs", json={"period": NOVEMBER}, headers=headers)
    _check(doc, "InvoicingRun", started.get_json())
    _check(doc, "InvoicingRun", client.get(f"/api/v1/invoicing/runs/{started.get_json()['id']}",
                                           headers=headers).get_json())
    listed = client.get("/api/v1/invoices?source=backoffice", headers=headers).get_json()["items"]
    for row in listed:
        _check(doc, "InvoiceRow", row)
    _check(doc, "PlatformInvoice", client.get(f"/api/v1/invoices/{listed[0]['id']}", headers=headers).get_json())
    _check(doc, "PriceBook", client.get("/api/v1/price-book", headers=headers).get_json())
    _check(doc, "PriceBook", client.put("/api/v1/price-book", json=BOOK, headers=headers).get_json())
