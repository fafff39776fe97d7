"""`backoffice db upgrade` builds an empty database, and the result agrees with the models.

Runs on SQLite always and on PostgreSQL too when TEST_DATABASE_URL is set (in a scratch
database of its own, created and dropped around the test)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from backoffice import create_app
from backoffice.cli import main
from backoffice.config import PROJECT_ROOT
from backoffice.extensions import db
from backoffice.search import sqlite_fts
from tests.conftest import IS_POSTGRES, scratch_database

BACKENDS = ["sqlite", *(["postgresql"] if IS_POSTGRES else [])]


@pytest.fixture(params=BACKENDS)
def empty_app(request, tmp_path):
    with scratch_database(tmp_path, postgres=request.param == "postgresql") as url:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "migrations",
                          "INSTANCE_PATH": str(tmp_path / "instance")})
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _head() -> str:
    return ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_current_head()


# SQLite cannot reflect expression indexes such as lower(name); PostgreSQL compares them.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_db_upgrade_builds_an_empty_database_that_matches_the_models(empty_app):
    runner = empty_app.test_cli_runner()
    with empty_app.app_context():
        assert sa.inspect(db.engine).get_table_names() == []

    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output + repr(result.exception)

    with empty_app.app_context():
        tables = {name for name in sa.inspect(db.engine).get_table_names() if not sqlite_fts.is_fts_table(name)}
        assert tables == set(db.metadata.tables) | {"alembic_version"}
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False,
                                                                "include_object": sqlite_fts.include_object})
            assert context.get_current_revision() == _head()
            diff = compare_metadata(context, db.metadata)
        assert diff == [], "models and migrations disagree; add a migration for:\n" + "\n".join(map(str, diff))
        # SQLite cannot reflect expression indexes, so the comparison above misses one a table's
        # recreation (0027) lost: every index the models declare is in the database by its name.
        if db.engine.dialect.name == "sqlite":
            names = {r[0] for r in db.session.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'index'"))}
        else:
            names = {r[0] for r in db.session.execute(sa.text("SELECT indexname FROM pg_indexes"))}
        declared = {index.name for table in db.metadata.tables.values() for index in table.indexes}
        assert declared - names == set()

    # The same check as `backoffice db check` (what CI and contributors run).
    result = runner.invoke(main, ["db", "check"])
    assert result.exit_code == 0, result.output + repr(result.exception)

    # Running it again is a no-op.
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output


def test_one_head_and_a_linear_history():
    script = ScriptDirectory(str(PROJECT_ROOT / "migrations"))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}; chain the newest revision"
    revisions = list(script.walk_revisions())
    for rev in revisions:
        assert rev.revision.split("_")[0].isdigit(), f"revision id {rev.revision!r} should be like 0002_<name>"
    assert revisions[-1].down_revision is None


def test_0024_fills_in_what_earlier_credit_notes_and_refunds_take_back(empty_app):
    """A database with reversed payments from before 0024: the upgrade fills in each one's part
    (and on PostgreSQL rebuilds the revenue summary from it)."""
    from datetime import UTC, datetime
    from decimal import Decimal as D

    from flask_migrate import upgrade

    from backoffice.accounts.models import Account
    from backoffice.dashboard.queries import net_revenue
    from backoffice.invoices.models import PaymentTransaction

    when = datetime(2026, 2, 1, tzinfo=UTC)
    payments = PaymentTransaction.__table__
    with empty_app.app_context():
        upgrade(revision="0023_job_runs_by_account")
        db.session.execute(Account.__table__.insert().values(id="acc_1", name="Acme", created_at=when,
                                                             modified_at=when))
        common = {"account_id": "acc_1", "status": "succeeded", "date": when, "currency": "EUR",
                  "amount_from_credit": D(0), "credit_noted_at": None, "credit_note_amount": None,
                  "refunded_at": None, "refund_amount": None}
        db.session.execute(payments.insert(), [
            {**common, "stripe_invoice_id": "in_half", "amount": D("108.10"), "invoice_total": D("108.10"),
             "amount_excluding_tax": D("100.00"), "tax_amount": D("8.10"), "credit_noted_at": when,
             "credit_note_amount": D("54.05")},
            {**common, "stripe_invoice_id": "in_refund", "amount": D("49.00"), "invoice_total": D("49.00"),
             "amount_excluding_tax": D("49.00"), "tax_amount": D(0), "refunded_at": when, "refund_amount": D("24.50")},
            {**common, "stripe_invoice_id": "in_kept", "amount": D("29.00"), "invoice_total": D("29.00"),
             "amount_excluding_tax": D("29.00"), "tax_amount": D(0)},
        ])
        db.session.commit()
        upgrade()
        taken = dict(db.session.execute(
            sa.select(payments.c.stripe_invoice_id, payments.c.reversed_excluding_tax)).all())
        assert taken == {"in_half": D("50.00"), "in_refund": D("24.50"), "in_kept": None}
        assert net_revenue() == D("103.50")  # 178.00 less 50.00 and 24.50


def test_the_trigram_search_finds_rows_that_were_there_before_its_migration(empty_app):
    """0028 fills the search tables from the rows a database already holds (an upgrade, not only
    a new database), and its triggers keep them from then on."""
    from flask_migrate import upgrade

    from backoffice.search import queries

    with empty_app.app_context():
        upgrade(revision="0027_long_stripe_customer_ids")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO accounts (id, name, created_at, modified_at) "
                                 "VALUES ('acc_old_1', 'Long Standing Rockets', '2025-01-01', '2025-01-01')"))
            conn.execute(sa.text("INSERT INTO users (id, email, created_at) "
                                 "VALUES ('usr_old_1', 'grace.hopper@navy.example', '2025-01-01')"))
        upgrade()
        with empty_app.test_request_context():
            assert [a.id for a in queries.accounts("standing roc").items] == ["acc_old_1"]
            assert [u.id for u in queries.users("hopper@nav").items] == ["usr_old_1"]
        db.session.remove()
