"""`backoffice demo`: a reproducible data set, its Stripe history through the real webhook, the
demo admin, and the command's validation."""
from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from markupsafe import escape

from backoffice.demo import generator
from backoffice.demo.cli import demo
from backoffice.demo.services import DEMO_EMAIL
from tests.conftest import Client, sign_in

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SPEC = generator.DemoSpec(seed=7, accounts=200, now=NOW)


def rows(spec: generator.DemoSpec, batch_accounts: int = generator.BATCH_ACCOUNTS) -> generator.Batch:
    everything = generator.Batch()
    for batch in generator.generate(spec, batch_accounts):
        for name in ("accounts", "users", "memberships", "logins", "sessions"):
            getattr(everything, name).extend(getattr(batch, name))
    return everything


def test_same_seed_same_data_whatever_the_batch_size():
    first, second = rows(SPEC), rows(SPEC, batch_accounts=7)
    assert first.accounts == second.accounts and first.users == second.users
    assert first.logins == second.logins and first.sessions == second.sessions
    other = rows(generator.DemoSpec(seed=8, accounts=200, now=NOW))
    assert [a["id"] for a in other.accounts] != [a["id"] for a in first.accounts]


def test_data_set_is_realistic():
    data = rows(SPEC)
    counts = generator.Counts()
    counts.add(data)
    assert counts == generator.Counts(accounts=200, users=943, memberships=962, logins=10876, sessions=3552)
    accounts = data.accounts
    assert Counter(a["country"] for a in accounts).most_common(3) == [("DE", 47), ("CH", 38), ("US", 26)]
    assert sum(a["deleted_at"] is not None for a in accounts) == 10
    assert sum(a["vat_id"] is not None for a in accounts) == 55
    assert all(SPEC.start <= a["created_at"] < NOW for a in accounts)
    assert all(a["created_at"] <= b["created_at"] for a, b in itertools.pairwise(accounts))
    assert sum(u["first_name"] is None for u in data.users) == 44
    assert sum(u["last_name"] is None for u in data.users) == 62
    assert Counter((m["role"], m["state"]) for m in data.memberships) == {
        ("owner", "active"): 200, ("admin", "active"): 114, ("member", "active"): 580,
        ("admin", "pending"): 8, ("member", "pending"): 60}
    assert Counter(login["method"] for login in data.logins) == {"password": 6107, "google": 3126,
                                                                  "email_code": 1643}
    assert Counter(login["outcome"] for login in data.logins) == {"success": 10220, "failure": 656}
    agents = {login["user_agent"] for login in data.logins}
    for marker in ("OPR/", "Edg/", "Firefox/", "Version/18.2 Safari", "iPhone", "Android"):
        assert any(marker in agent for agent in agents), marker
    assert all(login["at"] <= NOW for login in data.logins)
    recent = [s for s in data.sessions if s["revoked_at"] is None and s["last_seen_at"] > NOW - timedelta(hours=24)]
    assert len(recent) == 282
    assert sum(s["revoked_at"] is not None for s in data.sessions) == 546
    pending_users = {m["user_id"] for m in data.memberships if m["state"] == "pending"}
    assert not pending_users & {login["user_id"] for login in data.logins}


def _invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(demo, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("value", ["0", "50001", "-3"])
def test_accounts_out_of_range_is_a_clear_error(value):
    result = _invoke("--no-serve", "--accounts", value)
    assert result.exit_code == 2
    assert "Invalid value for '--accounts'" in result.output
    assert "1<=x<=50000" in result.output


def _numbers(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            scalar = lambda sql: conn.execute(sa.text(sql)).scalar_one()
            types = dict(conn.execute(sa.text("SELECT type, count(*) FROM billing_events GROUP BY type")).all())
            return {
                "accounts": scalar("SELECT count(*) FROM accounts"),
                "users": scalar("SELECT count(*) FROM users"),
                "logins": scalar("SELECT count(*) FROM logins"),
                "customers": scalar("SELECT count(*) FROM accounts WHERE stripe_customer_id IS NOT NULL"),
                "stripe_events": scalar("SELECT count(*) FROM stripe_events"),
                "pending": scalar("SELECT count(*) FROM stripe_events WHERE state IN ('pending', 'failed')"),
                "billing_events": scalar("SELECT count(*) FROM billing_events"),
                "types": types,
                "mrr": str(scalar("SELECT coalesce(sum(price_amount), 0) FROM subscriptions "
                                  "WHERE is_current AND NOT cancel_at_period_end")),
                "drafts": dict(conn.execute(sa.text("SELECT period, count(*) FROM platform_invoices "
                                                    "GROUP BY period")).all()),
                "invoiced": str(scalar("SELECT coalesce(sum(total), 0) FROM platform_invoices")),
            }
    finally:
        engine.dispose()


def test_demo_builds_reuses_and_rebuilds_the_same_numbers(tmp_path, monkeypatch, make_app):
    monkeypatch.setenv("BACKOFFICE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("BACKOFFICE_DEMO_PASSWORD", "demo-password-123")
    result = _invoke("--no-serve", "--accounts", "20")
    assert result.exit_code == 0, result.output
    assert f"e-mail:   {DEMO_EMAIL}" in result.output
    assert "password: demo-password-123" in result.output
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = _numbers(url)
    assert first["accounts"] == 20 and first["pending"] == 0
    assert first["customers"] > 0 and first["billing_events"] > 0  # exact figures below, run twice
    assert len(first["drafts"]) == 3 and all(n > 0 for n in first["drafts"].values())  # the last 3 closed months
    assert result.output.count(" drafts (CHF ") == 3

    again = _invoke("--no-serve", "--accounts", "20")
    assert "Reusing the data set" in again.output
    assert _numbers(url) == first

    rebuilt = _invoke("--no-serve", "--accounts", "20", "--reset")
    assert "Generating 20 accounts" in rebuilt.output
    assert _numbers(url) == first

    app = make_app({"SQLALCHEMY_DATABASE_URI": url, "SERVER_NAME": "backoffice.test"})
    with app.app_context():
        client = app.test_client()
        sign_in(client, DEMO_EMAIL, "demo-password-123")
        assert client.get("/").status_code == 200
        # Self-contained: the accounts' logos are drawn, nothing is loaded from another host.
        listed = client.get("/accounts?page_size=100").get_data(as_text=True)
        assert 'src="data:image/svg+xml,' in listed
        assert re.findall(r'(?:src|href)="(?:https?:)?//[^"]*"', listed) == []
        from backoffice.extensions import db

        # The header search on the database the demo migrated, as a newcomer's is: a name found by
        # what it contains (not its start), through the page.
        name = db.session.execute(sa.text("SELECT name FROM accounts ORDER BY id LIMIT 1")).scalar_one()
        found = client.get("/search", query_string={"q": name[1:]}).get_data(as_text=True)
        assert str(escape(name)) in found
        db.session.remove()
        db.engine.dispose()


def test_a_restart_keeps_the_password_and_its_sessions(tmp_path, monkeypatch, make_app):
    """Without BACKOFFICE_DEMO_PASSWORD the first run makes a password and keeps it (0600) in the
    instance folder: a restart prints the same one and a signed-in browser stays signed in. The
    printed DATABASE_URL reaches the demo's database from other commands."""
    monkeypatch.setenv("BACKOFFICE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("BACKOFFICE_DEMO_PASSWORD", raising=False)
    first = _invoke("--no-serve", "--accounts", "3", "--stripe-accounts", "0")
    password = next(line.split("password:")[1].strip() for line in first.output.splitlines() if "password:" in line)
    assert len(password) >= 10 and (tmp_path / "demo_password").stat().st_mode & 0o777 == 0o600
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert f"  DATABASE_URL={url} backoffice tokens create --name demo --scope read" in first.output

    app = make_app({"SQLALCHEMY_DATABASE_URI": url, "SERVER_NAME": "backoffice.test"})
    app.test_client_class = Client  # each request with an empty `g`: no cached signed-in user
    with app.app_context():
        client = app.test_client()
        sign_in(client, DEMO_EMAIL, password)
        second = _invoke("--no-serve", "--accounts", "3", "--stripe-accounts", "0")
        assert "Reusing the data set" in second.output and f"password: {password}" in second.output
        from backoffice.extensions import db

        db.session.expire_all()
        assert client.get("/").status_code == 200  # still signed in: the restart ended no session
        monkeypatch.setenv("BACKOFFICE_DEMO_PASSWORD", "a-new-password-456")
        _invoke("--no-serve", "--accounts", "3", "--stripe-accounts", "0")
        db.session.expire_all()
        assert client.get("/").status_code == 302  # a new password ends the old one's sessions
        db.session.remove()
        db.engine.dispose()


def test_demo_into_an_empty_database_url(db_url, tmp_path, monkeypatch):
    """On PostgreSQL when TEST_DATABASE_URL is set (the fixture's empty, migrated database)."""
    monkeypatch.setenv("BACKOFFICE_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("BACKOFFICE_DEMO_PASSWORD", "demo-password-123")
    result = _invoke("--no-serve", "--accounts", "12", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    numbers = _numbers(db_url)
    assert numbers["accounts"] == 12 and numbers["pending"] == 0 and numbers["billing_events"] > 0
    refused = CliRunner().invoke(demo, ["--no-serve", "--accounts", "13", "--database-url", db_url])
    assert refused.exit_code == 1
    assert "already holds data" in refused.output
