"""A live Backoffice app served over HTTP on loopback, fed by localstripe's signed webhooks.

localstripe itself is the session fixture of tests/stripe/conftest.py (one process per
session, `--from-scratch`, terminated at the end of the session); `fake_stripe` wipes its
objects before each test. This module adds the app side: the app served by werkzeug in a thread
on a port the OS picks, and localstripe's webhook pointed at it.
"""
from __future__ import annotations

import contextlib
import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

from tests.stripe.conftest import API_KEY, FakeStripe, fake_stripe, localstripe_url  # noqa: F401

WEBHOOK_SECRET = "whsec_backoffice_integration"
WEBHOOK_ID = "backoffice-integration"
# localstripe sends each webhook one second after its event; events of an earlier test still in
# flight when the next test registers its webhook would reach the wrong app.
IN_FLIGHT_SECONDS = 1.3


@pytest.fixture
def app_config(app_config, localstripe_url):  # noqa: F811 - extends tests/conftest.py's
    return {
        **app_config,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_SECRET_KEY": API_KEY,
        "STRIPE_API_BASE": localstripe_url,
        "STRIPE_MAX_RETRIES": 0,
        "SERVER_NAME": None,  # requests come to 127.0.0.1:<port>
    }


@contextlib.contextmanager
def serve(app, threaded: bool):
    """The app behind a werkzeug server on 127.0.0.1; yields its base URL; shut down and joined,
    its request threads too (so no request still holds a connection when the app's pool closes)."""
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    server.daemon_threads = False  # server_close() joins them
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="live-app", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def live_app(app):
    """One request at a time: localstripe's concurrent deliveries queue up (see the report of
    `test_concurrent_deliveries_*` for what happens with several threads)."""
    with serve(app, threaded=False) as url:
        yield url


@pytest.fixture
def threaded_live_app(app):
    """A thread per request, as gunicorn workers or `backoffice run` serve it."""
    with serve(app, threaded=True) as url:
        yield url


@contextlib.contextmanager
def webhook_to(ls: FakeStripe, app_url: str):
    """localstripe's webhook pointed at the app's /stripe/webhook, disabled afterwards
    (localstripe cannot unregister one: it is re-registered for no event types)."""
    time.sleep(IN_FLIGHT_SECONDS)
    config = f"{ls.url}/_config/webhooks/{WEBHOOK_ID}"
    requests.post(config, data={"url": f"{app_url}/stripe/webhook", "secret": WEBHOOK_SECRET},
                  timeout=10).raise_for_status()
    try:
        yield ls
    finally:
        requests.post(config, json={"url": "http://127.0.0.1:9/disabled", "secret": WEBHOOK_SECRET,
                                    "events": []}, timeout=10).raise_for_status()


@pytest.fixture
def stripe_webhook(fake_stripe, live_app):  # noqa: F811
    with webhook_to(fake_stripe, live_app) as ls:
        yield ls


@pytest.fixture
def threaded_stripe_webhook(fake_stripe, threaded_live_app):  # noqa: F811
    with webhook_to(fake_stripe, threaded_live_app) as ls:
        yield ls
