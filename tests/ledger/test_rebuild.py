"""`backoffice ledger rebuild`: projections recomputed from the archive; a stored row a fresh
replay writes differently is reported and superseded by the corrected row (never rewritten)."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent, Subscription
from tests.conftest import IS_POSTGRES
from tests.stripe import helpers as h

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
    assert "1 accounts, 3 archived events replayed, 0 missing ledger rows appended, 0 corrected." in result.output
    assert "Every stored ledger row matches a fresh replay." in result.output


@pytest.mark.skipif(IS_POSTGRES, reason="tampering needs a direct UPDATE, which the PostgreSQL trigger refuses")
def test_rebuild_supersedes_a_tampered_row_and_rewrites_nothing(runner, story):
    upgrade = story[2]["id"]
    db.session.execute(sa.text("UPDATE billing_events SET committed_mrr = 1990000 WHERE stripe_event_id = :id"),
                       {"id": upgrade})  # 199.00 in SQLite's integer money
    db.session.execute(sa.text("UPDATE subscriptions SET plan = 'tampered', price_amount = 0"))
    db.session.commit()
    before = [tuple(r) for r in db.session.execute(sa.text(
        "SELECT id, stripe_event_id, type, committed_mrr FROM billing_events ORDER BY id"))]

    result = runner.invoke(args=["ledger", "rebuild", "--account", ACC])
    assert result.exit_code == 1, result.output
    assert f"CORRECTED {ACC} {upgrade} committed_mrr: stored 199.0000 fresh 159.00" in result.output
    assert "1 stored rows differed from a fresh replay; each is superseded by its corrected row" in result.output
    db.session.expire_all()
    rows = db.session.execute(db.select(BillingEvent).order_by(BillingEvent.id)).scalars().all()
    # The stored rows are all still there, unchanged but for the tampered one's superseded mark.
    assert [(r.id, r.stripe_event_id, r.type, r.committed_mrr) for r in rows[:3]] == [
        (i, e, t, Decimal(m) / 10000) for i, e, t, m in before]
    tampered, corrected = rows[2], rows[3]
    assert (tampered.superseded_by, corrected.stripe_event_id, corrected.committed_mrr) == (
        corrected.id, upgrade, Decimal("159.0000"))
    assert tampered.superseded_at is not None and corrected.superseded_at is None
    assert tampered.superseded_because is None  # a rebuild's correction, not a late event's
    assert all(r.superseded_at is None for r in rows[:2])
    # The projection is recomputed from the archive.
    sub = db.session.execute(db.select(Subscription).where(Subscription.account_id == ACC)).scalar_one()
    assert (sub.plan, sub.price_amount) == ("pro", Decimal("159.0000"))
    # A second run finds nothing to correct.
    again = runner.invoke(args=["ledger", "rebuild", "--account", ACC])
    assert again.exit_code == 0, again.output
    assert "0 corrected." in again.output


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
