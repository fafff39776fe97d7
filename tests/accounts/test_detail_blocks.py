"""The account page keeps one named block per tab: an htmx request for a tab gets that tab's block
and nothing else (no page header, no other tab); any other request gets the whole page with the
same block in it."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from backoffice.extensions import db
from tests.factories import (
    AccountFactory,
    BillingEventFactory,
    MembershipFactory,
    PaymentTransactionFactory,
    SubscriptionFactory,
)

HX = {"HX-Request": "true"}
ACCOUNT = "acc_tabs"
# path under /accounts/<id> → (the tab marked current, a piece of markup only that tab renders).
# page_size=1 with two rows gives each list tab a "next" link to its own URL.
TABS = {
    "": ("overview", 'id="owners-heading"'),
    "/users?page_size=1": ("users", f'href="/accounts/{ACCOUNT}/users?page=2" rel="next"'),
    "/invoices?page_size=1": ("invoices", f'href="/accounts/{ACCOUNT}/invoices?'),
    "/ledger?page_size=1": ("ledger", f'href="/accounts/{ACCOUNT}/ledger?'),
    "/ledger/corrections": ("ledger", 'id="corrections-heading"'),
    "/deployments": ("deployments", "This account has no deployments."),
    "/drift": ("drift", 'data-drift-state="never-checked"'),
}
PAGE_MODES = {
    "plain": {},
    "boosted": {**HX, "HX-Boosted": "true"},
    "history restore": {**HX, "HX-History-Restore-Request": "true"},
}


@pytest.fixture
def account(app):
    sub = SubscriptionFactory(account_id=AccountFactory(id=ACCOUNT, name="Tabs GmbH").id, drift_checked_at=None)
    for _ in range(2):
        MembershipFactory(account_id=ACCOUNT)
        PaymentTransactionFactory(account_id=ACCOUNT)
        BillingEventFactory(subscription=sub)
    BillingEventFactory(subscription=sub, type="subscription_updated",
                        superseded_at=datetime(2026, 3, 4, tzinfo=UTC), superseded_because="evt_late")
    db.session.commit()
    return ACCOUNT


@pytest.mark.parametrize("path", TABS)
def test_an_htmx_request_gets_only_its_tab(account, admin_client, path):
    tab, marker = TABS[path]
    resp = admin_client.get(f"/accounts/{account}{path}", headers=HX)
    assert resp.status_code == 200
    frag = resp.get_data(as_text=True).strip()
    assert frag.startswith('<section id="account-tab" class="tabs-area">') and frag.endswith("</section>")
    assert "<html" not in frag and 'class="tiles"' not in frag and 'id="account-actions"' not in frag
    assert re.findall(r'data-tab="(\w+)"', frag) == [tab]
    current = re.findall(r'<a href="([^"]+)" class="tab" aria-current="page"', frag)
    assert current == [f"/accounts/{account}" + ("" if tab == "overview" else f"/{tab}")]
    assert marker in frag
    others = {m for p, (_t, m) in TABS.items() if p != path}
    assert [m for m in others if m in frag] == []


@pytest.mark.parametrize("mode", PAGE_MODES)
@pytest.mark.parametrize("path", TABS)
def test_any_other_request_gets_the_whole_page_around_the_same_block(account, admin_client, path, mode):
    tab, marker = TABS[path]
    page = admin_client.get(f"/accounts/{account}{path}", headers=PAGE_MODES[mode]).get_data(as_text=True)
    assert page.startswith("<!doctype html>") and 'class="tiles"' in page and 'id="account-actions"' in page
    assert re.findall(r'data-tab="(\w+)"', page) == [tab]
    assert marker in page
    frag = admin_client.get(f"/accounts/{account}{path}", headers=HX).get_data(as_text=True).strip()
    assert frag in page  # the page holds exactly the block the fragment is


def test_the_tabs_show_their_rows(account, admin_client):
    corrections = admin_client.get(f"/accounts/{account}/ledger/corrections", headers=HX).get_data(as_text=True)
    assert corrections.count('<tr data-event="') == 1 and "evt_late arrived late" in corrections
    ledger = admin_client.get(f"/accounts/{account}/ledger", headers=HX).get_data(as_text=True)
    assert 'data-corrections="1"' in ledger and ledger.count('<tr data-type="subscription_created">') == 2
    assert "<th scope=\"col\">Account</th>" not in ledger  # the account's own ledger names no account
    invoices = admin_client.get(f"/accounts/{account}/invoices", headers=HX).get_data(as_text=True)
    assert invoices.count('<tr class="invoice-row kind-invoice"') == 2
    assert "<th scope=\"col\">Account</th>" not in invoices
    overview = admin_client.get(f"/accounts/{account}", headers=HX).get_data(as_text=True)
    assert overview.count('<tr class="invoice-row') == 2 and overview.count("<tr data-type=") == 2


def test_filters_that_match_nothing_offer_to_clear_them(account, admin_client):
    long_ago = "from=2000-01-01&to=2000-01-02"
    ledger = admin_client.get(f"/accounts/{account}/ledger?{long_ago}", headers=HX).get_data(as_text=True)
    assert "No billing events match your filters." in ledger
    invoices = admin_client.get(f"/accounts/{account}/invoices?search=zzz", headers=HX).get_data(as_text=True)
    assert "No invoices match your filters." in invoices
