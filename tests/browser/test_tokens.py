"""The API tokens page in a real browser: an admin creates a token, sees its secret once (not after
a reload, not after the back button), the secret works against the API, and the revoke dialog
ends it."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_lists import sign_in

pytestmark = pytest.mark.browser


def test_create_a_token_see_it_once_and_revoke_it(page, live_server, screenshots):
    sign_in(page, live_server, "admin@example.com", "/")
    page.locator("nav.sidebar").get_by_role("link", name="API tokens", exact=True).click()
    expect(page).to_have_url(live_server.url("/operators/tokens"))
    expect(page.locator("main h1")).to_have_text("API tokens")

    page.get_by_label("Name", exact=True).fill("Browser BI")
    page.get_by_label("Scope", exact=True).select_option("read")
    page.get_by_role("button", name="Create token").click()
    secret_box = page.get_by_label("Secret")
    expect(secret_box).to_have_value(re.compile(r"^bo_[\w-]{40,}$"))
    secret = secret_box.input_value()
    row = page.locator("tr[data-token]").filter(has_text="Browser BI")
    expect(row).to_contain_text("Active")
    page.screenshot(path=str(screenshots / "api-tokens-created.png"), full_page=True)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert page.request.get(live_server.url("/api/v1/accounts"), headers=bearer).status == 200

    # Shown once: neither a reload nor the way back through the history brings it back.
    page.reload()
    expect(row).to_contain_text("Active")
    expect(page.locator("#token-secret")).to_have_count(0)
    page.locator("nav.sidebar").get_by_role("link", name="Audit log", exact=True).click()
    expect(page).to_have_url(live_server.url("/operators/audit"))
    page.go_back()
    expect(page).to_have_url(live_server.url("/operators/tokens"))
    expect(row).to_be_visible()
    expect(page.locator("#token-secret")).to_have_count(0)
    assert secret not in page.content()

    row.get_by_role("link", name="Revoke Browser BI…").click()
    dialog = page.locator("dialog#dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Revoke the token Browser BI?")
    page.screenshot(path=str(screenshots / "api-tokens-revoke.png"), full_page=True)
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.locator(".flash-success")).to_contain_text("The token Browser BI is revoked")
    expect(row).to_contain_text("Revoked")
    expect(row.get_by_role("link", name="Revoke Browser BI…")).to_have_count(0)
    assert page.request.get(live_server.url("/api/v1/accounts"), headers=bearer).status == 401
