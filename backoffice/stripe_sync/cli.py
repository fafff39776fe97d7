"""`backoffice stripe sync|baseline`, `backoffice drift scan` and `backoffice worker`."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from backoffice.extensions import db


def _stderr():
    return sys.stderr  # progress on stderr, results on stdout


@click.group("stripe")
def stripe_group() -> None:
    """Reconciliation with Stripe."""


@stripe_group.command("sync")
@click.option("--account", "account_id", default=None, help="Sync this account id.")
@click.option("--all", "all_accounts", is_flag=True, help="Sync every account with a Stripe customer.")
@with_appcontext
def sync_command(account_id: str | None, all_accounts: bool) -> None:
    """Pull Stripe's events list, archive missed events, refresh subscriptions and payments,
    replay and check drift: for one account or all of them (--all first fetches the customers
    whose events wait for an account, which links or creates it)."""
    from backoffice.accounts.models import Account
    from backoffice.errors import BadRequest
    from backoffice.stripe_sync import gateway as gw
    from backoffice.stripe_sync import sync

    if bool(account_id) == all_accounts:
        raise click.UsageError("Give either --account ID or --all.")
    if account_id:
        ids = [account_id]
    else:
        try:  # customers whose events wait for an account get theirs first
            sync.attach_waiting_customers()
        except (gw.StripeNotConfigured, gw.StripeUnavailable) as e:
            db.session.rollback()
            click.echo(f"Customers awaited by their events were not fetched: {e}", err=True)
        ids = list(db.session.execute(
            db.select(Account.id).where(Account.stripe_customer_id.is_not(None)).order_by(Account.id)).scalars())
    failures = 0
    totals = {"recovered": 0, "appended": 0, "drift": 0}
    lines = []
    with click.progressbar(ids, label="Syncing accounts", file=_stderr()) as bar:
        for one in bar:
            try:
                result = sync.sync_account(one)
            except BadRequest as e:
                db.session.rollback()
                failures += 1
                lines.append(f"{one}: {e.message}")
                continue
            totals["recovered"] += result.events_recovered
            totals["appended"] += result.events_appended
            totals["drift"] += 1 if result.drift_detected else 0
            if result.discrepancies:
                lines.append(f"{one}: {len(result.discrepancies)} discrepancies")
    for line in lines:
        click.echo(line)
    click.echo(f"{len(ids) - failures} accounts synced, {totals['recovered']} missed events recovered, "
               f"{totals['appended']} ledger rows appended, {totals['drift']} with drift, {failures} failed.")
    if failures:
        raise SystemExit(1)


@stripe_group.command("baseline")
@with_appcontext
def baseline_command() -> None:
    """Write baseline history for customers whose past predates Backoffice (marked baseline)."""
    from backoffice.accounts.models import Account
    from backoffice.stripe_sync import recovery

    total = db.session.execute(
        db.select(db.func.count()).select_from(Account).where(Account.stripe_customer_id.is_not(None))
    ).scalar_one()
    with click.progressbar(length=total, label="Baselining customers", file=_stderr()) as bar:
        result = recovery.baseline(progress=bar.update)
    click.echo(f"{result.accounts} accounts baselined: {result.events} baseline events, "
               f"{result.ledger_rows} baseline ledger rows; Stripe unavailable for {result.unavailable}.")


@click.group("drift")
def drift_group() -> None:
    """Drift between Backoffice and Stripe."""


@drift_group.command("scan")
@click.option("--parallel", type=int, default=None, help="Accounts checked at once (default DRIFT_PARALLEL).")
@with_appcontext
def scan_command(parallel: int | None) -> None:
    """Run one drift pass now, in this process (detect mode: only the drift columns change; an
    account with payments but no subscription row first gets a free one to hold them)."""
    from backoffice.jobs import celery_app
    from backoffice.stripe_sync import drift, tasks

    drift.hold_accounts_without_subscription()
    due = len(drift.due_subscription_ids())
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # this command runs the pass itself
    try:
        with click.progressbar(length=due, label="Checking accounts", file=_stderr()) as bar:
            run = tasks.run_drift_pass(parallel=parallel, progress=bar.update)
    finally:
        celery_app.conf.task_always_eager = eager
    click.echo(f"Drift pass {run.id}: {run.total} accounts due, {run.processed} processed, {run.skipped} skipped, "
               f"{run.failed} failed, {run.timed_out} timed out.")


@click.command("worker")
@click.option("--concurrency", type=int, default=None, help="Worker processes (default DRIFT_PARALLEL).")
@click.option("--loglevel", default="INFO")
@click.option("--no-beat", is_flag=True, help="Run without the scheduler (when another worker runs it).")
@with_appcontext
def worker_command(concurrency: int | None, loglevel: str, no_beat: bool) -> None:
    """Run a Celery worker with beat (needs CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0)."""
    from backoffice.jobs import celery_app
    from backoffice.ledger import tasks as ledger_tasks  # noqa: F401  (registers its tasks)
    from backoffice.stripe_sync import tasks

    if celery_app.conf.task_always_eager:
        raise click.UsageError("Set CELERY_BROKER_URL: without a broker tasks run in-process, no worker needed.")
    tasks.setup_beat()
    worker = celery_app.Worker(
        beat=not no_beat,
        concurrency=concurrency or int(current_app.config.get("DRIFT_PARALLEL", tasks.DEFAULT_PARALLEL)),
        loglevel=loglevel,
        schedule_filename=str(current_app.instance_path + "/celerybeat-schedule"),
        pool="prefork",
    )
    worker.start()
    raise SystemExit(worker.exitcode or 0)


COMMANDS = (stripe_group, drift_group, worker_command)
