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
        tables = set(sa.inspect(db.engine).get_table_names())
        assert tables == set(db.metadata.tables) | {"alembic_version"}
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
            assert context.get_current_revision() == _head()
            diff = compare_metadata(context, db.metadata)
        assert diff == [], "models and migrations disagree; add a migration for:\n" + "\n".join(map(str, diff))

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
