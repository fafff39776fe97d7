"""Quotes and the month-end page in a real browser: the quote form swaps its lines in and pushes
its state into the URL (a reload and the back button show the same quote); an admin runs a month."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from playwright.sync_api import expect

from backoffice.extensions import db
from tests.browser.test_lists import seeded, sign_in  # noqa: F401  (fixture)


def _price_book(live_server) -> None:
    from backoffice.invoicing.models import AddonPrice, MeteredPrice, PlanAllowance, PlanPrice

    with live_server.app.app_context():
        if db.session.execute(db.select(PlanPrice).where(PlanPrice.plan == "team")).first() is None:
            day = date(2026, 1, 1)
            db.session.add_all([
                PlanPrice(plan="team", name="Team", currency="CHF", monthly_base=Decimal(49), setup_fee=Decimal(99),
                          valid_from=day, allowances=[PlanAllowance(metric="messages_out",
                                                                    included_quantity=Decimal(1000))]),
                AddonPrice(addon="support", period="day", price=Decimal("0.10"), currency="CHF", valid_from=day),
                MeteredPrice(metric="messages_out", unit_price=Decimal("0.005"), currency="CHF", valid_from=day)])
            db.session.commit()
        db.session.remove()


def test_a_quote_swaps_its_lines_in_and_keeps_them_in_the_url(page, seeded, screenshots):  # noqa: F811
    _price_book(seeded)
    sign_in(page, seeded, "viewer@example.com", "/invoicing/quotes")
    page.select_option("#q-plan", "team")
    page.get_by_label("support").check()
    page.fill("#q-start", "2026-11-17")
    page.fill("#q-messages_out", "3417")
    page.fill("#q-country", "CH")
    page.get_by_role("button", name="Quote").click()
    result = page.locator("#quote-result")
    expect(result.locator("tr[data-kind]")).to_have_count(4)
    expect(result.locator("[data-subtotal]")).to_have_attribute("data-subtotal", "135.36")
    expect(result.locator("[data-total]")).to_have_attribute("data-total", "146.32")
    expect(page).to_have_url(re.compile(r".*[?&]plan=team&.*usage_messages_out=3417"))
    page.screenshot(path=str(screenshots / "invoicing-quote.png"), full_page=True)
    page.reload()
    expect(page.locator("#quote-result [data-total]")).to_have_attribute("data-total", "146.32")
    page.fill("#q-country", "DE")
    page.fill("#q-vat", "DE123")
    page.get_by_role("button", name="Quote").click()
    expect(result.locator("[data-tax]")).to_have_attribute("data-tax", "0.00")
    page.go_back()
    expect(page.locator("#quote-result [data-tax]")).to_have_attribute("data-tax", "10.96")


def test_an_admin_runs_a_month_from_the_page(page, seeded, screenshots):  # noqa: F811
    sign_in(page, seeded, "admin@example.com", "/invoicing")
    page.fill("#run-period", "2026-10")
    page.get_by_role("button", name="Run", exact=True).click()
    # The run goes to the background (no broker: the web process's pool); the list polls until done.
    expect(page.locator(".flash").first).to_contain_text("Run 1 of 2026-10 started in the background")
    expect(page.locator("tr[data-run]").first).to_have_attribute("data-status", "done")
    expect(page.locator("#runs")).not_to_have_attribute("hx-trigger", "every 2s")
    page.screenshot(path=str(screenshots / "invoicing-runs.png"), full_page=True)
