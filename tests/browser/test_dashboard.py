"""The dashboard in a real browser: cards load after the shell and draw plotly charts, the period
switches in the URL, a banner appears and clears by polling, and kiosk mode rides out a server
restart (stale marker, then recovery without a reload) and fits one screen at four wall sizes.
Screenshots in en, de and kiosk mode (one per wall size)."""
from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from backoffice.extensions import db
from tests.browser.conftest import DESKTOP, ReadWhole
from tests.browser.test_shell import sign_in
from tests.conftest import PASSWORD
from tests.factories import (
    AccountFactory,
    BillingEventFactory,
    LoginFactory,
    PaymentTransactionFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.browser
D = Decimal
CARDS = ["kpis", "mrr-trend", "revenue-trend", "movements", "plan-distribution", "growth", "logins",
         "recent-signups", "recent-billing-events", "recent-payments"]


@pytest.fixture(scope="module")
def dashboard_data(live_server):
    """Some months of a small platform, inserted as rows."""
    now = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    with live_server.app.app_context():
        PlanFactory(plan_key="basic", name="Basic", monthly_amount=D("49"))
        PlanFactory(plan_key="pro", name="Pro", monthly_amount=D("149"))
        for i, (price, plan, days) in enumerate([("149", "pro", 80), ("49", "basic", 60), ("149", "pro", 25),
                                                 ("49", "basic", 12), ("149", "pro", 3)]):
            account = AccountFactory(name=f"Dash Customer {i}", created_at=now - timedelta(days=days + 1))
            sub = SubscriptionFactory(account_id=account.id, plan=plan, price_amount=D(price))
            BillingEventFactory(subscription=sub, new_amount=D(price), to_plan=plan,
                                occurred_at=now - timedelta(days=days))
            PaymentTransactionFactory(account_id=account.id, amount_excluding_tax=D(price),
                                      date=now - timedelta(days=days))
        user = UserFactory()
        for d in range(0, 40, 3):
            LoginFactory(user_id=user.id, at=now - timedelta(days=d))
        db.session.commit()
        db.session.remove()


def open_dashboard(page: Page, live_server, path: str = "/") -> None:
    page.goto(live_server.url(path))
    cards_loaded(page)


def cards_loaded(page: Page) -> None:
    for name in CARDS:
        expect(page.locator(f"#card-{name}")).not_to_have_class(re.compile(r"is-loading"))
    # plotly.js (4.8 MB) is parsed once per page: give the first chart time.
    expect(page.locator("#card-mrr-trend .dash-chart .main-svg").first).to_be_visible(timeout=30_000)


def test_cards_load_and_period_switches_in_the_url(page, live_server, dashboard_data, screenshots):
    # Its own operator: the test turns its language to German, which other tests' admin must not inherit.
    sign_in(page, live_server, live_server.create_operator("dashboard@example.com", "admin"))
    open_dashboard(page, live_server)
    expect(page.locator("#card-kpis .tile-value").nth(1)).to_have_text("€545.00")
    expect(page.locator("#card-mrr-trend details tbody tr")).to_have_count(30)
    # Every chart is drawn by the vendored plotly.js, with its accessible table beside it.
    for name in ("mrr-trend", "revenue-trend", "movements", "plan-distribution", "growth", "logins"):
        expect(page.locator(f"#card-{name} .dash-chart .main-svg").first).to_be_visible()
        expect(page.locator(f"#card-{name} details table")).to_have_count(1)
    page.screenshot(path=str(screenshots / "dashboard-en.png"), full_page=True)

    page.get_by_role("link", name="Last 7 days", exact=True).click()
    expect(page).to_have_url(live_server.url("/?period=7"))
    expect(page.get_by_role("link", name="Last 7 days", exact=True)).to_have_attribute("aria-current", "true")
    expect(page.locator("#card-mrr-trend details tbody tr")).to_have_count(7)
    expect(page.locator("#card-kpis")).to_contain_text("+1 new in the last 7 days")
    page.get_by_role("link", name="Last 90 days", exact=True).click()
    expect(page).to_have_url(live_server.url("/?period=90"))
    expect(page.locator("#card-mrr-trend details tbody tr")).to_have_count(90)
    page.go_back()
    expect(page).to_have_url(live_server.url("/?period=7"))
    expect(page.locator("#card-mrr-trend details tbody tr")).to_have_count(7)
    # A hover on the MRR chart shows the date and the signed change vs the prior period.
    expect(page.locator("#card-mrr-trend .dash-chart .main-svg").first).to_be_visible(timeout=30_000)
    page.evaluate("""() => { const gd = document.querySelector('#card-mrr-trend .dash-chart');
                             Plotly.Fx.hover(gd, [{curveNumber: 1, pointNumber: 3}]); }""")
    hover = page.locator("#card-mrr-trend .hoverlayer")
    expect(hover).to_contain_text("vs prior period")
    expect(hover).to_contain_text(re.compile(r"[+−]?€[0-9,.]+ vs prior period"))

    # German: same dashboard, German labels and number format.
    page.locator("details.operator-menu > summary").click()
    page.get_by_role("button", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    open_dashboard(page, live_server, "/?period=30")
    expect(page.locator("#card-kpis .tile-value").nth(1)).to_have_text("545,00\xa0€")
    expect(page.get_by_role("link", name="Letzte 7 Tage", exact=True)).to_be_visible()
    # The charts' axes in German too (issue 22 part 6): month names and the decimal comma.
    axis = page.locator("#card-mrr-trend .dash-chart .xaxislayer-above .xtick text")
    expect(axis.first).to_be_visible(timeout=30_000)
    ticks = " ".join(axis.all_text_contents())
    assert re.search(r"\b(Jan|Feb|März|Apr|Mai|Juni|Juli|Aug|Sept|Okt|Nov|Dez)\b", ticks), ticks
    assert not re.search(r"\b(Mar|May|Jun|Jul|Oct|Dec)\b", ticks), ticks
    values = " ".join(page.locator("#card-mrr-trend .dash-chart .yaxislayer-above .ytick text").all_text_contents())
    assert "," not in values or re.search(r"\d,\d", values), values  # no English thousands comma
    # No label runs over another: legends, tick labels and axis titles keep apart (long German words).
    overlaps = page.evaluate("""() => {
      const box = e => e.getBoundingClientRect();
      const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
      const out = [];
      document.querySelectorAll('.dash-chart .main-svg').forEach(svg => {
        const titles = [...svg.querySelectorAll('.g-xtitle text, .g-ytitle text')].filter(t => t.textContent);
        const others = [...svg.querySelectorAll('.legend .traces, .xtick text, .ytick text')];
        titles.forEach(t => others.forEach(o => { if (meet(box(t), box(o))) out.push(t.textContent + ' / ' + o.textContent); }));
      });
      return out; }""")
    assert overlaps == []
    page.screenshot(path=str(screenshots / "dashboard-de.png"), full_page=True)
    page.locator("details.operator-menu > summary").click()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_banner_appears_and_clears(page, live_server, dashboard_data):
    live_server.app.config["BANNER_POLL_SECONDS"] = 1
    try:
        sign_in(page, live_server, "admin@example.com")
        slot = page.locator("#banner-slot")
        expect(slot.locator("[data-banner]")).to_have_count(0)
        with live_server.app.app_context():
            sub = SubscriptionFactory(plan="pro", price_amount=D("149"))  # paid, no ledger rows yet
            db.session.commit()
            sub_id = sub.id
            db.session.remove()
        # The page is not reloaded: the slot polls and the banner appears, linking to the list.
        unsynced = slot.locator('[data-banner="unsynced"]')
        expect(unsynced).to_contain_text("1 account has not been synced yet")
        expect(unsynced.get_by_role("link")).to_have_attribute("href", "/accounts?unsynced=1")
        expect(slot).to_have_attribute("aria-live", "polite")
        expect(slot.locator('[data-banner="mrr-mismatch"]')).to_contain_text("the tile shows €694.00")
        with live_server.app.app_context():
            from backoffice.ledger.models import Subscription

            BillingEventFactory(subscription=db.session.get(Subscription, sub_id), new_amount=D("149"),
                                occurred_at=datetime.now(UTC) - timedelta(minutes=1))
            db.session.commit()
            db.session.remove()
        expect(slot.locator("[data-banner]")).to_have_count(0)
        assert slot.evaluate("el => el.getBoundingClientRect().height") == 0
    finally:
        live_server.app.config.pop("BANNER_POLL_SECONDS", None)


class RestartableServer:
    """The live app on a port of its own, which the test can stop and start again."""

    def __init__(self, app):
        self.app = app
        self.port = 0
        self.server = None
        self.thread = None
        self.running = False

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, ReadWhole(self.app), threaded=True)
        self.server.daemon_threads = False  # stop() joins the request threads: a cut response closes its file
        self.running = True
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def test_kiosk_survives_a_server_restart(browser, live_server, dashboard_data, screenshots):
    live_server.app.config["KIOSK_REFRESH_SECONDS"] = 2
    server = RestartableServer(live_server.app)
    server.start()
    # Its own context: a stopped server makes the browser log network errors, which is the point here.
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    try:
        with live_server.app.app_context():
            from backoffice.operators import services

            services.create_operator("wall@example.com", PASSWORD, "viewer", kiosk=True)
            db.session.remove()
        page.goto(server.url("/sign-in"))
        page.get_by_label("E-mail").fill("wall@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(server.url("/dashboard?kiosk=1"))
        for name in CARDS:
            expect(page.locator(f"#card-{name}")).not_to_have_class(re.compile(r"is-loading"))
        expect(page.locator("nav.sidebar")).to_have_count(0)
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
        card = page.locator("#card-mrr-trend")
        first = card.locator(".dash-updated").inner_text()
        # Each card refreshes itself without a page load.
        page.evaluate("window.__samePage = true")
        expect(card.locator(".dash-updated")).not_to_have_text(first, timeout=10_000)
        page.screenshot(path=str(screenshots / "dashboard-kiosk.png"), full_page=True)

        server.stop()
        expect(card).to_have_class(re.compile(r"is-stale"), timeout=15_000)
        expect(card.locator(".dash-stale")).to_be_visible()
        expect(card.locator(".dash-stale")).to_contain_text("Cannot reach the server")
        expect(page.locator("#card-kpis .tile-value").first).to_be_visible()  # the last figures stay
        page.screenshot(path=str(screenshots / "dashboard-kiosk-stale.png"), full_page=True)

        server.start()  # same port
        expect(card).not_to_have_class(re.compile(r"is-stale"), timeout=15_000)
        expect(card.locator(".dash-stale")).to_be_hidden()
        expect(page.locator(".is-stale")).to_have_count(0, timeout=15_000)
        assert page.evaluate("window.__samePage") is True  # recovered without a reload
        assert js_errors == []
    finally:
        live_server.app.config.pop("KIOSK_REFRESH_SECONDS", None)
        context.close()
        server.stop()


# A wall screen's sizes: the kiosk dashboard fills each one without scrolling.
WALLS = [{"width": 1280, "height": 720}, {"width": 1920, "height": 1080},
         {"width": 2560, "height": 1440}, {"width": 3840, "height": 2160}]
# Every element inside a KPI tile or a card whose box spills out of the tile or card, whose text
# is wider than its box, or, for a figure, wider than its parent; every chart label outside its chart.
OVERFLOWS = """() => {
  const out = [];
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
    ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 &&
    !el.closest('.visually-hidden') && getComputedStyle(el).visibility !== 'hidden'; };
  const inside = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1 &&
    r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  for (const box of document.querySelectorAll('#card-kpis .tile, .dash-card')) {
    const b = box.getBoundingClientRect();
    for (const el of box.querySelectorAll('*')) {
      if (el.closest('.main-svg, .svg-container') || !shown(el)) continue;
      if (!inside(el.getBoundingClientRect(), b)) out.push('outside its tile/card: ' + name(el));
      if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) out.push('text cut: ' + name(el));
    }
  }
  for (const chart of document.querySelectorAll('.dash-card .dash-chart')) {  // plotly's labels and legend
    const b = chart.getBoundingClientRect();
    for (const el of chart.querySelectorAll('.main-svg text')) {
      if (el.textContent.trim() && shown(el) && !inside(el.getBoundingClientRect(), b))
        out.push('chart text cut: ' + chart.closest('.dash-card').id + ' "' + el.textContent.trim() + '"');
    }
  }
  for (const el of document.querySelectorAll('.tile-value, .dash-figure, .dash-card td.num')) {
    if (!shown(el)) continue;
    if (el.scrollWidth > el.clientWidth + 1) out.push('number cut: ' + name(el));
    if (!inside(el.getBoundingClientRect(), el.parentElement.getBoundingClientRect()))
      out.push('number outside its parent: ' + name(el));
  }
  return out;
}"""


@pytest.fixture(scope="module")
def wall(live_server, dashboard_data):
    """A kiosk operator; old payments large enough for a long total revenue (€163,721.10) and old
    accounts with longer names, so that the recent-activity tables have all their eight rows."""
    now = datetime.now(UTC)
    with live_server.app.app_context():
        from backoffice.accounts.models import Account
        from backoffice.operators import services

        services.create_operator("wall-fit@example.com", PASSWORD, "viewer", kiosk=True)
        account = db.session.scalars(db.select(Account).where(Account.name == "Dash Customer 0")).one()
        for amount, days in [("161000.00", 200), ("1088.05", 210), ("1088.05", 220)]:
            PaymentTransactionFactory(account_id=account.id, amount_excluding_tax=D(amount),
                                      date=now - timedelta(days=days))
        for days, name in [(300, "Bergmann & Söhne Logistik"), (310, "Nordlicht Studios"), (320, "Acme")]:
            AccountFactory(name=name, created_at=now - timedelta(days=days))
        db.session.commit()
        db.session.remove()
    return "wall-fit@example.com"


def kpi_font_px(page: Page) -> float:
    return page.locator("#card-kpis .tile-value").first.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")


# The four walls in English, the smallest in German too (longer words, "163.721,10 €").
SCREENS = [(size, "en-US") for size in WALLS] + [(WALLS[0], "de-DE")]
TOTAL_REVENUE = {"en-US": "€163,721.10", "de-DE": "163.721,10\xa0€"}


@pytest.mark.parametrize(("size", "locale"), SCREENS,
                         ids=[f"{s['width']}x{s['height']}-{loc[:2]}" for s, loc in SCREENS])
def test_kiosk_fits_one_screen(browser, live_server, wall, screenshots, size, locale):
    context = browser.new_context(viewport=size, locale=locale)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(live_server.url("/sign-in"))
        page.locator("#email").fill(wall)  # by id: the form is in the browser's language
        page.locator("#password").fill(PASSWORD)
        page.locator("#password").press("Enter")
        expect(page).to_have_url(live_server.url("/"))
        cards_loaded(page)  # on the page signing in led to: a second load would cut plotly.js's download
        for name in ("mrr-trend", "revenue-trend", "movements", "plan-distribution", "growth", "logins"):
            expect(page.locator(f"#card-{name} .dash-chart .main-svg").first).to_be_visible()
        page.wait_for_timeout(500)  # plotly's responsive resize after the last card settled
        expect(page.locator("#card-kpis .tile-value").nth(2)).to_have_text(TOTAL_REVENUE[locale])
        name = f"dashboard-kiosk-{size['width']}x{size['height']}-{locale[:2]}"
        page.screenshot(path=str(screenshots / f"{name}.png"))

        scroll = page.evaluate("""() => ({h: document.scrollingElement.scrollHeight, w: document.scrollingElement.scrollWidth,
                                          ih: innerHeight, iw: innerWidth})""")
        assert scroll["h"] <= scroll["ih"] and scroll["w"] <= scroll["iw"], scroll
        outside = page.evaluate("""() => [...document.querySelectorAll('#card-kpis .tile, .dash-card')]
          .filter(el => { const r = el.getBoundingClientRect();
                          return r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight; })
          .map(el => el.id || el.textContent.trim().slice(0, 30))""")
        assert outside == []
        overflows = page.evaluate(OVERFLOWS)
        assert overflows == [], "\n".join(overflows)
        # No menu, no operator menu, no period buttons, no filter controls on a wall.
        expect(page.locator("nav.sidebar")).to_have_count(0)
        expect(page.locator("details.operator-menu")).to_have_count(0)
        expect(page.locator(".dash-periods")).to_have_count(0)
        expect(page.locator("main").locator("input, select, button, summary")).to_have_count(0)

        # A kiosk that cannot reach the server marks every card stale and still fits.
        page.route("**/dashboard/cards/**", lambda route: route.abort())
        page.evaluate("""() => document.querySelectorAll('[data-card]').forEach(card =>
          htmx.ajax('GET', card.getAttribute('hx-get'), {source: card, target: card, swap: 'outerHTML'}))""")
        expect(page.locator(".dash-card.is-stale")).to_have_count(len(CARDS))
        page.wait_for_timeout(1000)  # the charts redrawn in their smaller cells
        page.screenshot(path=str(screenshots / f"{name}-stale.png"))
        scroll = page.evaluate("() => document.scrollingElement.scrollHeight")
        assert scroll <= size["height"], scroll
        overflows = page.evaluate(OVERFLOWS)
        assert overflows == [], "\n".join(overflows)

        # Type scales with the screen: the KPI figures are larger than on the smallest wall.
        font = kpi_font_px(page)
        page.set_viewport_size(WALLS[0])
        page.wait_for_timeout(500)
        smallest = kpi_font_px(page)
        if size != WALLS[0]:
            assert font > smallest * 1.2, (font, smallest)
        overflows = page.evaluate(OVERFLOWS)  # still fits after the screen changed under it
        assert overflows == [], "\n".join(overflows)
    finally:
        context.close()
