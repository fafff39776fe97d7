"""Flaskr-style fixtures. The suite runs on SQLite by default and on PostgreSQL when
TEST_DATABASE_URL is set; each test gets an empty, migrated database of its own."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import g, has_app_context
from flask.testing import FlaskClient
from hypothesis import settings
from jinja2 import StrictUndefined

from backoffice import create_app
from backoffice.extensions import db

# Property tests draw the same examples on every run (CI must not pass or fail by chance);
# HYPOTHESIS_EXPLORE=1 draws new ones, to look for cases nobody thought of.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_EXPLORE") == "1" else "repeatable")

# The servers the tests start (live servers, gunicorn, workers) run no schedule of their own
# unless a test asks (tests/test_schedule.py): a drift pass at the top of the hour must not land
# in the middle of another test.
os.environ.setdefault("BACKOFFICE_SCHEDULER", "off")

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
IS_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
PASSWORD = "correct-horse-battery"


def _pg_url() -> str:
    url = TEST_DATABASE_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _upgrade(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "INSTANCE_PATH": str(instance),
                      "SECRET_KEY": "test"})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    """Migrate once per run: a SQLite file to copy per test, or the PostgreSQL database itself."""
    base = tmp_path_factory.mktemp("db")
    if IS_POSTGRES:
        _upgrade(_pg_url(), base)
        return _pg_url()
    path = base / "template.db"
    _upgrade(f"sqlite:///{path}", base)
    return path


@contextlib.contextmanager
def scratch_database(tmp_path: Path, postgres: bool = IS_POSTGRES):
    """An empty database of its own: a new SQLite file, or a new PostgreSQL database on the
    TEST_DATABASE_URL server (dropped afterwards). For tests that migrate from nothing or serve
    a live app."""
    if not postgres:
        yield f"sqlite:///{tmp_path / f'scratch-{uuid.uuid4().hex[:8]}.db'}"
        return
    url = sa.engine.make_url(_pg_url())
    name = f"{url.database}_{uuid.uuid4().hex[:8]}"
    # A fresh connection for each statement: the DROP must not depend on a pooled connection
    # staying alive for the whole test (or session).
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _pg_truncate_all(url: str) -> None:
    """Empties every table between tests. The append-only triggers are bypassed with
    session_replication_role, which only a superuser (the test database owner) may set."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        if tables:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def db_url(migrated_template, tmp_path):
    if IS_POSTGRES:
        _pg_truncate_all(migrated_template)
        return migrated_template
    path = tmp_path / "test.db"
    shutil.copyfile(migrated_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(db_url, tmp_path):
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "STRIPE_WEBHOOK_SECRET": "whsec_test",
        "SERVER_NAME": "backoffice.test",
        "PLATFORM_CURRENCY": "EUR",
        # A cheap hash keeps sign-in fast in tests; production uses scrypt.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }


@pytest.fixture
def make_app():
    """`make_app(config)`: an app a test builds beside the `app` fixture's (another configuration, a
    second worker process's). Its database connections are closed when the test ends, not left to
    the garbage collector."""
    made = []

    def make(config: dict):
        made.append(create_app(config))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


class Client(FlaskClient):
    """Each request starts with an empty `g`, as in production. The `app` fixture keeps one app
    context open for the whole test, which Flask reuses for every request: without this,
    Flask-Login's cached user and Flask-WTF's cached CSRF token would leak between requests."""

    def open(self, *args, **kwargs):
        if has_app_context():
            vars(g._get_current_object()).clear()
        return super().open(*args, **kwargs)


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    app.jinja_env.undefined = StrictUndefined
    app.test_client_class = Client
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def make_operator(email: str, role: str = "admin"):
    from backoffice.operators import services

    return services.create_operator(email, PASSWORD, role)


@pytest.fixture
def admin(app):
    return make_operator("admin@example.com", "admin")


@pytest.fixture
def viewer(app):
    return make_operator("viewer@example.com", "viewer")


# A form's hidden field, else the header every htmx request sends (a kiosk's page has no form).
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_from(client, path: str = "/sign-in") -> str:
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def sign_in(client, email: str, password: str = PASSWORD) -> str:
    """Signs in through the real form; returns a CSRF token valid for the session."""
    token = csrf_from(client)
    resp = client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return csrf_from(client, "/")


@pytest.fixture
def admin_client(client, admin):
    client.csrf = sign_in(client, admin.email)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.csrf = sign_in(client, viewer.email)
    return client
