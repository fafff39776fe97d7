"""The app's own database role (PostgreSQL). `backoffice db upgrade` runs as the schema's owner;
the web processes and workers run as a role that owns nothing, which `backoffice db
grant-app-role NAME` grants exactly what the app does. The append-only guards are triggers, and
only a table's owner may disable a trigger, drop it or the table: so the app's own credentials,
leaked or misused, cannot rewrite the Stripe archive, delete the ledger or the audit log, or
switch the guards off. The privileges below refuse what the triggers refuse, a second time.

Re-run the grant after each `db upgrade`: it revokes everything first, so a table a migration
added is granted too and nothing stays granted that the list no longer says.
"""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from backoffice.errors import BadRequest
from backoffice.extensions import db

# The app only ever appends to these: no UPDATE, no DELETE.
INSERT_ONLY = ("audit_log", "deployment_addon_events", "deployment_plan_events", "deployment_suspension_events",
               "usage_records")
# Rows of these are never deleted and change only in these columns (their triggers say the same;
# stripe_events' immutable columns are those its migration 0011 guards).
STRIPE_EVENTS_IMMUTABLE = ("id", "type", "api_version", "stripe_created_at", "received_at", "payload",
                           "payload_sha256", "recovery_source", "recovered_at")
UPDATABLE_COLUMNS = {
    "billing_events": ("superseded_at", "superseded_by", "superseded_because"),
    "deployments": ("deleted_at",),
}
READ_ONLY = ("alembic_version",)
# The tables the replay ANALYZEs after a bulk load (ledger/services.refresh_statistics): an owner's
# right before PostgreSQL 17, the MAINTAIN privilege from 17 on. Without it autovacuum analyzes them.
MAINTAINED = ("stripe_events", "accounts", "subscriptions", "billing_events", "payment_transactions")


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def table_privileges(conn: sa.Connection) -> dict[str, str]:
    """What the app's role gets on each table of the current schema, as GRANT's privilege list."""
    tables = conn.execute(sa.text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")).scalars().all()
    columns = {t: [c["name"] for c in sa.inspect(conn).get_columns(t)] for t in ("stripe_events",) if t in tables}
    grants = {}
    for table in tables:
        if table in READ_ONLY:
            grants[table] = "SELECT"
        elif table in INSERT_ONLY:
            grants[table] = "SELECT, INSERT"
        elif table == "stripe_events" or table in UPDATABLE_COLUMNS:
            updatable = UPDATABLE_COLUMNS.get(table) or [
                c for c in columns[table] if c not in STRIPE_EVENTS_IMMUTABLE]
            grants[table] = f"SELECT, INSERT, UPDATE ({', '.join(_quote(conn, c) for c in updatable)})"
        else:
            grants[table] = "SELECT, INSERT, UPDATE, DELETE"
    return grants


def grant_app_role(conn: sa.Connection, role: str) -> dict[str, str]:
    """Grants `role` what the app needs in the current database, after revoking what it had.
    Refuses a role that does not exist, is a superuser (no privilege binds it), owns anything
    here, or is the role running this (the owner). Answers the grants, table by table."""
    if conn.dialect.name != "postgresql":
        raise BadRequest("Database roles need PostgreSQL: SQLite has no users or privileges.", field="DATABASE_URL")
    found = conn.execute(sa.text("SELECT rolsuper, rolname = current_user FROM pg_roles WHERE rolname = :r"),
                         {"r": role}).first()
    if found is None:
        raise BadRequest(f"No database role {role!r}: create it first (CREATE ROLE {role} LOGIN PASSWORD '...').",
                         field="role")
    superuser, is_me = found
    if superuser:
        raise BadRequest(f"{role} is a superuser: privileges do not bind it. Use a role without SUPERUSER.",
                         field="role")
    if is_me:
        raise BadRequest(f"{role} is the role running this command (the schema's owner); name the app's own role.",
                         field="role")
    owned = conn.execute(sa.text(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = :r)"),
        {"r": role}).scalar_one()
    if owned:
        raise BadRequest(f"{role} owns {owned} tables or other objects here: the app's role must own nothing "
                         "(ALTER TABLE ... OWNER TO the migrating role).", field="role")

    who = _quote(conn, role)
    schema = _quote(conn, conn.execute(sa.text("SELECT current_schema()")).scalar_one())
    database = _quote(conn, conn.execute(sa.text("SELECT current_database()")).scalar_one())
    conn.execute(sa.text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {who}"))
    conn.execute(sa.text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {who}"))
    conn.execute(sa.text(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {who}"))
    conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {schema} TO {who}"))
    grants = table_privileges(conn)
    for table, privileges in grants.items():
        conn.execute(sa.text(f"GRANT {privileges} ON {schema}.{_quote(conn, table)} TO {who}"))
    conn.execute(sa.text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {who}"))
    if conn.execute(sa.text("SELECT current_setting('server_version_num')::int >= 170000")).scalar_one():
        for table in MAINTAINED:
            if table in grants:
                conn.execute(sa.text(f"GRANT MAINTAIN ON {schema}.{_quote(conn, table)} TO {who}"))
    return grants


@click.command("grant-app-role")
@click.argument("name")
@with_appcontext
def grant_app_role_command(name: str) -> None:
    """Grant the app's database role NAME what the app needs, and nothing it does not.

    Run it as the owner of the schema (the role `db upgrade` runs as), after each upgrade; then
    run the app with a DATABASE_URL of NAME. NAME must exist, own nothing and not be a superuser.
    PostgreSQL only.
    """
    try:
        with db.engine.begin() as conn:
            grants = grant_app_role(conn, name)
    except BadRequest as e:
        raise click.ClickException(e.message) from None
    limited = sum(1 for p in grants.values() if p != "SELECT, INSERT, UPDATE, DELETE")
    click.echo(f"{name}: privileges on {len(grants)} tables granted ({limited} of them append-only or "
               "read-only); it owns nothing, so it cannot alter a table or disable a trigger.")
