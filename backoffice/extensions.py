"""Flask extensions, created unbound and initialised in create_app."""
from __future__ import annotations

import select
import time

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
