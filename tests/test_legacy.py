"""The previous release's URLs and CLI name keep working for one release (issue 19 part 1)."""
from __future__ import annotations

import pytest

from backoffice.legacy import MOVED


@pytest.mark.parametrize(("old", "new"), [
    ("/billing-events", "/ledger"),
    ("/billing-events?view=mrr&search=a%20b", "/ledger?view=mrr&search=a+b"),
    ("/accounts/acc_1/billing-events?page=2", "/accounts/acc_1/ledger?page=2"),
    ("/accounts/acc_1/billing-events/corrections", "/accounts/acc_1/ledger/corrections"),
    ("/usage/accounts/acc_1/billing", "/accounts/acc_1/billing"),
    ("/billing-events?_external=1&_anchor=x", "/ledger"),  # url_for's own options are not taken
])
def test_old_urls_redirect_permanently(viewer_client, old, new):
    resp = viewer_client.get(old)
    assert resp.status_code == 308
    assert resp.headers["Location"] == new
    assert resp.headers["Deprecation"] == "true"
    assert resp.headers["Link"] == f'<{new}>; rel="successor-version"'


def test_old_urls_still_need_a_signed_in_operator(client):
    for rule in MOVED:
        resp = client.get(rule.replace("<account_id>", "acc_1"))
        assert resp.status_code == 302 and "/sign-in" in resp.headers["Location"], rule


def test_a_followed_redirect_shows_the_new_page(viewer_client):
    resp = viewer_client.get("/billing-events?view=mrr", follow_redirects=True)
    assert resp.status_code == 200
    assert resp.request.path == "/ledger"
    assert "<h1>Ledger</h1>" in resp.get_data(as_text=True)


def test_the_old_cli_name_runs_the_operators_commands_with_a_warning(runner):
    result = runner.invoke(args=["users", "create", "--email", "old@example.com", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    assert "Created viewer old@example.com" in result.output
    assert "deprecated" in result.output
