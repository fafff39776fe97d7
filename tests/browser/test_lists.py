"""The lists in a real browser: search → URL → back restores the list, the side pane, account tabs
with their own URLs, and no actions menu for a viewer."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from backoffice.extensions import db
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def seeded(live_server):
    from tests.factories import (
        AccountFactory,
        MembershipFactory,
        PaymentTransactionFactory,
        PlanFactory,
        SubscriptionFactory,
        UserFactory,
    )

    with live_server.app.app_context():
        if db.session.get(AccountFactory._meta.model, "acc_br_zeta") is None:
            PlanFactory(price_id="price_br_pro", plan_key="pro", name="Pro", monthly_amount=Decimal("100.00"))
            for i, name in enumerate(["Zeta Rockets", "Alpha Widgets", "Beta Boats", "Gamma Gears"]):
                acc = AccountFactory(id=f"acc_br_{name.split()[0].lower()}", name=name, country="DE")
                if i % 2 == 0:
                    SubscriptionFactory(account_id=acc.id, stripe_subscription_id=f"sub_br_{i}")
                    PaymentTransactionFactory(account_id=acc.id, stripe_invoice_id=f"in_br_{i}")
                user = UserFactory(id=f"usr_br_{i}", email=f"owner{i}@browser.test", first_name="Owner",
                                   last_name=str(i))
                MembershipFactory(user_id=user.id, account_id=acc.id, role="owner")
            db.session.commit()
        db.session.remove()
    if "viewer@example.com" not in _operators(live_server):
        live_server.create_operator("viewer@example.com", "viewer")
    return live_server


def _operators(live_server) -> set[str]:
    from backoffice.operators.models import Operator

    with live_server.app.app_context():
        emails = {o.email for o in db.session.execute(db.select(Operator)).scalars()}
        db.session.remove()
    return emails


def sign_in(page: Page, live_server, email: str, path: str) -> None:
    page.goto(live_server.url(path))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url(path))
    # The page's deferred scripts (htmx and the list's triggers) have run: a focus or a
    # keystroke before that would reach no listener.
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined")


def rows(page: Page):
    return page.locator("#account-table tr.account-row")


def test_search_updates_url_and_back_restores_the_list(page, seeded):
    sign_in(page, seeded, "admin@example.com", "/accounts")
    # The live server is shared by every browser test: other tests' accounts may be listed too, and
    # a search finds partial ids and e-mail prefixes as well as names: a name with a space is unique.
    expect(rows(page).first).to_be_visible()
    page.get_by_label("Search by name or id").fill("zeta rock")
    expect(page).to_have_url(re.compile(r"/accounts\?.*search=zeta(\+|%20)rock"))
    expect(rows(page)).to_have_count(1)
    # a discrete action (sort) pushes a new history entry; back returns to the searched list
    page.locator("#account-table th a", has_text="Name").click()
    expect(page).to_have_url(re.compile(r"sort=name"))
    expect(rows(page)).to_have_count(1)
    page.locator("#account-table a", has_text="Zeta Rockets").click()
    expect(page).to_have_url(seeded.url("/accounts/acc_br_zeta"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"/accounts\?.*search=zeta(\+|%20)rock"))
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_label("Search by name or id")).to_have_value("zeta rock")
    page.reload()
    expect(rows(page)).to_have_count(1)


def test_after_back_the_filter_controls_match_the_filtered_list(page, seeded, screenshots):
    """Issue 22 part 7: filtered to Active, away and Back: the box is still ticked, the list still
    filtered and "Clear filters" still there (the page comes back from the server, not from a
    snapshot that kept the table but not the ticks)."""
    sign_in(page, seeded, "admin@example.com", "/accounts?sort=name")
    clear = page.locator("#account-clear").get_by_role("link", name="Clear filters")
    expect(clear).to_have_count(0)
    page.locator("summary", has_text="Status").click()
    page.get_by_label("Active", exact=True).check()
    expect(page).to_have_url(re.compile(r"status=active"))
    expect(clear).to_be_visible()  # swapped in with the filtered table
    expect(rows(page).first).to_be_visible()
    filtered = rows(page).count()
    statuses = page.locator("#account-table tr.account-row [data-status]")
    assert set(statuses.evaluate_all("els => els.map(e => e.dataset.status)")) == {"active"}
    page.locator("#account-table a", has_text="Zeta Rockets").click()
    expect(page).to_have_url(seeded.url("/accounts/acc_br_zeta"))
    page.go_back()
    expect(page).to_have_url(re.compile(r"status=active"))
    expect(rows(page)).to_have_count(filtered)
    expect(page.get_by_label("Active", exact=True)).to_be_checked()
    expect(clear).to_be_visible()
    page.screenshot(path=str(screenshots / "accounts-after-back.png"))


def test_side_pane_opens_on_row_focus(page, seeded):
    sign_in(page, seeded, "admin@example.com", "/accounts?sort=name")
    expect(page.locator("#side-pane")).to_contain_text("Select an account")
    page.locator('tr[data-account-id="acc_br_beta"]').focus()
    expect(page.locator("#side-pane")).to_contain_text("Beta Boats")
    expect(page.locator("#side-pane")).to_contain_text("Lifetime value")
    expect(page.locator("#side-pane").get_by_role("link", name="Open account")).to_be_visible()
    page.keyboard.press("Tab")  # keyboard: the next focusable element is inside the row or the next row
    page.locator('tr[data-account-id="acc_br_gamma"]').focus()
    expect(page.locator("#side-pane")).to_contain_text("Gamma Gears")


def test_tabs_switch_with_url_change(page, seeded):
    sign_in(page, seeded, "admin@example.com", "/accounts/acc_br_zeta")
    expect(page.locator(".tab-panel")).to_have_attribute("data-tab", "overview")
    for label, path, key in [("Invoices", "/invoices", "invoices"),
                             ("Platform invoices", "/platform-invoices", "platform_invoices"),
                             ("Ledger", "/ledger", "ledger"),
                             ("Users", "/users", "users"), ("Drift", "/drift", "drift")]:
        page.locator("nav.tabs").get_by_role("link", name=label, exact=True).click()
        expect(page).to_have_url(seeded.url(f"/accounts/acc_br_zeta{path}"))
        expect(page.locator(".tab-panel")).to_have_attribute("data-tab", key)
    page.go_back()
    expect(page).to_have_url(seeded.url("/accounts/acc_br_zeta/users"))
    expect(page.locator(".tab-panel")).to_have_attribute("data-tab", "users")
    expect(page.locator("#account-actions")).to_have_count(1)


def test_viewer_has_no_actions_menu(page, seeded):
    sign_in(page, seeded, "viewer@example.com", "/accounts/acc_br_zeta")
    expect(page.locator("h1")).to_have_text("Zeta Rockets")
    expect(page.locator("#account-actions")).to_have_count(0)
    expect(page.get_by_text("Open in Stripe")).to_have_count(0)


def test_a_bookmark_of_the_previous_release_lands_on_the_new_page(page, seeded):
    """Chromium follows the 308s of backoffice/legacy.py (issue 19's renames) with the query kept."""
    sign_in(page, seeded, "admin@example.com", "/ledger")
    page.goto(seeded.url("/billing-events?view=mrr"))
    expect(page).to_have_url(seeded.url("/ledger?view=mrr"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Ledger")
    page.goto(seeded.url("/accounts/acc_br_zeta/billing-events"))
    expect(page).to_have_url(seeded.url("/accounts/acc_br_zeta/ledger"))
    expect(page.locator(".tab-panel")).to_have_attribute("data-tab", "ledger")


def test_a_reversed_date_range_says_the_servers_message_once(page, seeded, screenshots):
    """Issue 22 part 7: the server's own words (naming the field), one message however often the
    filter is refused, and the rows below marked as answering the previous filters."""
    sign_in(page, seeded, "admin@example.com", "/ledger")
    page.get_by_label("From", exact=True).fill("2026-12-01")
    page.get_by_label("To", exact=True).fill("2026-01-01")
    alerts = page.locator("#main > p.flash-error[role=alert]")
    expect(alerts).to_have_count(1)
    expect(alerts).to_have_text("to must not be before from.")
    expect(page.locator("#event-table")).to_have_class(re.compile(r"\bis-outdated\b"))
    page.get_by_label("To", exact=True).fill("2025-12-31")  # still reversed: still one message
    expect(alerts).to_have_count(1)
    page.screenshot(path=str(screenshots / "ledger-reversed-range.png"))
    page.get_by_label("To", exact=True).fill("2026-12-31")  # a good range: the list answers, the message goes
    expect(alerts).to_have_count(0)
    expect(page.locator("#event-table")).not_to_have_class(re.compile(r"\bis-outdated\b"))
    # The refused requests themselves are logged (by the browser and by htmx) as console errors.
    assert all(re.search(r"400|422|htmx:responseError", e) for e in page.js_errors), page.js_errors
    page.js_errors.clear()
