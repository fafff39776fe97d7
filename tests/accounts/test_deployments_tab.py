"""The account's Deployments tab: lifecycle, add-ons on now, suspension, usage this month, timeline."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.extensions import db
from backoffice.usage import queries as usage_queries
from backoffice.usage import services
from backoffice.usage.parsing import StateIn, UsageIn
from tests.factories import AccountFactory

HX = {"HX-Request": "true"}


def _card(html: str, name: str) -> str:
    m = re.search(rf'<section class="card deployment" id="deployment-{name}".*?</section>', html, re.DOTALL)
    assert m, name
    return m.group(0)


@pytest.fixture
def deps(app):
    AccountFactory(id="acc_dep", name="Deploy AG")
    AccountFactory(id="acc_other", name="Other AG")
    db.session.commit()
    month, _end = usage_queries.month_bounds(datetime.now(UTC))
    created = month - timedelta(days=10)
    services.put_state("alpha", StateIn("acc_dep", "pro", frozenset({"crm", "voice"}), False, created))
    services.put_state("alpha", StateIn("acc_dep", "pro", frozenset({"crm", "voice"}), True,
                                        created + timedelta(days=2)))
    services.put_state("beta", StateIn("acc_dep", "basic", frozenset(), False, created + timedelta(days=1)))
    services.delete_deployment("beta", created + timedelta(days=3))
    services.put_state("gamma", StateIn("acc_other", "pro", frozenset({"crm"}), False, created))
    services.ingest_usage([
        UsageIn("alpha", "messages_in", Decimal("12.5"), month, "k1"),  # first instant: counted
        UsageIn("alpha", "messages_in", Decimal("7.25"), month + timedelta(seconds=1), "k2"),
        UsageIn("alpha", "ai_tokens", Decimal(1000), month + timedelta(seconds=2), "k3"),
        UsageIn("alpha", "messages_in", Decimal(99), month - timedelta(seconds=1), "k4"),  # last month
        UsageIn("gamma", "messages_in", Decimal(5), month, "k5"),  # another account
    ])
    return {"created": created, "month": month}


def test_tab_shows_each_deployment_exactly(deps, admin_client):
    resp = admin_client.get("/accounts/acc_dep/deployments")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-tab="deployments"' in html and "<html" in html
    assert re.findall(r'data-deployment="([^"]+)"', html) == ["beta", "alpha"]  # newest first
    assert "gamma" not in html

    alpha = _card(html, "alpha")
    created = deps["created"]
    assert f'data-created><time datetime="{created.isoformat().replace("+00:00", "Z")}"' in alpha
    assert "<dd data-deleted>—</dd>" in alpha
    assert "badge-warning\">Suspended" in alpha
    assert re.findall(r'badge-info">([^<]+)<', alpha.split("data-addons>")[1].split("</dd>")[0]) == ["crm", "voice"]
    usage = dict(re.findall(r'data-metric="([^"]+)" data-value="([^"]+)"', alpha))
    assert {k: Decimal(v) for k, v in usage.items()} == {
        "messages_in": Decimal("19.75"), "messages_out": Decimal(0), "ai_tokens": Decimal(1000),
        "resource_hours": Decimal(0)}
    events = re.findall(r"<tr><td><time[^>]*>[^<]*</time></td><td>([^<]+)</td><td>(?:<code>([^<]*)</code>)?</td>",
                        alpha)
    assert events == [("Suspended", ""), ("Add-on enabled", "voice"), ("Add-on enabled", "crm"),
                      ("Plan changed", "pro"), ("Created", "")]

    beta = _card(html, "beta")
    deleted = (created + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    assert f'data-deleted><time datetime="{deleted}"' in beta and "badge-danger\">Deleted" in beta
    assert "<dd data-addons>—</dd>" in beta
    assert re.findall(r'data-metric="[^"]+" data-value="([^"]+)"', beta) == ["0"] * 4
    assert re.findall(r"<tr><td><time[^>]*>[^<]*</time></td><td>([^<]+)</td>", beta) == [
        "Deleted", "Plan changed", "Created"]


def test_tab_is_a_fragment_for_htmx_and_a_page_otherwise(deps, admin_client):
    frag = admin_client.get("/accounts/acc_dep/deployments", headers=HX)
    text = frag.get_data(as_text=True)
    assert text.lstrip().startswith('<section id="account-tab"') and "<html" not in text
    assert 'data-deployment="alpha"' in text
    assert "HX-Request" in frag.headers["Vary"]
    for extra in ({"HX-Boosted": "true"}, {"HX-History-Restore-Request": "true"}):
        page = admin_client.get("/accounts/acc_dep/deployments", headers={**HX, **extra}).get_data(as_text=True)
        assert "<html" in page and 'data-tab="deployments"' in page


def test_tab_link_billing_posture_link_and_empty_state(deps, viewer_client):
    html = viewer_client.get("/accounts/acc_dep").get_data(as_text=True)
    assert 'href="/accounts/acc_dep/deployments"' in html
    assert 'id="billing-posture-link" href="/accounts/acc_dep/billing"' in html
    AccountFactory(id="acc_none", name="None AG")
    db.session.commit()
    empty = viewer_client.get("/accounts/acc_none/deployments").get_data(as_text=True)
    assert "This account has no deployments." in empty


@pytest.mark.parametrize("url,status", [("/accounts/nope/deployments", 404),
                                        ("/accounts/acc_dep/deployments?page=two", 400),
                                        ("/accounts/acc_dep/deployments?page=x", 400)])
def test_bad_input(deps, admin_client, url, status):
    assert admin_client.get(url).status_code == status


def test_recent_timelines_match_timeline_page(deps, app):
    page = usage_queries.timeline_page("alpha", 1, 50)
    recent = usage_queries.recent_timelines(["alpha", "beta"], 3)
    assert [tuple(r[1:]) for r in recent["alpha"]] == [tuple(r) for r in page.items[:3]]
    assert len(recent["beta"]) == 3
