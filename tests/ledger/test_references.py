"""The ledger's and payments' references to accounts and subscriptions are foreign keys PostgreSQL
enforces (migration 0020; SQLite declares them but does not enforce them, see
extensions.sqlite_pragmas): a row naming a missing parent fails and, rolled back, writes nothing; a
parent a ledger row or payment names cannot be deleted or change its id."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger.models import BillingEvent, Subscription
from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="SQLite does not enforce foreign keys")

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


def _insert(model, rows: list[dict]) -> None:
    db.session.execute(sa.insert(model.__table__), rows)  # as the replay writes them


def test_rows_naming_existing_parents_are_written(parents):
    _insert(BillingEvent, [_ledger_row(n, "acc-1" if n % 2 else "acc-2", parents[n % 2 == 0])
                           for n in range(1, 201)] + [_ledger_row(201, "acc-1", None)])
    _insert(PaymentTransaction, [_payment(n, "acc-1", parents[0]) for n in range(1, 51)])
    db.session.commit()
    assert (_count("billing_events"), _count("payment_transactions")) == (201, 50)


@pytest.mark.parametrize(("model", "row"), [
    (BillingEvent, lambda subs: _ledger_row(999, "acc-404", subs[0])),
    (BillingEvent, lambda subs: _ledger_row(999, "acc-1", 987654)),
    (PaymentTransaction, lambda subs: _payment(999, "acc-404", None)),
    (PaymentTransaction, lambda subs: _payment(999, "acc-2", 987654)),
])
def test_one_row_naming_a_missing_parent_fails_and_nothing_is_written(parents, model, row):
    make = _ledger_row if model is BillingEvent else _payment
    with pytest.raises(sa.exc.IntegrityError):
        _insert(model, [make(n, "acc-1", parents[0]) for n in range(1, 100)] + [row(parents)])
        db.session.commit()
    db.session.rollback()
    assert _count(model.__tablename__) == 0


def test_a_payment_moved_to_a_missing_subscription_is_refused(parents):
    _insert(PaymentTransaction, [_payment(1, "acc-1", parents[0])])
    db.session.commit()
    db.session.execute(sa.text("UPDATE payment_transactions SET subscription_id = :s"), {"s": parents[1]})
    db.session.execute(sa.text("UPDATE payment_transactions SET subscription_id = NULL"))
    db.session.commit()
    for sql in ("UPDATE payment_transactions SET subscription_id = 987654",
                "UPDATE payment_transactions SET account_id = 'acc-404'"):
        with pytest.raises(sa.exc.IntegrityError):
            db.session.execute(sa.text(sql))
            db.session.commit()
        db.session.rollback()
    row = db.session.execute(sa.text("SELECT account_id, subscription_id FROM payment_transactions")).one()
    assert tuple(row) == ("acc-1", None)


@pytest.mark.parametrize("sql", [
    "DELETE FROM subscriptions WHERE stripe_subscription_id = 'sub_1'",
    "UPDATE subscriptions SET id = 987654 WHERE stripe_subscription_id = 'sub_1'",
    "DELETE FROM accounts WHERE id = 'acc-3'",
    "UPDATE accounts SET id = 'acc-9' WHERE id = 'acc-3'",
])
@pytest.mark.parametrize("model", [BillingEvent, PaymentTransaction])
def test_a_referenced_parent_cannot_be_deleted_or_renumbered(parents, sql, model):
    """Only the child row names acc-3 and sub_1: without the foreign keys each statement succeeds."""
    make = _ledger_row if model is BillingEvent else _payment
    _insert(model, [make(1, "acc-3", parents[0])])
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text(sql))
        db.session.commit()
    db.session.rollback()
    assert (_count("subscriptions"), _count("accounts")) == (2, 3)


def test_an_unreferenced_parent_may_still_be_deleted(parents):
    _insert(BillingEvent, [_ledger_row(1, "acc-1", parents[0])])
    db.session.commit()
    db.session.execute(sa.text("DELETE FROM subscriptions WHERE id = :s"), {"s": parents[1]})
    db.session.commit()
    assert _count("subscriptions") == 1
