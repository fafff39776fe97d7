"""The billing events page: pills, filters, plan transitions, empty states, bad input, CSV."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.extensions import db
from backoffice.ledger.filters import STATE_VIEW_TYPES, EventFilters
from backoffice.ledger.labels import EVENT_LABELS
from backoffice.ledger.queries import billing_events_page
from tests.factories import AccountFactory, BillingEventFactory, PlanFactory, SubscriptionFactory

T = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def ledger(app):
    PlanFactory(plan_key="pro", name="Pro")
    sub = SubscriptionFactory(account_id=AccountFactory(id="acc_l", name="Ledger Ltd").id)
    types = ["subscription_created", "subscription_upgraded", "subscription_cancelled", "subscription_suspended",
             "subscription_renewed", "payment_failed", "no_op", "unclassified"]
    for i, t in enumerate(types):
        delta = t in ("subscription_created", "subscription_upgraded", "subscription_cancelled",
                      "subscription_suspended")
        BillingEventFactory(subscription=sub, type=t, occurred_at=T + timedelta(days=i),
                            from_plan="pro" if t != "subscription_created" else None, to_plan="pro",
                            previous_amount=(Decimal(0) if t == "subscription_created" else Decimal("100.00"))
                            if delta else None,
                            new_amount=Decimal(0) if t in ("subscription_cancelled", "subscription_suspended")
                            else (Decimal("100.00") if delta else None),
                            committed_mrr=Decimal("100.00"))
    db.session.commit()
    return sub


def _types(f: EventFilters) -> list[str]:
    return [e.type for e, _name in billing_events_page(f).items]


def test_pills(ledger):
    assert "no_op" not in _types(EventFilters())
    assert len(_types(EventFilters())) == 7
    assert set(_types(EventFilters(view="mrr"))) == {"subscription_created", "subscription_upgraded",
                                                     "subscription_cancelled", "subscription_suspended"}
    state = {"subscription_created", "subscription_upgraded", "subscription_suspended", "subscription_cancelled"}
    assert set(_types(EventFilters(view="state"))) == state & STATE_VIEW_TYPES
    assert set(_types(EventFilters(view="other"))) == {"subscription_renewed", "payment_failed", "no_op",
                                                       "unclassified"}


def test_lenses_cover_every_type():
    from backoffice.ledger.filters import MRR_VIEW_TYPES, OTHER_VIEW_TYPES, STATE_VIEW_TYPES

    assert set(EVENT_LABELS) == MRR_VIEW_TYPES | STATE_VIEW_TYPES | OTHER_VIEW_TYPES
    assert "subscription_suspended" in MRR_VIEW_TYPES and {"no_op", "unclassified"} <= OTHER_VIEW_TYPES


def test_type_period_account_filters_and_sort(ledger):
    assert _types(EventFilters(type="payment_failed")) == ["payment_failed"]
    assert _types(EventFilters(type="payment_failed", view="mrr")) == []
    f = EventFilters(date_from=T + timedelta(days=1), date_to=T + timedelta(days=3))
    assert _types(f) == ["subscription_cancelled", "subscription_upgraded"]
    assert len(_types(EventFilters(account="acc_l"))) == 7
    assert _types(EventFilters(account="acc_other")) == []
    assert _types(EventFilters(sort="occurred"))[0] == "subscription_created"
    assert _types(EventFilters(sort="event"))[0] == "payment_failed"


def test_page_shows_soft_cancel_as_plan_to_free_and_signed_deltas(ledger, admin_client):
    html = admin_client.get("/ledger?view=mrr").get_data(as_text=True)
    cancelled = html.split('data-type="subscription_cancelled"')[1].split("</tr>")[0]
    assert "Pro → Free" in cancelled
    assert 'class="num neg">−€100.00' in cancelled
    created = html.split('data-type="subscription_created"')[1].split("</tr>")[0]
    assert 'class="num pos">+€100.00' in created and "— → Pro" in created
    for sort in ("account", "-account", "event", "-event", "occurred"):
        assert admin_client.get(f"/ledger?sort={sort}").status_code == 200


def test_fragment_and_url_state(ledger, admin_client):
    frag = admin_client.get("/ledger?view=other&search=ledger", headers={"HX-Request": "true"})
    text = frag.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="event-table"')
    assert "view=other" in text and "search=ledger" in text  # pills and sort links keep the state


def test_empty_states(app, admin_client):
    html = admin_client.get("/ledger").get_data(as_text=True)
    assert "No billing events yet." in html and "Clear filters" not in html
    html = admin_client.get("/ledger?search=zzz").get_data(as_text=True)
    assert "No billing events match your filters." in html and "Clear filters" in html


@pytest.mark.parametrize("url,field", [
    ("/ledger?sort=amount", "sort"), ("/ledger?page=-3", "page"),
    ("/ledger?page_size=101", "page_size"), ("/ledger?search=" + "z" * 101, "search"),
    ("/ledger?view=money", "view"), ("/ledger?type=SubscriptionCreated", "type"),
    ("/ledger?from=2025-13-01", "from"), ("/ledger?from=2025-02-01&to=2025-01-01", "to"),
    ("/ledger?account=x%20y", "account"), ("/ledger?to=9999-12-31", "to"),
])
def test_bad_input_is_a_clear_400(ledger, admin_client, url, field):
    resp = admin_client.get(url)
    # Two good days in the wrong order: a rule beyond each parameter's form (422).
    assert resp.status_code == (422 if "from=2025-02-01&to" in url else 400)
    assert f"Parameter: {field}" in resp.get_data(as_text=True)


def test_csv_export_keeps_filters(ledger, admin_client):
    resp = admin_client.get("/ledger?format=csv&view=mrr&sort=occurred")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0][:4] == ["Occurred", "Event", "Account id", "Account"]
    assert [r[1] for r in rows[1:]] == ["subscription_created", "subscription_upgraded", "subscription_cancelled",
                                        "subscription_suspended"]
    assert rows[3][0] == "2025-01-03T00:00:00Z" and rows[3][8] == "-100.00"
