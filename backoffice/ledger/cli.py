"""`backoffice ledger ...`: rebuild and verify the ledger from the Stripe event archive."""
from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("ledger")
def ledger() -> None:
    """The billing-event ledger and its Stripe event archive."""


@ledger.command("rebuild")
@click.option("--account", "account_id", default=None, help="Only this account id.")
@with_appcontext
def rebuild(account_id: str | None) -> None:
    """Recompute subscriptions, payment transactions and plans from the archive, append missing
    ledger rows, and report stored rows that a fresh replay would write differently (they are
    never changed). Exits with status 1 when it finds any."""
    from backoffice.ledger import services

    account_ids = services.accounts_with_archive(account_id)
    if account_id is not None and not account_ids:
        raise click.ClickException(f"No archived Stripe events for account {account_id}.")
    with click.progressbar(length=len(account_ids), label="Replaying accounts") as bar:
        report = services.rebuild(account_ids, progress=bar.update)
    click.echo(f"{report.accounts} accounts, {report.events} archived events replayed, "
               f"{report.rows_appended} missing ledger rows appended.")
    for d in report.differences:
        click.echo(f"DIFFERS {d.account_id} {d.stripe_event_id} {d.field}: stored {d.stored!s} fresh {d.fresh!s}")
    for event_id in report.missing_in_replay:
        click.echo(f"NOT REPLAYED {event_id}: stored row that a fresh replay does not write")
    if report.differences or report.missing_in_replay:
        click.echo(f"{len({d.stripe_event_id for d in report.differences})} stored rows differ from a fresh replay; "
                   "they were left unchanged.")
        raise SystemExit(1)
    click.echo("Every stored ledger row matches a fresh replay.")
