"""Every reader of the ledger reads current rows (DOMAIN §3, corrections without rewriting): a
superseded row stays in the table as the audit trail, and no list, export, API answer, MRR
figure, dashboard card or count includes it. On PostgreSQL the dashboard's MRR summaries, kept
by triggers, follow the superseding UPDATE; on SQLite the same figures are computed from the
ledger. The ledger's one permitted change is checked on PostgreSQL's guard."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.api import services as api_services
from backoffice.dashboard import queries
from backoffice.dashboard.mrr import Window
from backoffice.demo.services import stripe_counts
from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent
from tests.conftest import IS_POSTGRES
from tests.factories import AccountFactory, BillingEventFactory, SubscriptionFactory

DAY1 = datetime(2026, 3, 2, 9, tzinfo=UTC)
DAY2 = datetime(2026, 3, 5, 9, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.fixture
def corrected(app):
    """acc-c subscribed at 100.00 (day 1), then changed plan; that row, first written as an
    upgrade 100 -> 400 (+300.00), is superseded by its correction, a downgrade 100 -> 50 (-50.00)."""
    sub = SubscriptionFactory(account_id=AccountFactory(id="acc-c", name="Corrected Co").id)
    BillingEventFactory(subscription=sub, stripe_event_id="evt_sub", occurred_at=DAY1)
    wrong = BillingEventFactory(subscription=sub, stripe_event_id="evt_up", type="subscription_upgraded",
                                from_plan="pro", to_plan="max", previous_amount=Decimal("100.00"),
                                new_amount=Decimal("400.00"), occurred_at=DAY2)
    db.session.commit()
    # As the replay does it: the stored row marked first, its correction inserted with the id named.
    new_id = wrong.id + 1000
    db.session.execute(sa.update(BillingEvent).where(BillingEvent.id == wrong.id).values(
        superseded_at=NOW, superseded_by=new_id, superseded_because="evt_late"))
    BillingEventFactory(id=new_id, subscription=sub, stripe_event_id="evt_up", type="subscription_downgraded",
                        from_plan="pro", to_plan="lite", previous_amount=Decimal("100.00"),
                        new_amount=Decimal("50.00"), occurred_at=DAY2)
    db.session.commit()
    return wrong.id, new_id


def test_the_dashboards_mrr_reads_current_rows(corrected):
    window = Window.ending(30, NOW)
    assert queries.ledger_mrr_latest() == Decimal("50.00")
    assert queries.mrr_at(DAY2 + timedelta(hours=1)) == Decimal("50.00")
    assert queries.mrr_at_moments(datetime(2026, 3, 6, tzinfo=UTC)) == (Decimal("50.00"),)
    trend = queries.mrr_trend(window)
    assert trend.values[-1] == Decimal("50.00")
    movements = queries.mrr_movements(window)
    assert (movements.opening, movements.closing) == (Decimal(0), Decimal("50.00"))
    # The superseded upgrade moves nothing: no expansion, a contraction of 50.00.
    assert {k: v for k, v in movements.buckets.items() if v} == {"new": Decimal("100.00"),
                                                                   "contraction": Decimal("-50.00")}
    assert [e.stripe_event_id for e, _ in queries.recent_billing_events()] == ["evt_up", "evt_sub"]
    assert next(e.id for e, _ in queries.recent_billing_events()) == corrected[1]


@pytest.mark.skipif(not IS_POSTGRES, reason="the MRR summary tables and their triggers exist only on PostgreSQL")
def test_the_summaries_kept_by_triggers_equal_a_rebuild_of_them(corrected):
    """The superseding UPDATE's trigger leaves dashboard_mrr_daily as a rebuild over the current
    rows makes it."""
    def daily():
        return sorted(tuple(r) for r in db.session.execute(sa.text(
            "SELECT day, type, positive, change FROM dashboard_mrr_daily WHERE change <> 0")))

    kept = daily()
    db.session.execute(sa.text("SELECT dashboard_rebuild_summaries()"))
    assert kept == daily()
    assert sum(r[3] for r in kept) == Decimal("50.00")


def test_the_lists_the_export_and_the_api_read_current_rows(corrected, viewer_client):
    page = viewer_client.get("/ledger?view=mrr").get_data(as_text=True)
    assert page.count('data-type="subscription_upgraded"') == 0
    assert page.count('data-type="subscription_downgraded"') == 1
    assert "−€50.00" in page and "+€300.00" not in page
    exported = viewer_client.get("/ledger?format=csv&view=mrr")
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert [r for r in rows[1:] if "evt_up" in r] and len([r for r in rows[1:] if "evt_up" in r]) == 1
    assert not any("300.00" in cell for row in rows for cell in row)
    tab = viewer_client.get("/accounts/acc-c/ledger").get_data(as_text=True)
    assert tab.count('data-type="subscription_upgraded"') == 0 and 'data-corrections="1"' in tab
    _token, secret = api_services.create_token("readers", "read")
    body = viewer_client.get("/api/v1/billing-events?account=acc-c",
                             headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert [(i["stripe_event_id"], i["amount_delta"]) for i in body["items"]] in (
        [("evt_up", "-50.00"), ("evt_sub", "100.00")], [("evt_sub", "100.00"), ("evt_up", "-50.00")])
    assert body["total"] == 2
    assert stripe_counts()["billing_events"] == 2


def test_the_corrections_page_shows_what_was_and_what_is(corrected, viewer_client):
    html = viewer_client.get("/accounts/acc-c/ledger/corrections").get_data(as_text=True)
    assert 'data-event="evt_up"' in html and "evt_late arrived late" in html
    assert "+€300.00" in html and "−€50.00" in html
    empty = AccountFactory(id="acc-plain")
    db.session.commit()
    html = viewer_client.get(f"/accounts/{empty.id}/ledger/corrections").get_data(as_text=True)
    assert "No corrections." in html
    assert viewer_client.get("/accounts/acc-nope/ledger/corrections").status_code == 404
    assert viewer_client.get("/accounts/acc-c/ledger/corrections?page=0").status_code == 400


def test_the_corrections_page_needs_sign_in(corrected, client):
    resp = client.get("/accounts/acc-c/ledger/corrections")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/sign-in")


postgres_only = pytest.mark.skipif(not IS_POSTGRES, reason="the ledger's guard trigger exists only on PostgreSQL")


def _refused(sql: str, **params) -> None:
    with pytest.raises(sa.exc.DBAPIError, match="immutable|append-only"):
        try:
            db.session.execute(sa.text(sql), params)
            db.session.flush()
        finally:
            db.session.rollback()


@postgres_only
@pytest.mark.parametrize("sql", [
    "UPDATE billing_events SET superseded_at = now() WHERE id = :old",  # a second time
    "UPDATE billing_events SET superseded_at = NULL WHERE id = :old",  # made current again
    "UPDATE billing_events SET superseded_by = NULL WHERE id = :old",
    "UPDATE billing_events SET superseded_because = 'evt_other' WHERE id = :old",
    "UPDATE billing_events SET amount_delta = 0, superseded_at = now() WHERE id = :new",  # with another column
    "UPDATE billing_events SET superseded_by = :old WHERE id = :new",  # the link without the time
    "DELETE FROM billing_events WHERE id = :old",
])
def test_the_guard_allows_superseding_once_and_nothing_else(corrected, sql):
    old, new = corrected
    _refused(sql, old=old, new=new)
    stored = db.session.get(BillingEvent, old)
    assert (stored.superseded_by, stored.superseded_because, stored.amount_delta) == (
        new, "evt_late", Decimal("300.0000"))


@postgres_only
def test_the_guard_allows_the_one_superseding_update(corrected):
    _old, new = corrected
    db.session.execute(sa.text("UPDATE billing_events SET superseded_at = now(), superseded_by = NULL "
                               "WHERE id = :new"), {"new": new})
    db.session.commit()
    assert queries.ledger_mrr_latest() == Decimal("100.00")  # the summaries followed: only evt_sub is current


def test_one_current_row_per_event(corrected):
    """The unique index over current rows: a second current row of an event is refused."""
    sub_id = db.session.get(BillingEvent, corrected[1]).subscription_id
    with pytest.raises(sa.exc.IntegrityError):
        try:
            db.session.add(BillingEvent(account_id="acc-c", subscription_id=sub_id, stripe_event_id="evt_up",
                                        type="no_op", committed_mrr=Decimal(0), occurred_at=DAY2))
            db.session.flush()
        finally:
            db.session.rollback()
