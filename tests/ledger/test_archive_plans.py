"""The webhook's INSERT does not read the archive's unmapped events: it releases one customer's
through `ix_stripe_events_unmapped` (migration 0015). Before that index, PostgreSQL's plan
ANDed the customer's index with every event without an account (a bitmap of all of them, on
every webhook): one gunicorn worker fell from 1,069-1,203 to 389-465 events/s with 36,100
such events archived."""
from __future__ import annotations

from datetime import UTC, datetime

from backoffice.extensions import db
from backoffice.ledger import archive
from backoffice.ledger.models import StripeEvent
from tests.conftest import IS_POSTGRES


def _archive_unmapped(count: int) -> None:
    """`count` events without an account: half of customers not known yet, half without any
    customer (archived and ignored, as Stripe's price, product and payout events are)."""
    now = datetime(2026, 1, 10, 8, tzinfo=UTC)
    db.session.execute(StripeEvent.__table__.insert(), [
        {"id": f"evt_unmapped_{i}", "type": "invoice.paid" if i % 2 else "payout.paid", "api_version": "x",
         "stripe_created_at": now, "received_at": now, "payload": "{}", "payload_sha256": "0" * 64,
         "customer_id": f"cus_unknown_{i % 500}" if i % 2 else None,
         "state": "pending" if i % 2 else "ignored"} for i in range(count)])
    db.session.commit()


def _plan(sql: str, parameters: int) -> str:
    """The plan PostgreSQL keeps for a prepared statement (the generic plan the webhook's
    driver uses once it has prepared the INSERT), not executed."""
    conn = db.session.connection().connection.driver_connection
    with conn.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE unmapped_plan AS {sql}")
        try:
            placeholders = ", ".join(["NULL"] * parameters)
            cursor.execute(f"EXPLAIN EXECUTE unmapped_plan({placeholders})")
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE unmapped_plan")


def test_the_webhook_insert_releases_through_the_unmapped_index(app):
    _archive_unmapped(4000)
    if IS_POSTGRES:
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.psycopg.dialect(paramstyle="numeric_dollar")
        compiled = archive._insert_statement("postgresql").compile(dialect=dialect)
        plan = _plan(str(compiled), len(compiled.positiontup))
        assert "ix_stripe_events_unmapped" in plan, plan
        assert "ix_stripe_events_account_created" not in plan, plan  # no scan of every unmapped event
    else:
        # The release after SQLite's INSERT, and the customer path's, is this UPDATE.
        compiled = archive._release_statement().compile(dialect=db.engine.dialect)
        values = {"p_customer_id": "cus_unknown_1", "p_account_id": "acc-x"}
        plan = db.session.connection().exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", tuple(values[name] for name in compiled.positiontup)).all()
        text = " ".join(str(row[-1]) for row in plan)
        assert "ix_stripe_events_unmapped" in text, text


def test_customers_waiting_for_their_account_are_still_found(app):
    _archive_unmapped(40)
    assert archive.waiting_customer_ids() == sorted({f"cus_unknown_{i % 500}" for i in range(40) if i % 2})
