"""The JSON API v1 as one blueprint at /api/v1 with its parts nested in it, registered here and only
here: a part is a module with its own `bp` that imports nothing back from the API. Its endpoints are
named `api.<part>.<view>`."""
from __future__ import annotations

from backoffice.api import ingest, invoicing, lists, metrics, stripe, views

PARTS = (
    ingest,  # the platform's ingest: accounts, users, logins, sessions, deployments, usage
    lists,  # accounts, users, billing events, invoices
    metrics,  # dashboard numbers: /metrics/*
    invoicing,  # quotes and month-end runs
    stripe,  # reconciliation: sync, drift, recovery of an account
)

bp = views.bp
for part in PARTS:
    bp.register_blueprint(part.bp)
