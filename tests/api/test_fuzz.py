"""Hostile input never gives a 5xx (issue 21, part 1). Hypothesis puts NUL bytes, lone
surrogates, over-long strings, deep JSON, wrong JSON types, floats and huge numbers and dates
beyond the calendar into one field at a time of every ingest call, of the signed webhook and of
the query strings of every list, and checks the answer: a 2xx, or a 4xx whose JSON error names
the field, with not a row written."""
from __future__ import annotations

import json
import math
import re
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backoffice.api import services as api_services
from backoffice.extensions import db
from tests.conftest import CSRF_RE, PASSWORD


def _csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    return match.group(1) or match.group(2)
from tests.invoicing.test_price_document import BOOK
from tests.invoicing.test_run import PLANNED, chf_book
from tests.stripe import helpers as h
from tests.usage.helpers import make_api

T = "2026-01-05T09:00:00Z"
# Markers replaced by nesting in the JSON text (json.dumps would recurse): beyond the API's
# documented depth, and beyond any parser's stack.
DEEP, ABYSS = "\x01deep\x01", "\x01abyss\x01"
# The world is made once per test, not per example: each example checks its own request's rows.
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

HOSTILE_STRINGS = st.sampled_from([
    "a\x00b", "\x00", "Ada \ud800 Lovelace", "\udfff", "x" * 5000, "", " ", "\r\n", "acc_1\r\nX-Injected: 1",
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", "+275760-09-13T00:00:00Z", "2026-02-30T00:00:00Z",
    "1e400", "NaN", "-0", "99999999999999999999999999", "../../etc/passwd", "<script>", "' OR 1=1 --",
]) | st.text(max_size=30)
HOSTILE = st.one_of(
    HOSTILE_STRINGS,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0.5, 1e308, -1e-300, 12.345, float("nan"), float("inf"), 2**63, -(2**63) - 1, True, False]),
    st.none(),
    st.lists(st.sampled_from(["a", 1, None, "\x00"]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "\x00", "\ud800", "name"]), st.sampled_from([1, "x", None]), max_size=2),
    st.sampled_from([DEEP, ABYSS]),
)


def _calls() -> list[tuple[str, str, dict, object]]:
    """Every call that takes a body (the ingest, quotes, a month-end run, the price book) with a
    valid one: (method, path with {params}, params, body)."""
    return [
        ("post", "/quotes", {}, PLANNED),
        ("put", "/price-book", {}, BOOK),
        ("post", "/invoicing/runs", {}, {"period": "2026-11", "force": False, "account_id": "acc_1"}),
        ("put", "/accounts/{account_id}", {"account_id": "acc_1"}, {
            "name": "Acme AG", "country": "CH", "email": "it@acme.example", "logo_url": "https://acme.example/l.png",
            "stripe_customer_id": "cus_A1", "created_at": T, "language": "de",
            "billing": {"name": "Acme AG", "email": "ap@acme.example", "line1": "Bahnhofstrasse 1", "line2": None,
                        "postal_code": "8001", "city": "Zürich", "country": "CH", "vat_id": "CHE-123.456.789 MWST"},
            "billing_posture": {"pay_by": "invoice", "auto_invoice": True, "auto_reminders": True,
                                "payment_terms_days": 30}}),
        ("put", "/users/{user_id}", {"user_id": "usr_1"}, {
            "email": "ada@acme.example", "first_name": "Ada", "last_name": "Muster", "created_at": T,
            "last_seen_at": T}),
        ("put", "/accounts/{account_id}/members/{user_id}", {"account_id": "acc_1", "user_id": "usr_1"},
         {"role": "admin", "state": "active", "created_at": T}),
        ("delete", "/accounts/{account_id}/members/{user_id}", {"account_id": "acc_1", "user_id": "usr_2"}, None),
        ("post", "/logins", {}, {"logins": [{"user_id": "usr_1", "at": T, "method": "password", "outcome": "success",
                                             "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"}]}),
        ("put", "/sessions/{session_id}", {"session_id": "ses_2"}, {
            "user_id": "usr_1", "created_at": T, "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"}),
        ("post", "/sessions/{session_id}/touch", {"session_id": "ses_1"}, {"at": T}),
        ("post", "/sessions/{session_id}/revoke", {"session_id": "ses_1"}, {"at": T}),
        ("put", "/deployments/{name}", {"name": "t1"}, {
            "account_id": "acc_1", "plan": "team", "add_ons": ["threema"], "suspended": False,
            "occurred_at": "2026-01-06T09:00:00Z"}),
        ("delete", "/deployments/{name}", {"name": "t2"}, {"occurred_at": "2026-01-07T09:00:00Z"}),
        ("post", "/deployments/{name}/events", {"name": "t1"}, {"events": [
            {"type": "add_on_enabled", "add_on": "calendar", "occurred_at": "2026-01-06T10:00:00Z"},
            {"type": "plan_changed", "plan": "business", "occurred_at": "2026-01-06T11:00:00Z"}]}),
        ("post", "/deployments/backfill", {}, {"deployments": [{
            "name": "t3", "account_id": "acc_1", "created_at": T, "add_ons": ["threema"], "suspended_at": None,
            "plan": "team"}]}),
        ("post", "/usage", {}, {"records": [{
            "deployment": "t1", "metric": "messages_out", "quantity": 120, "occurred_at": "2026-01-06T12:00:00Z",
            "idempotency_key": "t1:messages_out:2026-01-06"}]}),
    ]


CALLS = _calls()


def _leaves(value, path: str = "") -> list[str]:
    """Every place in a body one value can be put: each key and item, and the body itself."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _leaves(v, f"{path}[{i}]")
    return out


def _steps(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]


def _replaced(body, path: str, value):
    if not path:
        return value
    *parents, last = _steps(path)
    node = body
    for step in parents:
        node = node[step]
    node[last] = value
    return body


def _json_text(body) -> str:
    text = json.dumps(body)  # NaN and Infinity as Python writes them: hostile too
    for marker, depth in ((DEEP, 40), (ABYSS, 100_000)):
        text = text.replace(json.dumps(marker), "[" * depth + "]" * depth)
    return text


def _counts() -> dict[str, int]:
    return {t.name: db.session.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in db.metadata.sorted_tables}


def _url_part(value) -> str:
    """A path segment or query value as bytes a client could send (a lone surrogate as the
    bytes Python would encode it to, which are not UTF-8)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _names(field: str | None, target: str) -> bool:
    """The error names the field that was changed, or a place inside it, or its container."""
    return field is not None and (field == target or field.startswith(target) or target.startswith(field))


@pytest.fixture
def world(app, client):
    """acc_1 with deployment t1 (and t2 to delete), usr_1 in it with session ses_1; an admin
    token, which may call every endpoint."""
    chf_book()
    api = make_api(client)
    api.headers = {"Authorization": f"Bearer {api_services.create_token('ops', 'admin')[1]}"}
    api.account()
    assert api.put("/users/usr_1", {"email": "ada@acme.example", "created_at": T}).status_code == 201
    assert api.put("/users/usr_2", {"email": "bob@acme.example", "created_at": T}).status_code == 201
    assert api.put("/sessions/ses_1", {"user_id": "usr_1", "created_at": T}).status_code == 201
    for name in ("t1", "t2"):
        assert api.put(f"/deployments/{name}", {"account_id": "acc_1", "occurred_at": T}).status_code == 201
    app.config["PROPAGATE_TEST_ERRORS"] = False  # a 5xx is answered, so the failure shows its input
    return api


def test_every_valid_body_is_accepted(world):
    """The bodies the fuzzing starts from are good ones: a refusal is the changed field's doing."""
    for method, path, params, body in CALLS:
        resp = world.client.open("/api/v1" + path.format(**params), method=method.upper(), json=body,
                                 headers=world.headers)
        assert resp.status_code < 300, (method, path, resp.get_json())


@SETTINGS
@given(data=st.data())
def test_hostile_ingest_fields_are_refused_naming_them(world, data):
    method, path, params, body = data.draw(st.sampled_from(CALLS), label="call")
    body = json.loads(json.dumps(body))
    targets = [f"path:{p}" for p in params] + (_leaves(body) if body is not None else [""])
    target = data.draw(st.sampled_from(targets), label="field")
    value = data.draw(HOSTILE, label="value")
    if target.startswith("path:"):
        # A value that changes which route the URL names is not a value of this parameter.
        assume(not isinstance(value, str) or (value.strip(".") and "/" not in value))
        params = {**params, target[5:]: value}
        url = "/api/v1" + path.format(**{k: _url_part(v) for k, v in params.items()})
        target = target[5:]
    else:
        url = "/api/v1" + path.format(**params)
        body = _replaced(body, target, value)
    before = _counts()
    resp = world.client.open(url, method=method.upper(), data=_json_text(body), content_type="application/json",
                             headers=world.headers)
    db.session.rollback()
    shown = repr(value)[:80]
    assert resp.status_code < 500, (url[:200], target, shown, resp.get_data(as_text=True)[:500])
    if resp.status_code >= 400:
        assert resp.status_code in (400, 404, 409, 413, 422), resp.status_code
        error = resp.get_json()["error"]
        if resp.status_code in (400, 422):
            # NaN and Infinity are not JSON, and a parser's stack ends before the place is known.
            unparsable = value == ABYSS or (isinstance(value, float) and not math.isfinite(value))
            if target and not unparsable:
                assert _names(error["field"], target), (url[:200], target, shown, error)
            else:  # the whole body replaced: any field it lacks
                assert error["field"], (url[:200], target, shown, error)
        elif resp.status_code != 413:
            assert error["field"], (url[:200], target, shown, error)
        assert _counts() == before, (url[:200], target, shown, "written although refused")
    elif path == "/price-book":  # the quotes and runs after it are priced by the good book again
        assert world.put("/price-book", BOOK).status_code == 200


def _signed_customer(value_at: str, value) -> bytes:
    """A signed customer.created event with one of its fields replaced."""
    event = h.envelope("customer.created", h.customer("cus_fz", account_id="acc-fz"), h.ts("2026-01-05"))
    event = _replaced(event, value_at, value)
    return _json_text(event).encode("utf-8", "surrogatepass")


WEBHOOK_FIELDS = ["id", "type", "created", "api_version", "livemode", "data", "data.object",
                  "data.object.id", "data.object.name", "data.object.email", "data.object.address",
                  "data.object.metadata", "data.object.metadata.account_id", "data.object.currency",
                  "data.object.created", "data.object.balance", "data.object.tax_exempt", "request"]


@SETTINGS
@given(data=st.data())
def test_a_verified_webhook_is_archived_or_refused_naming_the_field_never_a_5xx(app, client, data):
    app.config["PROPAGATE_TEST_ERRORS"] = False
    target = data.draw(st.sampled_from(WEBHOOK_FIELDS), label="field")
    body = _signed_customer(target, data.draw(HOSTILE, label="value"))
    before = _counts()
    resp = h.deliver(client, body)
    db.session.rollback()
    assert resp.status_code < 500, (target, body[:300], resp.get_data(as_text=True)[:500])
    if resp.status_code >= 400:
        assert resp.status_code == 400
        field = resp.json["error"]["field"]
        # A customer's own id is the event's customer (tests/stripe/test_webhook.py).
        target = {"data.object.id": "data.object.customer"}.get(target, target)
        assert field == "body" or _names(field, target), (target, body[:300], resp.json)
        assert _counts() == before


# --- query strings ------------------------------------------------------------------------------

API_LISTS = {
    "/api/v1/accounts": ("search", "plan", "status", "unsynced", "drift", "sort"),
    "/api/v1/users": ("search", "sort"),
    "/api/v1/billing-events": ("account", "search", "view", "type", "from", "to", "sort"),
    "/api/v1/invoices": ("account", "search", "view", "source", "period", "status", "payment_status", "sort"),
    "/api/v1/accounts/acc_1/drift": ("sort",),
    "/api/v1/metrics/kpis": ("period",),
    "/api/v1/metrics/growth": ("period",),
}
PAGES = {
    "/accounts": ("search", "plan", "status", "unsynced", "drift", "sort"),
    "/users": ("search", "sort"),
    "/ledger": ("account", "search", "view", "type", "from", "to", "sort"),
    "/invoices": ("account", "search", "view", "source", "sort"),
    "/invoicing/invoices": ("period", "status", "search", "sort"),
    "/operators/audit": ("operator", "action"),
    "/usage": ("search", "sort"),
    "/": ("period",),
}
QUERY_VALUES = st.sampled_from([
    "9999-12-31", "0001-01-01", "0000-00-00", "9999-12-31T23:59:59+14:00", "-1", "0", "1", "2",
    "99999999999999999999", "1e9", "1.5", "a\x00b", "\ud800", "x" * 300, "\r\nX: 1", "-", "--name", "true",
]) | st.text(max_size=12)


def _query(data, names: tuple[str, ...]) -> tuple[str, str]:
    name = data.draw(st.sampled_from([*names, "page", "page_size"]), label="parameter")
    return name, f"{name}={_url_part(data.draw(QUERY_VALUES, label='value'))}"


@SETTINGS
@given(data=st.data())
def test_hostile_query_strings_on_the_api_lists_are_400_naming_the_parameter(world, data):
    _t, reader = api_services.create_token("reader", "read")
    path = data.draw(st.sampled_from(sorted(API_LISTS)), label="list")
    name, query = _query(data, API_LISTS[path])
    resp = world.client.get(f"{path}?{query}", headers={"Authorization": f"Bearer {reader}"})
    db.session.rollback()
    assert resp.status_code in (200, 400), (path, query, resp.status_code, resp.get_data(as_text=True)[:300])
    if resp.status_code == 400:
        assert resp.get_json()["error"]["field"] == name, (path, query, resp.get_json())


@SETTINGS
@given(data=st.data())
def test_hostile_query_strings_on_the_pages_are_400_naming_the_parameter(admin_client, app, data):
    app.config["PROPAGATE_TEST_ERRORS"] = False
    path = data.draw(st.sampled_from(sorted(PAGES)), label="page")
    name, query = _query(data, PAGES[path])
    resp = admin_client.get(f"{path}?{query}", headers={"Accept": "application/json"})
    db.session.rollback()
    assert resp.status_code in (200, 400), (path, query, resp.status_code, resp.get_data(as_text=True)[:300])
    if resp.status_code == 400 and resp.is_json:
        assert resp.get_json()["error"]["field"] == name, (path, query, resp.get_json())


@pytest.mark.parametrize("target", ["/\r\nSet-Cookie: a=b", "/accounts\n", "/\rx", "\t/x", "/ok\u2028",
                                    "/\\evil.example", "/\x7f"])
def test_a_next_with_control_characters_or_a_backslash_goes_to_the_dashboard(app, client, admin, target):
    encoded = urlencode({"next": target})
    page = client.get(f"/sign-in?{encoded}")
    assert page.status_code == 200
    resp = client.post("/sign-in", data={"email": admin.email, "password": PASSWORD, "next": target,
                                         "csrf_token": _csrf(page.get_data(as_text=True))})
    assert resp.status_code == 302 and resp.headers["Location"] == "/", resp.headers.get("Location")
    resp = client.get(f"/sign-in?{encoded}")  # signed in: the GET redirects at once
    assert resp.status_code == 302 and resp.headers["Location"] == "/", resp.headers.get("Location")


@pytest.mark.parametrize("path", ["/api/v1/invoicing/runs/{n}", "/invoicing/invoices/{n}", "/stripe/syncs/{n}",
                                  "/api/v1/invoices/backoffice:{n}"])
def test_an_integer_id_beyond_an_id_column_names_no_page(world, admin, path):
    """Found by Schemathesis: the number went into the query and overflowed it (a 500)."""
    world.client.post("/sign-in", data={"email": admin.email, "password": PASSWORD,
                                        "csrf_token": _csrf(world.client.get("/sign-in").get_data(as_text=True))})
    for n in (2**31, 2**63 - 2, 719562090054140989569097170681856):
        assert world.client.get(path.format(n=n), headers=world.headers).status_code == 404
