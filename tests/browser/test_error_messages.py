"""app.js's messages in a real browser: a failed htmx request says so in the operator's language,
read from the page's JSON data block, which the Content-Security-Policy lets through."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

MESSAGES = {
    "en": ("That did not work. Please try again.", "You do not have permission to do this."),
    "de": ("Das hat nicht geklappt. Bitte erneut versuchen.", "Dafür fehlt Ihnen die Berechtigung."),
}


def sign_in(page: Page, live_server, email: str) -> None:
    page.goto(live_server.url("/sign-in"))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url("/"))


def htmx_request(page: Page, verb: str, path: str) -> None:
    """An htmx request from the page (so it sends the CSRF header from <body hx-headers>)."""
    page.evaluate("([verb, path]) => htmx.ajax(verb, path, {source: '#main', target: '#main'})", [verb, path])


@pytest.mark.parametrize("locale", MESSAGES)
def test_a_failed_request_is_reported_in_the_operators_language(page, live_server, locale):
    page.add_init_script("""window.__violations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));""")
    email = live_server.create_operator(f"viewer-{locale}@example.com", "viewer")
    sign_in(page, live_server, email)
    if locale == "de":
        page.locator("details.operator-menu > summary").click()
        page.get_by_role("button", name="Deutsch").click()
        expect(page.locator("html")).to_have_attribute("lang", "de")
    page.goto(live_server.url("/accounts"))
    page.wait_for_load_state("networkidle")
    failed, forbidden = MESSAGES[locale]

    htmx_request(page, "GET", "/no-such-page")
    expect(page.locator("#main > p.flash-error[role=alert]").first).to_have_text(failed)
    htmx_request(page, "POST", "/accounts/acc_none/billing")  # admins only: 403 for a viewer
    expect(page.locator("#main > p.flash-error[role=alert]").first).to_have_text(forbidden)

    assert page.evaluate("window.__violations") == []
    # The failed requests themselves are logged (by the browser and by htmx) as console errors.
    assert all(re.search(r"404|403|htmx:responseError", e) for e in page.js_errors), page.js_errors
    page.js_errors.clear()
