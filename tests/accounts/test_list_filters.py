"""The accounts list's issue and status filters at speed (migration 0010_list_filters_speed): the
"not synced yet" mark kept by the database, and the status and plan filters counted and paged from
the subscriptions, deleted accounts left out."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from backoffice import create_app
from backoffice.accounts import queries
from backoffice.accounts.filters import STATUSES, AccountFilters
from backoffice.accounts.models import Account
from backoffice.config import PROJECT_ROOT
from backoffice.dashboard.queries import banners
from backoffice.extensions import db
from backoffice.ledger import archive, services
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.conftest import IS_POSTGRES, scratch_database
from tests.factories import AccountFactory, BillingEventFactory, SubscriptionFactory
from tests.stripe import helpers as h

ACC = "acc-paid"
CUS = "cus_paid"
WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def unsynced() -> list[str]:
    db.session.expire_all()
    return [row[0].id for row in queries.accounts_page(AccountFilters(unsynced=True)).items]


def marked(account_id: str) -> bool:
    return db.session.execute(
        sa.select(Account.has_ledger_rows).where(Account.id == account_id)).scalar_one()


def state(event: dict) -> str:
    db.session.expire_all()
    return db.session.get(StripeEvent, event["id"]).state


def archive_only(event: dict) -> None:
    """Stores the event as the webhook does, without replaying it (pending)."""
    assert archive.archive_event(h.encode(event), event).outcome == "stored"


@pytest.fixture
def paid(app):
    """A paid account that no event has reached the ledger for yet, and a free one."""
    SubscriptionFactory(account_id=AccountFactory(id=ACC, name="Paid AG", stripe_customer_id=CUS).id)
    AccountFactory(id="acc-free", name="Free AG")
    db.session.commit()


def test_an_account_leaves_the_filter_when_the_replay_gives_it_a_ledger_row(paid):
    assert unsynced() == [ACC] and not marked(ACC)
    assert banners().unsynced == 1

    ignored = h.envelope("customer.discount.created", {"object": "discount", "customer": CUS}, h.ts("2026-03-01"))
    failed = h.envelope("customer.subscription.updated",  # no items: unreadable
                        {"object": "subscription", "id": "sub_unreadable", "customer": CUS}, h.ts("2026-03-02"),
                        api_version="2015-01-01")
    archive_only(ignored)
    archive_only(failed)
    services.replay_account(ACC)
    # Neither an ignored nor a failed event makes a ledger row: the account is still not synced.
    assert (state(ignored), state(failed)) == ("ignored", "failed")
    assert unsynced() == [ACC] and banners().unsynced == 1

    created = h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-03-03"))
    archive_only(created)
    assert state(created) == "pending"
    assert unsynced() == [ACC]  # archived is not synced: the rule is about ledger rows
    services.replay_account(ACC)
    assert state(created) == "processed"
    assert db.session.execute(sa.select(BillingEvent.type).where(BillingEvent.account_id == ACC)).scalars().all() == [
        "billing_info_added"]
    assert marked(ACC) and unsynced() == [] and banners().unsynced == 0
    assert not marked("acc-free")


def test_the_webhook_path_marks_the_account(paid, client):
    created = h.envelope("customer.created", h.customer(CUS, account_id=ACC), h.ts("2026-03-03"))
    assert h.deliver(client, created).status_code == 200
    assert state(created) == "processed"
    assert marked(ACC) and unsynced() == []


def test_any_insert_marks_its_accounts_once(app):
    """The ORM (a sync's baseline rows, recovery) and a multi-row Core insert (the replayer)."""
    first, second, _ = (SubscriptionFactory(account_id=AccountFactory(id=f"acc-{n}").id) for n in range(3))
    db.session.commit()
    BillingEventFactory(subscription=first, occurred_at=WHEN)
    db.session.commit()
    assert [marked(f"acc-{n}") for n in range(3)] == [True, False, False]
    db.session.execute(sa.insert(BillingEvent.__table__), [
        {"account_id": sub.account_id, "subscription_id": sub.id, "stripe_event_id": f"evt_{sub.id}_{i}",
         "type": "no_op", "committed_mrr": Decimal(0), "occurred_at": WHEN, "created_at": WHEN}
        for sub in (first, second) for i in range(2)])
    db.session.commit()
    assert [marked(f"acc-{n}") for n in range(3)] == [True, True, False]
    assert unsynced() == ["acc-2"]
    if IS_POSTGRES:  # an account already marked is not written again (its row version is unchanged)
        version = db.session.execute(sa.text("SELECT xmin::text FROM accounts WHERE id = 'acc-0'")).scalar_one()
        BillingEventFactory(subscription=first, occurred_at=WHEN)
        db.session.commit()
        assert db.session.execute(sa.text("SELECT xmin::text FROM accounts WHERE id = 'acc-0'")).scalar_one() == version


@pytest.mark.skipif(IS_POSTGRES, reason="PostgreSQL refuses DELETE and UPDATE of ledger rows (append-only)")
def test_sqlite_keeps_the_mark_exact_when_rows_are_deleted_or_moved(app):
    a, _ = (SubscriptionFactory(account_id=AccountFactory(id=f"acc-{n}").id) for n in "ab")
    row = BillingEventFactory(subscription=a, occurred_at=WHEN)
    db.session.commit()
    db.session.execute(sa.update(BillingEvent).where(BillingEvent.id == row.id).values(account_id="acc-b"))
    db.session.commit()
    assert (marked("acc-a"), marked("acc-b")) == (False, True)
    db.session.execute(sa.delete(BillingEvent))
    db.session.commit()
    assert (marked("acc-a"), marked("acc-b")) == (False, False)


def test_a_deleted_account_is_neither_unsynced_nor_counted_by_a_filter(app):
    SubscriptionFactory(account_id=AccountFactory(id="acc-live").id, cancel_at_period_end=True)
    SubscriptionFactory(account_id=AccountFactory(id="acc-gone", deleted_at=WHEN).id, cancel_at_period_end=True)
    AccountFactory(id="acc-free-gone", deleted_at=WHEN)
    db.session.commit()
    assert unsynced() == ["acc-live"]  # both are paid without ledger rows: only the live one is listed
    for f, ids in [(AccountFilters(statuses=["canceling"]), ["acc-live"]),
                   (AccountFilters(plans=["pro"]), ["acc-live"]),
                   (AccountFilters(statuses=["free"]), []),
                   (AccountFilters(statuses=["canceling", "free"]), ["acc-live"])]:
        page = queries.accounts_page(f)
        assert ([r[0].id for r in page.items], page.total) == (ids, len(ids)), f


@pytest.fixture
def mixed(app):
    """Accounts of every status on two plans, one without a subscription, one deleted."""
    plans = {"canceling": ("pro", {"cancel_at_period_end": True}),
             "downgrading": ("pro", {"scheduled_plan": "basic", "scheduled_price_amount": Decimal("50.00")}),
             "active": ("basic", {"price_amount": Decimal("50.00")}),
             "canceled": ("free", {"price_amount": Decimal(0), "status": "canceled"}),
             "free": ("free", {"price_amount": Decimal(0), "subscribed_since": None})}
    for i, (status, (plan, kw)) in enumerate(plans.items()):
        SubscriptionFactory(account_id=AccountFactory(id=f"acc-{status}", modified_at=datetime(2026, 1, i + 1,
                                                                                                tzinfo=UTC)).id,
                            plan=plan, **kw)
    AccountFactory(id="acc-none", modified_at=datetime(2026, 2, 1, tzinfo=UTC))
    SubscriptionFactory(account_id=AccountFactory(id="acc-deleted", deleted_at=WHEN).id)
    db.session.commit()


@pytest.mark.parametrize("plans,statuses", [
    ([], ["free"]), ([], ["canceled", "free"]), (["free"], []), (["free", "pro"], []), (["free"], ["free"]),
    (["free"], ["canceled"]), (["pro"], ["free"]), (["basic", "free"], ["active", "free"]), (["pro"], []),
    ([], ["canceling", "downgrading", "active", "canceled"]), (["nope"], []),
])
def test_status_and_plan_filters_agree_with_the_status_column(mixed, plans, statuses):
    """Whatever form the filter takes (subscriptions counted alone, NOT EXISTS for the free ones),
    the rows are those whose shown status and plan match, and the count is theirs."""
    every = queries.accounts_page(AccountFilters(page_size=100)).items
    expected = [r[0].id for r in every
                if (not plans or (r[1].plan if r[1] else "free") in plans) and (not statuses or r[2] in statuses)]
    page = queries.accounts_page(AccountFilters(plans=plans, statuses=statuses, page_size=100))
    assert [r[0].id for r in page.items] == expected
    assert page.total == len(expected)
    assert {r[2] for r in page.items} <= set(statuses or STATUSES)


def _migrated(url: str, tmp_path, revision: str) -> None:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "migrations",
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        upgrade(revision=revision)
        db.engine.dispose()


def test_the_migration_marks_the_accounts_that_have_ledger_rows(tmp_path):
    before = ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_revision("0010_list_filters_speed").down_revision
    with scratch_database(tmp_path) as url:
        _migrated(url, tmp_path, before)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for account_id in ("acc-synced", "acc-new"):
                conn.execute(sa.text("INSERT INTO accounts (id, name, created_at, modified_at) "
                                     "VALUES (:id, :id, :at, :at)"), {"id": account_id, "at": WHEN})
            conn.execute(sa.text("INSERT INTO billing_events (account_id, stripe_event_id, type, committed_mrr, "
                                 "occurred_at, created_at) VALUES ('acc-synced', 'evt_1', 'no_op', 0, :at, :at)"),
                         {"at": WHEN})
        _migrated(url, tmp_path, "head")
        with engine.connect() as conn:
            assert dict(conn.execute(sa.text("SELECT id, has_ledger_rows FROM accounts")).all()) == {
                "acc-synced": True, "acc-new": False}
        engine.dispose()
