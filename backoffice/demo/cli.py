"""`backoffice demo`: a realistic, reproducible data set in instance/demo.db, served at once."""
from __future__ import annotations

import os
import random
import shlex
import time
from pathlib import Path

import click
from flask_migrate import upgrade
from sqlalchemy import event
from werkzeug.serving import run_simple

from backoffice import create_app
from backoffice.config import PROJECT_ROOT
from backoffice.demo import generator, services
from backoffice.demo.generator import MAX_ACCOUNTS
from backoffice.demo.stripe_sim import DEMO_WEBHOOK_SECRET, StripeSimulator
from backoffice.extensions import db
from backoffice.invoicing import demo as invoicing_demo
from backoffice.usage.demo import feed_demo

# Above 2,000 accounts, only this many customers get their Stripe history by default (about as
# many as 2,000 accounts have): each event goes through the real webhook and replayer, which
# takes time (see the README for figures).
STRIPE_ACCOUNTS_DEFAULT_CAP = 1_400
# Above 2,000 accounts, only this many accounts get deployments and usage by default: every record
# goes through the real ingest API (see the README for figures).
USAGE_ACCOUNTS_DEFAULT_CAP = 2_000


def _instance_path() -> Path:
    """The same folder create_app uses (BACKOFFICE_INSTANCE_PATH, else ./instance)."""
    return Path(os.environ.get("BACKOFFICE_INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _build_app(database_url: str):

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url,
        "STRIPE_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
        "CELERY_BROKER_URL": "",  # replay in-process, so the history is in the ledger at once
    })
    if database_url.startswith("sqlite"):


        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_no_fsync)
    return app


def _sqlite_no_fsync(dbapi_connection, _record) -> None:
    """No fsync per commit (the app already runs SQLite files in WAL mode,
    extensions.sqlite_pragmas): every webhook commits. A crash can lose the last commits
    of a demo database, nothing more."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _elapsed(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"


@click.command("demo")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Random seed: the same seed on the same day gives the same data.")
@click.option("--accounts", type=click.IntRange(1, MAX_ACCOUNTS), default=300, show_default=True,
              help=f"How many accounts to generate (1 to {MAX_ACCOUNTS:,}).")
@click.option("--stripe-accounts", type=click.IntRange(min=0), default=None,
              help="How many of the Stripe customers (about 70 % of the accounts) get their 18 months "
                   "of Stripe history delivered through the webhook. Default: all of them up to 2,000 "
                   f"accounts; above that an evenly spread {STRIPE_ACCOUNTS_DEFAULT_CAP:,}, for speed.")
@click.option("--usage-accounts", type=click.IntRange(min=0), default=None,
              help="How many accounts get deployments (add-on toggles, suspensions, plan changes, "
                   "deletions) and daily message usage, fed through the ingest API (/api/v1/deployments, "
                   "/api/v1/usage). Default: all of them up to 2,000 accounts; above that an evenly "
                   f"spread {USAGE_ACCOUNTS_DEFAULT_CAP:,}, for speed.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=5000, show_default=True, help="Port to serve on.")
@click.option("--no-serve", is_flag=True, help="Only build the data set; do not start the server.")
@click.option("--reset", is_flag=True, help="Throw away instance/demo.db and build it again.")
@click.option("--database-url", default=None,
              help="Use this (empty) database instead of instance/demo.db.")
def demo(seed: int, accounts: int, stripe_accounts: int | None, usage_accounts: int | None, host: str,
         port: int, no_serve: bool, reset: bool, database_url: str | None) -> None:
    """Create (or reuse) instance/demo.db with a realistic data set and serve it.

    Accounts, users, memberships, sign-ins and sessions over the last 18 months, and the Stripe
    history of about 70 % of the accounts (trials, upgrades, downgrades, cancellations, failed
    payments, refunds ...) produced by the Stripe simulator and delivered, signed, through the
    real webhook (POST /stripe/webhook), and the accounts' deployments (add-on toggles,
    suspensions, plan changes, deletions) and daily message usage sent through the real ingest
    API, so every number comes from the real pipeline. An existing demo database built with the
    same --seed and sizes is reused as it is (nothing is sent again).

    Prints the e-mail and password of the demo admin (BACKOFFICE_DEMO_PASSWORD if set, else one
    made on the first run and kept in the instance folder, so a restart keeps everyone signed in)
    and the DATABASE_URL other commands reach the demo's database with, then serves on
    http://127.0.0.1:5000 unless --no-serve.
    """
    started = time.perf_counter()
    sqlite_path: Path | None = None
    if database_url is None:
        instance = _instance_path()
        instance.mkdir(parents=True, exist_ok=True)
        sqlite_path = instance / "demo.db"
        database_url = f"sqlite:///{sqlite_path}"
        if reset:
            _remove_sqlite(sqlite_path)
    elif reset:
        raise click.UsageError("--reset only rebuilds the demo's own instance/demo.db; "
                               "give --database-url an empty database instead.")
    if stripe_accounts is None:
        stripe_accounts = accounts if accounts <= 2_000 else STRIPE_ACCOUNTS_DEFAULT_CAP
    if usage_accounts is None:
        usage_accounts = accounts if accounts <= 2_000 else USAGE_ACCOUNTS_DEFAULT_CAP
    usage_accounts = min(usage_accounts, accounts)
    wanted = {"seed": seed, "accounts": accounts, "stripe_accounts": min(stripe_accounts, accounts),
              "usage_accounts": usage_accounts}

    click.echo(f"Demo database: {sqlite_path or database_url}")
    app = _build_app(database_url)
    with app.app_context():
        upgrade()
        marker = services.seeded_marker()
        reuse = marker is not None and all(marker.get(k) == v for k, v in wanted.items())
        start_afresh = not reuse and services.holds_data()
        if start_afresh:
            db.session.remove()
            db.engine.dispose()
            if sqlite_path is None:
                raise click.ClickException(
                    "The database at --database-url already holds data that is not this demo data set; "
                    "the demo only fills an empty database.")
    if start_afresh:
        click.echo("It holds another data set: building it again.")
        _remove_sqlite(sqlite_path)
        app = _build_app(database_url)
        with app.app_context():
            upgrade()

    with app.app_context():
        if reuse:
            click.echo(f"Reusing the data set built on {marker.get('built_on')} "
                       f"(seed {seed}, {accounts:,} accounts); --reset rebuilds it.")
        else:
            _build(app, seed, accounts, stripe_accounts, usage_accounts, wanted)
        op = services.ensure_operator(_instance_path() / "demo_password")

    click.echo("")
    click.echo(f"Ready in {_elapsed(started)}.")
    click.echo("Sign in as the demo admin:")
    click.echo(f"  e-mail:   {op.email}")
    click.echo(f"  password: {op.password}")
    click.echo("Other commands reach this database with its URL, e.g.:")
    click.echo(f"  DATABASE_URL={shlex.quote(database_url)} backoffice tokens create --name demo --scope read")
    if no_serve:
        with app.app_context():  # the command leaves no connection open behind it
            db.session.remove()
            db.engine.dispose()
        return
    click.echo(f"Serving on http://{host}:{port} (Ctrl+C to stop)")

    # Not app.run(): Flask ignores it inside a `flask`/`backoffice` CLI command.
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


def _build(app, seed: int, accounts: int, stripe_accounts: int, usage_accounts: int, wanted: dict) -> None:

    spec = generator.DemoSpec(seed=seed, accounts=accounts)
    t = time.perf_counter()
    click.echo(f"Generating {accounts:,} accounts with their users, memberships, sign-ins and sessions "
               f"(seed {seed}, 18 months up to {spec.now:%Y-%m-%d})")
    with click.progressbar(length=accounts, label="Accounts", show_pos=True) as bar:
        counts, profiles = generator.seed(spec, on_batch=bar.update)
    click.echo(f"  {counts.accounts:,} accounts, {counts.users:,} users, {counts.memberships:,} memberships, "
               f"{counts.logins:,} sign-ins, {counts.sessions:,} sessions in {_elapsed(t)}")

    t = time.perf_counter()
    sim = StripeSimulator(seed, spec.now, currency=app.config.get("PLATFORM_CURRENCY", "EUR"))
    plans = sim.choose(profiles)
    customers = len(plans)
    if stripe_accounts < customers:
        plans = sim.choose(profiles, limit=stripe_accounts)
    click.echo(f"Stripe: {customers:,} accounts are Stripe customers; delivering the history of "
               f"{len(plans):,} of them through POST /stripe/webhook")
    client = app.test_client()
    services.deliver_history(client, DEMO_WEBHOOK_SECRET, [sim.catalog_events()])
    with click.progressbar(length=len(plans), label="Stripe customers", show_pos=True) as bar:
        report = services.deliver_history(client, DEMO_WEBHOOK_SECRET,
                                          (sim.events_for(plan) for plan in plans), on_batch=bar.update)
    seconds = time.perf_counter() - t
    stored = services.stripe_counts()
    rate = report.delivered / seconds if seconds else 0
    click.echo(f"  {report.delivered:,} events delivered in {seconds:.1f} s ({rate:,.0f}/s): "
               f"{stored['stripe_events']:,} archived, {stored['billing_events']:,} ledger rows")
    if report.failed:
        first = report.failed[0]
        click.echo(f"  {len(report.failed):,} deliveries were refused; the first: {first[0]} → "
                   f"{first[1]} {first[2]}", err=True)
    usage = _feed_usage(app, seed, spec.now, profiles, usage_accounts)
    t = time.perf_counter()
    runs = invoicing_demo.invoice_closed_months(spec.now)
    for r in runs:
        totals = ", ".join(f"{c} {a}" for c, a in r.summary["totals"].items()) or "nothing"
        click.echo(f"Invoicing {r.period}: {r.created:,} drafts ({totals}), {r.skipped:,} skipped, {r.failed:,} failed")
    click.echo(f"  month-end runs in {_elapsed(t)}; /invoicing/invoices lists the drafts")
    services.record_marker({**wanted, "built_on": f"{spec.now:%Y-%m-%d}", "accounts_created": counts.accounts,
                            "users": counts.users, "stripe_customers": len(plans),
                            "stripe_events_delivered": report.delivered,
                            "deployments": usage["deployments"], "usage_records": usage["usage_records"]})


def _feed_usage(app, seed: int, now, profiles: list, usage_accounts: int) -> dict:
    """Deployments and daily message usage, sent through the ingest API as the platform would."""


    t = time.perf_counter()
    chosen = profiles
    if usage_accounts < len(profiles):
        step = len(profiles) / usage_accounts if usage_accounts else 0
        chosen = [profiles[int(i * step)] for i in range(usage_accounts)]
    click.echo(f"Usage: deployments and daily message usage of {len(chosen):,} accounts through the "
               "ingest API (/api/v1/deployments, /api/v1/usage)")
    with click.progressbar(length=len(chosen), label="Deployments", show_pos=True) as bar:
        summary = feed_demo(app.test_client(), chosen, random.Random(f"{seed}:usage"), now,
                            progress=lambda done, _total: bar.update(done - bar.pos))
    db.session.remove()
    seconds = time.perf_counter() - t
    click.echo(f"  {summary['deployments']:,} deployments ({summary['deleted']:,} deleted), "
               f"{summary['add_on_events']:,} add-on events, {summary['suspension_events']:,} suspension events, "
               f"{summary['plan_events']:,} plan events, {summary['usage_records']:,} usage records "
               f"in {summary['api_calls']:,} API calls, {seconds:.1f} s")
    backfill = summary["backfill"]
    click.echo(f"  closing backfill snapshot of {backfill['deployments_examined']:,} live deployments: "
               f"{backfill['lifecycle_inserted']:,} legacy deployments added")
    return summary
