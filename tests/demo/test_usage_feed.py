"""`backoffice demo` feeds deployments and daily usage through the ingest API: reproducible by
seed, and never fed twice into a reused demo database."""
from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from backoffice.dbtypes import Money
from backoffice.demo import generator
from backoffice.demo.cli import demo

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_day(monkeypatch, tmp_path):
    """The demo's data depend on the day it is built; pin it so the figures below are exact."""
    monkeypatch.setattr(generator, "DemoSpec", functools.partial(generator.DemoSpec, now=NOW))
    monkeypatch.setenv("BACKOFFICE_DEMO_PASSWORD", "demo-password-123")


def _invoke(instance, *args: str):
    result = CliRunner().invoke(demo, ["--no-serve", "--accounts", "20", *args], catch_exceptions=False,
                                env={"BACKOFFICE_INSTANCE_PATH": str(instance)})
    assert result.exit_code == 0, result.output
    return result.output


def _usage_numbers(instance) -> dict:
    engine = sa.create_engine(f"sqlite:///{instance / 'demo.db'}")
    try:
        with engine.connect() as conn:
            scalar = lambda sql: conn.execute(sa.text(sql)).scalar_one()
            return {
                "deployments": scalar("SELECT count(*) FROM deployments"),
                "deleted": scalar("SELECT count(*) FROM deployments WHERE deleted_at IS NOT NULL"),
                "accounts": scalar("SELECT count(DISTINCT account_id) FROM deployments"),
                "add_on_events": dict(conn.execute(sa.text(
                    "SELECT kind, count(*) FROM deployment_addon_events GROUP BY kind")).all()),
                "suspension_events": dict(conn.execute(sa.text(
                    "SELECT kind, count(*) FROM deployment_suspension_events GROUP BY kind")).all()),
                "plan_events": scalar("SELECT count(*) FROM deployment_plan_events"),
                "sources": dict(conn.execute(sa.text(
                    "SELECT source, count(*) FROM deployment_addon_events GROUP BY source")).all()),
                "usage_records": dict(conn.execute(sa.text(
                    "SELECT metric, count(*) FROM usage_records GROUP BY metric")).all()),
                "messages_out": Money().process_result_value(scalar(
                    "SELECT sum(quantity) FROM usage_records WHERE metric = 'messages_out'"), conn.dialect),
                "backfills": scalar("SELECT count(*) FROM usage_backfill_runs"),
            }
    finally:
        engine.dispose()


# 29 deployments fed through PUT/POST/DELETE, plus the two legacy ones only the closing backfill
# snapshot knows (5 add-ons, one suspended); add-on history older than 14 days came through
# POST .../events ("event"), the rest through state PUTs ("state").
EXPECTED = {
    "deployments": 31, "deleted": 3, "accounts": 20,
    "add_on_events": {"enabled": 124, "disabled": 39},
    "suspension_events": {"suspended": 27, "resumed": 24},
    "plan_events": 46,
    "sources": {"state": 50, "event": 108, "backfill": 5},
    "usage_records": {"messages_in": 4725, "messages_out": 4725},
    "messages_out": Decimal("2595766.0000"),
    "backfills": 1,
}


def test_demo_feeds_deployments_and_usage_reproducibly(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    output = _invoke(first)
    numbers = _usage_numbers(first)
    assert numbers == EXPECTED
    assert ("29 deployments (3 deleted), 158 add-on events, 50 suspension events, 44 plan events, "
            "9,450 usage records") in output

    # Same seed, another database: the same figures. A reused database is not fed again.
    _invoke(second)
    assert _usage_numbers(second) == numbers
    again = _invoke(first)
    assert "Reusing the data set" in again and "Usage:" not in again
    assert _usage_numbers(first) == numbers


def test_usage_accounts_caps_the_feed_and_is_part_of_the_data_set(tmp_path):
    output = _invoke(tmp_path, "--usage-accounts", "5", "--stripe-accounts", "0")
    assert "daily message usage of 5 accounts" in output
    numbers = _usage_numbers(tmp_path)
    assert numbers["accounts"] == 5
    # Another cap is another data set: built again, not reused.
    rebuilt = _invoke(tmp_path, "--usage-accounts", "0", "--stripe-accounts", "0")
    assert "It holds another data set" in rebuilt
    assert _usage_numbers(tmp_path)["deployments"] == 0


def test_help_documents_the_usage_cap():
    result = CliRunner().invoke(demo, ["--help"])
    assert "--usage-accounts" in result.output
    assert "evenly spread 2,000" in " ".join(result.output.split())
