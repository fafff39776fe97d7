from __future__ import annotations

import click
from flask.cli import with_appcontext

from backoffice.api import queries, services
from backoffice.errors import BadRequest


@click.group("tokens", help="Bearer tokens for the JSON API.")
def tokens() -> None:
    pass


@tokens.command("create")
@click.option("--name", required=True, help="What the token is for (e.g. 'platform ingest').")
@click.option("--scope", type=click.Choice(services.SCOPES), required=True,
              help="read: every read; ingest: the platform's writes; admin: everything; account: one "
                   "account's own records (its account, billing events and invoices).")
@click.option("--account", "account_id", default=None, help="The account's id, for --scope account.")
@with_appcontext
def create(name: str, scope: str, account_id: str | None) -> None:
    """Create a token (audited). The secret is printed once and stored only as a hash."""
    try:
        token, secret = services.create_token(name, scope, account_id)
    except BadRequest as e:
        raise click.ClickException(e.message) from None
    click.echo(f"Token {token.id} ({token.scope}) created. Copy it now, it is not shown again:")
    click.echo(secret)


@tokens.command("list")
@with_appcontext
def list_tokens() -> None:
    """List tokens (never their secrets)."""
    for t in queries.list_tokens():
        state = "revoked" if t.revoked_at else "active"
        click.echo(f"{t.id}\t{t.prefix}…\t{t.scope}\t{state}\t{t.name}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def revoke(token_id: int) -> None:
    """Revoke a token by its id (audited)."""
    try:
        services.revoke_token(token_id)
    except BadRequest as e:
        raise click.ClickException(e.message) from None
    click.echo(f"Token {token_id} revoked.")
