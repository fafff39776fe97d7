"""Issue 21 part 3: the browser's defences on every kind of response, CSV cells a spreadsheet
would run as formulas neutralised in every export, sign-in limits per address and per e-mail,
and the production settings they need."""
from __future__ import annotations

import csv
import io

import pytest

from backoffice import create_app
from backoffice.config import check_production
from backoffice.exports import cell
from backoffice.security import CONTENT_SECURITY_POLICY
from tests.conftest import csrf_from
from tests.factories import AccountFactory, BillingEventFactory, SubscriptionFactory, UserFactory
from tests.test_security import RULES, url_of

PASSWORD = "correct-horse-battery"


def _assert_defended(resp) -> None:
    resp.close()  # a static file answers with an open file
    headers = resp.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-eval" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers  # development, plain HTTP


@pytest.mark.parametrize("rule", [pytest.param(r, id=r.rule) for r in RULES if "GET" in r.methods])
def test_every_get_endpoint_answers_with_the_defences(admin_client, rule):
    """Pages, fragments, JSON, CSV, redirects and errors alike (dummy ids give 404 pages)."""
    _assert_defended(admin_client.get(url_of(rule) if rule.endpoint != "static" else "/static/css/app.css"))


@pytest.mark.parametrize(("path", "headers"), [
    ("/", {"HX-Request": "true"}),  # a fragment
    ("/accounts?format=csv", {}),  # an export
    ("/api/v1/openapi.json", {}),  # JSON
    ("/static/vendor/htmx.min.js", {}),  # a static file
    ("/no-such-page", {}),  # an error page
])
def test_fragments_exports_json_static_and_errors_are_defended(admin_client, path, headers):
    _assert_defended(admin_client.get(path, headers=headers))


def test_signed_out_pages_and_the_kiosk_are_defended(client, app):
    _assert_defended(client.get("/sign-in"))
    _assert_defended(client.get("/"))  # the redirect to sign in
    _assert_defended(client.post("/stripe/webhook", data="{}"))  # the webhook's refusal


def test_hsts_in_production_on_https_only(app_config, make_app, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("BACKOFFICE_SINGLE_PROCESS", "1")
    prod = make_app({k: v for k, v in app_config.items() if k != "SECRET_KEY"})
    client = prod.test_client()
    assert client.get("/sign-in", base_url="https://backoffice.test").headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains")
    assert "Strict-Transport-Security" not in client.get("/sign-in").headers


def test_behind_a_trusted_proxy_the_client_address_and_scheme_are_the_forwarded_ones(app_config, make_app, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("BACKOFFICE_SINGLE_PROCESS", "1")
    prod = make_app({**{k: v for k, v in app_config.items() if k != "SECRET_KEY"}, "TRUSTED_PROXIES": 1})
    resp = prod.test_client().get("/sign-in", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


# -- CSV --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "written"), [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+1-555", "'+1-555"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("Acme", "Acme"), ("a=b", "a=b"), ("", ""),
])
def test_a_cell_a_spreadsheet_would_run_is_neutralised(value, written):
    assert cell(value) == written


def test_numbers_and_money_stay_numbers():
    from decimal import Decimal
    assert (cell(Decimal(-50)), cell(-3), cell(Decimal("12.345"))) == ("-50.00", "-3", "12.35")


@pytest.mark.parametrize("path", ["/accounts", "/users", "/ledger", "/invoices"])
def test_every_export_neutralises_formulas(admin_client, path):
    evil = "=cmd|' /C calc'!A0"
    account = AccountFactory(id="acc-evil", name=evil)
    sub = SubscriptionFactory(account_id=account.id)
    BillingEventFactory(subscription=sub)
    UserFactory(first_name=evil, last_name="@evil", email="evil@example.com")
    from tests.factories import PaymentTransactionFactory
    PaymentTransactionFactory(account_id=account.id)
    from backoffice.extensions import db
    db.session.commit()
    body = admin_client.get(f"{path}?format=csv").get_data(as_text=True)
    cells = [c for row in csv.reader(io.StringIO(body)) for c in row]
    assert "'" + evil in cells, cells[:40]
    assert not any(c.startswith(("=", "+", "@")) for c in cells)


# -- sign-in limits ---------------------------------------------------------------------------------
def _attempt(client, email, password, address):
    token = csrf_from(client, "/sign-in")
    return client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def test_one_attacker_behind_one_address_does_not_lock_out_the_others(app, admin, viewer):
    attacker, owner, colleague = (app.test_client() for _ in range(3))
    for _ in range(10):
        assert _attempt(attacker, admin.email, "wrong", "198.51.100.1").status_code == 401
    assert _attempt(attacker, admin.email, PASSWORD, "198.51.100.1").status_code == 429  # its own failures
    assert _attempt(owner, admin.email, PASSWORD, "192.0.2.10").status_code == 302  # the owner gets in
    assert _attempt(colleague, viewer.email, PASSWORD, "192.0.2.11").status_code == 302


def test_many_addresses_guessing_one_e_mail_are_refused_and_its_owner_is_not(app, admin):
    app.config["RATELIMIT_SIGN_IN_EMAIL"] = "5 per hour"
    for n in range(5):
        assert _attempt(app.test_client(), admin.email, "wrong", f"198.51.100.{n}").status_code == 401
    # The e-mail is under attack: the addresses that failed on it are refused, even right ...
    assert _attempt(app.test_client(), admin.email, PASSWORD, "198.51.100.0").status_code == 429
    # ... a new address gets its one try, then it too is refused ...
    assert _attempt(app.test_client(), admin.email, "wrong", "198.51.100.99").status_code == 401
    assert _attempt(app.test_client(), admin.email, "wrong", "198.51.100.99").status_code == 429
    # ... and the owner, from an address that never failed, signs in.
    assert _attempt(app.test_client(), admin.email, PASSWORD, "192.0.2.10").status_code == 302


def test_successful_sign_ins_use_up_nothing(app, admin):
    for _ in range(15):
        assert _attempt(app.test_client(), admin.email, PASSWORD, "192.0.2.10").status_code == 302


def test_production_refuses_in_memory_limits_unless_one_process_serves_it():
    with pytest.raises(RuntimeError, match="RATELIMIT_STORAGE_URI is memory:// in production"):
        check_production({"BACKOFFICE_ENV": "production", "RATELIMIT_STORAGE_URI": "memory://"})
    check_production({"BACKOFFICE_ENV": "production", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/1"})
    check_production({"BACKOFFICE_ENV": "production", "RATELIMIT_STORAGE_URI": "memory://", "SINGLE_PROCESS": True})
    check_production({"BACKOFFICE_ENV": "development", "RATELIMIT_STORAGE_URI": "memory://"})


def test_create_app_refuses_production_with_in_memory_limits(app_config, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    with pytest.raises(RuntimeError, match="BACKOFFICE_SINGLE_PROCESS"):
        create_app({k: v for k, v in app_config.items() if k != "SECRET_KEY"})


def test_the_limits_are_shared_through_redis(app_config, make_app):
    """Two app instances (two worker processes) with one Redis store count together."""
    pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/14"
    import redis
    redis.Redis.from_url(url).flushdb()
    apps = [make_app({**app_config, "RATELIMIT_STORAGE_URI": url}) for _ in range(2)]
    from backoffice.operators import services
    with apps[0].app_context():
        services.create_operator("shared@example.com", PASSWORD, "viewer")
        services.db.session.commit()
    statuses = []
    for n in range(12):
        client = apps[n % 2].test_client()
        statuses.append(_attempt(client, "shared@example.com", "wrong", "198.51.100.7").status_code)
    assert statuses == [401] * 10 + [429, 429]
    redis.Redis.from_url(url).flushdb()


@pytest.mark.parametrize("path", ["/api/v1/accounts", "/accounts", "/sign-in"])
def test_405_names_the_allowed_methods(admin_client, path):
    resp = admin_client.delete(path, headers={"X-CSRFToken": admin_client.csrf})
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
