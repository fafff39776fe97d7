"""The app's database role (issue 21 part 5, PostgreSQL): `backoffice db grant-app-role NAME`
grants a role that owns nothing what the app does. The app works as that role — webhooks
archived and replayed, the ingest API, a month-end run, a draft deleted, pages read — and the
role cannot rewrite the archive, delete from it, touch the ledger's or the audit log's rows, or
switch a guard off."""
from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa

from backoffice import dbroles
from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.invoicing.models import PlatformInvoice
from backoffice.ledger.models import BillingEvent, StripeEvent
from backoffice.operators.models import AuditEntry
from tests.conftest import IS_POSTGRES
from tests.invoicing.test_run import NOVEMBER, chf_book, the_chf_account
from tests.stripe import helpers as h
from tests.usage.helpers import make_api

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="PostgreSQL: SQLite has no roles or privileges")

STANDARD = h.price("price_standard", 4900)


@pytest.fixture
def owner(db_url):
    """The schema's owner (the role the tests migrate with)."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def app_role(owner):
    """A new login role, granted by the owner what the app needs."""
    role = f"bo_app_{uuid.uuid4().hex[:8]}"
    with owner.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        dbroles.grant_app_role(conn, role)
    yield role
    with owner.begin() as conn:
        conn.execute(sa.text(f'DROP OWNED BY "{role}"'))  # its privileges in this database
        conn.execute(sa.text(f'DROP ROLE "{role}"'))


@pytest.fixture
def app_config(app_config, db_url, app_role):
    """The test app connects as the app's role."""
    url = sa.engine.make_url(db_url).set(username=app_role, password=None)
    return {**app_config, "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False)}


def _as_role(db_url: str, role: str) -> sa.Engine:
    return sa.create_engine(sa.engine.make_url(db_url).set(username=role, password=None),
                            poolclass=sa.pool.NullPool)


def test_the_app_runs_as_its_role(app, client, admin_client, db_url, app_role):
    assert db.session.execute(sa.text("SELECT current_user")).scalar_one() == app_role
    # A Stripe story through the signed webhook: archived, replayed, marked processed.
    start = h.ts("2026-11-03T10:00:00Z")
    for event in (h.envelope("customer.created", h.customer("cus_1", account_id="acc_1"), start),
                  h.envelope("customer.subscription.created", h.subscription("sub_1", "cus_1", STANDARD,
                                                                              created=start + 60), start + 60)):
        assert h.deliver(client, event).status_code == 200
    assert db.session.execute(sa.select(sa.func.count()).select_from(BillingEvent)).scalar_one() >= 1
    assert set(db.session.execute(sa.select(StripeEvent.state)).scalars()) == {"processed"}
    # The ingest API, a month-end run, its draft deleted from the page.
    chf_book()
    the_chf_account(make_api(client))
    _t, admin_secret = api_services.create_token("ops", "admin")
    run = client.post("/api/v1/invoicing/runs", json={"period": NOVEMBER},
                      headers={"Authorization": f"Bearer {admin_secret}"})
    assert (run.status_code, run.get_json()["status"], run.get_json()["summary"]["created"]) == (200, "done", 1), \
        run.get_json()
    draft = db.session.execute(sa.select(PlatformInvoice)).scalar_one()
    deleted = admin_client.post(f"/invoicing/invoices/{draft.id}/delete", data={"csrf_token": admin_client.csrf})
    assert deleted.status_code in (302, 303), deleted.get_data(as_text=True)[:300]
    assert db.session.execute(sa.select(sa.func.count()).select_from(PlatformInvoice)).scalar_one() == 0
    for page in ("/", "/accounts", "/ledger", "/invoices", "/operators/audit", "/stripe/jobs"):
        assert admin_client.get(page).status_code == 200, page
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar_one() >= 1


REFUSED = [
    ("UPDATE stripe_events SET payload = '{}'", "permission denied"),
    ("UPDATE stripe_events SET type = 'x', state = 'pending'", "permission denied"),
    ("DELETE FROM stripe_events", "permission denied"),
    ("TRUNCATE stripe_events", "permission denied"),
    ("UPDATE billing_events SET amount_delta = 0", "permission denied"),
    ("DELETE FROM billing_events", "permission denied"),
    ("UPDATE audit_log SET action = 'x'", "permission denied"),
    ("DELETE FROM audit_log", "permission denied"),
    ("DELETE FROM usage_records", "permission denied"),
    ("UPDATE deployments SET account_id = 'x'", "permission denied"),
    ("ALTER TABLE stripe_events DISABLE TRIGGER ALL", "must be owner"),
    ("DROP TRIGGER stripe_events_immutable ON stripe_events", "must be owner"),
    ("ALTER TABLE billing_events DISABLE TRIGGER billing_events_no_update", "must be owner"),
    ("DROP TABLE audit_log", "must be owner"),
    ("CREATE TABLE sneaky (id int)", "permission denied"),
]


@pytest.mark.parametrize(("statement", "why"), REFUSED, ids=[s for s, _ in REFUSED])
def test_the_role_cannot(db_url, app_role, statement, why):
    engine = _as_role(db_url, app_role)
    try:
        with pytest.raises(sa.exc.ProgrammingError) as refused, engine.begin() as conn:
            conn.execute(sa.text(statement))
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege), refused.value
        assert why in str(refused.value.orig)
    finally:
        engine.dispose()


def test_what_the_app_changes_the_role_may_change(db_url, app_role):
    engine = _as_role(db_url, app_role)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE stripe_events SET state = 'pending', error = NULL WHERE false"))
            conn.execute(sa.text("UPDATE billing_events SET superseded_at = now() WHERE false"))
            conn.execute(sa.text("UPDATE deployments SET deleted_at = now() WHERE false"))
            conn.execute(sa.text("DELETE FROM platform_invoice_lines WHERE false"))
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()


def test_the_command_grants_and_refuses_what_it_must(make_app, app_config, db_url, owner, app_role):
    runner = make_app({**app_config, "SQLALCHEMY_DATABASE_URI": db_url}).test_cli_runner()  # as the owner
    result = runner.invoke(args=["db", "grant-app-role", app_role])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{app_role}: privileges on ")
    assert "it owns nothing, so it cannot alter a table or disable a trigger." in result.output

    assert runner.invoke(args=["db", "grant-app-role", "no_such_role_here"]).output.startswith(
        "Error: No database role 'no_such_role_here'")
    owner_name = owner.url.username or "postgres"
    refused = runner.invoke(args=["db", "grant-app-role", owner_name])
    assert refused.exit_code == 1 and ("is a superuser" in refused.output or "running this command" in refused.output)
    with owner.begin() as conn:
        conn.execute(sa.text(f'CREATE TABLE "owned_{app_role}" (id int)'))
        conn.execute(sa.text(f'ALTER TABLE "owned_{app_role}" OWNER TO "{app_role}"'))
    try:
        owns = runner.invoke(args=["db", "grant-app-role", app_role])
        assert owns.exit_code == 1 and "owns 1 tables or other objects here" in owns.output
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE "owned_{app_role}"'))


def test_every_table_is_granted_and_the_append_only_ones_narrowly(owner):
    with owner.connect() as conn:
        grants = dbroles.table_privileges(conn)
        tables = set(conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars())
    assert set(grants) == tables
    assert grants["audit_log"] == grants["usage_records"] == "SELECT, INSERT"
    assert grants["alembic_version"] == "SELECT"
    assert grants["billing_events"] == "SELECT, INSERT, UPDATE (superseded_at, superseded_by, superseded_because)"
    updatable = grants["stripe_events"].split("UPDATE (")[1].rstrip(")").split(", ")
    assert not set(updatable) & set(dbroles.STRIPE_EVENTS_IMMUTABLE)
    assert {"state", "processed_at", "customer_id", "account_id"} <= set(updatable)
