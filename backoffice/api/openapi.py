"""The OpenAPI 3.1 document of /api/v1/, kept beside the endpoints it describes."""
from __future__ import annotations

import copy
import re

from flask import current_app

from backoffice import __version__
from backoffice.accounts.filters import ID_RE
from backoffice.api.answers import MAX_JSON_DEPTH
from backoffice.pagination import MAX_PAGE, MAX_PAGE_SIZE

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}

FORBIDDEN = {"description": "The token's scope does not allow this call (an account-scoped token is refused "
             "everywhere but on the operations whose security lists scope account)",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_PATH_ARGUMENT = re.compile(r"<(?:\w+:)?(\w+)>")  # /accounts/<account_id> → /accounts/{account_id}


ERROR_REF = {"$ref": "#/components/schemas/Error"}
ID = {"type": "string", "pattern": ID_RE.pattern, "description": "1 to 64 letters, digits, _ . : -"}


def error(description: str, code: str | None = None, message: str | None = None) -> dict:
    """A refusal's response: its description and the error body every 4xx answers (with an example
    when `code` is given)."""
    media = {"schema": ERROR_REF}
    if code:
        media["example"] = {"error": {"code": code, "message": message, "field": None}}
    return {"description": description, "content": {"application/json": media}}


# What any operation can answer, whatever it does: a bad parameter (a NUL byte anywhere is one),
# no or an unknown token, a token whose scope does not allow the call.
COMMON_ERRORS = {
    "400": error("Bad input: error.field names the parameter or field (in batches with the record's index)."),
    "401": error("No bearer token, or an unknown or revoked one.", "unauthorized", "A bearer token is required."),
    "403": error("The token's scope does not allow this call.", "forbidden",
                 "This token's scope does not allow this call."),
}
# What an operation with a body can answer besides.
BODY_ERRORS = {
    "413": error("The body is larger than 1 MiB."),
    "415": error("The body is not JSON (Content-Type: application/json)."),
    "422": error("The body matches its schema but a rule beyond it refuses a value (a time in the future, "
                 "a field required for a new record); error.field names it."),
}
# No string holds a NUL byte (no database text column can): the document says so for every string
# that does not say more precisely what it holds (a pattern, an enum, a format), for every key, and
# for what an object holds besides its properties (ignored, but read: AnyJson).
NO_NUL = "^[^\u0000]*$"
ANY_JSON = {"$ref": "#/components/schemas/AnyJson"}

# Every list's paging parameters (pagination.parse_page).
PAGING = [
    {"name": "page", "in": "query",
     "description": "Page number, from 1 (empty: 1); a page past the end answers no items and the real total.",
     "schema": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, {"const": ""}]}},
    {"name": "page_size", "in": "query", "description": "Rows per page, at most 100 (empty: 25).",
     "schema": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}, {"const": ""}]}},
]

# Each API module registers a function returning its {path: operations} and extra schemas.
_CONTRIBUTIONS: list = []


def contribute(fn):
    """Decorator for a function returning (paths: dict, schemas: dict) of one API module."""
    _CONTRIBUTIONS.append(fn)
    return fn


def openapi_document() -> dict:
    doc = _base_document()
    for fn in _CONTRIBUTIONS:
        paths, schemas = fn()
        for path, operations in paths.items():  # modules may share a path (GET here, PUT there)
            doc["paths"].setdefault(path, {}).update(operations)
        doc["components"]["schemas"].update(schemas)
    doc = copy.deepcopy(doc)  # the parts share module-level schemas; what follows adds to them
    _document_scopes(doc)
    for operations in doc["paths"].values():
        for operation in operations.values():
            if operation.get("security") != []:
                _add_errors(operation["responses"], COMMON_ERRORS)
            if "requestBody" in operation:
                _add_errors(operation["responses"], BODY_ERRORS)
    _no_nul([operation.get(part) for operations in doc["paths"].values() for operation in operations.values()
             for part in ("parameters", "requestBody")])
    for name in _request_schemas(doc):
        _no_nul(doc["components"]["schemas"][name])
    return doc


def _document_scopes(doc: dict) -> None:
    """Each operation's scopes, read from its view's `token_required`, so that the document says what
    the code enforces, for a new endpoint too: `security` lists the scopes that may call it (any one of
    them) and the 403 that a token of another scope gets is among its answers."""
    for rule in current_app.url_map.iter_rules():
        scopes = getattr(current_app.view_functions[rule.endpoint], "token_scopes", None)
        operations = doc["paths"].get(_PATH_ARGUMENT.sub(r"{\1}", rule.rule), {})
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = operations.get(method.lower())
            if scopes is not None and op is not None:
                op["security"] = [{"bearer": [scope]} for scope in scopes]
                op["responses"].setdefault("403", FORBIDDEN)


def _request_schemas(doc: dict) -> set[str]:
    """The component schemas request bodies name (the answers' schemas say what is stored)."""
    names = set()
    for operations in doc["paths"].values():
        for operation in operations.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                names.add(media["schema"]["$ref"].rsplit("/", 1)[1])
    return names


def _add_errors(responses: dict, errors: dict) -> None:
    """The errors an operation does not describe itself, and the error body where it does."""
    for code, response in errors.items():
        responses.setdefault(code, response).setdefault("content", response["content"])


def _no_nul(node) -> None:
    """NO_NUL on every string, key and unnamed property of a request's schema (object_body and the
    NUL check of errors.py refuse them with a 400)."""
    if isinstance(node, dict):
        if node.get("type") in ("string", ["string", "null"]) and not {"pattern", "enum", "format", "const"} & set(node):
            node["pattern"] = NO_NUL
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = ANY_JSON
        if ("properties" in node or "additionalProperties" in node) and "propertyNames" not in node:
            node["propertyNames"] = {"pattern": NO_NUL}
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul(value)


def _base_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Backoffice API",
            "version": __version__,
            "description": (
                "JSON API of Backoffice. Bearer tokens with scopes read, ingest, admin or account (created "
                "with `backoffice tokens create` or on the API tokens page); each operation's security "
                "lists the scopes that may call it, admin may call all. A token of scope account reads "
                "one account's own records and nothing else: the account, its billing events and its "
                "invoices; lists answer that account's rows only, and a request naming another account "
                "answers 403 with error.field naming the parameter. snake_case fields, ids as strings, times ISO 8601 UTC "
                "with Z, money as decimal strings with their currency beside them; lists answer "
                "{items, total, page, page_size} (a page past the end: no items, the real total); errors "
                "answer {error: {code, message, field}}. A JSON body is an object at most "
                f"{MAX_JSON_DEPTH} levels deep; no string in it or in a parameter holds a NUL byte or a lone "
                "surrogate."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "AnyJson": {
                "description": "Any JSON without a NUL byte in a string or key",
                "anyOf": [{"type": ["number", "boolean", "null"]}, {"type": "string", "pattern": NO_NUL},
                          {"type": "array", "items": ANY_JSON},
                          {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": ANY_JSON}]}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document"}},
                }
            },
        },
    }
