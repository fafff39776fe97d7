"""The `backoffice` command. Flask's CLI (run, shell, routes), Flask-Migrate's `db`, and each
feature's command group."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup
from flask_migrate.cli import db as db_commands

from backoffice import create_app
from backoffice.api.cli import tokens
from backoffice.dbroles import grant_app_role_command
from backoffice.demo.cli import demo
from backoffice.i18n import i18n
from backoffice.invoicing.cli import invoicing
from backoffice.ledger.cli import ledger
from backoffice.operators.cli import operators, users
from backoffice.stripe.cli import COMMANDS as stripe_commands


def _create_app() -> Flask:
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=True)
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
