"""`backoffice stripe connect|sync|baseline`, `backoffice drift scan` and `backoffice worker`."""
from __future__ import annotations

import sys
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from backoffice.accounts.models import Account
from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.invoicing import tasks as invoicing_tasks  # noqa: F401  (registers its tasks)
from backoffice.jobs import celery_app
from backoffice.ledger import tasks as ledger_tasks  # noqa: F401  (registers its tasks)
from backoffice.ledger.archive import WEBHOOK_EVENT_TYPES
from backoffice.stripe import drift, recovery, sync, tasks
from backoffice.stripe import gateway as gw


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
    total = db.session.execute(
        db.select(db.func.count()).select_from(Account).where(Account.stripe_customer_id.is_not(None))
    ).scalar_one()
    try:
        gateway = gw.get_gateway()
    except gw.StripeNotConfigured:
        raise click.ClickException("STRIPE_SECRET_KEY is not set: baseline history is read from Stripe.") from None
    with click.progressbar(length=total, label="Baselining customers", file=_stderr()) as bar:
        result = recovery.baseline(gateway, progress=bar.update)
    click.echo(f"{result.accounts} accounts baselined: {result.events} baseline events, "
               f"{result.ledger_rows} baseline ledger rows; Stripe unavailable for {result.unavailable}.")


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})


def _one_line(message: object) -> str:
    """Stripe's messages may span lines; an error here is one."""
    return " ".join(str(message).split())


def _webhook_url(url: str) -> str:
    """`<url>/stripe/webhook` (kept as is when the URL names the webhook already). Stripe only
    delivers to https; plain http is for a local Stripe-compatible server."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise click.ClickException(f"--url must be an address like https://backoffice.example.com, not {url!r}.")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise click.ClickException(f"--url must use https (Stripe delivers webhooks only there), not {url!r}; "
                                   "plain http is allowed for localhost and 127.0.0.1.")
    if parts.query or parts.fragment:
        raise click.ClickException(f"--url must have no query string or fragment: {url!r}.")
    path = parts.path.rstrip("/")
    if not path.endswith("/stripe/webhook"):
        path += "/stripe/webhook"
    return f"{parts.scheme}://{parts.netloc}{path}"


def _mode(key: str) -> str:
    if not key:
        return "STRIPE_SECRET_KEY not set"
    return "live mode" if "_live_" in key else "test mode" if "_test_" in key else "mode unknown"


@stripe_group.command("connect")
@click.option("--url", required=True, help="Backoffice's public address, e.g. https://backoffice.example.com "
              "(Stripe delivers to <url>/stripe/webhook).")
@click.option("--dry-run", is_flag=True, help="Print the endpoint that would be created; create nothing.")
@with_appcontext
def connect_command(url: str, dry_run: bool) -> None:
    """Create the Stripe webhook endpoint that sends Backoffice the events it reads, in the mode of
    STRIPE_SECRET_KEY (test or live), and print its signing secret for STRIPE_WEBHOOK_SECRET."""
    endpoint_url = _webhook_url(url)
    key = current_app.config.get("STRIPE_SECRET_KEY") or ""
    events = WEBHOOK_EVENT_TYPES
    if dry_run:
        click.echo(f"Would create a Stripe webhook endpoint ({_mode(key)}): {endpoint_url}")
        click.echo(f"Events ({len(events)}):")
        for event_type in events:
            click.echo(f"  {event_type}")
        return
    try:
        endpoint = gw.get_gateway().create_webhook_endpoint(endpoint_url, events)
    except gw.StripeNotConfigured:
        raise click.ClickException("STRIPE_SECRET_KEY is not set: set the secret key of the Stripe mode to "
                                   "connect (sk_test_... or sk_live_...).") from None
    except ValueError as e:  # Stripe refused the request
        raise click.ClickException(f"{_one_line(e).rstrip('.')}. No endpoint was created.") from None
    except gw.StripeUnavailable as e:  # the key refused, or Stripe down after the retries
        raise click.ClickException(f"{_one_line(e).rstrip('.')}.") from None
    mode = "live mode" if endpoint.get("livemode") else "test mode" if "livemode" in endpoint else _mode(key)
    enabled = endpoint.get("enabled_events") or list(events)  # what Stripe answers it will send
    click.echo(f"Created Stripe webhook endpoint {endpoint['id']} ({mode}): {endpoint['url']}")
    click.echo(f"Events ({len(enabled)}):")
    for event_type in enabled:
        click.echo(f"  {event_type}")
    secret = endpoint.get("secret")
    if not secret:
        raise click.ClickException(f"Stripe answered no signing secret: reveal the secret of {endpoint['id']} in "
                                   "Stripe's Dashboard (Developers, Webhooks) and set STRIPE_WEBHOOK_SECRET to it.")
    click.echo(f"Signing secret (Stripe's API answers it only now): {secret}")
    if current_app.config.get("STRIPE_WEBHOOK_SECRET"):
        click.echo("STRIPE_WEBHOOK_SECRET is set already: append the new secret, comma-separated, and restart:")
        click.echo(f"  STRIPE_WEBHOOK_SECRET=<the secrets set now>,{secret}")
    else:
        click.echo("Set it in Backoffice's environment and restart:")
        click.echo(f"  STRIPE_WEBHOOK_SECRET={secret}")


@click.group("drift")
def drift_group() -> None:
    """Drift between Backoffice and Stripe."""


@drift_group.command("scan")
@click.option("--parallel", type=int, default=None, help="Accounts checked at once (default DRIFT_PARALLEL).")
@with_appcontext
def scan_command(parallel: int | None) -> None:
    """Run one drift pass now, in this process (detect mode: only the drift columns change; an
    account with payments but no subscription row first gets a free one to hold them). Exits 1
    when any check failed or timed out."""
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
    incomplete = run.failed + run.timed_out
    if incomplete:
        click.echo(f"{incomplete} of {run.total} checks did not complete (Stripe unreachable, an error or the "
                   f"DRIFT_TIMEOUT); those accounts stay unchecked. The log names each.", err=True)
        raise SystemExit(1)


@click.command("worker")
@click.option("--concurrency", type=int, default=None, help="Worker processes (default DRIFT_PARALLEL).")
@click.option("--loglevel", default="INFO")
@click.option("--no-beat", is_flag=True, help="Run without the scheduler (when another worker runs it).")
@with_appcontext
def worker_command(concurrency: int | None, loglevel: str, no_beat: bool) -> None:
    """Run a Celery worker with beat (needs CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0)."""
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
