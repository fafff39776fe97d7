"""GET /api/v1/accounts, /accounts/<id>, /users, /billing-events, /invoices: the lists of the
pages as JSON, with the same filters, sorting and paging (and the same 400s, naming the field).
A token of scope account reads its own account here, its billing events and its invoices, confined
by api/answers.confine."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, jsonify, request

from backoffice.accounts import filters as account_filters
from backoffice.accounts import queries as account_queries
from backoffice.accounts.filters import FLAGS, STATUSES, AccountFilters, parse_id
from backoffice.api.answers import confine, iso_time, own_account
from backoffice.api.openapi import ID, PAGING, contribute
from backoffice.auth import token_required
from backoffice.dbtypes import MAX_ID, utcnow
from backoffice.errors import NotFound
from backoffice.invoices import filters as invoice_filters
from backoffice.invoices import queries as invoice_queries
from backoffice.invoices.filters import VIEWS as INVOICE_VIEWS
from backoffice.invoices.filters import InvoiceFilters
from backoffice.invoicing import engine, review
from backoffice.ledger import filters as event_filters
from backoffice.ledger import queries as ledger_queries
from backoffice.ledger.filters import EVENT_TYPES, EventFilters
from backoffice.ledger.filters import VIEWS as EVENT_VIEWS
from backoffice.pagination import MAX_SEARCH
from backoffice.users import filters as user_filters
from backoffice.users import queries as user_queries
from backoffice.users.filters import UserFilters

bp = Blueprint("lists", __name__)  # nested in the api blueprint (api/blueprints.py)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value).quantize(Decimal('0.01'))}"


def _listing(page, serialize) -> dict:
    # Long lists count up to a cap (LIST_COUNT_CAP): then `total` is a lower bound and total_exact is false.
    return {"items": [serialize(i) for i in page.items], "total": page.total, "page": page.page,
            "page_size": page.page_size, "total_exact": not page.capped}


def _account_item(account, sub, status, mrr, catalog) -> dict:
    plan = sub.plan if sub else "free"
    return {
        "id": str(account.id),
        "name": account.name,
        "country": account.country,
        "plan": plan,
        "plan_name": account_queries.plan_name(catalog, plan),
        "status": status,
        "price": _money(sub.price_amount if sub else Decimal(0)),
        "mrr": _money(mrr if mrr is not None else Decimal(0)),
        "currency": sub.currency if sub else None,
        "renewal_at": iso_time(sub.current_period_end if sub else None),
        "cancel_at_period_end": bool(sub.cancel_at_period_end) if sub else False,
        "scheduled_plan": sub.scheduled_plan if sub else None,
        "drift_detected": bool(sub.drift_detected) if sub else False,
        "drift_checked_at": iso_time(sub.drift_checked_at if sub else None),
        "created_at": iso_time(account.created_at),
        "modified_at": iso_time(account.modified_at),
    }


@bp.get("/accounts")
@token_required("read")
def list_accounts():
    f = AccountFilters.from_args(request.args)
    catalog = account_queries.plan_catalog()
    page = account_queries.accounts_page(f)
    return jsonify(_listing(page, lambda r: _account_item(*r, catalog)))


@bp.get("/accounts/<account_id>")
@token_required("read", "account")
def get_account(account_id: str):
    confine(account_id, "account_id")
    account_id = parse_id(account_id, "account_id")
    s = account_queries.account_summary(account_id)
    catalog = account_queries.plan_catalog()
    a = s.account
    item = _account_item(a, s.subscription, s.status, s.mrr, catalog)
    item.update({
        "currency": s.currency,
        "subscribed_since": iso_time(s.subscription.subscribed_since if s.subscription else None),
        "lifetime_value": _money(s.lifetime_value),
        "last_invoice": None if s.last_invoice is None else {
            "date": iso_time(s.last_invoice.date), "total": _money(s.last_invoice.invoice_total),
            "currency": s.last_invoice.currency, "status": s.last_invoice.status},
        "users": {"total": s.users_total, "active": s.users_active, "inactive": s.users_inactive,
                  "pending": s.users_pending},
        "owners": [{"id": str(u.id), "email": u.email, "name": u.display_name}
                   for u in account_queries.owners(account_id)],
        "billing": {"name": a.billing_name, "email": a.billing_email, "line1": a.billing_line1,
                    "line2": a.billing_line2, "postal_code": a.billing_postal_code, "city": a.billing_city,
                    "country": a.billing_country, "vat_id": a.vat_id},
        "stripe_customer_id": a.stripe_customer_id,
        "deleted_at": iso_time(a.deleted_at),
    })
    return jsonify(item)


@bp.get("/users")
@token_required("read")
def list_users():
    f = UserFilters.from_args(request.args)
    page = user_queries.users_page(f)
    accounts = user_queries.accounts_of([u.id for u in page.items])
    return jsonify(_listing(page, lambda u: {
        "id": str(u.id), "email": u.email, "first_name": u.first_name, "last_name": u.last_name,
        "display_name": u.display_name, "created_at": iso_time(u.created_at), "last_seen_at": iso_time(u.last_seen_at),
        "account_ids": [str(a) for a, _name in accounts.get(u.id, [])],
    }))


@bp.get("/billing-events")
@token_required("read", "account")
def list_billing_events():
    f = EventFilters.from_args(request.args, account=confine(request.args.get("account"), "account"))
    page = ledger_queries.billing_events_page(f)
    return jsonify(_listing(page, lambda r: {
        "id": str(r[0].id), "account_id": str(r[0].account_id), "account_name": r[1], "type": r[0].type,
        "from_plan": r[0].from_plan, "to_plan": r[0].to_plan,
        "previous_amount": _money(r[0].previous_amount), "new_amount": _money(r[0].new_amount),
        "amount_delta": _money(r[0].amount_delta), "committed_mrr": _money(r[0].committed_mrr),
        "currency": r[0].currency, "occurred_at": iso_time(r[0].occurred_at),
        "stripe_event_id": r[0].stripe_event_id, "reason": r[0].reason,
    }))


@bp.get("/invoices")
@token_required("read", "account")
def list_invoices():
    f = InvoiceFilters.from_args(request.args, account=confine(request.args.get("account"), "account"))
    page = invoice_queries.invoice_rows_page(f)
    return jsonify(_listing(page, lambda r: {
        "id": f"backoffice:{r.tx_id}" if r.source == "backoffice" else f"{r.tx_id}:{r.kind}",
        "transaction_id": None if r.source == "backoffice" else str(r.tx_id), "source": r.source,
        "kind": r.kind, "date": iso_time(r.row_date),
        "account_id": str(r.account_id), "account_name": r.account_name, "status": r.status, "number": r.number,
        "currency": r.currency, "amount_excluding_tax": _money(r.amount_excluding_tax),
        "tax_amount": _money(r.tax_amount), "total": _money(r.total),
    }))


@bp.get("/invoices/<invoice_id>")
@token_required("read", "account")
def get_invoice(invoice_id: str):
    """One of Backoffice's own invoices (`backoffice:<n>`, as the list names it) with its lines."""
    number = invoice_id.removeprefix("backoffice:")
    if number == invoice_id or not number.isascii() or not number.isdigit() or int(number) > MAX_ID:
        raise NotFound(f"No invoice {invoice_id!r} with a detail: Backoffice's own invoices are backoffice:<n> "
                       "(Stripe's are documents at Stripe).")
    try:
        found = review.get_invoice(int(number))
    except NotFound:
        found = None
    if found is None or own_account() not in (None, found.account_id):
        # Another account's answers as one that does not exist: not even its existence is told.
        raise NotFound(f"No invoice {invoice_id!r}.")
    period = engine.Period.parse(found.period)
    payment = None if found.status != "issued" else ("paid" if found.paid_at else (
        "overdue" if found.due_at and found.due_at < utcnow() else "open"))
    return jsonify({
        "id": invoice_id, "source": "backoffice", "account_id": found.account_id, "period": found.period,
        "number": found.number, "status": found.status, "payment_status": payment,
        "period_start": period.first_day.isoformat(), "period_end": period.last_day.isoformat(),
        **review.document(found), "issued_at": iso_time(found.issued_at), "due_at": iso_time(found.due_at),
        "paid_at": iso_time(found.paid_at), "customer": {
            "name": found.customer_name, "address": found.customer_address, "country": found.customer_country,
            "vat_id": found.customer_vat_id}})


# --- OpenAPI ---------------------------------------------------------------------------------

def _param(name: str, description: str, schema: dict | None = None, where: str = "query") -> dict:
    return {"name": name, "in": where, "required": where == "path", "description": description,
            "schema": schema or {"type": "string"}}


MONEY = {"type": ["string", "null"], "pattern": r"^-?\d+\.\d{2}$"}
TIME = {"type": ["string", "null"], "format": "date-time"}
ERROR_CONTENT = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
SEARCH = {"type": "string", "maxLength": MAX_SEARCH}
FLAG = {"type": "string", "enum": ["", *FLAGS]}  # empty, as a form sends it: no filter
# Plan keys, also several in one value separated by commas (accounts/filters._multi).
PLANS = {"type": "string", "maxLength": 255, "pattern": r"^\s*([A-Za-z0-9_.:\-]+\s*)?(,\s*([A-Za-z0-9_.:\-]+\s*)?)*$"}
# A filter left empty (as a form sends it) is no filter.
ACCOUNT = {"type": "string", "pattern": f"^$|{ID['pattern']}"}
# A day from FIRST_DAY to LAST_DAY (pagination.parse_date): the years as a pattern, the day as a format.
DAY = {"anyOf": [{"type": "string", "format": "date", "pattern": r"^(19[7-9][0-9]|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"},
                  {"const": ""}]}


def _own_account_only(op: dict, field: str) -> dict:
    """An operation that accepts account-scoped tokens (its security lists scope account): says so,
    and what such a token naming another account gets."""
    op["get"]["description"] = (op["get"].get("description", "") + " A token of scope account reads its own "
                                "account's only.").strip()
    op["get"]["responses"]["403"] = {"description": f"The token's scope does not allow it, or an account-scoped "
                                     f"token named another account (error.field {field})", **ERROR_CONTENT}
    return op


def _list_op(summary: str, item_ref: str, params: list, more: dict | None = None) -> dict:
    return {"get": {
        "summary": summary,
        "parameters": params + PAGING,
        "responses": {
            "200": {"description": "One page", "content": {"application/json": {"schema": {
                "type": "object", "required": ["items", "total", "page", "page_size"],
                "properties": {"items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item_ref}"}},
                               "total": {"type": "integer"}, "page": {"type": "integer"},
                               "page_size": {"type": "integer"},
                               "total_exact": {"type": "boolean", "description":
                                               "false when the count stopped at the cap: total is a lower bound"}}}}}},
            "400": {"description": "Bad parameter (named in error.field)", **ERROR_CONTENT},
            "401": {"description": "No or unknown token", **ERROR_CONTENT},
            **(more or {}),
        },
    }}


def _sort(fields: tuple[str, ...], default: str, aliases: dict[str, str]) -> dict:
    names = [*fields, *aliases]
    said = ", ".join(f"{a} (= {k})" for a, k in aliases.items())
    return _param("sort", f"One of {', '.join(fields)}, or the field names {said}; prefix - for descending. "
                          f"Default {default}.",
                  {"type": "string", "enum": [p + s for s in names for p in ("", "-")]})


@contribute
def _openapi():

    paths = {
        "/api/v1/accounts": _list_op("Accounts", "Account", [
            _param("search", "Name contains (case-insensitive) or exact id.", SEARCH),
            _param("plan", "Plan key; repeat for several.",
                   {"type": "array", "items": PLANS}),
            _param("status", "Status; repeat for several.",
                   {"type": "array", "items": {"type": "string", "enum": list(STATUSES)}}),
            _param("unsynced", "1 or true: paid accounts without ledger rows.", FLAG),
            _param("drift", "1 or true: accounts with drift detected.", FLAG),
            _param("deleted", "1 or true: the deleted accounts instead of the live ones (their MRR stays in the KPI).",
                   FLAG),
            _sort(account_filters.SORTS, "-modified", account_filters.SORT_ALIASES),
        ]),
        "/api/v1/accounts/{account_id}": _own_account_only({"get": {
            "summary": "One account with its revenue and users summary",
            "parameters": [_param("account_id", "The account id.", ID, where="path")],
            "responses": {"200": {"description": "The account", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AccountDetail"}}}},
                "400": {"description": "Malformed id", **ERROR_CONTENT},
                "401": {"description": "No or unknown bearer token", **ERROR_CONTENT},
                "404": {"description": "No such account", **ERROR_CONTENT}},
        }}, "account_id"),
        "/api/v1/users": _list_op("Users", "User", [
            _param("search", "E-mail, first or last name, or account name contains.", SEARCH),
            _sort(user_filters.SORTS, "-created", user_filters.SORT_ALIASES),
        ]),
        "/api/v1/billing-events": _own_account_only(_list_op("Billing events", "BillingEvent", [
            _param("account", "Account id (a token of scope account: its own or none).", ACCOUNT),
            _param("search", "Account name contains.", SEARCH),
            _param("view", "all (everything but no_op), mrr, state, other.",
                   {"type": "string", "enum": list(EVENT_VIEWS)}),
            _param("type", "One event type.", {"type": "string", "enum": list(EVENT_TYPES)}),
            _param("from", "From this UTC day (YYYY-MM-DD, 1970 to 2999).", DAY),
            _param("to", "Up to and including this UTC day (not before from).", DAY),
            _sort(event_filters.SORTS, "-occurred", event_filters.SORT_ALIASES),
        ], {"422": {"description": "to lies before from", **ERROR_CONTENT}}), "account"),
        "/api/v1/invoices": _own_account_only(_list_op("Invoices, credit notes and refunds", "InvoiceRow", [
            _param("account", "Account id (a token of scope account: its own or none).", ACCOUNT),
            _param("search", "Account name contains.", SEARCH),
            _param("view", "all, invoices, reversals.", {"type": "string", "enum": list(INVOICE_VIEWS)}),
            _param("source", "stripe (Stripe's invoices, credit notes, refunds) or backoffice (the month-end "
                   "run's own).", {"type": "string", "enum": list(invoice_filters.SOURCES)}),
            _sort(invoice_filters.SORTS, "-date", invoice_filters.SORT_ALIASES),
        ]), "account"),
        "/api/v1/invoices/{invoice_id}": {"get": {
            "summary": "One of Backoffice's own invoices with its lines", "tags": ["Lists"],
            "description": "A token of scope account reads its own account's only: another account's "
                           "invoice answers 404, as one that does not exist.",
            "parameters": [_param("invoice_id", "backoffice:<n>, as the list names it (anything else: 404).",
                                  where="path")],
            "responses": {
                "200": {"description": "The invoice", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/PlatformInvoice"}}}},
                "401": {"description": "No or unknown bearer token", **ERROR_CONTENT},
                "404": {"description": "No such invoice (or, for a token of scope account, another "
                        "account's)", **ERROR_CONTENT}}}},
    }
    account = {"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "country": {"type": ["string", "null"]},
        "plan": {"type": "string"}, "plan_name": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)}, "price": MONEY, "mrr": MONEY,
        "currency": {"type": ["string", "null"]}, "renewal_at": TIME, "cancel_at_period_end": {"type": "boolean"},
        "scheduled_plan": {"type": ["string", "null"]}, "drift_detected": {"type": "boolean"},
        "drift_checked_at": {**TIME, "description": "When drift was last checked against Stripe (null: never)."},
        "created_at": TIME, "modified_at": TIME}}
    detail = {"allOf": [{"$ref": "#/components/schemas/Account"}, {"type": "object", "properties": {
        "subscribed_since": TIME, "lifetime_value": MONEY, "last_invoice": {"type": ["object", "null"]},
        "users": {"type": "object"}, "owners": {"type": "array"}, "billing": {"type": "object"},
        "stripe_customer_id": {"type": ["string", "null"]}, "deleted_at": TIME}}]}
    schemas = {
        "Account": account,
        "AccountDetail": detail,
        "User": {"type": "object", "properties": {
            "id": {"type": "string"}, "email": {"type": "string"}, "first_name": {"type": ["string", "null"]},
            "last_name": {"type": ["string", "null"]}, "display_name": {"type": "string"}, "created_at": TIME,
            "last_seen_at": TIME, "account_ids": {"type": "array", "items": {"type": "string"}}}},
        "BillingEvent": {"type": "object", "properties": {
            "id": {"type": "string"}, "account_id": {"type": "string"}, "account_name": {"type": "string"},
            "type": {"type": "string", "enum": list(EVENT_TYPES)}, "from_plan": {"type": ["string", "null"]},
            "to_plan": {"type": ["string", "null"]}, "previous_amount": MONEY, "new_amount": MONEY,
            "amount_delta": MONEY, "committed_mrr": MONEY, "currency": {"type": ["string", "null"]},
            "occurred_at": TIME, "stripe_event_id": {"type": "string"}, "reason": {"type": ["string", "null"]}}},
        "PlatformInvoice": {"type": "object", "required": ["id", "source", "status", "lines", "vat"], "properties": {
            "id": {"type": "string"}, "source": {"const": "backoffice"}, "account_id": {"type": "string"},
            "period": {"type": "string"}, "number": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["draft", "issued", "void"]},
            "payment_status": {"type": ["string", "null"], "enum": ["open", "paid", "overdue", None]},
            "period_start": {"type": "string", "format": "date"}, "period_end": {"type": "string", "format": "date"},
            "currency": {"type": "string"}, "subtotal": MONEY, "tax": MONEY, "total": MONEY,
            "vat": {"$ref": "#/components/schemas/VatDecision"},
            "lines": {"type": "array", "items": {"$ref": "#/components/schemas/InvoiceLine"}},
            "issued_at": TIME, "due_at": TIME, "paid_at": TIME, "customer": {"type": "object"}}},
        "InvoiceRow": {"type": "object", "description": "One document. A credit note's or refund's amounts are what "
                       "it takes back (its total, and that total's ex-VAT and VAT shares, pro rata to the invoice's), "
                       "as positive amounts: `kind` says they are taken back (the page and the CSV show them negative).",
                       "properties": {
            "id": {"type": "string"}, "transaction_id": {"type": ["string", "null"]},
            "source": {"type": "string", "enum": ["stripe", "backoffice"]},
            "kind": {"type": "string", "enum": ["invoice", "credit_note", "refund"]}, "date": TIME,
            "account_id": {"type": "string"}, "account_name": {"type": "string"}, "status": {"type": "string"},
            "number": {"type": ["string", "null"]}, "currency": {"type": "string"},
            "amount_excluding_tax": MONEY, "tax_amount": MONEY, "total": MONEY}},
    }
    return paths, schemas
