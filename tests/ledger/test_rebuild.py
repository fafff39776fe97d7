"""`backoffice ledger rebuild`: projections recomputed from the archive, tampered rows reported,
never changed."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent, Subscription
from tests.conftest import IS_POSTGRES
from tests.stripe_sync import helpers as h

CUS, ACC, SUB = "cus_rb", "acc-rb", "sub_rb"


@pytest.fixture
def story(client):
    basic = h.price("price_basic", 4900, product="basic")
    pro = h.price("price_pro", 15900, product="pro")
    t = h.ts("2026-01-10T08:00:00")
    events = [
        h.envelope("customer.created", h.customer(CUS, account_id=ACC), t - 60),
        h.envelope("customer.subscription.created", h.subscription(SUB, CUS, basic, created=t), t),
        h.envelope("customer.subscription.updated", h.subscription(SUB, CUS, pro, created=t), t + 86400,
                   previous_attributes={"items": {"data": [{"price": basic}]}}),
    ]
    for event in events:
        assert h.deliver(client, event).status_code == 200
    return events


def test_rebuild_of_a_clean_ledger_reports_nothing(runner, story):
    result = runner.invoke(args=["ledger", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "1 accounts, 3 archived events replayed, 0 missing ledger rows appended." in result.output
    assert "Every stored ledger row matches a fresh replay." in result.output


@pytest.mark.skipif(IS_POSTGRES, reason="tampering needs a direct UPDATE, which the PostgreSQL trigger refuses")
def test_rebuild_reports_a_tampered_row_and_changes_nothing(runner, story):
    upgrade = story[2]["id"]
    db.session.execute(sa.text("UPDATE billing_events SET committed_mrr = 1990000 WHERE stripe_event_id = :id"),
                       {"id": upgrade})  # 199.00 in SQLite's integer money
    db.session.execute(sa.text("UPDATE subscriptions SET plan = 'tampered', price_amount = 0"))
    db.session.commit()
    before = [tuple(r) for r in db.session.execute(sa.text("SELECT * FROM billing_events ORDER BY id"))]

    result = runner.invoke(args=["ledger", "rebuild", "--account", ACC])
    assert result.exit_code == 1, result.output
    assert f"DIFFERS {ACC} {upgrade} committed_mrr: stored 199.0000 fresh 159.00" in result.output
    assert "1 stored rows differ from a fresh replay; they were left unchanged." in result.output
    db.session.expire_all()
    after = [tuple(r) for r in db.session.execute(sa.text("SELECT * FROM billing_events ORDER BY id"))]
    assert after == before
    # The projection is recomputed from the archive.
    sub = db.session.execute(db.select(Subscription).where(Subscription.account_id == ACC)).scalar_one()
    assert (sub.plan, sub.price_amount) == ("pro", Decimal("159.0000"))


def test_rebuild_appends_a_missing_row(runner, story, app):
    from backoffice.ledger import services

    # Simulate an event archived but never replayed (e.g. a worker died): a recovered archive row.
    late = h.envelope("payment_method.attached", h.payment_method("pm_1", CUS), h.ts("2026-01-12"))
    from backoffice.ledger import archive
    archive.archive_event(h.encode(late), late)
    report = services.rebuild(services.accounts_with_archive(ACC))
    assert (report.accounts, report.events, report.rows_appended, report.differences) == (1, 4, 1, [])
    assert db.session.execute(
        db.select(BillingEvent.type).where(BillingEvent.stripe_event_id == late["id"])).scalar_one() == (
        "payment_method_updated")


def test_rebuild_of_an_unknown_account_is_an_error(runner, app):
    result = runner.invoke(args=["ledger", "rebuild", "--account", "nope"])
    assert result.exit_code == 1
    assert "No archived Stripe events for account nope." in result.output
