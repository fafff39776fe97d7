"""Signing in and out: the form, the rate limit, the answer to wrong credentials, session expiry
and the cookie flags."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from itsdangerous.timed import TimestampSigner

from backoffice.operators import services
from tests.conftest import PASSWORD, csrf_from

WRONG = "Wrong e-mail or password."


def _error(resp) -> str:
    match = re.search(r'<p class="form-error"[^>]*>([^<]*)</p>', resp.get_data(as_text=True))
    return match.group(1) if match else ""


def _post_sign_in(client, email: str, password: str, **extra):
    token = csrf_from(client)
    return client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token, **extra})


def test_sign_in_page_is_public(client):
    resp = client.get("/sign-in")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'name="email"' in html and 'name="password"' in html
    assert "<nav class=\"sidebar\"" not in html


def test_sign_in_then_every_page_opens(client, admin):
    resp = _post_sign_in(client, "admin@example.com", PASSWORD)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.get("/sign-in").status_code == 302  # already signed in


def test_sign_in_is_case_insensitive_and_records_the_time(client, admin):
    assert admin.last_sign_in_at is None
    resp = _post_sign_in(client, "  Admin@Example.COM ", PASSWORD)
    assert resp.status_code == 302
    services.db.session.refresh(admin)
    assert admin.last_sign_in_at is not None


def test_sign_in_follows_a_local_next_only(client, admin):
    resp = client.get("/accounts?search=x")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/sign-in?next=/accounts?search%3Dx"
    assert _post_sign_in(client, admin.email, PASSWORD, next="/accounts?search=x").headers["Location"] == \
        "/accounts?search=x"
    client.post("/sign-out", data={"csrf_token": csrf_from(client, "/")})
    assert _post_sign_in(client, admin.email, PASSWORD, next="https://evil.example/").headers["Location"] == "/"
    client.post("/sign-out", data={"csrf_token": csrf_from(client, "/")})
    assert _post_sign_in(client, admin.email, PASSWORD, next="//evil.example/").headers["Location"] == "/"


def test_wrong_password_and_unknown_email_get_the_same_answer(client, admin, viewer):
    services.set_active(viewer.id, False, admin)
    wrong_password = _post_sign_in(client, admin.email, "not-the-password")
    unknown = _post_sign_in(client, "nobody@example.com", "not-the-password")
    deactivated = _post_sign_in(client, viewer.email, PASSWORD)
    for resp in (wrong_password, unknown, deactivated):
        assert resp.status_code == 401
        assert _error(resp) == WRONG
    # Apart from the echoed e-mail and the CSRF token, the pages are identical.
    def normalised(resp, email):
        html = resp.get_data(as_text=True).replace(email, "EMAIL")
        return re.sub(r'"[\w-]{20,}\.[\w-]+\.[\w-]+"', '"TOKEN"', html)  # CSRF tokens (itsdangerous)

    assert normalised(wrong_password, admin.email) == normalised(unknown, "nobody@example.com")
    assert client.get("/").status_code == 302  # still signed out


def test_sign_in_needs_the_csrf_token(client, admin):
    resp = client.post("/sign-in", data={"email": admin.email, "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/").status_code == 302


def test_sign_in_is_rate_limited(client, admin):
    """10 attempts a minute per address (BACKOFFICE_SIGN_IN_RATE_LIMIT); the 11th is refused,
    even with the right password."""
    for _ in range(10):
        assert _post_sign_in(client, admin.email, "not-the-password").status_code == 401
    resp = _post_sign_in(client, admin.email, PASSWORD)
    assert resp.status_code == 429
    assert "Too many attempts" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert client.get("/sign-in").status_code == 200  # only POSTs count


def test_rate_limit_counts_per_address(client, admin):
    for _ in range(10):
        _post_sign_in(client, admin.email, "not-the-password")
    assert _post_sign_in(client, admin.email, PASSWORD).status_code == 429
    token = csrf_from(client)
    resp = client.post("/sign-in", data={"email": admin.email, "password": PASSWORD, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert resp.status_code == 302


def test_sign_out_ends_the_session(admin_client):
    resp = admin_client.post("/sign-out", data={"csrf_token": admin_client.csrf})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/sign-in"
    assert admin_client.get("/").status_code == 302
    assert "You have been signed out." in admin_client.get("/sign-in").get_data(as_text=True)


def test_sign_out_from_htmx_answers_hx_redirect(admin_client):
    resp = admin_client.post("/sign-out", headers={"HX-Request": "true", "X-CSRFToken": admin_client.csrf})
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"] == "/sign-in"
    assert admin_client.get("/").status_code == 302


def test_sign_out_needs_the_csrf_token(admin_client):
    assert admin_client.post("/sign-out").status_code == 400
    assert admin_client.get("/").status_code == 200


def test_the_session_lifetime_defaults_to_eight_hours(app):
    assert app.permanent_session_lifetime == timedelta(minutes=480)


@pytest.fixture
def clock(monkeypatch):
    """Moves the clock that signs session cookies (itsdangerous) by `clock.shift` seconds."""

    class Clock:
        shift = 0

    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) + Clock.shift)
    return Clock


def test_the_session_expires(admin_client, app, clock):
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    admin_client.get("/")  # refreshes the cookie now
    clock.shift = lifetime - 5
    assert admin_client.get("/").status_code == 200  # activity keeps it alive...
    clock.shift += lifetime - 5
    assert admin_client.get("/").status_code == 200
    clock.shift += lifetime + 5  # ...inactivity ends it
    resp = admin_client.get("/accounts")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/sign-in")


def test_an_expired_session_on_htmx_answers_hx_redirect(admin_client, app, clock):
    clock.shift = int(app.permanent_session_lifetime.total_seconds()) + 5
    resp = admin_client.get("/accounts", headers={"HX-Request": "true"})
    assert resp.status_code == 204
    assert resp.headers["HX-Redirect"].startswith("/sign-in")
    assert "Location" not in resp.headers


def _session_cookie(resp) -> str:
    cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1, resp.headers
    return cookies[0]


def test_session_cookie_flags_for_local_use(client, admin):
    cookie = _session_cookie(_post_sign_in(client, admin.email, PASSWORD))
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie
    assert "; Secure" not in cookie
    assert "; Expires=" in cookie  # a permanent session, bounded by PERMANENT_SESSION_LIFETIME


@pytest.mark.parametrize("env", [{"BACKOFFICE_ENV": "production", "SECRET_KEY": "s3cret-for-production",
                                  "BACKOFFICE_SINGLE_PROCESS": "1"},
                                 {"SESSION_COOKIE_SECURE": "1"}])
def test_session_cookie_is_secure_outside_local_use(app_config, make_app, monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = {k: v for k, v in app_config.items() if k != "SECRET_KEY"}
    secure_app = make_app(config)
    with secure_app.app_context():
        services.create_operator("admin@example.com", PASSWORD, "admin")
        client = secure_app.test_client()
        resp = client.get("/sign-in", base_url="https://backoffice.test")
        token = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True)).group(1)
        resp = client.post("/sign-in", base_url="https://backoffice.test",
                           headers={"Referer": "https://backoffice.test/sign-in"},
                           data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
        cookie = _session_cookie(resp)
        assert "; Secure" in cookie
        assert "; HttpOnly" in cookie
        assert "; SameSite=Lax" in cookie
        services.db.session.remove()
        services.db.engine.dispose()


def test_sign_out_revokes_the_session_cookie_on_the_server(app, admin):
    """A request still in flight may write the old cookie back after sign-out: it must not work."""
    from tests.conftest import sign_in

    browser = app.test_client()
    token = sign_in(browser, admin.email)
    old_cookie = browser.get_cookie("session", domain="backoffice.test").value
    resp = browser.post("/sign-out", data={"csrf_token": token})
    assert resp.status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", old_cookie, domain="backoffice.test")
    resp = replay.get("/accounts")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/sign-in")
