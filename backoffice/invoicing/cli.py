"""`backoffice invoicing ...`: the month-end run from the command line."""
from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from backoffice.errors import BadRequest
from backoffice.invoicing import price_document, run


@click.group("invoicing")
def invoicing() -> None:
    """Month-end invoicing: draft each account's invoice of a month."""


@invoicing.command("run")
@click.option("--period", required=True, metavar="YYYY-MM", help="The month to invoice (it must have ended).")
@click.option("--force", is_flag=True, help="Rebuild the month's drafts (an issued invoice is never touched).")
@click.option("--account", "account_id", default=None, metavar="ID", help="Only this account.")
@with_appcontext
def run_command(period: str, force: bool, account_id: str | None) -> None:
    """Draft one invoice per account with billable activity in PERIOD, in this process. Re-running
    skips the accounts that have their invoice; --force rebuilds drafts. Exits with status 1 when
    an account could not be priced (the others are drafted all the same)."""
    try:
        month = run.parse_period(period)
        started = run.start(month, force=force, account_id=account_id, trigger="cli", actor="cli")
    except BadRequest as e:
        raise click.BadParameter(e.message, param_hint="--account" if e.field == "account_id" else "--period") from None
    accounts = len(run.accounts_to_examine(month, account_id))
    with click.progressbar(length=accounts, label=f"Invoicing {month}", show_pos=True) as bar:
        finished = run.run_in_process(started, progress=bar.update)
    click.echo(summary_text(finished))
    if finished.failed or finished.status != "done":
        raise SystemExit(1)


@invoicing.group("prices")
def prices() -> None:
    """The price book as one JSON document (the same as GET|PUT /api/v1/price-book)."""


@prices.command("export")
@click.argument("file", type=click.File("w"))
@with_appcontext
def export_prices(file) -> None:
    """Write the whole price book to FILE ("-": standard output)."""
    json.dump(price_document.export(), file, indent=2, ensure_ascii=False)
    file.write("\n")


@prices.command("import")
@click.argument("file", type=click.File("r"))
@with_appcontext
def import_prices(file) -> None:
    """Replace the whole price book with FILE. Validated as a whole: a bad entry refuses all of
    it, naming the entry, and nothing is written. Audited."""
    try:
        document = json.load(file)
    except ValueError as e:
        raise click.ClickException(f"{file.name} is not JSON: {e}") from None
    try:
        book = price_document.replace(document, None)
    except BadRequest as e:
        raise click.ClickException(f"{e.field}: {e.message}" if e.field else e.message) from None
    click.echo(f"Price book replaced: {len(book['plans'])} plan versions, {len(book['add_ons'])} add-on prices, "
               f"{len(book['metered'])} metered prices, {len(book['vat'])} VAT settings.")


def summary_text(finished) -> str:
    s = finished.summary
    lines = [(f"Run {finished.id} of {finished.period}: {finished.status}. {s['examined']} accounts examined, "
              f"{s['created']} invoices created, {s['rebuilt']} rebuilt, "
              f"{sum(s['skipped'].values())} skipped, {len(s['failures'])} failed.")]
    lines += [f"  skipped: {count} {reason}" for reason, count in s["skipped"].items()]
    lines += [f"  FAILED {f['account_id'] or '(the run)'}: {f['reason']}" for f in s["failures"]]
    lines += [f"  total {currency} {amount}" for currency, amount in s["totals"].items()]
    return "\n".join(lines)


