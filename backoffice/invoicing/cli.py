"""`backoffice invoicing ...`: the month-end run from the command line."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from backoffice.errors import BadRequest
from backoffice.invoicing import run


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
        raise click.BadParameter(e.message, param_hint=f"--{e.field or 'period'}".replace("_id", "")) from None
    accounts = len(run.accounts_to_examine(month, account_id))
    with click.progressbar(length=accounts, label=f"Invoicing {month}", show_pos=True) as bar:
        finished = run.run_in_process(started, progress=bar.update)
    click.echo(summary_text(finished))
    if finished.failed or finished.status != "done":
        raise SystemExit(1)


def summary_text(finished) -> str:
    s = finished.summary
    lines = [(f"Run {finished.id} of {finished.period}: {finished.status}. {s['examined']} accounts examined, "
              f"{s['created']} invoices created, {s['rebuilt']} rebuilt, "
              f"{sum(s['skipped'].values())} skipped, {len(s['failures'])} failed.")]
    lines += [f"  skipped: {count} {reason}" for reason, count in s["skipped"].items()]
    lines += [f"  FAILED {f['account_id'] or '(the run)'}: {f['reason']}" for f in s["failures"]]
    lines += [f"  total {currency} {amount}" for currency, amount in s["totals"].items()]
    return "\n".join(lines)


