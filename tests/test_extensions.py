"""The database pool: a pooled connection is pinged only when it may have died, and a request
after the server dropped its connections still succeeds."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from backoffice import extensions
from backoffice.extensions import db
from backoffice.ledger.models import StripeEvent
from tests.conftest import IS_POSTGRES
from tests.stripe import helpers as h


def _invoice_paid(n: int) -> dict:
    invoice = h.invoice(f"in_{n}", "cus_P", None, amount_paid=4900, total=4900, created=h.ts("2026-01-06"))
    return h.envelope("invoice.paid", invoice, h.ts("2026-01-06") + n)


def _use_a_connection() -> None:
    with db.engine.connect() as conn:
        conn.execute(sa.select(1))


def _pooled_backend_pids() -> list[int]:
    """The server processes of every idle connection in the app's pool (all checked out at once,
    so each is seen once)."""
    db.session.remove()
    connections = [db.engine.connect() for _ in range(max(db.engine.pool.checkedin(), 1))]
    try:
        return [c.execute(sa.select(sa.func.pg_backend_pid())).scalar_one() for c in connections]
    finally:
        for c in connections:
            c.close()


def test_a_connection_is_pinged_only_after_sitting_idle(app, monkeypatch):
    pings = []
    ping = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda conn: pings.append(conn) or ping(conn))
    db.session.remove()
    db.engine.dispose()
    _use_a_connection()  # a new connection
    _use_a_connection()  # checked in a moment ago
    assert pings == []
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0.0)
    _use_a_connection()
    assert len(pings) == 1


@pytest.mark.skipif(not IS_POSTGRES, reason="PostgreSQL: a server that drops connections")
def test_a_request_after_the_server_dropped_its_connections_succeeds(app, client):
    assert h.deliver(client, _invoice_paid(1)).status_code == 200  # leaves a pooled connection
    pids = _pooled_backend_pids()
    # Only the app's own connections are killed: other fixtures of the run keep theirs.
    killer = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE pid = ANY(:pids)"), {"pids": pids}).scalar_one()
    killer.dispose()
    assert killed == len(pids) >= 1
    assert h.deliver(client, _invoice_paid(2)).status_code == 200
    assert db.session.execute(sa.select(sa.func.count()).select_from(StripeEvent)).scalar_one() == 2
