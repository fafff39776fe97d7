"""The dashboard pages: shell and card fragments, period, banners, kiosk, billing switched off."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.dashboard import cards, queries
from backoffice.extensions import db
from tests.conftest import PASSWORD, sign_in
from tests.factories import (
    AccountFactory,
    BillingEventFactory,
    PaymentTransactionFactory,
    SubscriptionFactory,
)

D = Decimal
HX = {"HX-Request": "true"}
CARD_NAMES = ["kpis", "mrr-trend", "revenue-trend", "movements", "plan-distribution", "growth", "logins",
              "recent-signups", "recent-billing-events", "recent-payments"]
NON_BILLING = ["kpis", "growth", "logins", "recent-signups"]


def _now():
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def subscribe(price, days, **kw):
    now = _now()
    account = AccountFactory(created_at=now - timedelta(days=days))
    sub = SubscriptionFactory(account_id=account.id, price_amount=D(price), **kw)
    BillingEventFactory(subscription=sub, previous_amount=D(0), new_amount=D(price),
                        occurred_at=now - timedelta(days=days))
    return sub


@pytest.fixture
def issue_example(app):
    """Two subscriptions at 100 created 90 days ago, one at 49.99 five days ago."""
    subscribe("100", 90)
    subscribe("100", 90)
    subscribe("49.99", 5)
    db.session.commit()


def text(resp) -> str:
    return resp.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/", "/dashboard", "/dashboard/cards/kpis", "/dashboard/cards/mrr-trend"])
@pytest.mark.parametrize("bad", ["14", "abc", "", "7.0", "-7"])
def test_period_other_than_7_30_90_is_a_400(admin_client, url, bad):
    resp = admin_client.get(f"{url}?period={bad}")
    assert resp.status_code == 400
    assert "period must be 7, 30 or 90." in text(resp)


@pytest.mark.parametrize("url", ["/", "/dashboard"])
def test_shell_lists_every_card_as_a_fragment_loaded_after_the_page(admin_client, url):
    html = text(admin_client.get(url + "?period=7"))
    for name in CARD_NAMES:
        assert f'hx-get="/dashboard/cards/{name}?period=7" hx-trigger="load" hx-swap="outerHTML"' in html
    assert html.count('aria-current="true"') == 1
    assert '<a href="/?period=7" aria-current="true">Last 7 days</a>' in html
    assert '<a href="/?period=90" >Last 90 days</a>' in html


def test_card_fragment_conventions(admin_client):
    url = "/dashboard/cards/growth?period=30"
    fragment = text(admin_client.get(url, headers=HX))
    assert fragment.lstrip().startswith('<section id="card-growth"') and "<html" not in fragment
    for headers in ({}, {**HX, "HX-Boosted": "true"}, {**HX, "HX-History-Restore-Request": "true"}):
        page = text(admin_client.get(url, headers=headers))
        assert page.startswith("<!doctype html>")
        assert 'id="card-growth"' in page and 'id="card-mrr-trend"' in page
    resp = admin_client.get(url, headers=HX)
    assert "HX-Request" in resp.headers["Vary"]


def test_unknown_card_is_404(admin_client):
    assert admin_client.get("/dashboard/cards/nope").status_code == 404


def test_kpi_tiles_exact_and_links(admin_client, issue_example):
    html = text(admin_client.get("/dashboard/cards/kpis?period=30", headers=HX))
    tiles = re.findall(r'<a class="tile" href="([^"]+)">\s*<span class="tile-label">([^<]+)</span>\s*'
                       r'<span class="tile-value">([^<]+)</span>', html)
    assert tiles == [
        ("/accounts", "Total accounts", "3"),
        ("/ledger?view=mrr", "Blended MRR", "€249.99"),
        ("/invoices", "Total revenue", "€0.00"),
        ("/users", "Users active", "0"),
        ("/users", "Active sessions", "0"),
    ]
    assert "+25.0% vs €200.00 at the start of the period" in html
    assert "+1 new in the last 30 days" in html


def test_kpis_in_german(admin_client, issue_example):
    from backoffice.operators.models import Operator

    db.session.execute(sa.update(Operator).values(locale="de"))
    db.session.commit()
    html = text(admin_client.get("/dashboard/cards/kpis?period=30", headers=HX))
    assert "249,99\xa0€" in html
    assert "+25,0\xa0%" in html


def test_mrr_card_has_chart_and_accessible_table(admin_client, issue_example):
    html = text(admin_client.get("/dashboard/cards/mrr-trend?period=7", headers=HX))
    assert 'data-plotly-src="/static/vendor/plotly.min.js"' in html
    fig = json.loads(re.search(r'<script type="application/json">(.*?)</script>', html, re.DOTALL).group(1))
    assert fig["layout"]["title"]["text"] == "MRR per day"
    assert (fig["layout"]["xaxis"]["title"]["text"], fig["layout"]["yaxis"]["title"]["text"]) == ("Date", "MRR")
    prior, current = fig["data"]
    assert (prior["name"], current["name"]) == ("Prior period", "Current period")
    assert current["hovertemplate"].endswith("%{customdata[4]} vs prior period<extra></extra>")
    # Tooltip: the date, the value and the signed change vs the prior period, green when up.
    assert current["customdata"][-1][1:] == ["€249.99", current["customdata"][-1][2], "€200.00", "+€49.99"]
    assert current["hoverlabel"]["bgcolor"][-1] == "#146c43"
    assert current["y"][-1] == 249.99
    rows = re.findall(r"<tr><th scope=\"row\">([^<]+)</th><td class=\"num\">([^<]+)</td>", html)
    assert [v for _d, v in rows] == ["€200.00"] + ["€249.99"] * 6
    assert "+€49.99 in the period" in html


def test_revenue_card_refund_points(admin_client):
    now = _now()
    PaymentTransactionFactory(amount_excluding_tax=D("149"), date=now - timedelta(days=5),
                              refunded_at=now - timedelta(days=1))
    db.session.commit()
    html = text(admin_client.get("/dashboard/cards/revenue-trend?period=7", headers=HX))
    rows = re.findall(r"<tr><th scope=\"row\">[^<]+</th><td class=\"num\">([^<]+)</td>", html)
    assert rows == ["€0.00", "€149.00", "€149.00", "€149.00", "€149.00", "€0.00", "€0.00"]


def test_every_card_renders_with_data(admin_client, issue_example):
    for name in CARD_NAMES:
        resp = admin_client.get(f"/dashboard/cards/{name}?period=90", headers=HX)
        assert resp.status_code == 200, name
        assert f'id="card-{name}"' in text(resp)
        assert "Updated " in text(resp)


def test_recent_billing_events_card_links_to_the_ledger(admin_client, issue_example):
    html = text(admin_client.get("/dashboard/cards/recent-billing-events", headers=HX))
    assert html.count("Subscribed") == 3
    assert '<a href="/ledger">View all</a>' in html


def test_a_failing_card_fails_alone(app, admin_client, monkeypatch):
    app.config["PROPAGATE_TEST_ERRORS"] = False

    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(queries, "mrr_trend", boom)
    assert admin_client.get("/dashboard/cards/mrr-trend", headers=HX).status_code == 500
    for name in CARD_NAMES:
        if name != "mrr-trend":
            assert admin_client.get(f"/dashboard/cards/{name}", headers=HX).status_code == 200, name
    # The placeholder carries what the browser shows inline: the error and a retry button.
    html = text(admin_client.get("/"))
    assert 'data-error-text="This card could not be loaded." data-retry-text="Retry"' in html


def test_kiosk_cards_poll_themselves_and_the_page_has_no_navigation(app, admin_client, issue_example):
    app.config["KIOSK_REFRESH_SECONDS"] = 15
    html = text(admin_client.get("/dashboard?kiosk=1&period=7"))
    assert 'class="sidebar"' not in html and 'class="kiosk' in html
    assert "dash-periods" not in html  # a wall's period is its URL
    assert 'hx-get="/dashboard/cards/mrr-trend?period=7&amp;kiosk=1" hx-trigger="load, every 15s"' in html
    card = text(admin_client.get("/dashboard/cards/mrr-trend?period=7&kiosk=1", headers=HX))
    # The chart fills its card; nothing to click: no data table, no "View all".
    assert "data-plotly-fit" in card and "dash-data" not in card
    assert "dash-more" not in text(admin_client.get("/dashboard/cards/recent-signups?kiosk=1", headers=HX))
    assert 'hx-get="/dashboard/cards/mrr-trend?period=7&amp;kiosk=1" hx-trigger="every 15s" hx-swap="outerHTML"' in card
    assert 'data-stale-text="Cannot reach the server; data from ' in card
    assert '<p class="dash-stale" role="status" hidden></p>' in card
    # Outside kiosk mode a loaded card does not poll.
    assert "every" not in text(admin_client.get("/dashboard/cards/mrr-trend?period=7", headers=HX))


def test_the_kiosk_toggle_survives_an_answer_to_an_older_request(admin_client):
    """A request sent before the toggle (a dashboard card still loading) answers with the session
    cookie as it was when it started: the toggle keeps its own cookie, which no other answer
    writes. (In the session, kiosk mode was lost now and then right after switching it on.)"""
    kiosk = {"X-CSRFToken": admin_client.csrf, "HX-Request": "true"}
    before = admin_client.get_cookie("session", domain="backoffice.test").value
    assert admin_client.post("/operators/me/kiosk", headers=kiosk).headers["HX-Redirect"] == "/?kiosk=1"
    cookie = admin_client.get_cookie("backoffice_kiosk", domain="backoffice.test")
    assert (cookie.value, cookie.http_only, cookie.same_site, cookie.path) == ("1", True, "Lax", "/")
    admin_client.set_cookie("session", before, domain="backoffice.test")  # the older request's answer
    html = text(admin_client.get("/accounts"))
    assert 'class="sidebar"' not in html and 'class="kiosk' in html
    assert 'role="switch" aria-checked="true"' in html

    assert admin_client.post("/operators/me/kiosk", headers=kiosk).headers["HX-Redirect"] == "/"
    assert admin_client.get_cookie("backoffice_kiosk", domain="backoffice.test") is None
    assert 'class="sidebar"' in text(admin_client.get("/accounts"))

    admin_client.post("/operators/me/kiosk", headers=kiosk)
    admin_client.post("/sign-out", headers=kiosk)  # signing out ends kiosk mode too
    assert admin_client.get_cookie("backoffice_kiosk", domain="backoffice.test") is None


def test_banner_slot_polls_every_60s_while_visible(admin_client):
    html = text(admin_client.get("/"))
    assert ('id="banner-slot" class="banner-slot" role="region" aria-label="Data quality" aria-live="polite" '
            'hx-get="/banners" hx-swap="innerHTML"') in html
    # No trigger filter (it would need eval, which the CSP forbids): app.js skips hidden tabs.
    assert 'hx-trigger="load, every 60s, visibilitychange from:document" data-poll-when-visible' in html


def test_banners_empty_when_clear_then_each_links_to_its_list(admin_client, now=None):
    assert text(admin_client.get("/banners", headers=HX)) == ""
    subscribe("100", 10)
    SubscriptionFactory(price_amount=D("60"), drift_detected=True)  # unsynced, drifting, not in the ledger
    db.session.commit()
    html = text(admin_client.get("/banners", headers=HX))
    assert re.findall(r'<li class="banner" data-banner="([^"]+)"><span>([^<]+)</span> <a href="([^"]+)">', html) == [
        ("unsynced", "1 account has not been synced yet: the MRR trend is incomplete.", "/accounts?unsynced=1"),
        ("mrr-mismatch", "Dashboard MRR mismatch: the tile shows €160.00, the ledger shows €100.00.",
         "/ledger"),
        ("drift", "1 account has billing drift detected.", "/accounts?drift=1"),
    ]


BILLING_TABLES = ("subscriptions", "billing_events", "payment_transactions", "plans", "stripe_events")


def test_billing_disabled_hides_and_queries_nothing_billing(app, admin_client, issue_example):
    app.config["BILLING_ENABLED"] = False
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        shell = text(admin_client.get("/?period=7"))
        fragments = {n: admin_client.get(f"/dashboard/cards/{n}?period=7", headers=HX) for n in CARD_NAMES}
        banner = admin_client.get("/banners", headers=HX)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert statements, "the listener saw the page's queries"
    touching = [s for s in statements if any(re.search(rf"\b{t}\b", s) for t in BILLING_TABLES)]
    assert touching == []
    assert 'hx-get="/banners"' not in shell
    assert [n for n in CARD_NAMES if f'id="card-{n}"' in shell] == NON_BILLING
    assert {n: r.status_code for n, r in fragments.items()} == {n: 200 if n in NON_BILLING else 404
                                                                for n in CARD_NAMES}
    kpi = text(fragments["kpis"])
    assert "Blended MRR" not in kpi and "Total revenue" not in kpi and "Total accounts" in kpi
    assert text(banner) == ""


def test_card_registry_matches_template_blocks(app):
    source = app.jinja_env.loader.get_source(app.jinja_env, "dashboard/index.html")[0]
    for card in cards.CARDS.values():
        assert f"{{% block {card.block} %}}" in source


def test_kiosk_operator_is_view_only_with_a_long_session(app, client, runner):
    result = runner.invoke(args=["operators", "create", "--email", "Wall@Example.com", "--password", PASSWORD,
                                 "--kiosk"])
    assert result.exit_code == 0, result.output
    assert result.output == "Created kiosk wall@example.com\n"
    from backoffice.operators.models import Operator

    op = db.session.execute(sa.select(Operator).where(Operator.email == "wall@example.com")).scalar_one()
    assert (op.kiosk, op.role, op.is_admin) == (True, "viewer", False)
    token = sign_in(client, "wall@example.com")
    cookie = client.get_cookie("remember_token", domain="backoffice.test")
    assert cookie is not None
    lifetime = cookie.expires - datetime.now(UTC)
    assert timedelta(days=89) < lifetime <= timedelta(days=90)
    html = text(client.get("/"))
    assert 'class="sidebar"' not in html and "Sign out" not in html and "operator-menu" not in html
    assert client.post("/operators/invite", data={"email": "x@example.com", "role": "viewer"},
                       headers={"X-CSRFToken": token}).status_code == 403
    # Its session survives losing the session cookie (a restarted browser or server).
    client.delete_cookie("session", domain="backoffice.test")
    assert client.get_cookie("session", domain="backoffice.test") is None
    assert client.get("/").status_code == 200


def test_kiosk_and_admin_flags_exclude_each_other(runner):
    result = runner.invoke(args=["operators", "create", "--email", "k@example.com", "--password", PASSWORD,
                                 "--kiosk", "--admin"])
    assert result.exit_code != 0 and "exclude each other" in result.output


def test_normal_operator_gets_no_remember_cookie(admin_client):
    assert admin_client.get_cookie("session", domain="backoffice.test") is not None
    assert admin_client.get_cookie("remember_token", domain="backoffice.test") is None
