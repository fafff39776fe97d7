"""The OpenAPI 3.1 document of /api/v1/, kept beside the endpoints it describes."""
from __future__ import annotations

import re

from flask import current_app

from backoffice import __version__

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
    _document_scopes(doc)
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
                "{items, total, page, page_size}; errors answer {error: {code, message, field}}."
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
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
