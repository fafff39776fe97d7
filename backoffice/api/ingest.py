"""What the SaaS platform sends Backoffice besides Stripe: accounts, users, memberships, logins,
sessions, deployments (state, deletion, history, backfill) and metered usage. Token scope `ingest`."""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from backoffice.accounts import ingest as accounts_ingest
from backoffice.accounts.posture import posture_of
from backoffice.api.answers import object_body
from backoffice.api.openapi import contribute
from backoffice.auth import token_required
from backoffice.usage import parsing, services
from backoffice.users import ingest as users_ingest

bp = Blueprint("ingest", __name__)  # nested in the api blueprint (api/blueprints.py)


def _iso(value):
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _account_json(a) -> dict:
    return {
        "id": a.id, "name": a.name, "country": a.country, "email": a.email, "logo_url": a.logo_url,
        "stripe_customer_id": a.stripe_customer_id, "created_at": _iso(a.created_at),
        "modified_at": _iso(a.modified_at), "deleted_at": _iso(a.deleted_at),
        "billing": {k: getattr(a, col) for k, (col, _limit) in accounts_ingest.BILLING_FIELDS.items()},
        "billing_posture": posture_of(a), "language": a.language,
    }


def _deployment_json(dep, state) -> dict:
    return {
        "name": dep.name, "account_id": dep.account_id, "created_at": _iso(dep.created_at),
        "deleted_at": _iso(dep.deleted_at), "plan": state.plan, "add_ons": sorted(state.add_ons),
        "suspended": state.suspended,
    }


# --- accounts, users, memberships, logins, sessions ---------------------------------------------

@bp.put("/accounts/<account_id>")
@token_required("ingest")
def put_account(account_id: str):
    account, created = accounts_ingest.upsert_account(account_id, object_body())
    return jsonify(_account_json(account)), 201 if created else 200


@bp.put("/users/<user_id>")
@token_required("ingest")
def put_user(user_id: str):
    user, created = users_ingest.upsert_user(user_id, object_body())
    return jsonify({"id": user.id, "email": user.email, "first_name": user.first_name,
                    "last_name": user.last_name, "created_at": _iso(user.created_at),
                    "last_seen_at": _iso(user.last_seen_at)}), 201 if created else 200


@bp.put("/accounts/<account_id>/members/<user_id>")
@token_required("ingest")
def put_member(account_id: str, user_id: str):
    m, created = users_ingest.upsert_membership(account_id, user_id, object_body(optional=True))
    return jsonify({"account_id": m.account_id, "user_id": m.user_id, "role": m.role, "state": m.state,
                    "created_at": _iso(m.created_at)}), 201 if created else 200


@bp.delete("/accounts/<account_id>/members/<user_id>")
@token_required("ingest")
def delete_member(account_id: str, user_id: str):
    removed = users_ingest.remove_membership(account_id, user_id)
    return jsonify({"account_id": account_id, "user_id": user_id, "removed": removed})


@bp.post("/logins")
@token_required("ingest")
def post_logins():
    return jsonify({"inserted": users_ingest.record_logins(object_body())}), 201


def _session_json(s) -> dict:
    return {"id": s.id, "user_id": s.user_id, "created_at": _iso(s.created_at),
            "last_seen_at": _iso(s.last_seen_at), "revoked_at": _iso(s.revoked_at)}


@bp.put("/sessions/<session_id>")
@token_required("ingest")
def put_session(session_id: str):
    s, created = users_ingest.create_session(session_id, object_body())
    return jsonify(_session_json(s)), 201 if created else 200


@bp.post("/sessions/<session_id>/touch")
@token_required("ingest")
def touch_session(session_id: str):
    return jsonify(_session_json(users_ingest.touch_session(session_id, object_body(optional=True))))


@bp.post("/sessions/<session_id>/revoke")
@token_required("ingest")
def revoke_session(session_id: str):
    return jsonify(_session_json(users_ingest.revoke_session(session_id, object_body(optional=True))))


# --- deployments and usage ----------------------------------------------------------------------

@bp.put("/deployments/<name>")
@token_required("ingest")
def put_deployment(name: str):
    parsing.parse_name(name, "name")
    result = services.put_state(name, parsing.parse_state(object_body()))
    return jsonify({"deployment": _deployment_json(result.deployment, result.state),
                    "created": result.created, "appended": result.appended.as_dict()}), (
        201 if result.created else 200)


@bp.delete("/deployments/<name>")
@token_required("ingest")
def delete_deployment(name: str):
    body = object_body(optional=True)
    at = parsing.parse_time(parsing.require_object(body).get("occurred_at"), "occurred_at", required=False)
    dep, stamped = services.delete_deployment(name, at)
    return jsonify({"name": dep.name, "account_id": dep.account_id, "created_at": _iso(dep.created_at),
                    "deleted_at": _iso(dep.deleted_at), "stamped": stamped})


@bp.post("/deployments/<name>/events")
@token_required("ingest")
def post_deployment_events(name: str):
    counts = services.record_events(name, parsing.parse_events(object_body()))
    return jsonify(counts), 201


@bp.post("/deployments/backfill")
@token_required("ingest")
def post_backfill():
    body = object_body()
    items = parsing.parse_backfill(body)
    run = services.backfill(items, snapshot=body, trigger="api", actor=f"token:{g.api_token.name}")
    return jsonify(run.counts())


@bp.post("/usage")
@token_required("ingest")
def post_usage():
    counts = services.ingest_usage(parsing.parse_usage(object_body()))
    return jsonify(counts), 201 if counts["inserted"] else 200


# --- OpenAPI ------------------------------------------------------------------------------------

def _op(summary: str, description: str, *, body_ref: str | None = None, example=None,
        responses: dict, params: list | None = None) -> dict:
    op = {"summary": summary, "description": description, "tags": ["ingest"], "security": [{"bearer": []}],
          "responses": {**responses,
                        "400": _BAD_REQUEST, "401": _UNAUTHORIZED, "403": _FORBIDDEN}}
    if params:
        op["parameters"] = params
    if body_ref:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body_ref}"}, "example": example}}}
    return op


def _path(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _json(description: str, example, schema_ref: str | None = None) -> dict:
    content = {"example": example}
    if schema_ref:
        content["schema"] = {"$ref": f"#/components/schemas/{schema_ref}"}
    return {"description": description, "content": {"application/json": content}}


_BAD_REQUEST = _json(
    "Invalid input; `field` names the field, and in batches the record's index (nothing of the batch "
    "was written).",
    {"error": {"code": "bad_request", "field": "records[3].quantity",
               "message": "Record 3: quantity must not be negative (got -5)."}}, "Error")
_UNAUTHORIZED = _json("No bearer token, or an unknown or revoked one.", {"error": {
    "code": "unauthorized", "message": "A bearer token is required.", "field": None}}, "Error")
_FORBIDDEN = _json("The token's scope is not ingest (or admin).", {"error": {
    "code": "forbidden", "message": "This token's scope does not allow this call.", "field": None}}, "Error")
TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 in UTC, e.g. 2026-03-01T09:30:00Z"}
_STATE_EXAMPLE = {"account_id": "acc_42", "plan": "team", "add_ons": ["searxng-local-search", "threema"],
                  "suspended": False, "occurred_at": "2026-03-01T09:30:00Z"}
_DEPLOYMENT_EXAMPLE = {"name": "acme-prod", "account_id": "acc_42", "created_at": "2026-02-10T08:00:00Z",
                       "deleted_at": None, "plan": "team", "add_ons": ["searxng-local-search", "threema"],
                       "suspended": False}


@contribute
def _openapi():
    schemas = {
        "AccountIn": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 200}, "country": {"type": ["string", "null"]},
            "email": {"type": ["string", "null"]}, "logo_url": {"type": ["string", "null"]},
            "stripe_customer_id": {"type": ["string", "null"]}, "created_at": TIME,
            "billing": {"type": ["object", "null"], "properties": {k: {"type": ["string", "null"]} for k in (
                "name", "email", "line1", "line2", "postal_code", "city", "country", "vat_id")}},
            "billing_posture": {"type": "object", "properties": {
                "pay_by": {"enum": ["card", "invoice"]}, "auto_invoice": {"type": "boolean"},
                "auto_reminders": {"type": "boolean"},
                "payment_terms_days": {"type": "integer", "minimum": 0, "maximum": 365}}},
            "language": {"enum": ["en", "de", "fr", "it"], "description": "The language of its invoices."}},
            "description": "Keys left out keep their stored value; null clears an optional field. "
                           "`name` is required when the account is new."},
        "UserIn": {"type": "object", "required": ["email"], "properties": {
            "email": {"type": "string"}, "first_name": {"type": ["string", "null"]},
            "last_name": {"type": ["string", "null"]}, "created_at": TIME, "last_seen_at": TIME}},
        "MembershipIn": {"type": "object", "properties": {
            "role": {"enum": ["owner", "admin", "member"]}, "state": {"enum": ["active", "pending"]},
            "created_at": TIME}},
        "LoginsIn": {"type": "object", "required": ["logins"], "properties": {"logins": {
            "type": "array", "maxItems": 1000, "items": {"type": "object", "required": ["user_id", "at", "method"],
                                                         "properties": {
                "user_id": {"type": "string"}, "at": TIME, "method": {"type": "string"},
                "outcome": {"enum": ["success", "failure"]}, "ip": {"type": "string"},
                "user_agent": {"type": "string"}}}}}},
        "SessionIn": {"type": "object", "required": ["user_id"], "properties": {
            "user_id": {"type": "string"}, "created_at": TIME, "ip": {"type": "string"},
            "user_agent": {"type": "string"}}},
        "AtIn": {"type": "object", "properties": {"at": TIME}},
        "DeploymentStateIn": {"type": "object", "required": ["account_id"], "properties": {
            "account_id": {"type": "string"}, "plan": {"type": ["string", "null"]},
            "add_ons": {"type": "array", "items": {"type": "string"}, "maxItems": 200},
            "suspended": {"type": "boolean", "default": False},
            "occurred_at": {**TIME, "description": "When the platform committed this state; default now."}}},
        "Deployment": {"type": "object", "properties": {
            "name": {"type": "string"}, "account_id": {"type": "string"}, "created_at": TIME,
            "deleted_at": {"type": ["string", "null"], "format": "date-time"}, "plan": {"type": ["string", "null"]},
            "add_ons": {"type": "array", "items": {"type": "string"}}, "suspended": {"type": "boolean"}}},
        "DeploymentEventsIn": {"type": "object", "required": ["events"], "properties": {"events": {
            "type": "array", "maxItems": 1000, "items": {"type": "object", "required": ["type", "occurred_at"],
                                                         "properties": {
                "type": {"enum": list(parsing.EVENT_TYPES)}, "occurred_at": TIME,
                "add_on": {"type": "string", "description": "for add_on_enabled / add_on_disabled"},
                "plan": {"type": ["string", "null"], "description": "for plan_changed"}}}}}},
        "BackfillIn": {"type": "object", "required": ["deployments"], "properties": {"deployments": {
            "type": "array", "maxItems": parsing.MAX_BACKFILL, "items": {
                "type": "object", "required": ["name", "account_id", "created_at"], "properties": {
                    "name": {"type": "string"}, "account_id": {"type": "string"}, "created_at": TIME,
                    "add_ons": {"type": "array", "items": {"type": "string"}},
                    "suspended_at": {"type": ["string", "null"], "format": "date-time"},
                    "plan": {"type": ["string", "null"]}}}}}},
        "BackfillCounts": {"type": "object", "properties": {k: {"type": "integer"} for k in (
            "deployments_examined", "lifecycle_inserted", "events_inserted", "suspension_events_inserted")}},
        "UsageIn": {"type": "object", "required": ["records"], "properties": {"records": {
            "type": "array", "maxItems": 1000, "items": {
                "type": "object", "required": ["deployment", "metric", "quantity", "occurred_at", "idempotency_key"],
                "properties": {
                    "deployment": {"type": "string"},
                    "metric": {"enum": list(parsing.METRICS)},
                    "quantity": {"type": ["string", "number"], "description": ">= 0, at most 4 decimals"},
                    "occurred_at": TIME, "idempotency_key": {"type": "string", "maxLength": 200}}}}}},
        "UsageCounts": {"type": "object", "properties": {k: {"type": "integer"} for k in (
            "received", "inserted", "duplicates")}},
    }
    not_found_account = _json("Unknown account.", {"error": {"code": "not_found", "field": "account_id",
                                                             "message": "No account with id 'acc_404'. "
                                                                        "PUT /api/v1/accounts/acc_404 first."}},
                              "Error")
    paths = {
        "/api/v1/accounts/{account_id}": {"put": _op(
            "Create or update an account",
            "Upserts the account with the platform's id. Billing posture is also editable by admins; send it "
            "only when the platform owns it.",
            body_ref="AccountIn", params=[_path("account_id", "The platform's account id")],
            example={"name": "Acme AG", "country": "CH", "email": "it@acme.example",
                     "billing": {"name": "Acme AG", "line1": "Bahnhofstrasse 1", "postal_code": "8001",
                                 "city": "Zürich", "country": "CH", "vat_id": "CHE-123.456.789 MWST"},
                     "billing_posture": {"pay_by": "invoice", "auto_invoice": True, "auto_reminders": True,
                                         "payment_terms_days": 30},
                     "stripe_customer_id": "cus_Q1w2e3"},
            responses={"200": _json("Updated", {"id": "acc_42", "name": "Acme AG"}),
                       "201": _json("Created", {"id": "acc_42", "name": "Acme AG"})})},
        "/api/v1/users/{user_id}": {"put": _op(
            "Create or update a user", "Upserts one of the platform's end users.", body_ref="UserIn",
            params=[_path("user_id", "The platform's user id")],
            example={"email": "ada@acme.example", "first_name": "Ada", "last_name": "Muster",
                     "created_at": "2026-01-05T10:00:00Z"},
            responses={"200": _json("Updated", {"id": "usr_7"}), "201": _json("Created", {"id": "usr_7"})})},
        "/api/v1/accounts/{account_id}/members/{user_id}": {
            "put": _op("Add or change a membership", "Role and state of a user in an account.",
                       body_ref="MembershipIn", example={"role": "admin", "state": "active"},
                       params=[_path("account_id", "Account id"), _path("user_id", "User id")],
                       responses={"200": _json("Updated", {"role": "admin"}), "201": _json("Created", {"role": "admin"}),
                                  "404": not_found_account}),
            "delete": _op("Remove a membership", "Idempotent; `removed` says whether one existed.",
                          params=[_path("account_id", "Account id"), _path("user_id", "User id")],
                          responses={"200": _json("Removed", {"account_id": "acc_42", "user_id": "usr_7",
                                                              "removed": True})})},
        "/api/v1/logins": {"post": _op(
            "Record logins", "Up to 1,000 logins, all or nothing.", body_ref="LoginsIn",
            example={"logins": [{"user_id": "usr_7", "at": "2026-03-01T08:59:00Z", "method": "password",
                                 "outcome": "success", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"}]},
            responses={"201": _json("Recorded", {"inserted": 1})})},
        "/api/v1/sessions/{session_id}": {"put": _op(
            "Open a session", "Idempotent for the same user.", body_ref="SessionIn",
            params=[_path("session_id", "The platform's session id")],
            example={"user_id": "usr_7", "created_at": "2026-03-01T09:00:00Z", "ip": "203.0.113.9"},
            responses={"201": _json("Created", {"id": "ses_1", "user_id": "usr_7"})})},
        "/api/v1/sessions/{session_id}/touch": {"post": _op(
            "Mark a session as seen", "Moves last_seen_at forward (never back).", body_ref="AtIn",
            params=[_path("session_id", "Session id")], example={"at": "2026-03-01T09:45:00Z"},
            responses={"200": _json("Touched", {"id": "ses_1", "last_seen_at": "2026-03-01T09:45:00Z"})})},
        "/api/v1/sessions/{session_id}/revoke": {"post": _op(
            "Revoke a session", "The first revocation time is kept.", body_ref="AtIn",
            params=[_path("session_id", "Session id")], example={"at": "2026-03-01T10:00:00Z"},
            responses={"200": _json("Revoked", {"id": "ses_1", "revoked_at": "2026-03-01T10:00:00Z"})})},
        "/api/v1/deployments/{name}": {
            "put": _op(
                "Report a deployment's committed state",
                "Call after creating, patching (plan, add-ons), suspending or resuming a deployment, with the "
                "state the platform committed. Backoffice diffs it against its own log and appends exactly the "
                "lifecycle, plan, add-on and suspension events that changed, at occurred_at (default now). "
                "The same state twice appends nothing. An unknown account answers 404; a deleted deployment, "
                "another account or an occurred_at older than the latest event answer 409.",
                body_ref="DeploymentStateIn", example=_STATE_EXAMPLE,
                params=[_path("name", "The deployment's unique name")],
                responses={
                    "200": _json("State recorded", {"deployment": _DEPLOYMENT_EXAMPLE, "created": False,
                                                    "appended": {"lifecycle": 0, "plan": 0, "add_on": 1,
                                                                 "suspension": 0}}),
                    "201": _json("Deployment created", {"deployment": _DEPLOYMENT_EXAMPLE, "created": True,
                                                        "appended": {"lifecycle": 1, "plan": 1, "add_on": 2,
                                                                     "suspension": 0}}),
                    "404": not_found_account,
                    "409": _json("Conflict with the log", {"error": {
                        "code": "conflict", "field": "name",
                        "message": "Deployment 'acme-prod' was deleted at 2026-04-01T00:00:00Z; a deleted "
                                   "deployment's name is not reused."}}, "Error")}),
            "delete": _op(
                "Delete a deployment",
                "Call after deleting a deployment. Stamps deleted_at once (body optional: "
                "{\"occurred_at\"}); deleting again keeps the first time and answers stamped=false.",
                params=[_path("name", "Deployment name")],
                responses={"200": _json("Deleted", {"name": "acme-prod", "account_id": "acc_42",
                                                    "created_at": "2026-02-10T08:00:00Z",
                                                    "deleted_at": "2026-04-01T00:00:00Z", "stamped": True})})},
        "/api/v1/deployments/{name}/events": {"post": _op(
            "Post historical events",
            "Explicit, timestamped events (up to 1,000), all or nothing. An event identical to a stored one "
            "is a retry: skipped and counted in duplicates.",
            body_ref="DeploymentEventsIn", params=[_path("name", "Deployment name")],
            example={"events": [
                {"type": "add_on_enabled", "add_on": "threema", "occurred_at": "2026-02-11T10:00:00Z"},
                {"type": "add_on_disabled", "add_on": "threema", "occurred_at": "2026-02-11T15:00:00Z"},
                {"type": "suspended", "occurred_at": "2026-02-20T00:00:00Z"},
                {"type": "resumed", "occurred_at": "2026-02-22T00:00:00Z"},
                {"type": "plan_changed", "plan": "business", "occurred_at": "2026-02-25T00:00:00Z"}]},
            responses={"201": _json("Recorded", {"add_on_events_inserted": 2, "suspension_events_inserted": 2,
                                                 "plan_events_inserted": 1, "duplicates": 0})})},
        "/api/v1/deployments/backfill": {"post": _op(
            "Backfill live deployments",
            "Every live deployment as the platform sees it. Idempotent: a lifecycle row only if missing; "
            "initial `enabled` events (at created_at) only if the deployment has no add-on events; a "
            "`suspended` event only if it is suspended and has none. A second run answers zeros. The "
            "snapshot is kept so an admin can re-run it from the Usage page.",
            body_ref="BackfillIn",
            example={"deployments": [
                {"name": "acme-prod", "account_id": "acc_42", "created_at": "2025-11-03T08:00:00Z",
                 "add_ons": ["threema", "searxng-local-search", "calendar"], "suspended_at": None,
                 "plan": "team"}]},
            responses={"200": _json("Counts", {"deployments_examined": 4, "lifecycle_inserted": 4,
                                               "events_inserted": 12, "suspension_events_inserted": 0},
                                    "BackfillCounts"),
                       "404": not_found_account})},
        "/api/v1/usage": {"post": _op(
            "Report metered usage",
            "Up to 1,000 records, all or nothing: one bad record refuses the batch, naming its index and "
            "the reason. A repeated idempotency_key is ignored and counted in duplicates (so a retried "
            "batch is harmless); a negative quantity is refused.",
            body_ref="UsageIn",
            example={"records": [
                {"deployment": "acme-prod", "metric": "messages_out", "quantity": 120,
                 "occurred_at": "2026-03-01T00:00:00Z", "idempotency_key": "acme-prod:messages_out:2026-03-01"},
                {"deployment": "acme-prod", "metric": "resource_hours", "quantity": "24.5",
                 "occurred_at": "2026-03-01T00:00:00Z", "idempotency_key": "acme-prod:hours:2026-03-01"}]},
            responses={"201": _json("Recorded", {"received": 2, "inserted": 2, "duplicates": 0}, "UsageCounts"),
                       "200": _json("Nothing new (all duplicates)", {"received": 2, "inserted": 0,
                                                                     "duplicates": 2}, "UsageCounts"),
                       "404": _json("Unknown deployment", {"error": {
                           "code": "not_found", "field": "records[0].deployment",
                           "message": "Record 0: no deployment named 'acme-test'."}}, "Error")})},
    }
    return paths, schemas

