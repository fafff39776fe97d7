"""The OpenAPI 3.1 document of /api/v1/, kept beside the endpoints it describes."""
from __future__ import annotations

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
    return doc


def _base_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Backoffice API",
            "version": __version__,
            "description": (
                "JSON API of Backoffice. Bearer tokens with scopes read, ingest, admin (created with "
                "`backoffice tokens create`). snake_case fields, ids as strings, times ISO 8601 UTC "
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
