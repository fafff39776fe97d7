"""The archive and the ledger are append-only in the database itself (PostgreSQL triggers), and no
migration ever drops or truncates them."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.conftest import IS_POSTGRES

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
APPEND_ONLY_TABLES = ("stripe_events", "billing_events", "audit_log")

postgres_only = pytest.mark.skipif(
    not IS_POSTGRES,
    reason="the append-only triggers exist only on PostgreSQL; set TEST_DATABASE_URL to run this",
)


@pytest.fixture
def stored(app):
    when = datetime(2026, 3, 1, tzinfo=UTC)
    db.session.add(Account(id="acc-1", name="Acme"))
    db.session.add(StripeEvent(id="evt_1", type="customer.created", stripe_created_at=when, payload='{"a": 1}',
                               payload_sha256="0" * 64, customer_id="cus_1", account_id="acc-1"))
    db.session.flush()
    db.session.add(BillingEvent(account_id="acc-1", stripe_event_id="evt_1", type="billing_info_added",
                                committed_mrr=Decimal(0), occurred_at=when))
    db.session.commit()


def _run(sql: str) -> None:
    try:
        db.session.execute(sa.text(sql))
        db.session.flush()
    finally:
        db.session.rollback()


@postgres_only
@pytest.mark.parametrize("sql", [
    "UPDATE stripe_events SET payload = '{\"a\": 2}' WHERE id = 'evt_1'",
    "UPDATE stripe_events SET payload_sha256 = 'x' WHERE id = 'evt_1'",
    "UPDATE stripe_events SET type = 'invoice.paid' WHERE id = 'evt_1'",
    "UPDATE stripe_events SET stripe_created_at = now() WHERE id = 'evt_1'",
    # The guard fires for any UPDATE naming an immutable column, also beside processing columns.
    "UPDATE stripe_events SET state = 'processed', api_version = '2020-01-01' WHERE id = 'evt_1'",
    "UPDATE stripe_events SET received_at = now(), processed_at = now() WHERE id = 'evt_1'",
    "UPDATE stripe_events SET recovery_source = 'baseline', recovered_at = now() WHERE id = 'evt_1'",
    "UPDATE stripe_events SET id = 'evt_2' WHERE id = 'evt_1'",
    "UPDATE stripe_events SET customer_id = 'cus_2' WHERE id = 'evt_1'",  # once set, never moved
    "UPDATE stripe_events SET customer_id = NULL WHERE id = 'evt_1'",
    "DELETE FROM stripe_events WHERE id = 'evt_1'",
    "UPDATE billing_events SET committed_mrr = 99 WHERE stripe_event_id = 'evt_1'",
    "UPDATE billing_events SET type = 'no_op' WHERE stripe_event_id = 'evt_1'",
    "DELETE FROM billing_events WHERE stripe_event_id = 'evt_1'",
    "TRUNCATE billing_events",
])
def test_direct_sql_change_of_history_fails(stored, sql):
    with pytest.raises(sa.exc.DBAPIError, match="append-only|immutable"):
        _run(sql)
    assert db.session.execute(sa.text("SELECT payload, customer_id FROM stripe_events WHERE id = 'evt_1'")).one() == (
        '{"a": 1}', "cus_1")
    assert db.session.execute(sa.text("SELECT type, committed_mrr FROM billing_events")).one() == (
        "billing_info_added", Decimal("0.0000"))


@postgres_only
def test_a_customer_less_event_may_learn_its_customer_once(stored):
    db.session.add(StripeEvent(id="evt_2", type="payout.paid", stripe_created_at=datetime(2026, 3, 1, tzinfo=UTC),
                               payload="{}", payload_sha256="0" * 64))
    db.session.commit()
    db.session.execute(sa.text("UPDATE stripe_events SET customer_id = 'cus_9' WHERE id = 'evt_2'"))
    db.session.commit()
    assert db.session.get(StripeEvent, "evt_2").customer_id == "cus_9"


@postgres_only
def test_processing_columns_of_the_archive_may_change(stored):
    db.session.execute(sa.text(
        "UPDATE stripe_events SET state = 'processed', processed_at = now(), error = NULL WHERE id = 'evt_1'"))
    db.session.commit()
    assert db.session.get(StripeEvent, "evt_1").state == "processed"


_DESTRUCTIVE = re.compile(
    r"\b(drop_table|DROP\s+TABLE|TRUNCATE|drop_column|rename_table|DELETE\s+FROM)\b[^\n]*?"
    r"\b(" + "|".join(APPEND_ONLY_TABLES) + r")\b",
    re.IGNORECASE,
)


def test_no_migration_drops_or_truncates_history():
    files = sorted(MIGRATIONS.glob("*.py"))
    assert files, "no migrations found"
    offenders = []
    for path in files:
        text = path.read_text()
        # Trigger definitions mention TRUNCATE to forbid it: look at statements, not the guard.
        text = re.sub(r"BEFORE\s+(UPDATE\s+OR\s+)?(DELETE|TRUNCATE)\s+ON", "", text, flags=re.IGNORECASE)
        for match in _DESTRUCTIVE.finditer(text):
            offenders.append(f"{path.name}: {match.group(0).strip()}")
    assert offenders == []


def test_the_scan_would_catch_a_drop():
    assert _DESTRUCTIVE.search("op.drop_table('billing_events')")
    assert _DESTRUCTIVE.search('op.execute("TRUNCATE stripe_events")')
    assert _DESTRUCTIVE.search("DELETE FROM audit_log WHERE id = 1")
    assert not _DESTRUCTIVE.search("op.drop_table('job_runs')")
