"""Turns the platform's JSON into typed values, refusing bad input with a message that names the
field and, in batches, the record's index. Pure: no database."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from backoffice.accounts.filters import ID_RE
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, Unprocessable
from backoffice.usage.models import METRICS

RESERVED_NAME = "backfill"  # no deployment's: POST /api/v1/deployments/backfill
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")  # a decimal string: digits, a point, digits
MAX_BATCH = 1000
MAX_BACKFILL = 10_000
MAX_ADDONS = 200
# A clock a little ahead of ours is fine; an event an hour in the future is a bug on the platform.
FUTURE_TOLERANCE = timedelta(minutes=5)
# The times the document promises parse_time reads (a subset of what it reads: RFC 3339 as
# datetime.fromisoformat takes it, with a zone).
TIME_PATTERN = (r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](\.[0-9]{1,6})?"
                r"(Z|[+-][0-9]{2}:[0-9]{2})$")
EVENT_TYPES = ("add_on_enabled", "add_on_disabled", "suspended", "resumed", "plan_changed")


@dataclass(frozen=True)
class StateIn:
    account_id: str
    plan: str | None
    add_ons: frozenset[str]
    suspended: bool
    occurred_at: datetime | None


@dataclass(frozen=True)
class EventIn:
    type: str
    occurred_at: datetime
    add_on: str | None = None
    plan: str | None = None


@dataclass(frozen=True)
class BackfillItem:
    name: str
    account_id: str
    created_at: datetime
    add_ons: frozenset[str]
    suspended_at: datetime | None
    plan: str | None


@dataclass(frozen=True)
class UsageIn:
    deployment: str
    metric: str
    quantity: Decimal
    occurred_at: datetime
    idempotency_key: str


def require_object(body, what: str = "body") -> dict:
    if not isinstance(body, dict):
        raise BadRequest(f"The request {what} must be a JSON object.", field=None)
    return body


def parse_time(value, field: str, *, required: bool = True, prefix: str = "") -> datetime | None:
    """ISO 8601 with a zone (`Z` or an offset); returns aware UTC."""
    if value is None:
        if required:
            raise BadRequest(f"{prefix}{field} is required (ISO 8601 in UTC, e.g. 2026-01-31T12:00:00Z).",
                             field=field)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{prefix}{field} must be an ISO 8601 string.", field=field)
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise BadRequest(f"{prefix}{field} needs a time zone (end it with Z for UTC).", field=field)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31T23:00:00-05:00 is in year 10000 in UTC
        raise BadRequest(f"{prefix}{field} is not an ISO 8601 time: {value[:40]!r}.", field=field) from None
    if parsed > utcnow() + FUTURE_TOLERANCE:
        raise Unprocessable(f"{prefix}{field} lies in the future: {value}.", field=field)
    return parsed


def parse_name(value, field: str, prefix: str = "") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise BadRequest(
            f"{prefix}{field} must be 1 to 100 letters, digits, '.', '_', ':' or '-', starting with a "
            "letter or digit.", field=field)
    if value == RESERVED_NAME:
        raise BadRequest(f"{prefix}{field} may not be {RESERVED_NAME!r}: /api/v1/deployments/{RESERVED_NAME} is the "
                         "backfill's URL.", field=field)
    return value


def parse_id(value, field: str, prefix: str = "") -> str:
    """An id as every list and page reads it (accounts/filters.ID_RE)."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise BadRequest(f"{prefix}{field} must be an id of 1 to 64 letters, digits, '_', '.', ':' or '-'.",
                         field=field)
    return value


def parse_plan(value, field: str = "plan", prefix: str = "") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not NAME_RE.match(value) or len(value) > 64:
        raise BadRequest(f"{prefix}{field} must be a plan key of 1 to 64 letters, digits, '.', '_' or '-'.",
                         field=field)
    return value


def parse_addons(value, field: str = "add_ons", prefix: str = "") -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise BadRequest(f"{prefix}{field} must be a list of add-on ids.", field=field)
    if len(value) > MAX_ADDONS:
        raise BadRequest(f"{prefix}{field} may hold at most {MAX_ADDONS} add-ons.", field=field)
    for i, addon in enumerate(value):
        parse_name(addon, f"{field}[{i}]", prefix)
    return frozenset(value)


def parse_bool(value, field: str, default: bool | None = None, prefix: str = "") -> bool:
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{prefix}{field} must be true or false.", field=field)
    return value


def parse_state(body) -> StateIn:
    """The body of PUT /api/v1/deployments/<name>."""
    body = require_object(body)
    return StateIn(
        account_id=parse_id(body.get("account_id"), "account_id"),
        plan=parse_plan(body.get("plan")),
        add_ons=parse_addons(body.get("add_ons")),
        suspended=parse_bool(body.get("suspended"), "suspended", default=False),
        occurred_at=parse_time(body.get("occurred_at"), "occurred_at", required=False),
    )


def _batch(body, key: str, limit: int) -> list:
    body = require_object(body)
    items = body.get(key)
    if not isinstance(items, list):
        raise BadRequest(f"{key} must be a list.", field=key)
    if not items:
        raise BadRequest(f"{key} is empty.", field=key)
    if len(items) > limit:
        raise BadRequest(f"{key} holds {len(items)} entries; at most {limit:,} are accepted per call.",
                         field=key)
    return items


def parse_events(body) -> list[EventIn]:
    """The body of POST /api/v1/deployments/<name>/events: explicit, timestamped history."""
    out = []
    for i, raw in enumerate(_batch(body, "events", MAX_BATCH)):
        field = f"events[{i}]"
        prefix = f"Event {i}: "
        if not isinstance(raw, dict):
            raise BadRequest(f"{prefix}must be an object.", field=field)
        kind = raw.get("type")
        if kind not in EVENT_TYPES:
            raise BadRequest(f"{prefix}type must be one of {', '.join(EVENT_TYPES)}.", field=f"{field}.type")
        at = parse_time(raw.get("occurred_at"), f"{field}.occurred_at", prefix=prefix)
        add_on = plan = None
        if kind.startswith("add_on_"):
            add_on = parse_name(raw.get("add_on"), f"{field}.add_on", prefix)
        if kind == "plan_changed":
            plan = parse_plan(raw.get("plan"), f"{field}.plan", prefix)
        out.append(EventIn(type=kind, occurred_at=at, add_on=add_on, plan=plan))
    return out


def parse_backfill(body) -> list[BackfillItem]:
    """The body of POST /api/v1/deployments/backfill: every live deployment."""
    out, seen = [], set()
    for i, raw in enumerate(_batch(body, "deployments", MAX_BACKFILL)):
        field = f"deployments[{i}]"
        prefix = f"Deployment {i}: "
        if not isinstance(raw, dict):
            raise BadRequest(f"{prefix}must be an object.", field=field)
        name = parse_name(raw.get("name"), f"{field}.name", prefix)
        if name in seen:
            raise Unprocessable(f"{prefix}{name!r} appears twice in the snapshot.", field=f"{field}.name")
        seen.add(name)
        created = parse_time(raw.get("created_at"), f"{field}.created_at", prefix=prefix)
        suspended_at = parse_time(raw.get("suspended_at"), f"{field}.suspended_at", required=False,
                                  prefix=prefix)
        if suspended_at is not None and suspended_at < created:
            raise Unprocessable(f"{prefix}suspended_at lies before created_at.", field=f"{field}.suspended_at")
        out.append(BackfillItem(
            name=name,
            account_id=parse_id(raw.get("account_id"), f"{field}.account_id", prefix),
            created_at=created,
            add_ons=parse_addons(raw.get("add_ons"), f"{field}.add_ons", prefix),
            suspended_at=suspended_at,
            plan=parse_plan(raw.get("plan"), f"{field}.plan", prefix),
        ))
    return out


def parse_quantity(value, field: str, prefix: str = "") -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
            isinstance(value, str) and not QUANTITY_RE.match(value)):
        raise BadRequest(f"{prefix}quantity must be a number or a decimal string like 24.5.", field=field)
    try:
        quantity = Decimal(str(value))
    except InvalidOperation:
        raise BadRequest(f"{prefix}quantity is not a number: {str(value)[:40]!r}.", field=field) from None
    if not quantity.is_finite():
        raise BadRequest(f"{prefix}quantity must be finite.", field=field)
    if quantity < 0:
        raise BadRequest(f"{prefix}quantity must not be negative (got {quantity}).", field=field)
    if quantity.as_tuple().exponent < -4:
        raise Unprocessable(f"{prefix}quantity has more than 4 decimals ({quantity}).", field=field)
    if quantity >= Decimal(100000000000000):
        raise BadRequest(f"{prefix}quantity is too large ({quantity}).", field=field)
    return quantity


def parse_usage(body) -> list[UsageIn]:
    """The body of POST /api/v1/usage: up to 1,000 metered records."""
    out = []
    for i, raw in enumerate(_batch(body, "records", MAX_BATCH)):
        field = f"records[{i}]"
        prefix = f"Record {i}: "
        if not isinstance(raw, dict):
            raise BadRequest(f"{prefix}must be an object.", field=field)
        metric = raw.get("metric")
        if metric not in METRICS:
            raise BadRequest(f"{prefix}metric must be one of {', '.join(METRICS)}.", field=f"{field}.metric")
        key = raw.get("idempotency_key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise BadRequest(f"{prefix}idempotency_key must be 1 to 200 printable characters without spaces.",
                             field=f"{field}.idempotency_key")
        out.append(UsageIn(
            deployment=parse_name(raw.get("deployment"), f"{field}.deployment", prefix),
            metric=metric,
            quantity=parse_quantity(raw.get("quantity"), f"{field}.quantity", prefix),
            occurred_at=parse_time(raw.get("occurred_at"), f"{field}.occurred_at", prefix=prefix),
            idempotency_key=key,
        ))
    return out
