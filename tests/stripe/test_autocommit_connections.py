"""The webhook's autocommit connections (`extensions.AutocommitConnections`): out of the pool,
reused, replaced when broken or doubtful, left alone after a fork, closed with the engine."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from backoffice import extensions
from backoffice.extensions import AutocommitConnections, autocommit_connections, db
from backoffice.ledger.models import StripeEvent
from backoffice.stripe import views
from tests.conftest import IS_POSTGRES
from tests.stripe import helpers as h

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="the webhook's autocommit INSERT is PostgreSQL's")


@pytest.fixture
def post(client, monkeypatch):
    monkeypatch.setattr(views, "_enqueue_replay", lambda account_id: None)
    count = iter(range(10**6))

    def post_one() -> str:
        event = h.envelope("invoice.paid", h.invoice(f"in_{next(count)}", "cus_ac", "sub_ac", amount_paid=4900,
                                                     total=4900, created=h.ts("2026-01-10")), h.ts("2026-01-10"))
        resp = h.deliver(client, event)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return event["id"]
    return post_one


def _backend_pid(conn) -> int:
    return conn.info.backend_pid


def _stored(event_id: str) -> bool:
    db.session.rollback()
    return db.session.get(StripeEvent, event_id) is not None


def test_one_connection_serves_event_after_event_outside_the_pool(app, post):
    post()
    connections = autocommit_connections(db.engine)
    assert len(connections._idle) == 1
    first = connections._idle[0][0]
    checkouts = []

    def checked_out(*args) -> None:
        checkouts.append(args)

    sa.event.listen(db.engine, "checkout", checked_out)
    try:
        for _ in range(5):
            post()
    finally:
        sa.event.remove(db.engine, "checkout", checked_out)
    assert [c for c, _ in connections._idle] == [first]  # the same one, given back each time
    assert first.autocommit and not first.closed
    assert checkouts == []  # not the pool's: no checkout per event


@pytest.mark.parametrize("noticed", [True, False], ids=["noticed-when-taken", "found-by-the-insert"])
def test_a_terminated_session_is_replaced_and_the_event_stored(app, post, monkeypatch, caplog, noticed):
    post()
    connections = autocommit_connections(db.engine)
    old = connections._idle[0][0]
    with db.engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": _backend_pid(old)})
        admin.commit()
    if not noticed:  # as when the server's goodbye never arrived: the INSERT finds it dead
        monkeypatch.setattr(extensions, "_has_input", lambda conn, error: False)
    event_id = post()
    assert _stored(event_id)
    assert old.closed
    assert [c for c, _ in connections._idle] != [old] and len(connections._idle) == 1
    assert ("connection was lost" in caplog.text) == (not noticed)  # retried only when found by the INSERT


def test_a_connection_idle_too_long_is_replaced_not_used(app, post, monkeypatch):
    post()
    connections = autocommit_connections(db.engine)
    old, since = connections._idle[0]
    connections._idle[0] = (old, since - extensions.PING_AFTER_IDLE_SECONDS - 1)
    post()
    assert old.closed
    assert connections._idle[0][0] is not old


def test_after_a_fork_the_parents_connections_are_left_alone(app, post, monkeypatch):
    post()
    connections = autocommit_connections(db.engine)
    parents = connections._idle[0][0]
    real_pid = os.getpid()
    monkeypatch.setattr(extensions.os, "getpid", lambda: real_pid + 1)  # as a forked child sees it
    event_id = post()
    assert _stored(event_id)
    assert not parents.closed  # not closed: it is the parent's session
    assert connections._idle[0][0] is not parents
    assert any(parents is c for inherited in extensions._INHERITED for c, _ in inherited)
    connections.close_idle()
    monkeypatch.setattr(extensions.os, "getpid", lambda: real_pid)
    with parents.cursor() as cursor:  # the parent's session still answers
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_dispose_closes_the_idle_connections(app, post):
    post()
    idle = [c for c, _ in autocommit_connections(db.engine)._idle]
    db.engine.dispose()
    assert idle and all(c.closed for c in idle)


def test_without_a_pool_size_nothing_is_kept_idle(app):
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    connections = AutocommitConnections(engine)
    with connections.borrow() as conn:
        assert conn.autocommit
    assert conn.closed and connections._idle == []
    engine.dispose()


def test_a_failed_statement_closes_its_connection(app):
    connections = autocommit_connections(db.engine)
    with pytest.raises(db.engine.dialect.loaded_dbapi.Error), connections.borrow() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1/0")
    assert conn.closed and all(c is not conn for c, _ in connections._idle)
