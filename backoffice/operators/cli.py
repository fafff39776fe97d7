from __future__ import annotations

import click
from flask.cli import with_appcontext

from backoffice.errors import BadRequest
from backoffice.operators import services


@click.group("users", help="Operators: the people who sign into Backoffice.")
def users() -> None:
    pass


@users.command("create")
@click.option("--email", required=True, help="The operator's e-mail (sign-in name).")
@click.option("--password", required=True, help="At least 10 characters.")
@click.option("--admin", is_flag=True, help="Give the admin role (default: viewer).")
@with_appcontext
def create(email: str, password: str, admin: bool) -> None:
    """Create an operator who can sign in at once."""
    try:
        op = services.create_operator(email, password, "admin" if admin else "viewer")
    except BadRequest as e:
        raise click.ClickException(e.message) from None
    click.echo(f"Created {op.role} {op.email}")
