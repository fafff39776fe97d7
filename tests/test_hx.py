"""Page or fragment (STYLE.md): every list page with a fragment block answers a plain GET, a
boosted request and a history restore with the whole page, and an htmx request with only the
block, whose root element carries the block's id."""
from __future__ import annotations

import re

import pytest

# endpoint path → the fragment block (block `account_table` ↔ root element id="account-table")
LIST_PAGES = {
    "/accounts": "account_table",
    "/users": "user_table",
    "/ledger": "event_table",
    "/invoices": "invoice_table",
    "/operators/audit": "audit_table",
}
PAGE_MODES = {
    "plain": {},
    "boosted": {"HX-Request": "true", "HX-Boosted": "true"},
    "history restore": {"HX-Request": "true", "HX-History-Restore-Request": "true"},
}


def _vary(resp) -> set[str]:
    return {v.strip().lower() for v in resp.headers.get("Vary", "").split(",")}


@pytest.mark.parametrize("path", LIST_PAGES)
@pytest.mark.parametrize("mode", PAGE_MODES)
def test_whole_page(admin_client, path, mode):
    resp = admin_client.get(path, headers=PAGE_MODES[mode])
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html.startswith("<!doctype html>")
    assert "<nav" in html
    assert f'id="{LIST_PAGES[path].replace("_", "-")}"' in html
    assert "hx-request" in _vary(resp)


@pytest.mark.parametrize("path", LIST_PAGES)
def test_htmx_request_gets_only_the_block(admin_client, path):
    resp = admin_client.get(path, headers={"HX-Request": "true"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True).strip()
    assert "<nav class=\"sidebar\"" not in html
    assert "<html" not in html and "<body" not in html
    root = re.match(r"<(\w+)\b[^>]*>", html)
    assert root, html[:200]
    assert f'id="{LIST_PAGES[path].replace("_", "-")}"' in root.group(0)
    assert html.endswith(f"</{root.group(1)}>")
    assert "hx-request" in _vary(resp)


@pytest.mark.parametrize(("path", "headers"), [
    ("/", {}),
    ("/", {"HX-Request": "true"}),
    ("/sign-in", {}),
    ("/accounts?page=99", {}),
    ("/accounts?page=99", {"HX-Request": "true"}),
    ("/no-such-page", {}),
    ("/static/css/app.css", {}),
])
def test_vary_on_every_response(admin_client, path, headers):
    resp = admin_client.get(path, headers=headers)
    resp.close()  # a static file answers with an open file
    assert "hx-request" in _vary(resp), (resp.status_code, resp.headers)


def test_vary_on_redirects_and_anonymous_requests(client):
    for headers in ({}, {"HX-Request": "true"}):
        resp = client.get("/accounts", headers=headers)
        assert resp.status_code in (302, 204)
        assert "hx-request" in _vary(resp)


def test_anonymous_htmx_request_answers_hx_redirect_not_302(client):
    resp = client.get("/accounts?search=x", headers={"HX-Request": "true"})
    assert resp.status_code == 204
    assert "Location" not in resp.headers
    assert resp.headers["HX-Redirect"] == "/sign-in?next=/accounts?search%3Dx"
    assert resp.get_data() == b""


def test_expired_session_on_htmx_answers_hx_redirect(admin_client, app, monkeypatch):
    from itsdangerous.timed import TimestampSigner

    real = TimestampSigner.get_timestamp
    later = int(app.permanent_session_lifetime.total_seconds()) + 1
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) + later)
    for path in LIST_PAGES:
        resp = admin_client.get(path, headers={"HX-Request": "true"})
        assert resp.status_code == 204, path
        assert resp.headers["HX-Redirect"].startswith("/sign-in")
        resp = admin_client.get(path)
        assert resp.status_code == 302
        assert resp.headers["Location"].startswith("/sign-in")


def test_htmx_config_keeps_history_restore_a_whole_page(admin_client):
    html = admin_client.get("/").get_data(as_text=True)
    assert '"historyRestoreAsHxRequest": false' in html
    assert 'hx-boost="true"' in html
    assert "X-CSRFToken" in html
