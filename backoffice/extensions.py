"""Flask extensions, created unbound and initialised in create_app."""
from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import weakref

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import Engine, MetaData, event, exc
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
htmx = Htmx()


# A pooled connection is pinged on checkout only when it may have died: when it sat idle long
# enough for a firewall or an idle timeout to drop it silently, or when the server spoke on it
# while it was idle (a restart or pg_terminate_backend sends a FATAL error, then closes it).
# pool_pre_ping would cost a round trip on every checkout, on the webhook's hot path too.
PING_AFTER_IDLE_SECONDS = 10.0


def sqlite_write_ahead_log(engine: Engine) -> None:
    """A SQLite database file runs in WAL mode: readers (pages, the drain's reads) no longer
    wait for the writer, and a commit is one fsync of the log instead of the rollback journal's
    several — durable as before (synchronous=FULL: an acknowledged webhook survives a power
    loss). Measured with tests/bench/test_intake_bench.py (README). Nothing for PostgreSQL or
    an in-memory database."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return

    @event.listens_for(engine, "connect")
    def _wal(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()


def ping_doubtful_connections(engine: Engine) -> None:
    """Checkout and checkin listeners on `engine`'s pool. A failed ping invalidates the pool's
    connections and checks out a fresh one, as pool_pre_ping does."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None:  # a new connection
            return
        idle = time.monotonic() - checked_in_at
        if idle < PING_AFTER_IDLE_SECONDS and not _has_input(dbapi_connection, dialect.loaded_dbapi.Error):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                raise exc.InvalidatePoolError() from err
            raise


def _has_input(dbapi_connection, driver_error: type[Exception]) -> bool:
    """Whether the server sent something on an idle connection (or closed it): one poll(2)."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:  # SQLite: no server
        return False
    try:
        fd = fileno()
    except (driver_error, OSError, ValueError):  # the driver knows the connection is gone
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


class AutocommitConnections:
    """A few idle DBAPI connections of an engine in autocommit, taken out of its pool for good,
    for statements that are a transaction of their own on a hot path (the webhook's INSERT).
    Borrowing one is a list pop; a pooled connection costs a checkout, an autocommit toggle each
    way and a checkin with its reset: the webhook's `archive_event` took 200 µs of CPU per event
    on a pooled connection, 133 µs on these (medians of 6 alternating rounds of 1,000 events).

    The pool's care, kept: a connection idle for PING_AFTER_IDLE_SECONDS, or on which the server
    spoke while it was idle, is closed and replaced rather than pinged; one whose statement
    failed is closed (`borrow` hands the error on: the caller may retry on a fresh one). After a
    fork, the parent's connections are left to the parent: kept referenced, never closed here,
    since closing would end its sessions. At most as many are kept idle as the pool's size
    (none with a pool that has no size, such as NullPool); `engine.dispose()` closes them, and
    so does the engine's garbage collection or the interpreter's exit."""

    def __init__(self, engine: Engine):
        size = getattr(engine.pool, "size", None)
        self._limit = size() if callable(size) else 0
        self._engine = weakref.ref(engine)  # the engine may be collected: it holds this, not back
        self._error = engine.dialect.loaded_dbapi.Error
        self._pid = os.getpid()
        self._idle: list[tuple[object, float]] = []

    @contextlib.contextmanager
    def borrow(self):
        """An autocommit DBAPI connection, given back afterwards; closed if the block raised
        (its state is unknown: a broken connection, a statement that failed)."""
        conn = self._take()
        try:
            yield conn
        except BaseException:
            self._close(conn)
            raise
        self._give_back(conn)

    def _take(self):
        if self._pid != os.getpid():
            _INHERITED.append(self._idle)  # the parent's: never closed (nor collected) here
            self._idle, self._pid = [], os.getpid()
        while True:
            try:
                conn, since = self._idle.pop()
            except IndexError:
                break
            if (time.monotonic() - since < PING_AFTER_IDLE_SECONDS and not conn.closed
                    and not _has_input(conn, self._error)):
                return conn
            self._close(conn)
        proxied = self._engine().raw_connection()  # the pool's connect and checkout listeners run
        conn = proxied.driver_connection
        proxied.detach()  # the pool forgets it: from now on it is ours to close
        conn.autocommit = True
        return conn

    def _give_back(self, conn) -> None:
        if self._pid == os.getpid() and len(self._idle) < self._limit and not conn.closed:
            self._idle.append((conn, time.monotonic()))
        else:
            self._close(conn)

    def _close(self, conn) -> None:
        try:
            conn.close()
        except self._error:
            pass

    def close_idle(self, *_args) -> None:
        """Closes the idle connections (in the process that opened them)."""
        if self._pid != os.getpid():
            return
        while self._idle:
            try:
                conn, _since = self._idle.pop()
            except IndexError:
                break
            self._close(conn)


_INHERITED: list = []
_AUTOCOMMIT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_AUTOCOMMIT_LOCK = threading.Lock()


def autocommit_connections(engine: Engine) -> AutocommitConnections:
    """The engine's AutocommitConnections, made on first use."""
    found = _AUTOCOMMIT.get(engine)
    if found is None:
        with _AUTOCOMMIT_LOCK:
            found = _AUTOCOMMIT.get(engine)
            if found is None:
                found = _AUTOCOMMIT[engine] = AutocommitConnections(engine)
                event.listen(engine, "engine_disposed", found.close_idle)
                weakref.finalize(engine, found.close_idle)  # collected, or the interpreter exits
    return found
