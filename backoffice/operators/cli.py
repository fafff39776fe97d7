from __future__ import annotations

import click
from flask.cli import with_appcontext

from backoffice.errors import BadRequest
from backoffice.operators import services


@click.group("operators", help="Operators: the people who sign into Backoffice.")
def operators() -> None:
    pass


@operators.command("create")
@click.option("--email", required=True, help="The operator's e-mail (sign-in name).")
@click.option("--password", required=True, help="At least 10 characters.")
@click.option("--admin", is_flag=True, help="Give the admin role (default: viewer).")
@click.option("--kiosk", is_flag=True,
              help="A wall-screen operator: view-only, no sign-out, session of BACKOFFICE_KIOSK_SESSION_DAYS.")
@with_appcontext
def create(email: str, password: str, admin: bool, kiosk: bool) -> None:
    """Create an operator who can sign in at once."""
    if admin and kiosk:
        raise click.ClickException("A kiosk operator is view-only: --admin and --kiosk exclude each other.")
    try:
        op = services.create_operator(email, password, "admin" if admin else "viewer", kiosk=kiosk)
    except BadRequest as e:
        raise click.ClickException(e.message) from None
    click.echo(f"Created {'kiosk' if op.kiosk else op.role} {op.email}")


# `backoffice users ...`: the previous release's name of `operators`, kept for one release (click
# marks it deprecated in --help and warns on use). `users` is the platform's users everywhere else.
users = click.Group("users", commands=operators.commands, deprecated=True,
                    help="The previous name of `operators`; goes in the next release.")
