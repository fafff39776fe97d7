"""Reconciliation with Stripe over the API, the account page's actions for scripts:
`POST /api/v1/accounts/<id>/sync`, `GET .../drift` (read), `POST .../drift/acknowledge`,
`GET .../recovery` (read: what a disaster recovery would do) and `POST .../recovery`; the POSTs
need the `admin` scope. Each runs the page's own use case, audited as there; a sync and a recovery
run as background jobs (202, then `GET /api/v1/jobs/<id>` until done or failed).
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for

from backoffice.accounts import queries as account_queries
from backoffice.accounts.filters import parse_id
from backoffice.api.answers import iso_time, token_actor
from backoffice.api.openapi import ID, PAGING, contribute
from backoffice.auth import token_required
from backoffice.dbtypes import MAX_ID
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.pagination import parse_page, parse_sort
from backoffice.stripe import drift, queries, recovery, services, tasks
from backoffice.stripe.models import JobRun

bp = Blueprint("stripe", __name__)  # nested in the api blueprint (api/blueprints.py)


def _drift_state(account_id: str, sub) -> dict:
    return {"account_id": account_id, "drift_detected": bool(sub and sub.drift_detected),
            "drift_checked_at": iso_time(sub.drift_checked_at if sub else None),
            "acknowledged_at": iso_time(sub.drift_acknowledged_at if sub else None),
            "acknowledged_by": sub.drift_acknowledged_by if sub else None}


def _discrepancy_state(d, sub) -> str:
    """As the Drift tab shows it: resolved, acknowledged (detected before the last
    acknowledgement) or open."""
    if d.resolved_at is not None:
        return "resolved"
    if sub is not None and sub.drift_acknowledged_at is not None and sub.drift_acknowledged_at >= d.detected_at:
        return "acknowledged"
    return "open"


def _known_account(account_id: str) -> str:
    """400 for a malformed id, 404 for an unknown one: the same bodies on every endpoint here."""
    account_id = parse_id(account_id, "account_id")
    account_queries.get_account(account_id)
    return account_id


@bp.get("/accounts/<account_id>/drift")
@token_required("read")
def account_drift(account_id: str):

    account_id = _known_account(account_id)
    page, page_size = parse_page(request.args)
    sort = parse_sort(request.args, account_queries.DISCREPANCY_SORTS, "-detected")
    sub = queries.drift_subscription(account_id)
    found = account_queries.discrepancies_page(account_id, page, page_size, sort)
    items = [{"id": str(d.id), "kind": d.kind, "severity": d.severity, "field": d.field,
              "stripe_event_id": d.stripe_event_id, "message": d.message, "detected_at": iso_time(d.detected_at),
              "resolved_at": iso_time(d.resolved_at), "state": _discrepancy_state(d, sub)} for d in found.items]
    return jsonify({**_drift_state(account_id, sub), "items": items, "total": found.total, "page": found.page,
                    "page_size": found.page_size})


@bp.post("/accounts/<account_id>/drift/acknowledge")
@token_required("admin")
def acknowledge_drift(account_id: str):

    account_id = _known_account(account_id)
    sub = drift.acknowledge(account_id, token_actor())
    return jsonify(_drift_state(account_id, sub))


@bp.get("/accounts/<account_id>/recovery")
@token_required("read")
def recovery_plan(account_id: str):

    plan = recovery.recovery_plan(_known_account(account_id))
    return jsonify({"account_id": plan.account_id, "offered": plan.offered, "awaiting": plan.awaiting.as_dict(),
                    "critical": plan.critical})


def job_json(run: JobRun) -> dict:
    return {"id": str(run.id), "kind": run.kind, "status": run.status, "account_id": run.target_id,
            "started_at": iso_time(run.started_at), "finished_at": iso_time(run.finished_at),
            "error": run.error, "result": run.result if run.status == "done" else None}


def _accepted(run: JobRun):
    """202 with the job as it is now and where to poll it."""
    url = url_for("api.stripe.job", run_id=run.id)
    return jsonify(job_json(run)), 202, {"Location": url}


@bp.post("/accounts/<account_id>/recovery")
@token_required("admin")
def disaster_recovery(account_id: str):

    return _accepted(services.start_disaster_recovery(_known_account(account_id), token_actor()))


@bp.post("/accounts/<account_id>/sync")
@token_required("admin")
def sync_account(account_id: str):

    return _accepted(services.start_account_sync(parse_id(account_id, "account_id"), token_actor()))


@bp.get("/jobs/<int:run_id>")
@token_required("admin")
def job(run_id: int):
    """A sync's or a recovery's state while it runs, then its result or error."""
    run = db.session.get(JobRun, run_id) if run_id <= MAX_ID else None
    if run is None or run.kind not in (tasks.ACCOUNT_SYNC, tasks.DISASTER_RECOVERY):
        raise NotFound("No such job.", field="run_id")
    return jsonify(job_json(run))


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
    account_param = {"name": "account_id", "in": "path", "required": True, "schema": ID}
    time = {"type": ["string", "null"], "format": "date-time"}
    drift_state = {"type": "object", "required": ["account_id", "drift_detected", "drift_checked_at",
                                                  "acknowledged_at", "acknowledged_by"], "properties": {
        "account_id": {"type": "string"},
        "drift_detected": {"type": "boolean", "description": "Set by a check that found drift; cleared by an "
                          "acknowledgement until the next check finds it again."},
        "drift_checked_at": {**time, "description": "The last drift check (null: never)."},
        "acknowledged_at": time,
        "acknowledged_by": {"type": ["string", "null"], "description": "An operator's e-mail or an API token."},
    }}
    finding = {"type": "object", "properties": {
        "id": {"type": "string"}, **discrepancy["properties"], "detected_at": {"type": "string", "format": "date-time"},
        "resolved_at": time,
        "state": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
    }}
    drift_list = {"allOf": [{"$ref": "#/components/schemas/DriftState"}, {
        "type": "object", "required": ["items", "total", "page", "page_size"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/DriftFinding"}},
            "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}}}]}
    plan = {"type": "object", "properties": {
        "account_id": {"type": "string"},
        "offered": {"type": "boolean", "description": "true when there is something to recover or a critical "
                    "discrepancy is open (the page offers the action then)."},
        "awaiting": {"type": "object", "description": "Archived events older than Stripe's 30-day window with no "
                     "ledger row.", "properties": {"count": {"type": "integer"}, "oldest": time, "newest": time}},
        "critical": {"type": "integer", "description": "Open critical discrepancies."},
    }}
    recovered = {"type": "object", "properties": {
        "account_id": {"type": "string"},
        "candidates": {"type": "integer", "description": "Archived events handed back to the replayer."},
        "events_appended": {"type": "integer", "description": "Billing events the replay appended."},
        "oldest": time, "newest": time,
    }}

    def ok(description: str, schema: str) -> dict:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    job = {"type": "object", "required": ["id", "kind", "status", "account_id", "started_at", "finished_at",
                                          "error", "result"], "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": ["account_sync", "disaster_recovery"]},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "account_id": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "finished_at": time,
        "error": {"type": ["string", "null"], "description": "Why the job failed, in an operator's words."},
        "result": {"description": "Once done: a SyncResult (account_sync) or a RecoveryResult "
                   "(disaster_recovery); else null.", "anyOf": [
                       {"$ref": "#/components/schemas/SyncResult"}, {"$ref": "#/components/schemas/RecoveryResult"},
                       {"type": "null"}]},
    }}
    accepted = {"description": "The job, started; poll the Location header (GET /api/v1/jobs/{run_id})",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}
    unauthorized = {"description": "No or unknown bearer token", **error}
    forbidden = {"description": "The token's scope is not admin", **error}
    unknown = {"description": "Unknown account", **error}
    paging = [
        *PAGING,
        {"name": "sort", "in": "query", "description": "detected, severity or kind; prefix - for descending. "
         "Default -detected.", "schema": {"type": "string", "enum": [
             p + s for s in ("detected", "severity", "kind") for p in ("", "-")]}},
    ]
    more_paths = {
        "/api/v1/accounts/{account_id}/drift": {"get": {
            "summary": "An account's drift: the flag, the last check and every finding (the Drift tab)",
            "tags": ["Stripe"], "parameters": [account_param, *paging],
            "responses": {"200": ok("The drift state and one page of findings", "DriftList"),
                          "400": {"description": "Bad parameter (named in error.field)", **error},
                          "401": unauthorized, "404": unknown},
        }},
        "/api/v1/accounts/{account_id}/drift/acknowledge": {"post": {
            "summary": "Acknowledge an account's drift",
            "description": "Clears the flag, keeps the findings, records who and when (audited). The next check "
                           "raises the flag again if the cause remains.",
            "tags": ["Stripe"], "parameters": [account_param],
            "responses": {"200": ok("The drift state after the acknowledgement", "DriftState"),
                          "409": {"description": "No drift to acknowledge (error.code no_drift)", **error},
                          "401": unauthorized, "403": forbidden, "404": unknown},
        }},
        "/api/v1/accounts/{account_id}/recovery": {
            "get": {
                "summary": "What a disaster recovery of the account would do",
                "tags": ["Stripe"], "parameters": [account_param],
                "responses": {"200": ok("The recovery plan", "RecoveryPlan"), "401": unauthorized,
                              "400": {"description": "Malformed id", **error}, "404": unknown},
            },
            "post": {
                "summary": "Disaster recovery, as a background job",
                "description": "Replays archived events Stripe's events list no longer returns and that have no "
                               "ledger row, oldest first (audited). Answers the job at once; its `result` is a "
                               "RecoveryResult once `status` is done. A replay that fails leaves the job failed "
                               "with its reason and nothing changed.",
                "tags": ["Stripe"], "parameters": [account_param],
                "responses": {"202": accepted, "401": unauthorized, "403": forbidden, "404": unknown},
            },
        },
        "/api/v1/jobs/{run_id}": {"get": {
            "summary": "A sync's or a disaster recovery's job: its state, then its result or error",
            "tags": ["Stripe"],
            "parameters": [{"name": "run_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}],
            "responses": {"200": ok("The job", "Job"), "401": unauthorized, "403": forbidden,
                          "404": {"description": "No such job", **error}},
        }},
    }
    paths = {"/api/v1/accounts/{account_id}/sync": {"post": {
        "summary": "Sync an account with Stripe",
        "description": "Pulls Stripe's events list for the account's customer from its anchor, archives missed "
                       "events, refreshes the subscription and payments, replays the ledger and checks drift — "
                       "as a background job, never holding the request: answers the job at once (its `result` "
                       "is a SyncResult once `status` is done; Stripe unreachable or refusing leaves it failed "
                       "with what Stripe said, nothing changed). Poll the Location header.",
        "tags": ["Stripe"],
        "parameters": [account_param],
        "responses": {
            "202": accepted,
            "409": {"description": "Stripe not configured, no Stripe customer, or a foreign currency "
                    "(error.code stripe_not_configured, no_stripe_customer, foreign_currency)", **error},
            "401": unauthorized, "403": forbidden, "404": unknown,
        },
    }}}
    return {**paths, **more_paths}, {"SyncResult": result, "Discrepancy": discrepancy, "DriftState": drift_state,
                                     "DriftFinding": finding, "DriftList": drift_list, "RecoveryPlan": plan,
                                     "RecoveryResult": recovered, "Job": job}
