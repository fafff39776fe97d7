"""Issue 21 part 7: the API tokens page — an admin lists, creates (the secret shown once) and
revokes tokens, each change audited; viewers get 403; every POST needs the CSRF token."""
from __future__ import annotations

import re

import pytest

from backoffice.api import services
from backoffice.api.models import ApiToken
from backoffice.auth import hash_secret
from backoffice.extensions import db
from backoffice.operators.models import AuditEntry
from tests.factories import AccountFactory

HX = {"HX-Request": "true"}
SECRET_RE = re.compile(r'id="token-secret"[^>]*value="(bo_[^"]+)"')


def _tokens() -> list[ApiToken]:
    db.session.expire_all()
    return list(db.session.execute(db.select(ApiToken).order_by(ApiToken.id)).scalars())


def _audit() -> list[AuditEntry]:
    db.session.expire_all()
    return list(db.session.execute(db.select(AuditEntry).where(AuditEntry.action.like("api_token.%"))
                                   .order_by(AuditEntry.id)).scalars())


def _create(client, headers=None, **form):
    return client.post("/operators/tokens", data={"csrf_token": client.csrf, **form}, headers=headers or {})


def test_the_page_lists_tokens_without_their_secrets(admin_client):
    AccountFactory(id="acc_1")
    db.session.commit()
    _t, read_secret = services.create_token("BI export", "read")
    revoked, _secret = services.create_token("old script", "admin")
    services.revoke_token(revoked.id)
    _t, own_secret = services.create_token("Acme portal", "account", "acc_1")
    resp = admin_client.get("/operators/tokens")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    rows = re.findall(r'<tr data-token="(\d+)">(.*?)</tr>', html, re.DOTALL)
    assert [token_id for token_id, _row in rows] == ["3", "2", "1"]  # the newest first
    cells = {token_id: re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL) for token_id, row in rows}
    assert cells["3"][0] == "Acme portal" and cells["3"][2] == "account" and "acc_1" in cells["3"][3]
    assert cells["1"][2] == "read" and cells["1"][3] == "—"
    assert "Revoked" in cells["2"][6] and "Revoke…" not in cells["2"][7]
    assert "Active" in cells["1"][6] and 'href="/operators/tokens/1/revoke"' in cells["1"][7]
    for secret in (read_secret, own_secret):
        assert secret not in html and secret[:8] in html  # the prefix names it, the secret is never shown
    assert re.findall(r'<th scope="col">([^<]+)</th>', html)[:7] == [
        "Name", "Token", "Scope", "Account", "Created", "Last used", "Status"]
    for field in ("token-name", "token-scope", "token-account"):
        assert f'<label for="{field}">' in html
    assert 'href="/operators/tokens"' in html and ">API tokens</a>" in html  # the admin's nav link
    assert "1–3 of 3" in html  # the project's pagination


def test_the_list_pages_and_answers_its_block_to_htmx(admin_client):
    for n in range(3):
        services.create_token(f"token {n}", "read")
    page = admin_client.get("/operators/tokens?page=2&page_size=2").get_data(as_text=True)
    assert re.findall(r'<tr data-token="(\d+)">', page) == ["1"] and "3–3 of 3" in page
    fragment = admin_client.get("/operators/tokens?page=2&page_size=2", headers=HX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="token-table"') and "<html" not in fragment
    boosted = admin_client.get("/operators/tokens", headers={**HX, "HX-Boosted": "true"}).get_data(as_text=True)
    assert "<html" in boosted
    restore = admin_client.get("/operators/tokens", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)
    past = admin_client.get("/operators/tokens?page=9&page_size=2")  # past the end: the last page, with a note
    html = past.get_data(as_text=True)
    assert past.status_code == 200 and "Page 9 is beyond the end of the list; this is the last page." in html
    assert re.findall(r'<tr data-token="(\d+)">', html) == ["1"] and "Page 2 of 2" in html


@pytest.mark.parametrize("headers", [{}, HX], ids=["page", "htmx"])
def test_create_shows_the_secret_once_and_stores_its_hash(admin_client, admin, headers):
    AccountFactory(id="acc_1")
    db.session.commit()
    resp = _create(admin_client, headers, name="Acme portal", scope="account", account="acc_1")
    assert resp.status_code == 201
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    secret = SECRET_RE.search(html).group(1)
    assert 'hx-history="false"' in html and "it is shown only this once" in html
    assert ("<html" in html) == (not headers)  # htmx: the tokens block, with the new row in its table
    if headers:
        assert html.lstrip().startswith('<div id="tokens">')
    token = _tokens()[0]
    assert (token.name, token.scope, token.account_id, token.revoked_at) == ("Acme portal", "account", "acc_1", None)
    assert token.token_hash == hash_secret(secret) and secret not in token.token_hash and token.prefix == secret[:8]
    assert f'<tr data-token="{token.id}">' in html
    # Never again: not on the page, not in the audit log.
    again = admin_client.get("/operators/tokens").get_data(as_text=True)
    assert secret not in again and 'id="token-secret"' not in again
    assert secret not in admin_client.get("/operators/audit").get_data(as_text=True)
    entry = _audit()[0]
    assert (entry.operator_id, entry.operator_email, entry.action, entry.target_type, entry.target_id) == (
        admin.id, "admin@example.com", "api_token.create", "api_token", str(token.id))
    assert entry.after == {"name": "Acme portal", "scope": "account", "account_id": "acc_1",
                           "prefix": secret[:8], "revoked": False}
    # The token works, and only for its account.
    bearer = {"Authorization": f"Bearer {secret}"}
    assert admin_client.get("/api/v1/accounts/acc_1", headers=bearer).status_code == 200
    assert admin_client.get("/api/v1/metrics/kpis", headers=bearer).status_code == 403


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"name": "", "scope": "read"}, "name", "A token needs a name of 1 to 100 characters."),
    ({"name": "x" * 101, "scope": "read"}, "name", "A token needs a name of 1 to 100 characters."),
    ({"name": "x", "scope": "root"}, "scope", "Scope must be read, ingest, admin or account."),
    ({"name": "x", "scope": "account"}, "account", "A token of scope account needs the id of an existing account."),
    ({"name": "x", "scope": "account", "account": "acc_nobody"}, "account",
     "A token of scope account needs the id of an existing account."),
    ({"name": "x", "scope": "read", "account": "acc_1"}, "account", "Only a token of scope account takes an account id."),
])
def test_create_refuses_bad_input_naming_the_field(admin_client, form, field, message):
    AccountFactory(id="acc_1")
    db.session.commit()
    resp = _create(admin_client, HX, **form)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert f'data-field="{field}"' in html and message in html
    assert 'aria-invalid="true"' in html and 'id="token-secret"' not in html
    assert f'value="{form["name"]}"' in html  # the form keeps what was typed
    assert _tokens() == [] and _audit() == []


def test_the_page_and_its_errors_in_german(admin_client, admin):
    admin_client.post("/operators/me/locale", data={"locale": "de", "csrf_token": admin_client.csrf})
    html = _create(admin_client, HX, name="", scope="read").get_data(as_text=True)
    assert "Ein Token braucht einen Namen mit 1 bis 100 Zeichen." in html
    assert "API-Tokens" in admin_client.get("/operators/tokens").get_data(as_text=True)


def test_revoke_asks_first_then_revokes_and_is_audited(admin_client, admin):
    token, secret = services.create_token("old script", "read")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert admin_client.get("/api/v1/accounts", headers=bearer).status_code == 200
    dialog = admin_client.get(f"/operators/tokens/{token.id}/revoke", headers=HX).get_data(as_text=True)
    assert dialog.lstrip().startswith('<div id="revoke-confirm"') and "Revoke the token old script?" in dialog
    assert 'name="csrf_token"' in dialog and f'hx-post="/operators/tokens/{token.id}/revoke"' in dialog
    assert "<html" in admin_client.get(f"/operators/tokens/{token.id}/revoke").get_data(as_text=True)
    assert _tokens()[0].revoked_at is None  # asking changes nothing
    resp = admin_client.post(f"/operators/tokens/{token.id}/revoke", data={"csrf_token": admin_client.csrf},
                             headers=HX)
    assert (resp.status_code, resp.headers["HX-Redirect"]) == (204, "/operators/tokens")
    assert _tokens()[0].revoked_at is not None
    assert admin_client.get("/api/v1/accounts", headers=bearer).status_code == 401
    page = admin_client.get("/operators/tokens").get_data(as_text=True)
    assert "The token old script is revoked" in page
    assert "This token is already revoked." in admin_client.get(f"/operators/tokens/{token.id}/revoke").get_data(
        as_text=True)
    # Revoking again changes nothing and writes nothing.
    assert admin_client.post(f"/operators/tokens/{token.id}/revoke",
                             data={"csrf_token": admin_client.csrf}).status_code == 302
    entries = _audit()
    assert [(e.operator_email, e.action, e.target_id) for e in entries] == [
        ("system", "api_token.create", str(token.id)), ("admin@example.com", "api_token.revoke", str(token.id))]
    assert (entries[1].before["revoked"], entries[1].after["revoked"]) == (False, True)
    assert admin_client.get("/operators/tokens/999/revoke").status_code == 404
    assert admin_client.post("/operators/tokens/999/revoke", data={"csrf_token": admin_client.csrf}).status_code == 404


def test_viewers_get_403_on_the_page_and_its_posts(viewer_client):
    token, _secret = services.create_token("bi", "read")
    assert viewer_client.get("/operators/tokens").status_code == 403
    assert viewer_client.get(f"/operators/tokens/{token.id}/revoke").status_code == 403
    assert _create(viewer_client, name="mine", scope="admin").status_code == 403
    assert viewer_client.post(f"/operators/tokens/{token.id}/revoke",
                              data={"csrf_token": viewer_client.csrf}).status_code == 403
    assert [t.name for t in _tokens()] == ["bi"] and _tokens()[0].revoked_at is None
    assert 'href="/operators/tokens"' not in viewer_client.get("/").get_data(as_text=True)


def test_every_post_needs_the_csrf_token(admin_client):
    token, _secret = services.create_token("bi", "read")
    for path, form in (("/operators/tokens", {"name": "x", "scope": "admin"}),
                       (f"/operators/tokens/{token.id}/revoke", {})):
        for csrf in ({}, {"csrf_token": "forged"}):
            assert admin_client.post(path, data={**form, **csrf}).status_code == 400, (path, csrf)
    assert [t.name for t in _tokens()] == ["bi"] and _tokens()[0].revoked_at is None
    assert [e.action for e in _audit()] == ["api_token.create"]


def test_signed_out_goes_to_sign_in(client):
    resp = client.get("/operators/tokens")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/sign-in")
