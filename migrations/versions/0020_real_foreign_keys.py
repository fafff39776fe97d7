"""real foreign keys instead of statement triggers

The ledger's and payments' references to accounts and subscriptions are declarative foreign keys
again on PostgreSQL, as the models declare them (SQLite declares them and does not enforce them).
Migration 0014 replaced them with statement-level triggers to save a foreign-key query per row of
the replay's bulk writes. Measured again (issue 19, tests/bench/test_replay_bench.py, PostgreSQL,
2 cores): 30,000 events replayed at 6,101–6,856 events/s with real foreign keys against 6,467 with
the triggers; 100,000 at 6,955–8,005 against 8,096–8,409 (clean runs; the spread between runs on
this machine is nearly as wide). Neither meets issue 18's 10,000, so the triggers, their functions
and the Alembic exception that let models and database disagree are gone.

Revision ID: 0020_real_foreign_keys
Revises: 0019_one_forward_mrr
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = '0020_real_foreign_keys'
down_revision = '0019_one_forward_mrr'
branch_labels = None
depends_on = None


def _statement_references():
    """Migration 0014's module: this revision is its downgrade, and its upgrade is this one's."""
    path = Path(__file__).with_name("0014_statement_references.py")
    spec = importlib.util.spec_from_file_location("statement_references", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade():
    _statement_references().downgrade()


def downgrade():
    _statement_references().upgrade()
