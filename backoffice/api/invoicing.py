"""Month-end invoicing for scripts: `POST /api/v1/quotes` (read scope: a planned deployment in, the
engine's lines out), `POST /api/v1/invoicing/runs` (admin scope: run a month),
`GET /api/v1/invoicing/runs/<id>` (read scope: a run and its summary) and `GET|PUT
/api/v1/price-book` (admin scope: the whole price book as one document)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from backoffice.api.answers import iso_time, object_body, token_actor
from backoffice.api.openapi import contribute
from backoffice.auth import token_required
from backoffice.dbtypes import MAX_ID
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db
from backoffice.invoicing import price_document, quotes, run, tasks
from backoffice.invoicing.models import ADDON_PERIODS, InvoicingRun
from backoffice.usage import parsing
from backoffice.usage.models import METRICS

bp = Blueprint("invoicing", __name__)  # nested in the api blueprint (api/blueprints.py)


def run_json(r: InvoicingRun) -> dict:
    return {"id": str(r.id), "period": r.period, "force": r.force, "account_id": r.account_id,
            "trigger": r.trigger, "actor": r.actor, "status": r.status, "started_at": iso_time(r.started_at),
            "finished_at": iso_time(r.finished_at), "summary": r.summary or None}


@bp.post("/quotes")
@token_required("read")
def quote():
    planned = quotes.parse(object_body())
    return jsonify(quotes.quote_json(planned, quotes.quote(planned)))


@bp.post("/invoicing/runs")
@token_required("admin")
def start_run():
    body = object_body()
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest("force must be true or false.", field="force")
    account_id = body.get("account_id")
    if account_id is not None and not isinstance(account_id, str):
        raise BadRequest("account_id must be a string.", field="account_id")
    started = run.start(run.parse_period(body.get("period")), force=force, account_id=account_id,
                        trigger="api", actor=token_actor().email)
    launched = tasks.launch(started)
    return jsonify(run_json(launched)), 200 if launched.status != "running" else 202


@bp.get("/invoicing/runs/<int:run_id>")
@token_required("read")
def get_run(run_id: int):
    found = db.session.get(InvoicingRun, run_id)
    if found is None:
        raise NotFound(f"No invoicing run with id {run_id}.")
    return jsonify(run_json(found))


@bp.get("/price-book")
@token_required("admin")
def get_price_book():
    return jsonify(price_document.export())


@bp.put("/price-book")
@token_required("admin")
def put_price_book():
    return jsonify(price_document.replace(object_body(), token_actor()))


@contribute
def _openapi():
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    decimal = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
    nullable_decimal = {"type": ["string", "null"], "pattern": r"^-?\d+(\.\d+)?$"}
    line = {"type": "object", "required": ["kind", "deployment", "metric", "description", "quantity", "unit",
                                           "unit_price", "amount"], "properties": {
        "kind": {"type": "string", "enum": ["plan_base", "setup", "addon", "overage"]},
        "deployment": {"type": "string"}, "metric": {"type": ["string", "null"]},
        "description": {"type": "string"}, "quantity": decimal, "unit": {"type": "string"},
        "unit_price": decimal, "amount": decimal,
        "price_valid_from": {"type": ["string", "null"], "format": "date"},
        "days": {"type": "array", "description": "The billable days as [first, last] runs of dates.",
                 "items": {"type": "array", "items": {"type": "string", "format": "date"}}},
        "monthly_price": {**nullable_decimal, "description": "The monthly price a daily line was converted from."},
        "used": {**nullable_decimal, "description": "Overage: the month's metered total."},
        "included": {**nullable_decimal, "description": "Overage: the plan's allowance."},
    }}
    vat = {"type": "object", "required": ["rate", "reason", "note"], "properties": {
        "rate": decimal, "reason": {"type": "string", "enum": ["domestic", "reverse_charge", "export"]},
        "note": {"type": "string"}}}
    name = parsing.NAME_RE.pattern
    quote_in = {"type": "object", "required": ["plan"], "properties": {
        "plan": {"type": "string", "pattern": name, "maxLength": 64,
                 "description": "A plan the price book prices (422 otherwise)."},
        "add_ons": {"type": ["array", "null"], "items": {"type": "string", "pattern": name,
                                                          "not": {"const": parsing.RESERVED_NAME}},
                    "maxItems": parsing.MAX_ADDONS, "description": "Add-ons the price book prices (422 otherwise)."},
        "start_day": {"type": ["string", "null"], "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$|^$",
                      "description": "Default today (UTC)."},
        "usage": {"type": ["object", "null"], "description": "Expected quantity per metric in the first month.",
                  "propertyNames": {"enum": list(parsing.METRICS)}, "additionalProperties": {"oneOf": [
                      {"type": "string", "pattern": parsing.QUANTITY_RE.pattern, "maxLength": 20},
                      {"type": "integer", "minimum": 0, "maximum": 99999999999999}]}},
        "customer_country": {"type": ["string", "null"], "pattern": r"^\s*([A-Za-z]{2})?\s*$"},
        "customer_vat_id": {"type": ["string", "null"], "pattern": r"^\s*([ -~]{0,40})\s*$"},
        "deployment": {"type": ["string", "null"], "pattern": f"{name}|^$", "not": {"const": parsing.RESERVED_NAME}},
    }}
    quote_out = {"type": "object", "required": ["period", "currency", "lines", "subtotal", "tax", "total", "vat"],
                 "properties": {"period": {"type": "string"}, "deployment": {"type": "string"},
                                "start_day": {"type": "string", "format": "date"},
                                "currency": {"type": ["string", "null"]},
                                "lines": {"type": "array", "items": {"$ref": "#/components/schemas/InvoiceLine"}},
                                "subtotal": decimal, "tax": decimal, "total": decimal,
                                "vat": {"$ref": "#/components/schemas/VatDecision"}}}
    run_in = {"type": "object", "required": ["period"], "properties": {
        "period": {"type": "string", "pattern": r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$",
                   "description": "A month that has ended (422 for one that has not)."},
        "force": {"type": "boolean", "description": "Rebuild the month's drafts (never an issued invoice)."},
        "account_id": {"type": ["string", "null"], "description": "Only this account."}}}
    run_out = {"type": "object", "required": ["id", "period", "status", "summary"], "properties": {
        "id": {"type": "string"}, "period": {"type": "string"}, "force": {"type": "boolean"},
        "account_id": {"type": ["string", "null"]}, "trigger": {"type": "string"}, "actor": {"type": "string"},
        "status": {"type": "string", "enum": ["running", "done", "failed"]},
        "started_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "summary": {"type": ["object", "null"], "description": "examined, created, rebuilt, skipped {reason: "
                    "count}, failures [{account_id, reason}], totals {currency: amount}; null while running."}}}

    def ok(description: str, schema: str) -> dict:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    def body(schema: str) -> dict:
        return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    bad = {"description": "Bad input (named in error.field)", **error}
    unauthorized = {"description": "No or unknown bearer token", **error}
    forbidden = {"description": "The token's scope does not allow it", **error}
    # The price book form's rules (invoicing/pricebook.parse_form) as patterns: values are stripped
    # of spaces; money has at most 2 decimals, unit prices 6, quantities and rates 4; all below 10^11.
    def amount(places: int, digits: int = 11, blank: bool = False) -> dict:
        number = rf"0*[0-9]{{1,{digits}}}(\.[0-9]{{1,{places}}})?"
        return {"type": "string", "pattern": rf"^\s*({number}){'?' if blank else ''}\s*$"}

    key = {"type": "string", "pattern": r"^\s*[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\s*$"}
    country_code = {"type": "string", "pattern": r"^\s*[A-Za-z]{2}\s*$"}
    dated = {"valid_from": {"type": "string", "format": "date", "pattern": r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$"}}
    currency = {"type": "string", "pattern": r"^\s*[A-Za-z]{3}\s*$"}
    book = {"type": "object", "description": "Each key (plan, add-on, metric; VAT: one series) once per "
            "valid_from (422 for a second).", "properties": {
        "plans": {"type": "array", "items": {"type": "object", "required": [
            "plan", "name", "currency", "monthly_base", "setup_fee", "valid_from"], "additionalProperties": False,
            "properties": {"plan": key, "name": {"type": "string", "maxLength": 100,
                                                 "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"},
                           "currency": currency, "monthly_base": amount(2), "setup_fee": amount(2),
                           "included": {"type": "object", "propertyNames": {"enum": list(METRICS)},
                                        "additionalProperties": amount(4, blank=True)}, **dated}}},
        "add_ons": {"type": "array", "items": {"type": "object", "required": [
            "addon", "period", "price", "currency", "valid_from"], "additionalProperties": False,
            "properties": {"addon": key, "period": {"type": "string", "enum": list(ADDON_PERIODS)},
                           "price": amount(6), "currency": currency, **dated}}},
        "metered": {"type": "array", "items": {"type": "object", "required": [
            "metric", "unit_price", "currency", "valid_from"], "additionalProperties": False,
            "properties": {"metric": {"type": "string", "enum": list(METRICS)}, "unit_price": amount(6),
                           "currency": currency, **dated}}},
        "vat": {"type": "array", "items": {"type": "object", "required": [
            "seller_country", "domestic_countries", "domestic_rate", "valid_from"], "additionalProperties": False,
            "properties": {"seller_country": country_code,
                           "domestic_countries": {"type": "array", "minItems": 1, "items": {
                               "type": "string", "pattern": r"^\s*[A-Za-z]{2}\s*$"}},
                           "domestic_rate": amount(4, 2), **dated}}},
    }, "additionalProperties": False}
    paths = {
        "/api/v1/price-book": {
            "get": {"summary": "The whole price book as one document", "tags": ["Invoicing"],
                    "responses": {"200": ok("The price book", "PriceBook"), "401": unauthorized, "403": forbidden}},
            "put": {"summary": "Replace the whole price book",
                    "description": "Validated as a whole: a bad entry refuses all of it (error.field names it, "
                                   "e.g. plans[2].monthly_base) and nothing is written. Audited.",
                    "tags": ["Invoicing"], "requestBody": body("PriceBook"),
                    "responses": {"200": ok("The price book now", "PriceBook"), "400": bad,
                                  "401": unauthorized, "403": forbidden}},
        },
        "/api/v1/quotes": {"post": {
            "summary": "Price a planned deployment's first month with the month-end engine",
            "tags": ["Invoicing"], "requestBody": body("QuoteRequest"),
            "responses": {"200": ok("The lines, subtotal, VAT and total", "Quote"), "400": bad,
                          "401": unauthorized, "403": forbidden}}},
        "/api/v1/invoicing/runs": {"post": {
            "summary": "Run a month: one draft invoice per account with billable activity",
            "description": "Without a broker the run happens in the request (200, finished); with one its "
                           "batches fan out over the workers (202, running: poll GET .../runs/{id}).",
            "tags": ["Invoicing"], "requestBody": body("InvoicingRunRequest"),
            "responses": {"200": ok("The finished run", "InvoicingRun"), "202": ok("The run, started",
                          "InvoicingRun"), "400": bad, "401": unauthorized, "403": forbidden,
                          "404": {"description": "Unknown account_id", **error}}}},
        "/api/v1/invoicing/runs/{run_id}": {"get": {
            "summary": "A month-end run and its summary", "tags": ["Invoicing"],
            "parameters": [{"name": "run_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}],
            "responses": {"200": ok("The run", "InvoicingRun"), "401": unauthorized, "403": forbidden,
                          "404": {"description": "Unknown run", **error}}}},
    }
    return paths, {"PriceBook": book, "InvoiceLine": line, "VatDecision": vat, "QuoteRequest": quote_in, "Quote": quote_out,
                   "InvoicingRunRequest": run_in, "InvoicingRun": run_out}
