"""The shell in a real browser: sign in through the form, open every menu entry, switch to German,
kiosk mode. Saves full-page screenshots to test-output/screenshots/."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TABLET
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

# (label in English, label in German, path, page title in English) for every menu entry.
MENU = [
    ("Dashboard", "Dashboard", "/"),
    ("Accounts", "Konten", "/accounts"),
    ("Users", "Benutzer", "/users"),
    ("Ledger", "Ledger", "/ledger"),
    ("Invoices", "Rechnungen", "/invoices"),
    ("Operators", "Operatoren", "/operators"),  # admin entries
    ("Audit log", "Audit-Protokoll", "/operators/audit"),
]


def sign_in(page: Page, live_server, email: str) -> None:
    page.goto(live_server.url("/"))
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/$"))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url("/"))


def nav(page: Page):
    return page.locator("nav.sidebar")


def open_operator_menu(page: Page) -> None:
    page.locator("details.operator-menu > summary").click()
    expect(page.locator("details.operator-menu")).to_have_attribute("open", "")


def open_every_menu_entry(page: Page, live_server, language: str, screenshots) -> None:
    for english, german, path in MENU:
        label = english if language == "en" else german
        link = nav(page).get_by_role("link", name=label, exact=True)
        link.click()
        expect(page).to_have_url(live_server.url(path))
        expect(link).to_have_attribute("aria-current", "page")
        expect(page).to_have_title(re.compile(rf"^{re.escape(label)} · Backoffice$"))
        expect(page.locator("main h1").first).to_be_visible()
        name = "dashboard" if path == "/" else path.strip("/").replace("/", "-")
        page.screenshot(path=str(screenshots / f"{language}-{name}.png"), full_page=True)


def test_sign_in_and_open_every_menu_entry(page, live_server, screenshots):
    sign_in(page, live_server, "admin@example.com")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(nav(page).get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    page.screenshot(path=str(screenshots / "shell-en.png"), full_page=True)
    open_every_menu_entry(page, live_server, "en", screenshots)
    # The back button returns to the previous page, rendered whole.
    page.go_back()
    expect(page).to_have_url(live_server.url("/operators"))
    expect(nav(page)).to_be_visible()
    expect(page.locator("main h1").first).to_have_text("Operators")


def test_tablet_width(page, live_server, screenshots):
    """Issue 22 part 7: at 820×1180 the menu folds behind a Menu button (not a 232 px band of
    links) and every list page fits the width, its table scrolling inside its card."""
    sign_in(page, live_server, "admin@example.com")
    page.set_viewport_size(TABLET)
    page.goto(live_server.url("/accounts"))
    expect(page.locator("main h1").first).to_have_text("Accounts")
    toggle = nav(page).get_by_role("button", name="Menu")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav(page).get_by_role("link", name="Ledger", exact=True)).to_be_hidden()
    assert nav(page).bounding_box()["height"] < 80
    page.screenshot(path=str(screenshots / "shell-en-tablet.png"), full_page=True)
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav(page).get_by_role("link", name="Ledger", exact=True)).to_be_visible()
    page.screenshot(path=str(screenshots / "shell-en-tablet-menu.png"))
    nav(page).get_by_role("link", name="Ledger", exact=True).click()
    expect(page.locator("main h1").first).to_have_text("Ledger")
    expect(nav(page).get_by_role("link", name="Ledger", exact=True)).to_be_hidden()  # folded again
    for path in ("/accounts", "/users", "/ledger", "/invoices", "/operators/audit", "/invoicing/invoices"):
        page.goto(live_server.url(path))
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        wide = page.evaluate("""() => [...document.querySelectorAll('main *')].filter(e =>
            e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap, .menu-panel'))
            .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
        assert width[0] <= width[1], (path, width, wide)
        outside = page.evaluate("""() => [...document.querySelectorAll('.card')].filter(c => {
            const r = c.getBoundingClientRect(); return r.left < 0 || r.right > window.innerWidth + 1; }).length""")
        assert outside == 0, path


def test_switch_to_german(page, live_server, screenshots):
    email = live_server.create_operator("german@example.com", "admin")
    sign_in(page, live_server, email)
    page.goto(live_server.url("/accounts"))
    open_operator_menu(page)
    page.get_by_role("button", name="Deutsch").click()
    # The language switch keeps the page and turns everything German.
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page).to_have_url(live_server.url("/accounts"))
    expect(page.locator("main h1").first).to_have_text("Konten")
    for german in ("Konten", "Benutzer", "Ledger", "Rechnungen", "Operatoren", "Audit-Protokoll"):
        expect(nav(page).get_by_role("link", name=german, exact=True)).to_be_visible()
    page.goto(live_server.url("/"))
    page.screenshot(path=str(screenshots / "shell-de.png"), full_page=True)
    open_every_menu_entry(page, live_server, "de", screenshots)
    open_operator_menu(page)
    expect(page.get_by_text("Sprache", exact=True)).to_be_visible()
    expect(page.get_by_role("switch", name="Kiosk-Modus")).to_be_visible()
    expect(page.get_by_role("button", name="Abmelden")).to_be_visible()

    # The choice is saved on the operator: a new browser session is German at once.
    page.context.clear_cookies()
    sign_in_page = page
    sign_in_page.goto(live_server.url("/"))
    sign_in_page.get_by_label("E-mail").fill(email)
    sign_in_page.get_by_label("Password").fill(PASSWORD)
    sign_in_page.get_by_role("button", name="Sign in").click()
    expect(nav(page).get_by_role("link", name="Konten", exact=True)).to_be_visible()

    # And back to English.
    open_operator_menu(page)
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(nav(page).get_by_role("link", name="Accounts", exact=True)).to_be_visible()


def test_kiosk_mode_hides_the_menu(page, live_server, screenshots):
    email = live_server.create_operator("kiosk@example.com", "admin")
    sign_in(page, live_server, email)
    expect(nav(page)).to_be_visible()
    open_operator_menu(page)
    page.get_by_role("switch", name="Kiosk mode").click()
    expect(page).to_have_url(live_server.url("/?kiosk=1"))
    expect(page.locator("body")).to_have_class(re.compile(r"\bkiosk\b"))
    expect(nav(page)).to_have_count(0)
    page.screenshot(path=str(screenshots / "shell-kiosk.png"), full_page=True)

    # Kiosk mode belongs to the browser session: other pages stay without the menu.
    page.goto(live_server.url("/accounts"))
    expect(page.locator("main h1").first).to_have_text("Accounts")
    expect(nav(page)).to_have_count(0)

    open_operator_menu(page)
    switch = page.get_by_role("switch", name="Kiosk mode")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(page).to_have_url(live_server.url("/"))
    expect(nav(page)).to_be_visible()


def test_sign_out(page, live_server):
    sign_in(page, live_server, "admin@example.com")
    open_operator_menu(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(live_server.url("/sign-in"))
    expect(page.get_by_text("You have been signed out.")).to_be_visible()
    page.goto(live_server.url("/accounts"))
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/accounts$"))


def test_wrong_password_shows_the_message(page, live_server):
    page.goto(live_server.url("/sign-in"))
    page.get_by_label("E-mail").fill("admin@example.com")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    expect(page.get_by_label("E-mail")).to_have_attribute("aria-invalid", "true")
    expected = "console: Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"
    assert page.js_errors == [expected]  # the page itself is the 401
    page.js_errors.clear()


def test_audit_filter_swaps_the_table_and_keeps_the_url(page, live_server):
    """htmx in the browser: a filter change swaps only the table, pushes the URL, and the back
    button restores the unfiltered list."""
    sign_in(page, live_server, "admin@example.com")
    page.goto(live_server.url("/operators/audit"))
    expect(page.locator("#audit-table tbody tr").first).to_be_visible()
    page.locator("h1").evaluate("h => h.dataset.marker = 'kept'")  # survives only a partial swap
    page.get_by_label("Result").select_option("denied")
    expect(page).to_have_url(live_server.url("/operators/audit?action=&operator=&target=&result=denied&from=&to="))
    expect(page.locator("h1[data-marker='kept']")).to_have_count(1)
    badges = page.locator("#audit-table tbody tr .badge").all_inner_texts()
    assert set(badges) <= {"denied"}  # other browser tests may have written entries of their own
    if not badges:
        expect(page.get_by_text("No entries match these filters.")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(live_server.url("/operators/audit"))
    expect(page.locator("#audit-table tbody tr").first).to_be_visible()


def test_the_content_security_policy_blocks_injected_script_and_nothing_of_ours(page, live_server):
    """Every page of the menu (the dashboard's plotly charts, htmx swaps) loads with no CSP
    violation; markup injected into the page cannot run script, nor can the app be framed."""
    page.add_init_script("""window.__violations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));""")
    sign_in(page, live_server, "admin@example.com")
    for _english, _german, path in MENU:
        page.goto(live_server.url(path))
        expect(page.locator("main h1").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__violations") == [], path
    page.evaluate("""document.body.insertAdjacentHTML('beforeend',
        '<img src="data:," onerror="window.__ran = 1"><div hx-on:load="window.__ran = 2"></div>')""")
    page.evaluate("htmx.process(document.body)")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__ran") is None
    assert page.evaluate("window.__violations")  # the browser refused the inline handler
    page.js_errors.clear()  # the refusals are logged as console errors
    frame = page.context.new_page()
    frame.set_content(f'<iframe id="f" src="{live_server.url("/sign-in")}"></iframe>')
    frame.wait_for_timeout(500)
    assert frame.frame_locator("#f").locator("form").count() == 0  # frame-ancestors 'none'
    frame.close()
