"""The ledger's and payments' references to accounts and subscriptions on PostgreSQL (migration
0014): checked once per statement by triggers instead of a foreign-key query per row, with the
same outcome — a missing parent fails the whole statement (SQLSTATE 23503) and writes nothing,
a parent named by a ledger row or payment cannot be deleted or change its id, and a parent being
referenced by an open transaction is locked until it ends."""
from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.bulk import insert_rows
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Subscription
from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.skipif(
    not IS_POSTGRES, reason="the reference triggers exist only on PostgreSQL (SQLite keeps declarative foreign keys)")

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def parents(app):
    db.session.add_all([Account(id="acc-1", name="Acme"), Account(id="acc-2", name="Beta"),
                        Account(id="acc-3", name="Gamma")])  # acc-3: no subscription names it
    db.session.flush()
    subs = [Subscription(account_id="acc-1", stripe_subscription_id="sub_1"),
            Subscription(account_id="acc-2", stripe_subscription_id="sub_2")]
    db.session.add_all(subs)
    db.session.commit()
    return [s.id for s in subs]


def _ledger_row(n: int, account_id: str, subscription_id: int | None) -> dict:
    return {"account_id": account_id, "subscription_id": subscription_id, "stripe_event_id": f"evt_{n}",
            "type": "subscription_renewed", "committed_mrr": Decimal(49), "currency": "EUR", "occurred_at": WHEN}


def _payment(n: int, account_id: str, subscription_id: int | None) -> dict:
    return {"account_id": account_id, "subscription_id": subscription_id, "stripe_invoice_id": f"in_{n}",
            "status": "succeeded", "currency": "EUR", "amount": Decimal(49), "invoice_total": Decimal(49),
            "tax_amount": Decimal(0), "amount_excluding_tax": Decimal(49), "amount_from_credit": Decimal(0),
            "date": WHEN}


def _count(table: str) -> int:
    return db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


FAILED = (sa.exc.DBAPIError, psycopg.Error)  # bulk COPY raises the driver's error itself


def _violation(excinfo) -> psycopg.errors.ForeignKeyViolation:
    error = getattr(excinfo.value, "orig", excinfo.value)
    assert isinstance(error, psycopg.errors.ForeignKeyViolation), excinfo.value
    return error


def test_a_bulk_insert_naming_existing_parents_is_written(parents):
    insert_rows(BillingEvent.__table__, [_ledger_row(n, "acc-1" if n % 2 else "acc-2", parents[n % 2 == 0])
                                         for n in range(1, 201)] + [_ledger_row(201, "acc-1", None)])
    insert_rows(PaymentTransaction.__table__, [_payment(n, "acc-1", parents[0]) for n in range(1, 51)])
    db.session.commit()
    assert (_count("billing_events"), _count("payment_transactions")) == (201, 50)


@pytest.mark.parametrize(("table", "row", "detail"), [
    ("billing_events", lambda subs: _ledger_row(999, "acc-404", subs[0]), "Key (account_id)=(acc-404)"),
    ("billing_events", lambda subs: _ledger_row(999, "acc-1", 987654), "Key (subscription_id)=(987654)"),
    ("payment_transactions", lambda subs: _payment(999, "acc-404", None), "Key (account_id)=(acc-404)"),
    ("payment_transactions", lambda subs: _payment(999, "acc-2", 987654), "Key (subscription_id)=(987654)"),
])
def test_one_row_naming_a_missing_parent_fails_the_whole_statement(parents, table, row, detail):
    model = BillingEvent if table == "billing_events" else PaymentTransaction
    make = _ledger_row if table == "billing_events" else _payment
    rows = [make(n, "acc-1", parents[0]) for n in range(1, 100)] + [row(parents)]
    with pytest.raises(FAILED) as excinfo:
        insert_rows(model.__table__, rows)
    db.session.rollback()
    error = _violation(excinfo)
    assert detail in error.diag.message_detail
    assert _count(table) == 0


def test_a_single_orm_insert_is_checked_too(parents):
    db.session.add(BillingEvent(**_ledger_row(1, "acc-1", parents[0] + parents[1])))
    with pytest.raises(FAILED) as excinfo:
        db.session.commit()
    db.session.rollback()
    _violation(excinfo)
    assert _count("billing_events") == 0


def test_a_payment_moved_to_a_missing_subscription_is_refused(parents):
    insert_rows(PaymentTransaction.__table__, [_payment(1, "acc-1", parents[0])])
    db.session.commit()
    db.session.execute(sa.text("UPDATE payment_transactions SET subscription_id = :s"), {"s": parents[1]})
    db.session.execute(sa.text("UPDATE payment_transactions SET subscription_id = NULL"))
    db.session.execute(sa.text("UPDATE payment_transactions SET status = 'void'"))  # references unchanged
    db.session.commit()
    for sql in ("UPDATE payment_transactions SET subscription_id = 987654",
                "UPDATE payment_transactions SET account_id = 'acc-404'"):
        with pytest.raises(FAILED) as excinfo:
            db.session.execute(sa.text(sql))
        db.session.rollback()
        _violation(excinfo)
    row = db.session.execute(sa.text("SELECT account_id, subscription_id, status FROM payment_transactions")).one()
    assert tuple(row) == ("acc-1", None, "void")


@pytest.mark.parametrize("sql", [
    "DELETE FROM subscriptions WHERE stripe_subscription_id = 'sub_1'",
    "UPDATE subscriptions SET id = 987654 WHERE stripe_subscription_id = 'sub_1'",
    "DELETE FROM accounts WHERE id = 'acc-3'",
    "UPDATE accounts SET id = 'acc-9' WHERE id = 'acc-3'",
])
@pytest.mark.parametrize("child", ["billing_events", "payment_transactions"])
def test_a_referenced_parent_cannot_be_deleted_or_renumbered(parents, sql, child):
    """Only the child row names acc-3 and sub_1: without the triggers each statement succeeds."""
    if child == "billing_events":
        insert_rows(BillingEvent.__table__, [_ledger_row(1, "acc-3", parents[0])])
    else:
        insert_rows(PaymentTransaction.__table__, [_payment(1, "acc-3", parents[0])])
    db.session.commit()
    with pytest.raises(FAILED) as excinfo:
        db.session.execute(sa.text(sql))
    db.session.rollback()
    _violation(excinfo)
    assert (_count("subscriptions"), _count("accounts")) == (2, 3)
    assert db.session.execute(sa.text("SELECT count(*) FROM accounts WHERE id = 'acc-3'")).scalar_one() == 1


def test_an_unreferenced_parent_may_still_be_deleted(parents):
    insert_rows(BillingEvent.__table__, [_ledger_row(1, "acc-1", parents[0])])
    db.session.commit()
    db.session.execute(sa.text("DELETE FROM subscriptions WHERE id = :s"), {"s": parents[1]})
    db.session.execute(sa.text("UPDATE subscriptions SET status = 'active' WHERE id = :s"), {"s": parents[0]})
    db.session.commit()
    assert _count("subscriptions") == 1


def test_a_parent_named_by_an_open_transaction_stays_until_it_ends(app, parents):
    """The writer's statement locks the subscription it names (FOR KEY SHARE, as a foreign key
    does): a DELETE of it waits for the writer, and once the writer commits it is refused."""
    insert_rows(BillingEvent.__table__, [_ledger_row(1, "acc-2", parents[1])])  # open, not committed
    outcome: dict[str, object] = {}

    def delete_meanwhile() -> None:
        with app.app_context(), db.engine.connect() as conn:
            conn.execute(sa.text("SET lock_timeout = '300ms'"))
            try:
                conn.execute(sa.text("DELETE FROM subscriptions WHERE id = :s"), {"s": parents[1]})
            except sa.exc.DBAPIError as e:
                outcome["while_open"] = type(e.orig)
            conn.rollback()

    thread = threading.Thread(target=delete_meanwhile)
    thread.start()
    thread.join()
    assert outcome["while_open"] is psycopg.errors.LockNotAvailable
    db.session.commit()
    with pytest.raises(FAILED) as excinfo:
        db.session.execute(sa.text("DELETE FROM subscriptions WHERE id = :s"), {"s": parents[1]})
    db.session.rollback()
    _violation(excinfo)
