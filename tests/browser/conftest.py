"""Browser harness: a real Backoffice served on 127.0.0.1 from its own migrated database, driven
by Playwright through the system Chromium (never a downloaded browser).

The tests skip, saying why, only when /usr/bin/chromium is missing; CI installs it."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from flask import Flask
from jinja2 import StrictUndefined
from playwright.sync_api import expect
from werkzeug.serving import make_server

from backoffice import create_app
from backoffice.config import PROJECT_ROOT
from backoffice.extensions import db
from tests.conftest import PASSWORD, scratch_database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
# Generous: the machine may be busy, and the dashboard loads many cards at once.
TIMEOUT_MS = 20_000
# htmx logs an aborted request (a navigation that cancels in-flight card loads) as an error.
IGNORED_CONSOLE = ("htmx:sendAbort", "htmx:afterRequest")
SCREENSHOTS = PROJECT_ROOT / "test-output" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
TABLET = {"width": 820, "height": 1180}


class ReadWhole:
    """Each answer read whole, its iterable closed at once. werkzeug's server closes a response's
    iterable in a `finally` that first drains the request socket; on a connection the browser
    reset (a favicon or script it stopped loading) that drain raises, the close is skipped, and
    the static file stays open until the garbage collector meets it (a ResourceWarning in
    whichever test runs then)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        body = self.app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()


class LiveServer:
    """The served app: `url(path)` and helpers that act on its database directly."""

    def __init__(self, app: Flask, base_url: str):
        self.app = app
        self.base_url = base_url

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def create_operator(self, email: str, role: str = "admin") -> str:
        from backoffice.operators import services

        with self.app.app_context():
            services.create_operator(email, PASSWORD, role)
            db.session.remove()
        return email


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    with scratch_database(base) as url:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(base / "instance"),
            "SECRET_KEY": "browser-tests",
            "RATELIMIT_STORAGE_URI": "memory://",
            "RATELIMIT_SIGN_IN": "100 per minute",
        })
        app.jinja_env.undefined = StrictUndefined
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            db.session.remove()
        server = make_server("127.0.0.1", 0, ReadWhole(app), threaded=True)
        server.daemon_threads = False  # server_close() joins the request threads before the pool closes
        thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
        thread.start()
        try:
            live = LiveServer(app, f"http://127.0.0.1:{server.server_port}")
            live.create_operator("admin@example.com", "admin")
            yield live
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()
            with app.app_context():
                db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no system Chromium at {CHROMIUM}: install it (apt-get install -y chromium); "
                    "CI does this in .ci/run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) per test; fails the test on any JavaScript error."""
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    errors: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error" and not msg.text.startswith(IGNORED_CONSOLE):
            errors.append(f"console: {msg.text}")

    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    page.js_errors = errors  # a test that expects an error response clears it
    yield page
    context.close()
    assert errors == [], errors


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
