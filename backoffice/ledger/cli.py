"""`backoffice ledger ...`: rebuild and verify the ledger from the Stripe event archive."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from backoffice.extensions import db
from backoffice.ledger import services
from backoffice.ledger.models import StripeEvent


@click.group("ledger")
def ledger() -> None:
    """The billing-event ledger and its Stripe event archive."""


@ledger.command("rebuild")
@click.option("--account", "account_id", default=None, help="Only this account id.")
@with_appcontext
def rebuild(account_id: str | None) -> None:
    """Recompute subscriptions, payment transactions and plans from the archive, append missing
    ledger rows, and correct every stored row a fresh replay writes differently: it is
    superseded by the corrected row, and stays as the audit trail. Exits with status 1 when it
    found any such row or an event it cannot read (a second run then finds none to correct)."""
    account_ids = services.accounts_with_archive(account_id)
    if account_id is not None and not account_ids:
        raise click.ClickException(f"No archived Stripe events for account {account_id}.")
    with click.progressbar(length=len(account_ids), label="Replaying accounts") as bar:
        report = services.rebuild(account_ids, progress=bar.update)
    click.echo(f"{report.accounts} accounts, {report.events} archived events replayed, "
               f"{report.rows_appended} missing ledger rows appended, {report.rows_corrected} corrected.")
    for d in report.differences:
        click.echo(f"CORRECTED {d.account_id} {d.stripe_event_id} {d.field}: stored {d.stored!s} fresh {d.fresh!s}")
    for event_id in report.missing_in_replay:
        click.echo(f"NOT REPLAYED {event_id}: stored row of an event a fresh replay cannot read (kept)")
    for event_id, why in report.failed_events:
        click.echo(f"FAILED {event_id}: {why}")
    if report.rows_corrected:
        click.echo(f"{report.rows_corrected} stored rows differed from a fresh replay; each is superseded by its "
                   "corrected row and kept as the audit trail.")
    if report.failed_events:
        click.echo(f"{len(report.failed_events)} archived events could not be read; they are on their accounts' "
                   "Drift tab.")
    if report.rows_corrected or report.missing_in_replay or report.failed_events:
        raise SystemExit(1)
    click.echo("Every stored ledger row matches a fresh replay.")


@ledger.command("replay")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes sharing the replay (PostgreSQL; SQLite always uses one).")
@click.option("--failed", "with_failed", is_flag=True,
              help="Also replay the events that failed before (after an upgrade taught Backoffice to read them).")
@with_appcontext
def replay(workers: int, with_failed: bool) -> None:
    """Replay every pending archived Stripe event (and with --failed every failed one) into the
    ledger and the projections: the catch-up after the webhook's replays could not run (no
    worker, a bulk import, an outage). Rows are only ever appended: a late event's stored rows
    that it changes are superseded by corrected ones. Replaying again finds nothing to do."""
    states = services.PENDING_AND_FAILED if with_failed else services.PENDING
    accounts = db.session.execute(
        db.select(db.func.count(db.distinct(StripeEvent.account_id)))
        .where(StripeEvent.state.in_(states), StripeEvent.account_id.is_not(None))).scalar_one()
    with click.progressbar(length=accounts, label="Replaying accounts") as bar:
        reports = services.replay_pending(progress=bar.update, workers=workers, states=states)
    crashed = [r for r in reports if r.error]
    click.echo(f"{len(reports)} accounts, {sum(r.events for r in reports)} archived events replayed, "
               f"{sum(r.rows_appended for r in reports)} ledger rows appended, "
               f"{sum(r.rows_corrected for r in reports)} corrected, "
               f"{sum(r.discrepancies for r in reports)} discrepancies recorded.")
    for r in reports:
        if r.error:
            click.echo(f"FAILED {r.account_id}: {r.error}")
        elif r.failed:
            click.echo(f"UNREADABLE {r.account_id}: {r.failed} events could not be read (see its Drift tab; "
                       "replay them with --failed after an upgrade)")
    if crashed:  # an unreadable event is known and reported; a replay that broke is not done
        raise SystemExit(1)
