"""Configuration from the environment, with defaults that make a one-machine start work."""
from __future__ import annotations

import os
import re
import stat
import sys
from datetime import timedelta

import pytest

from backoffice import create_app
from backoffice.config import PROJECT_ROOT, engine_options, load_config
from backoffice.extensions import db

VARIABLES = (
    "DATABASE_URL", "SECRET_KEY", "BACKOFFICE_ENV", "BACKOFFICE_INSTANCE_PATH", "SESSION_COOKIE_SECURE",
    "BACKOFFICE_SESSION_MINUTES", "BACKOFFICE_SIGN_IN_RATE_LIMIT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_use_sqlite_under_instance(tmp_path):
    instance = tmp_path / "instance"
    config = load_config(instance)
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'backoffice.db'}"
    assert config["BACKOFFICE_ENV"] == "development"
    assert config["SESSION_COOKIE_SECURE"] is False
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=8)
    assert config["RATELIMIT_SIGN_IN"] == "10 per minute"
    assert instance.is_dir()


def test_the_app_puts_its_sqlite_file_in_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_INSTANCE_PATH", str(tmp_path / "inst"))
    app = create_app()
    assert app.instance_path == str((tmp_path / "inst").resolve())
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{(tmp_path / 'inst').resolve() / 'backoffice.db'}"
    assert (tmp_path / "inst" / "secret_key").exists()


def test_default_instance_folder_is_beside_the_package(monkeypatch):
    """Without BACKOFFICE_INSTANCE_PATH, instance/ in the checkout (git-ignored)."""
    monkeypatch.setenv("SECRET_KEY", "x" * 48)  # nothing written into the checkout's instance/
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    assert create_app().instance_path == str((PROJECT_ROOT / "instance").resolve())
    assert "instance/" in (PROJECT_ROOT / ".gitignore").read_text().split()


def test_secret_key_is_generated_once_and_kept(tmp_path):
    instance = tmp_path / "instance"
    first = load_config(instance)["SECRET_KEY"]
    path = instance / "secret_key"
    assert path.read_text().strip() == first
    assert len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(instance)["SECRET_KEY"] == first  # kept across restarts
    assert load_config(tmp_path / "other")["SECRET_KEY"] != first  # one per instance


def test_secret_key_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert load_config(tmp_path)["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def test_production_requires_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set when BACKOFFICE_ENV=production"):
        load_config(tmp_path)
    assert not (tmp_path / "secret_key").exists()
    (tmp_path / "secret_key").write_text("a key left over from local use")
    with pytest.raises(RuntimeError):
        load_config(tmp_path)  # a generated file is not good enough in production
    monkeypatch.setenv("SECRET_KEY", "real-secret")
    config = load_config(tmp_path)
    assert config["SECRET_KEY"] == "real-secret"
    assert config["BACKOFFICE_ENV"] == "production"
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True


def test_create_app_refuses_production_without_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_ENV", "PRODUCTION")
    with pytest.raises(RuntimeError):
        create_app({"INSTANCE_PATH": str(tmp_path)})


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("yes", True), ("0", False),
                                                 ("false", False), ("", False)])
def test_session_cookie_secure_can_be_set(tmp_path, monkeypatch, value, expected):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", value)
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is expected


def test_session_cookie_secure_can_be_turned_off_in_production(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "false")  # e.g. TLS ends at a proxy on the same host
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(("url", "expected"), [
    ("postgres://u:p@db.example.com:5432/bo", "postgresql+psycopg://u:p@db.example.com:5432/bo"),
    ("postgresql://u@localhost/bo", "postgresql+psycopg://u@localhost/bo"),
    ("postgresql+psycopg://u@localhost/bo", "postgresql+psycopg://u@localhost/bo"),
    ("sqlite:////var/lib/backoffice/bo.db", "sqlite:////var/lib/backoffice/bo.db"),
])
def test_database_url_is_normalised(tmp_path, monkeypatch, url, expected):
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_config(tmp_path)["SQLALCHEMY_DATABASE_URI"] == expected


def test_session_minutes_and_rate_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_SESSION_MINUTES", "30")
    monkeypatch.setenv("BACKOFFICE_SIGN_IN_RATE_LIMIT", "3 per minute")
    config = load_config(tmp_path)
    assert config["PERMANENT_SESSION_LIFETIME"] == timedelta(minutes=30)
    assert config["RATELIMIT_SIGN_IN"] == "3 per minute"


class _RecordingEnviron(dict):
    """os.environ that notes each name Backoffice's own code asks it for."""

    def __init__(self, base):
        super().__init__(base)
        self.read: set[str] = set()

    def _note(self, name):
        if sys._getframe(2).f_globals.get("__name__", "").startswith("backoffice"):
            self.read.add(name)

    def get(self, name, default=None):
        self._note(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self._note(name)
        return super().__getitem__(name)


def test_every_environment_variable_is_documented_in_the_readme(monkeypatch, tmp_path):
    """The variables the app reads while it starts are the README's table, no more,
    no fewer."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", readme, re.MULTILINE))
    environ = _RecordingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", environ)
    environ["BACKOFFICE_INSTANCE_PATH"] = str(tmp_path)
    create_app()
    assert environ.read, "create_app read no environment variable: the recording is out of date"
    assert environ.read - documented == set(), "document these in the README's configuration table"
    assert documented - environ.read == set(), "the README documents variables nothing reads"

@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///instance/demo.db", "sqlite:///{cwd}/instance/demo.db"),
    ("sqlite:///demo.db?timeout=5", "sqlite:///{cwd}/demo.db?timeout=5"),
    ("sqlite:////abs/demo.db", "sqlite:////abs/demo.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql+psycopg://app@db/backoffice", "postgresql+psycopg://app@db/backoffice"),
])
def test_a_relative_sqlite_path_is_read_from_the_current_directory(tmp_path, monkeypatch, url, expected):
    """As every other tool reads it (Flask-SQLAlchemy would put it under the instance folder)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_config(tmp_path / "instance")["SQLALCHEMY_DATABASE_URI"] == expected.format(cwd=tmp_path)


def test_a_command_on_a_database_never_migrated_says_what_to_run(tmp_path, monkeypatch):
    """Not a traceback, and no empty SQLite file left behind by the try (issue 22 part 8)."""
    from click.testing import CliRunner

    from backoffice.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BACKOFFICE_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("DATABASE_URL", "sqlite:///fresh.db")
    result = CliRunner().invoke(main, ["tokens", "create", "--name", "x", "--scope", "read"])
    assert result.exit_code == 1
    assert result.output == (f"Error: The database sqlite:///{tmp_path}/fresh.db has no Backoffice tables: run "
                             "`backoffice db upgrade` first (with the same DATABASE_URL). The demo's database is "
                             "the one `backoffice demo` prints.\n")
    assert not (tmp_path / "fresh.db").exists()
    monkeypatch.setenv("DATABASE_URL", "sqlite:///no/such/folder/x.db")
    result = CliRunner().invoke(main, ["tokens", "list"])
    assert result.output == f"Error: Cannot open the SQLite file {tmp_path}/no/such/folder/x.db: does its folder exist?\n"


@pytest.mark.parametrize(("url", "env", "size"), [
    ("postgresql+psycopg://u@h/db", {}, 10),
    ("sqlite:////tmp/x.db", {}, 10),
    ("postgresql+psycopg://u@h/db", {"BACKOFFICE_DB_POOL_SIZE": "24"}, 24),
    ("sqlite://", {}, None),  # in memory: one connection (StaticPool), no size
    ("sqlite:///:memory:", {}, None),
])
def test_the_pool_keeps_a_connection_for_each_thread(url, env, size):
    """With SQLAlchemy's default of 5, a gthread worker's threads beyond five opened a connection
    per webhook and closed it again."""
    assert engine_options(url, env).get("pool_size") == size


def test_the_app_engine_has_the_pool_size(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKOFFICE_DB_POOL_SIZE", "12")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'pool.db'}")
    monkeypatch.setenv("BACKOFFICE_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app()
    with app.app_context():
        assert db.engine.pool.size() == 12
        db.engine.dispose()
