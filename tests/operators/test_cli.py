"""`backoffice operators create` and `backoffice tokens create`: the commands a newcomer runs first."""
from __future__ import annotations

from backoffice.api.models import ApiToken
from backoffice.auth import hash_secret
from backoffice.extensions import db
from backoffice.operators.models import AuditEntry, Operator
from tests.conftest import sign_in


def _operators() -> list[tuple[str, str, bool]]:
    db.session.expire_all()
    return [(o.email, o.role, o.active)
            for o in db.session.execute(db.select(Operator).order_by(Operator.email)).scalars()]


def test_operators_create_admin_who_can_sign_in(runner, client):
    result = runner.invoke(args=["operators", "create", "--email", "Boss@Example.com", "--password",
                                 "a-long-password", "--admin"])
    assert result.exit_code == 0, result.output
    assert result.output == "Created admin boss@example.com\n"
    assert _operators() == [("boss@example.com", "admin", True)]
    sign_in(client, "boss@example.com", "a-long-password")
    assert client.get("/operators").status_code == 200
    entry = db.session.execute(db.select(AuditEntry)).scalar_one()
    assert (entry.operator_email, entry.action, entry.after) == (
        "system", "operator.create", {"email": "boss@example.com", "role": "admin", "active": True})


def test_operators_create_viewer_by_default(runner):
    result = runner.invoke(args=["operators", "create", "--email", "v@example.com", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    assert result.output == "Created viewer v@example.com\n"
    assert _operators() == [("v@example.com", "viewer", True)]


def test_operators_create_refuses_bad_input(runner):
    runner.invoke(args=["operators", "create", "--email", "v@example.com", "--password", "a-long-password"])
    cases = [
        (["--email", "v@example.com", "--password", "a-long-password"], "An operator with this e-mail already exists."),
        (["--email", "not-an-email", "--password", "a-long-password"], "Enter a valid e-mail address."),
        (["--email", "w@example.com", "--password", "short"], "The password needs at least 10 characters."),
    ]
    for args, message in cases:
        result = runner.invoke(args=["operators", "create", *args])
        assert result.exit_code == 1
        assert result.output == f"Error: {message}\n"
    result = runner.invoke(args=["operators", "create", "--email", "w@example.com"])
    assert result.exit_code == 2
    assert "Missing option '--password'" in result.output
    assert _operators() == [("v@example.com", "viewer", True)]


def test_tokens_create_prints_the_secret_once_and_stores_a_hash(runner):
    result = runner.invoke(args=["tokens", "create", "--name", "platform ingest", "--scope", "ingest"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Token 1 (ingest) created. Copy it now, it is not shown again:"
    secret = lines[1]
    assert secret.startswith("bo_")
    token = db.session.execute(db.select(ApiToken)).scalar_one()
    assert (token.name, token.scope, token.account_id, token.revoked_at) == ("platform ingest", "ingest", None, None)
    assert token.token_hash == hash_secret(secret)
    assert token.prefix == secret[:8]
    assert secret not in token.token_hash

    listed = runner.invoke(args=["tokens", "list"])
    assert listed.exit_code == 0
    assert listed.output == f"1\t{secret[:8]}…\tingest\tactive\tplatform ingest\n"
    assert secret not in listed.output
    entry = db.session.execute(db.select(AuditEntry)).scalar_one()
    assert (entry.operator_email, entry.action, entry.target_type, entry.target_id, entry.after) == (
        "system", "api_token.create", "api_token", "1",
        {"name": "platform ingest", "scope": "ingest", "account_id": None, "prefix": secret[:8], "revoked": False})


def test_tokens_create_refuses_bad_input(runner):
    result = runner.invoke(args=["tokens", "create", "--name", "x", "--scope", "root"])
    assert result.exit_code == 2
    result = runner.invoke(args=["tokens", "create", "--name", "x", "--scope", "account"])
    assert result.exit_code == 1
    assert result.output == "Error: A token of scope account needs the id of an existing account.\n"
    result = runner.invoke(args=["tokens", "create", "--name", "x", "--scope", "read", "--account", "acc_1"])
    assert result.exit_code == 1
    assert result.output == "Error: Only a token of scope account takes an account id.\n"
    assert db.session.execute(db.select(db.func.count()).select_from(ApiToken)).scalar_one() == 0


def test_tokens_revoke(runner):
    runner.invoke(args=["tokens", "create", "--name", "x", "--scope", "read"])
    result = runner.invoke(args=["tokens", "revoke", "1"])
    assert (result.exit_code, result.output) == (0, "Token 1 revoked.\n")
    assert "\trevoked\t" in runner.invoke(args=["tokens", "list"]).output
    result = runner.invoke(args=["tokens", "revoke", "2"])
    assert (result.exit_code, result.output) == (1, "Error: No token with id 2.\n")
    assert runner.invoke(args=["tokens", "revoke", "1"]).exit_code == 0  # again: nothing changes
    entries = db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    assert [(e.operator_email, e.action, e.target_id) for e in entries] == [
        ("system", "api_token.create", "1"), ("system", "api_token.revoke", "1")]
    assert (entries[1].before["revoked"], entries[1].after["revoked"]) == (False, True)


def test_a_revoked_token_is_refused_by_the_api(runner, client, app):
    """Uses the token against a protected API endpoint when one exists."""
    rules = [r for r in app.url_map.iter_rules()
             if r.rule.startswith("/api/v1/") and "GET" in r.methods and not r.arguments
             and r.endpoint != "api.openapi"]
    if not rules:
        return
    url = rules[0].rule
    secret = runner.invoke(args=["tokens", "create", "--name", "x", "--scope", "admin"]).output.splitlines()[1]
    assert client.get(url, headers={"Authorization": f"Bearer {secret}"}).status_code != 401
    runner.invoke(args=["tokens", "revoke", "1"])
    resp = client.get(url, headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["message"] == "The bearer token is unknown or revoked."
