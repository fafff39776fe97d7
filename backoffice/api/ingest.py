"""What the SaaS platform sends Backoffice besides Stripe: accounts, users, memberships, logins,
sessions, deployments (state, deletion, history, backfill) and metered usage. Token scope `ingest`."""
from __future__ import annotations

from flask import Blueprint, g, jsonify
from werkzeug.routing import BaseConverter

from backoffice.accounts import ingest as accounts_ingest
from backoffice.accounts.models import LANGUAGES
from backoffice.accounts.posture import posture_of
from backoffice.api.answers import object_body
from backoffice.api.openapi import ID, contribute
from backoffice.auth import token_required
from backoffice.usage import parsing, services
from backoffice.users import ingest as users_ingest

bp = Blueprint("ingest", __name__)  # nested in the api blueprint (api/blueprints.py)


class DeploymentName(BaseConverter):
    """A deployment's name in a URL: anything but `backfill`, which is POST /deployments/backfill's
    (without it that URL also answered PUT and DELETE, as a deployment named backfill)."""

    regex = rf"(?!{parsing.RESERVED_NAME}(?![^/]))[^/]+"


# Before the routes below: a rule finds its converter when it is added.
bp.record_once(lambda state: state.app.url_map.converters.setdefault("deployment", DeploymentName))


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

@bp.put("/deployments/<deployment:name>")
@token_required("ingest")
def put_deployment(name: str):
    parsing.parse_name(name, "name")
    result = services.put_state(name, parsing.parse_state(object_body()))
    return jsonify({"deployment": _deployment_json(result.deployment, result.state),
                    "created": result.created, "appended": result.appended.as_dict()}), (
        201 if result.created else 200)


@bp.delete("/deployments/<deployment:name>")
@token_required("ingest")
def delete_deployment(name: str):
    body = object_body(optional=True)
    at = parsing.parse_time(parsing.require_object(body).get("occurred_at"), "occurred_at", required=False)
    dep, stamped = services.delete_deployment(name, at)
    return jsonify({"name": dep.name, "account_id": dep.account_id, "created_at": _iso(dep.created_at),
                    "deleted_at": _iso(dep.deleted_at), "stamped": stamped})


@bp.post("/deployments/<deployment:name>/events")
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

def _op(summary: str, description: str, *, body_ref: str | None = None, example=None, responses: dict,
        params: list | None = None, body_optional: bool = False) -> dict:
    """An ingest operation; every one answers 400, 401 and 403 (openapi.COMMON_ERRORS) and, with a
    body, 413, 415 and 422 (openapi.BODY_ERRORS)."""
    op = {"summary": summary, "description": description, "tags": ["ingest"], "security": [{"bearer": []}],
          "responses": responses}
    if params:
        op["parameters"] = params
    if body_ref:
        op["requestBody"] = {"required": not body_optional, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body_ref}"}, "example": example}}}
    return op


# The shapes the parsers accept (usage/parsing.py, accounts/ingest.py, users/ingest.py), as patterns.
NAME = {"type": "string", "pattern": parsing.NAME_RE.pattern, "not": {"const": parsing.RESERVED_NAME},
        "description": "1 to 100 letters, digits, . _ : -, starting with a letter or digit"}
PLAN = {"type": ["string", "null"], "pattern": parsing.NAME_RE.pattern, "maxLength": 64}
ADD_ONS = {"type": ["array", "null"], "items": NAME, "maxItems": parsing.MAX_ADDONS}
TIME = {"type": "string", "format": "date-time", "pattern": parsing.TIME_PATTERN,
        "description": "ISO 8601 with a zone, e.g. 2026-03-01T09:30:00Z; not in the future (422)"}
NULLABLE_TIME = {**TIME, "type": ["string", "null"]}


def _text(limit: int, required: bool = False) -> dict:
    """A free text of at most `limit` characters; blank is none unless `required` (then it must
    hold more than spaces)."""
    if required:
        return {"type": "string", "maxLength": limit, "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}
    return {"type": ["string", "null"], "maxLength": limit}


def _path(name: str, description: str, schema: dict = ID) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _json(description: str, example, schema_ref: str | None = None) -> dict:
    content = {"example": example}
    if schema_ref:
        content["schema"] = {"$ref": f"#/components/schemas/{schema_ref}"}
    return {"description": description, "content": {"application/json": content}}


def _error(description: str, example: dict) -> dict:
    return _json(description, {"error": example}, "Error")


_STATE_EXAMPLE = {"account_id": "acc_42", "plan": "team", "add_ons": ["searxng-local-search", "threema"],
                  "suspended": False, "occurred_at": "2026-03-01T09:30:00Z"}
_DEPLOYMENT_EXAMPLE = {"name": "acme-prod", "account_id": "acc_42", "created_at": "2026-02-10T08:00:00Z",
                       "deleted_at": None, "plan": "team", "add_ons": ["searxng-local-search", "threema"],
                       "suspended": False}
_CONFLICT = _error("Conflicts with what is stored (error.field names the field)", {
    "code": "conflict", "field": "occurred_at",
    "message": "occurred_at 2026-01-01T00:00:00Z lies before the deployment's creation at 2026-02-10T08:00:00Z."})


def _blank_or(pattern: str) -> str:
    """`pattern` (anchored) with spaces around it, or only spaces: what a field stripped of spaces,
    blank meaning none, accepts."""
    return rf"^\s*({pattern.strip('^$')})?\s*$"


@contribute
def _openapi():
    # At most two characters, stripped: two letters, or blank (none).
    country = {"type": ["string", "null"], "pattern": r"^([A-Za-z]{2}|\s{0,2})$"}
    email = {"type": ["string", "null"], "maxLength": 254, "pattern": _blank_or(accounts_ingest.EMAIL_RE.pattern)}
    billing = {k: _text(limit) for k, (_col, limit) in accounts_ingest.BILLING_FIELDS.items()}
    billing.update(country=country, email=email)
    schemas = {
        "AccountIn": {"type": "object", "properties": {
            "name": _text(200, required=True), "country": country, "email": email, "logo_url": _text(500),
            "logo": _text(500), "stripe_customer_id": _text(255), "created_at": TIME, "deleted_at": NULLABLE_TIME,
            "billing": {"type": ["object", "null"], "properties": billing},
            "billing_posture": {"type": "object", "properties": {
                "pay_by": {"enum": ["card", "invoice"]}, "auto_invoice": {"type": "boolean"},
                "auto_reminders": {"type": "boolean"},
                "payment_terms_days": {"type": "integer", "minimum": 0, "maximum": 365}}},
            "language": {"enum": list(LANGUAGES), "description": "The language of its invoices."}},
            "description": "Keys left out keep their stored value; null clears an optional field. "
                           "`name` is required when the account is new (422 without it)."},
        "UserIn": {"type": "object", "properties": {
            "email": {"type": "string", "maxLength": 254, "pattern": "^[^\\u0000]*@[^\\u0000]*$"},
            "first_name": _text(100), "last_name": _text(100), "created_at": TIME,
            "last_seen_at": NULLABLE_TIME},
            "description": "`email` is required when the user is new (422 without it)."},
        "MembershipIn": {"type": "object", "properties": {
            "role": {"enum": list(users_ingest.ROLES)}, "state": {"enum": list(users_ingest.STATES)},
            "created_at": TIME}},
        "LoginsIn": {"type": "object", "required": ["logins"], "properties": {"logins": {
            "type": "array", "minItems": 1, "maxItems": parsing.MAX_BATCH, "items": {
                "type": "object", "required": ["user_id", "at", "method"], "properties": {
                    "user_id": _text(64, required=True), "at": TIME, "method": _text(20, required=True),
                    "outcome": {"enum": list(users_ingest.LOGIN_OUTCOMES)}, "ip": _text(45),
                    "user_agent": _text(500)}}}}},
        "SessionIn": {"type": "object", "required": ["user_id"], "properties": {
            "user_id": _text(64, required=True), "created_at": NULLABLE_TIME, "ip": _text(45),
            "user_agent": _text(500)}},
        "AtIn": {"type": "object", "properties": {"at": NULLABLE_TIME}},
        "OccurredAtIn": {"type": "object", "properties": {"occurred_at": NULLABLE_TIME}},
        "DeploymentStateIn": {"type": "object", "required": ["account_id"], "properties": {
            "account_id": ID, "plan": PLAN, "add_ons": ADD_ONS,
            "suspended": {"type": ["boolean", "null"], "default": False},
            "occurred_at": {**NULLABLE_TIME, "description": "When the platform committed this state; default now."}}},
        "Deployment": {"type": "object", "properties": {
            "name": {"type": "string"}, "account_id": {"type": "string"}, "created_at": TIME,
            "deleted_at": {"type": ["string", "null"], "format": "date-time"}, "plan": {"type": ["string", "null"]},
            "add_ons": {"type": "array", "items": {"type": "string"}}, "suspended": {"type": "boolean"}}},
        "DeploymentEventsIn": {"type": "object", "required": ["events"], "properties": {"events": {
            "type": "array", "minItems": 1, "maxItems": parsing.MAX_BATCH, "items": {
                "type": "object", "required": ["type", "occurred_at"], "properties": {
                    "type": {"enum": list(parsing.EVENT_TYPES)}, "occurred_at": TIME,
                    "add_on": {**NAME, "description": "for add_on_enabled / add_on_disabled"},
                    "plan": {**PLAN, "description": "for plan_changed"}},
                "if": {"properties": {"type": {"enum": ["add_on_enabled", "add_on_disabled"]}}},
                "then": {"required": ["add_on"]}}}}},
        "BackfillIn": {"type": "object", "required": ["deployments"], "properties": {"deployments": {
            "type": "array", "minItems": 1, "maxItems": parsing.MAX_BACKFILL, "items": {
                "type": "object", "required": ["name", "account_id", "created_at"], "properties": {
                    "name": NAME, "account_id": ID, "created_at": TIME, "add_ons": ADD_ONS,
                    "suspended_at": {**NULLABLE_TIME, "description": "not before created_at (422)"},
                    "plan": PLAN}}}},
            "description": "Each name once (422 for a second)."},
        "BackfillCounts": {"type": "object", "properties": {k: {"type": "integer"} for k in (
            "deployments_examined", "lifecycle_inserted", "events_inserted", "suspension_events_inserted")}},
        "UsageIn": {"type": "object", "required": ["records"], "properties": {"records": {
            "type": "array", "minItems": 1, "maxItems": parsing.MAX_BATCH, "items": {
                "type": "object", "required": ["deployment", "metric", "quantity", "occurred_at", "idempotency_key"],
                "properties": {
                    "deployment": NAME,
                    "metric": {"enum": list(parsing.METRICS)},
                    "quantity": {"oneOf": [
                        {"type": "string", "pattern": r"^0*[0-9]{1,14}(\.[0-9]{1,4})?$"},
                        {"type": "number", "minimum": 0, "exclusiveMaximum": 100000000000000}],
                        "description": ">= 0 and below 10^14, at most 4 decimals (422 for more)"},
                    "occurred_at": TIME, "idempotency_key": {"type": "string", "pattern": parsing.KEY_RE.pattern}}}}}},
        "UsageCounts": {"type": "object", "properties": {k: {"type": "integer"} for k in (
            "received", "inserted", "duplicates")}},
    }
    not_found_account = _error("Unknown account.", {"code": "not_found", "field": "account_id",
                                                    "message": "No account with id 'acc_404'. "
                                                               "PUT /api/v1/accounts/acc_404 first."})
    not_found = {name: _error(f"Unknown {what}.", {"code": "not_found", "field": field,
                                                  "message": f"No {what} with id '{example}'."})
                 for name, what, field, example in (("user", "user", "user_id", "usr_404"),
                                                    ("session", "session", "session_id", "ses_404"),
                                                    ("member", "account or user", "account_id", "acc_404"),
                                                    ("deployment", "deployment", "name", "acme-test"))}
    backfill_405 = _error("The name is backfill: that URL is POST /api/v1/deployments/backfill's", {
        "code": "method_not_allowed", "field": None, "message": "This action is not allowed here."})
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
                       "201": _json("Created", {"id": "acc_42", "name": "Acme AG"}),
                       "409": _error("The Stripe customer belongs to another account", {
                           "code": "conflict", "field": "stripe_customer_id",
                           "message": "stripe_customer_id cus_Q1w2e3 belongs to another account."})})},
        "/api/v1/users/{user_id}": {"put": _op(
            "Create or update a user", "Upserts one of the platform's end users.", body_ref="UserIn",
            params=[_path("user_id", "The platform's user id")],
            example={"email": "ada@acme.example", "first_name": "Ada", "last_name": "Muster",
                     "created_at": "2026-01-05T10:00:00Z"},
            responses={"200": _json("Updated", {"id": "usr_7"}), "201": _json("Created", {"id": "usr_7"})})},
        "/api/v1/accounts/{account_id}/members/{user_id}": {
            "put": _op("Add or change a membership", "Role and state of a user in an account (body "
                       "optional: a member, active).",
                       body_ref="MembershipIn", example={"role": "admin", "state": "active"}, body_optional=True,
                       params=[_path("account_id", "Account id"), _path("user_id", "User id")],
                       responses={"200": _json("Updated", {"role": "admin"}), "201": _json("Created", {"role": "admin"}),
                                  "404": not_found["member"]}),
            "delete": _op("Remove a membership", "Idempotent; `removed` says whether one existed.",
                          params=[_path("account_id", "Account id"), _path("user_id", "User id")],
                          responses={"200": _json("Removed", {"account_id": "acc_42", "user_id": "usr_7",
                                                              "removed": True})})},
        "/api/v1/logins": {"post": _op(
            "Record logins", "Up to 1,000 logins, all or nothing.", body_ref="LoginsIn",
            example={"logins": [{"user_id": "usr_7", "at": "2026-03-01T08:59:00Z", "method": "password",
                                 "outcome": "success", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"}]},
            responses={"201": _json("Recorded", {"inserted": 1}), "404": not_found["user"]})},
        "/api/v1/sessions/{session_id}": {"put": _op(
            "Open a session", "Idempotent for the same user.", body_ref="SessionIn",
            params=[_path("session_id", "The platform's session id")],
            example={"user_id": "usr_7", "created_at": "2026-03-01T09:00:00Z", "ip": "203.0.113.9"},
            responses={"201": _json("Created", {"id": "ses_1", "user_id": "usr_7"}),
                       "200": _json("Already open for this user", {"id": "ses_1", "user_id": "usr_7"}),
                       "404": not_found["user"],
                       "409": _error("The session is another user's", {
                           "code": "conflict", "field": "user_id", "message": "Session ses_1 belongs to another user."})})},
        "/api/v1/sessions/{session_id}/touch": {"post": _op(
            "Mark a session as seen", "Moves last_seen_at forward (never back); body optional (at: now).",
            body_ref="AtIn", body_optional=True,
            params=[_path("session_id", "Session id")], example={"at": "2026-03-01T09:45:00Z"},
            responses={"200": _json("Touched", {"id": "ses_1", "last_seen_at": "2026-03-01T09:45:00Z"}),
                       "404": not_found["session"]})},
        "/api/v1/sessions/{session_id}/revoke": {"post": _op(
            "Revoke a session", "The first revocation time is kept; body optional (at: now).",
            body_ref="AtIn", body_optional=True,
            params=[_path("session_id", "Session id")], example={"at": "2026-03-01T10:00:00Z"},
            responses={"200": _json("Revoked", {"id": "ses_1", "revoked_at": "2026-03-01T10:00:00Z"}),
                       "404": not_found["session"]})},
        "/api/v1/deployments/{name}": {
            "put": _op(
                "Report a deployment's committed state",
                "Call after creating, patching (plan, add-ons), suspending or resuming a deployment, with the "
                "state the platform committed. Backoffice diffs it against its own log and appends exactly the "
                "lifecycle, plan, add-on and suspension events that changed, at occurred_at (default now). "
                "The same state twice appends nothing. An unknown account answers 404; a deleted deployment, "
                "another account or an occurred_at older than the latest event answer 409.",
                body_ref="DeploymentStateIn", example=_STATE_EXAMPLE,
                params=[_path("name", "The deployment's unique name", NAME)],
                responses={
                    "200": _json("State recorded", {"deployment": _DEPLOYMENT_EXAMPLE, "created": False,
                                                    "appended": {"lifecycle": 0, "plan": 0, "add_on": 1,
                                                                 "suspension": 0}}),
                    "201": _json("Deployment created", {"deployment": _DEPLOYMENT_EXAMPLE, "created": True,
                                                        "appended": {"lifecycle": 1, "plan": 1, "add_on": 2,
                                                                     "suspension": 0}}),
                    "404": not_found_account, "405": backfill_405,
                    "409": _error("Conflict with the log", {
                        "code": "conflict", "field": "name",
                        "message": "Deployment 'acme-prod' was deleted at 2026-04-01T00:00:00Z; a deleted "
                                   "deployment's name is not reused."})}),
            "delete": _op(
                "Delete a deployment",
                "Call after deleting a deployment. Stamps deleted_at once (body optional: "
                "{\"occurred_at\"}); deleting again keeps the first time and answers stamped=false.",
                body_ref="OccurredAtIn", body_optional=True, example={"occurred_at": "2026-04-01T00:00:00Z"},
                params=[_path("name", "Deployment name", NAME)],
                responses={"200": _json("Deleted", {"name": "acme-prod", "account_id": "acc_42",
                                                    "created_at": "2026-02-10T08:00:00Z",
                                                    "deleted_at": "2026-04-01T00:00:00Z", "stamped": True}),
                           "404": not_found["deployment"], "405": backfill_405, "409": _CONFLICT})},
        "/api/v1/deployments/{name}/events": {"post": _op(
            "Post historical events",
            "Explicit, timestamped events (up to 1,000), all or nothing. An event identical to a stored one "
            "is a retry: skipped and counted in duplicates.",
            body_ref="DeploymentEventsIn", params=[_path("name", "Deployment name", NAME)],
            example={"events": [
                {"type": "add_on_enabled", "add_on": "threema", "occurred_at": "2026-02-11T10:00:00Z"},
                {"type": "add_on_disabled", "add_on": "threema", "occurred_at": "2026-02-11T15:00:00Z"},
                {"type": "suspended", "occurred_at": "2026-02-20T00:00:00Z"},
                {"type": "resumed", "occurred_at": "2026-02-22T00:00:00Z"},
                {"type": "plan_changed", "plan": "business", "occurred_at": "2026-02-25T00:00:00Z"}]},
            responses={"201": _json("Recorded", {"add_on_events_inserted": 2, "suspension_events_inserted": 2,
                                                 "plan_events_inserted": 1, "duplicates": 0}),
                       "404": not_found["deployment"], "409": _CONFLICT})},
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
                       "404": _error("Unknown deployment", {
                           "code": "not_found", "field": "records[0].deployment",
                           "message": "Record 0: no deployment named 'acme-test'."}),
                       "409": _error("After the deployment's deletion", {
                           "code": "conflict", "field": "records[0].occurred_at",
                           "message": "Record 0: occurred_at 2026-05-01T00:00:00Z lies after the deployment's "
                                      "deletion at 2026-04-01T00:00:00Z."})})},
    }
    return paths, schemas

