"""German that is German (issue 22 part 6): an operator who chose German meets no English sentence
on any page of the menu, an account's tabs, the admin pages or an error page. English is told by
its function words ("the", "and", "not" ...), which no German sentence holds; names of products and
of the data shown (accounts, plans) are allowed."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import stripe
from playwright.sync_api import Page, expect

from backoffice.extensions import db
from backoffice.ledger.models import Discrepancy
from backoffice.sentences import CANCEL_DIFFERS, CHECKS_INCOMPLETE, UNRECOVERABLE, say
from backoffice.stripe.gateway import describe_error
from backoffice.stripe.models import JobRun
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ENGLISH = re.compile(r"\b(the|and|of|is|not|with|for|from|this|that|yet|has|have|are|been|by|to|"
                     r"which|your|you|there|than|when|what|where|who|or|no|never|none|each|every)\b",
                     re.IGNORECASE)
ALLOWED = ("Backoffice", "Stripe", "Ledger", "Plotly", "CSV", "API", "MRR", "VAT-ID", "e-mail")
PAGES = ["/", "/accounts", "/accounts/acc_de_1", "/accounts/acc_de_1/invoices", "/accounts/acc_de_1/ledger",
         "/accounts/acc_de_1/users", "/accounts/acc_de_1/drift", "/accounts/acc_de_1/billing",
         "/accounts/acc_de_1/platform-invoices", "/accounts/acc_de_1/deployments", "/users", "/ledger",
         "/invoices", "/usage", "/invoicing/invoices", "/invoicing/quotes", "/invoicing", "/invoicing/price-book",
         "/operators", "/operators/audit", "/operators/tokens", "/stripe/jobs", "/no-such-page"]


@pytest.fixture(scope="module")
def german_admin(live_server):
    from tests.factories import (
        AccountFactory,
        MembershipFactory,
        PaymentTransactionFactory,
        PlanFactory,
        SubscriptionFactory,
        UserFactory,
    )

    with live_server.app.app_context():
        if db.session.get(AccountFactory._meta.model, "acc_de_1") is None:
            PlanFactory(price_id="price_de_pro", plan_key="pro_de", name="Pro", monthly_amount=Decimal("49.00"))
            account = AccountFactory(id="acc_de_1", name="Müller Maschinenbau", country="DE")
            SubscriptionFactory(account_id=account.id, plan="pro_de", price_amount=Decimal("49.00"),
                                stripe_subscription_id="sub_de_1", drift_checked_at=datetime(2026, 11, 30, tzinfo=UTC))
            PaymentTransactionFactory(account_id=account.id, stripe_invoice_id="in_de_1")
            user = UserFactory(id="usr_de_1", email="anna@mueller.test", first_name="Anna", last_name="Müller")
            MembershipFactory(user_id=user.id, account_id=account.id, role="owner")
            # Sentences as the drift check and a failed sync store them, in English.
            db.session.add_all([
                Discrepancy(account_id=account.id, kind="SubscriptionStateMismatch", severity="warning",
                            field="cancel_at_period_end", message=say(CANCEL_DIFFERS, local="false", live="true")),
                Discrepancy(account_id=account.id, kind="MissingHistoricalEvent", severity="critical",
                            field="invoice", message=say(UNRECOVERABLE, kind="invoice", id="in_de_0", when="2025-01-03")),
                JobRun(kind="account_sync", status="failed", target_id=account.id, actor_email="deutsch@example.com",
                       error=describe_error(stripe.AuthenticationError("Invalid API Key"))),
                JobRun(kind="drift_pass", status="failed", total=4, processed=2, failed=1, timed_out=1,
                       error=say(CHECKS_INCOMPLETE, incomplete=2, total=4, failed=1, timed_out=1)),
            ])
            db.session.commit()
        db.session.remove()
    return live_server.create_operator("deutsch@example.com", "admin")


def _english(page: Page) -> list[str]:
    lines = page.evaluate("() => document.body.innerText.split('\\n')")
    out = []
    for line in (line.strip() for line in lines):
        text = line
        for name in ALLOWED:
            text = text.replace(name, "")
        if ENGLISH.search(text):
            out.append(line)
    return out


def test_german_pages_hold_no_english(page, live_server, german_admin):
    page.goto(live_server.url("/sign-in"))
    page.get_by_label("E-mail").fill(german_admin)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator("details.operator-menu > summary").click()
    page.get_by_role("button", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    found = {}
    for path in PAGES:
        page.goto(live_server.url(path))
        page.wait_for_load_state("networkidle")
        english = _english(page)
        if english:
            found[path] = english
    assert found == {}
    # The detector is not blind: the same pages in English are caught.
    page.locator("details.operator-menu > summary").click()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(live_server.url("/invoicing/quotes"))
    assert _english(page)
    page.js_errors[:] = [e for e in page.js_errors if "404" not in e]  # the error page's own request
