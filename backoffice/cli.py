"""The `backoffice` command. Flask's CLI (run, shell, routes), Flask-Migrate's `db`, and each
feature's command group."""
from __future__ import annotations

import contextlib
import os
import sqlite3

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import FlaskGroup
from flask_migrate.cli import db as db_commands

from backoffice import create_app
from backoffice.api.cli import tokens
from backoffice.config import sqlite_path_from_cwd
from backoffice.dbroles import grant_app_role_command
from backoffice.demo.cli import demo
from backoffice.i18n import i18n
from backoffice.invoicing.cli import invoicing
from backoffice.ledger.cli import ledger
from backoffice.operators.cli import operators, users
from backoffice.stripe.cli import COMMANDS as stripe_commands


def _create_app() -> Flask:
    return create_app()


def _missing_schema(e: sa.exc.DBAPIError) -> bool:
    """The database has no Backoffice tables: SQLite's "no such table", PostgreSQL's undefined table."""
    return "no such table" in str(e.orig) or getattr(e.orig, "sqlstate", None) == "42P01"


class BackofficeGroup(FlaskGroup):
    """Flask's group, with one answer for a command run against a database that was never
    migrated: what to run, not a traceback (and no empty SQLite file left behind by the try)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as e:
            if "unable to open database file" in str(e.orig):
                url = sa.engine.make_url(_database_url())
                raise click.ClickException(
                    f"Cannot open the SQLite file {url.database}: does its folder exist?") from None
            if not _missing_schema(e) or ctx.invoked_subcommand == "db":
                raise  # a migration's own error is its own, never "run db upgrade"
            url = sa.engine.make_url(_database_url())
            if url.get_backend_name() == "sqlite" and url.database:
                _remove_if_empty(url.database)
            raise click.ClickException(
                f"The database {url.render_as_string(hide_password=True)} has no Backoffice tables: run "
                "`backoffice db upgrade` first (with the same DATABASE_URL). The demo's database is the one "
                "`backoffice demo` prints.") from None


def _remove_if_empty(path: str) -> None:
    """A SQLite file with no table at all was created by the failed try: removed, with its WAL."""
    if not os.path.exists(path):
        return
    with contextlib.closing(sqlite3.connect(path)) as conn:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def _database_url() -> str:
    """The URL the command used (DATABASE_URL as the app reads it, else the app's default)."""
    if os.environ.get("DATABASE_URL"):
        return sqlite_path_from_cwd(os.environ["DATABASE_URL"])
    return create_app().config["SQLALCHEMY_DATABASE_URI"]


@click.group(cls=BackofficeGroup, create_app=_create_app, add_version_option=True)
def main() -> None:
    """Backoffice: the back office of a subscription SaaS platform.

    Configuration comes from environment variables (see the README); without DATABASE_URL a
    SQLite file under instance/ is used.
    """


def register_app_commands(app: Flask) -> None:
    """Feature command groups, attached to every app so `flask --app backoffice` sees them too."""
    for command in (operators, users, tokens, i18n, ledger, invoicing):
        app.cli.add_command(command)
    for command in stripe_commands:
        app.cli.add_command(command)


def _register_standalone() -> None:
    """Commands that build their own app (the demo uses its own database), and ours in
    Flask-Migrate's `db` group (`db grant-app-role` beside `db upgrade`)."""
    main.add_command(demo)
    db_commands.add_command(grant_app_role_command)


_register_standalone()
