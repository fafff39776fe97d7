"""Reconciliation with Stripe over the API: `POST /api/v1/accounts/<id>/sync` (token scope `admin`).

Runs the same sync as the account page's "Sync with Stripe", in the request, and answers its result.
"""
from __future__ import annotations

from flask import g, jsonify

from backoffice.api.openapi import contribute
from backoffice.api.views import bp
from backoffice.auth import token_required


@bp.post("/accounts/<account_id>/sync")
@token_required("admin")
def sync_account(account_id: str):
    from backoffice.stripe_sync import sync

    token = g.api_token
    result = sync.sync_account(account_id, None, actor_label=f"api token {token.prefix} ({token.name})")
    return jsonify(result.as_dict())


@contribute
def _openapi():
    discrepancy = {"type": "object", "properties": {
        "kind": {"type": "string", "description": "SubscriptionStateMismatch, MissingEvent, ScheduledPriceMissing, "
                 "UnclassifiedStripeEvent, UnreadablePayload, StalePersistedRow, PayloadDivergence, "
                 "AmountExcludingTaxClamped or MissingHistoricalEvent"},
        "severity": {"type": "string", "enum": ["warning", "critical"]},
        "field": {"type": ["string", "null"]},
        "stripe_event_id": {"type": ["string", "null"]},
        "message": {"type": "string"},
    }}
    result = {"type": "object", "required": ["account_id", "events_appended", "drift_detected", "discrepancies",
                                             "synced_at"], "properties": {
        "account_id": {"type": "string"},
        "events_recovered": {"type": "integer", "description": "Stripe events a webhook missed, archived now "
                             "with recovery_source events_list."},
        "events_appended": {"type": "integer", "description": "Billing events the replay appended."},
        "drift_detected": {"type": "boolean"},
        "discrepancies": {"type": "array", "items": {"$ref": "#/components/schemas/Discrepancy"}},
        "synced_at": {"type": "string", "format": "date-time"},
        "awaiting_confirmation": {"type": ["object", "null"], "description": "Archived events older than Stripe's "
                                  "30-day window with no ledger row (disaster recovery candidates), or null.",
                                  "properties": {"count": {"type": "integer"},
                                                 "oldest": {"type": "string", "format": "date-time"},
                                                 "newest": {"type": "string", "format": "date-time"}}},
    }}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths = {"/api/v1/accounts/{account_id}/sync": {"post": {
        "summary": "Sync an account with Stripe",
        "description": "Pulls Stripe's events list for the account's customer from its anchor, archives missed "
                       "events, refreshes the subscription and payments, replays the ledger and checks drift.",
        "tags": ["Stripe"],
        "parameters": [{"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The sync's result",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SyncResult"}}}},
            "400": {"description": "Stripe not configured, no Stripe customer, or a foreign currency", **error},
            "401": {"description": "No or unknown bearer token"},
            "403": {"description": "The token's scope is not admin"},
            "404": {"description": "Unknown account", **error},
            "503": {"description": "Stripe is unavailable; nothing changed", **error},
        },
    }}}
    return paths, {"SyncResult": result, "Discrepancy": discrepancy}
