"""Flask extensions, created unbound and initialised in create_app."""
from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import Engine, MetaData, event
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


def sqlite_pragmas(engine: Engine) -> None:
    """A SQLite database file runs in WAL mode: readers (pages, the drain's reads) no longer
    wait for the writer, and a commit is one fsync of the log instead of the rollback journal's
    several — durable as before (synchronous=FULL: an acknowledged webhook survives a power
    loss). Measured with tests/bench/test_intake_bench.py (README). Nothing for PostgreSQL or
    an in-memory database. (Foreign keys stay unenforced on SQLite: with `PRAGMA foreign_keys`
    on, a Celery worker's drain and a rebuild in another process met "database is locked" —
    tests/ledger/test_drain.py — so PostgreSQL is where they are enforced.)"""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        # A writer waits this long for the write lock (a replay batch holds it for its whole
        # transaction, about a second for 5,000 events) before "database is locked".
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()


def sqlite_write_lock() -> None:
    """On SQLite, the current transaction takes the database's write lock now (`BEGIN
    IMMEDIATE`) unless it holds it already: whatever it reads after is what the previous writer
    committed, and no other writer, in any thread or process, starts before it ends. SQLite's
    stand-in for PostgreSQL's advisory locks; nothing on PostgreSQL."""
    if db.session.get_bind().dialect.name != "sqlite":
        return
    connection = db.session.connection()
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
