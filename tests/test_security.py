"""The url_map sweep (STYLE.md): every endpoint, present and future, is checked for sign-in,
the admin role on changes, and the CSRF token. It is generic on purpose: a new endpoint is
swept the moment it is registered, with dummy values for its URL parameters."""
from __future__ import annotations

import tempfile
import uuid
from urllib.parse import urlsplit

import pytest
from werkzeug.routing import AnyConverter, IntegerConverter, PathConverter, Rule, UUIDConverter

from backoffice import create_app
from backoffice.auth import PUBLIC_ENDPOINTS, SELF_SERVICE_ENDPOINTS
from tests.conftest import csrf_from

CHANGE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Public API documents: readable without a token.
PUBLIC_API_ENDPOINTS = frozenset({"api.openapi"})
# Endpoints that authenticate by signature instead of a session: no CSRF token applies.
WEBHOOK_ENDPOINTS = frozenset(e for e in PUBLIC_ENDPOINTS if e.endswith("webhook"))
# POSTs that compute and change nothing, open to the read scope by design (DESIGN.md: a quote).
READ_SCOPE_POSTS = frozenset({"api.invoicing.quote"})


def _rules() -> list[Rule]:
    with tempfile.TemporaryDirectory() as instance:  # collection must not write into the checkout
        app = create_app({"TESTING": True, "SECRET_KEY": "sweep", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                          "INSTANCE_PATH": instance})
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


RULES = _rules()


def _dummy(converter) -> str:
    if isinstance(converter, IntegerConverter):
        return "1"
    if isinstance(converter, UUIDConverter):
        return str(uuid.UUID(int=1))
    if isinstance(converter, PathConverter):
        return "dummy/path"
    if isinstance(converter, AnyConverter):
        return min(getattr(converter, "items", None) or ["dummy"])
    return "dummy"


def url_of(rule: Rule) -> str:
    """The rule's path with every converter filled with a value it accepts."""
    values = {name: _dummy(conv) for name, conv in rule._converters.items()}
    built = rule.build(values, append_unknown=False)
    assert built is not None, f"could not fill {rule.rule}"
    return built[1]


def is_api(rule: Rule) -> bool:
    return rule.rule.startswith("/api/")


def _cases(methods: tuple[str, ...], keep) -> list:
    out = []
    for rule in RULES:
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods & set(methods)):
            if keep(rule, method):
                out.append(pytest.param(rule, method, id=f"{method} {rule.rule}"))
    return out


def _request(client, rule: Rule, method: str, **kwargs):
    return client.open(url_of(rule), method=method, **kwargs)


def _assert_sign_in_redirect(resp) -> None:
    assert resp.status_code == 302, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert urlsplit(resp.headers["Location"]).path == "/sign-in"


def test_url_filling_covers_every_rule():
    """Every rule (not only today's) can be requested with dummy values."""
    assert len(RULES) >= 10
    for rule in RULES:
        assert url_of(rule).startswith("/")


@pytest.mark.parametrize(("rule", "method"), _cases(("GET",), lambda r, m: r.endpoint not in PUBLIC_ENDPOINTS))
def test_anonymous_get_is_refused(client, rule, method):
    resp = _request(client, rule, method)
    if is_api(rule):
        if rule.endpoint in PUBLIC_API_ENDPOINTS:
            assert resp.status_code == 200
            return
        assert resp.status_code == 401
        assert resp.is_json
        assert resp.get_json()["error"]["code"] == "unauthorized"
    else:
        _assert_sign_in_redirect(resp)


@pytest.mark.parametrize(("rule", "method"),
                         _cases(CHANGE_METHODS, lambda r, m: r.endpoint not in PUBLIC_ENDPOINTS))
def test_anonymous_change_is_refused(client, rule, method):
    """Even with a valid CSRF token, an anonymous change goes to sign-in (401 on the API)."""
    token = csrf_from(client)
    resp = _request(client, rule, method, headers={"X-CSRFToken": token}, data={"csrf_token": token})
    if is_api(rule):
        assert resp.status_code == 401
        assert resp.get_json()["error"]["code"] == "unauthorized"
    else:
        _assert_sign_in_redirect(resp)


@pytest.mark.parametrize(("rule", "method"), _cases(("GET",), lambda r, m: r.endpoint not in PUBLIC_ENDPOINTS
                                                    and not is_api(r)))
def test_anonymous_htmx_get_answers_hx_redirect(client, rule, method):
    resp = _request(client, rule, method, headers={"HX-Request": "true"})
    assert resp.status_code == 204
    assert urlsplit(resp.headers["HX-Redirect"]).path == "/sign-in"


@pytest.mark.parametrize(("rule", "method"), _cases(
    CHANGE_METHODS,
    lambda r, m: not is_api(r) and r.endpoint not in PUBLIC_ENDPOINTS and r.endpoint not in SELF_SERVICE_ENDPOINTS,
))
def test_viewer_change_is_forbidden(viewer_client, rule, method):
    resp = _request(viewer_client, rule, method, headers={"X-CSRFToken": viewer_client.csrf},
                    data={"csrf_token": viewer_client.csrf})
    assert resp.status_code == 403, resp.get_data(as_text=True)[:300]


@pytest.mark.parametrize(("rule", "method"), _cases(
    CHANGE_METHODS, lambda r, m: is_api(r) and r.endpoint not in READ_SCOPE_POSTS))
def test_read_token_cannot_change_through_the_api(client, rule, method):
    from backoffice.api.services import create_token

    _, secret = create_token("sweep", "read")
    resp = _request(client, rule, method, headers={"Authorization": f"Bearer {secret}"}, json={})
    assert resp.status_code == 403, resp.get_data(as_text=True)[:300]
    assert resp.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("rule", "method"), _cases(
    CHANGE_METHODS, lambda r, m: not is_api(r) and r.endpoint not in WEBHOOK_ENDPOINTS))
def test_change_without_csrf_token_is_refused(admin_client, rule, method):
    """Signed in as an admin, so the missing token is the only reason to refuse."""
    resp = _request(admin_client, rule, method, data={"x": "1"})
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    resp = _request(admin_client, rule, method, headers={"X-CSRFToken": "forged"}, data={"csrf_token": "forged"})
    assert resp.status_code == 400


def test_sweep_sees_every_kind_of_endpoint():
    """Guards the sweep itself: if the filters above ever select nothing, it proves nothing."""
    endpoints = {r.endpoint for r in RULES}
    assert {"operators.sign_out", "operators.invite", "operators.change_role", "accounts.index"} <= endpoints
    assert PUBLIC_ENDPOINTS - endpoints <= {"stripe.webhook"}
    changes = [r for r in RULES if r.methods & set(CHANGE_METHODS) and r.endpoint not in SELF_SERVICE_ENDPOINTS
               and r.endpoint not in PUBLIC_ENDPOINTS and not is_api(r)]
    assert changes
