"""The header search in a real browser: typing shows the groups, ArrowDown/Enter opens an account,
Escape closes the results and returns to the box; no Content-Security-Policy violation."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backoffice.extensions import db
from tests.browser.test_lists import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def searchable(live_server):
    from tests.factories import AccountFactory, UserFactory

    with live_server.app.app_context():
        if db.session.get(AccountFactory._meta.model, "acc_srch_1") is None:
            AccountFactory(id="acc_srch_1", name="Quokka Rockets")
            AccountFactory(id="acc_srch_2", name="Quokka Widgets")
            UserFactory(id="usr_srch_1", email="quokka@search.test")
            db.session.commit()
        db.session.remove()
    return live_server


def test_type_arrow_down_enter_and_escape(page, searchable):
    page.add_init_script("""document.addEventListener('securitypolicyviolation',
        e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));""")
    sign_in(page, searchable, "admin@example.com", "/accounts")
    box = page.get_by_label("Search accounts, users and invoices")
    popup = page.locator("#search-popup")
    box.fill("quokka")
    expect(popup).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    options = popup.locator("[data-search-option]")
    expect(options).to_have_count(3)  # two accounts, one user
    expect(popup.get_by_role("heading", name="Accounts")).to_be_visible()
    box.press("ArrowDown")
    expect(options.nth(0)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Escape")  # closes, back in the box
    expect(popup).to_be_hidden()
    expect(box).to_be_focused()
    expect(box).to_have_attribute("aria-expanded", "false")
    box.press("ArrowDown")
    expect(options.nth(0)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(searchable.url("/accounts/acc_srch_1"))
    expect(page.locator("main h1").first).to_contain_text("Quokka Rockets")
