"""localstripe, a real stateful fake Stripe server, run as a separate process for the session
(started only by tests that ask for it), wiped before each test; and an app configured to use it."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import stripe

from backoffice.extensions import db
from backoffice.stripe.gateway import StripeGateway
from tests.stripe import fake_stripe as fake

LAUNCHER = Path(__file__).with_name("run_localstripe.py")  # localstripe without its per-write pickle
API_KEY = "sk_test_backoffice"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminates a server the tests started, killing it if it does not end in `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def running_worker(env: dict, log_path: Path, *args: str):
    """`backoffice worker ARGS` (a real Celery worker) with `env`, its output in `log_path`;
    yields the process; stopped on exit."""
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "backoffice"), "worker", *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            stop(proc, timeout=20)


@contextlib.contextmanager
def running_localstripe(tmp_path_factory, *flags: str):
    """`localstripe --port P --from-scratch` (no disk snapshot, see run_localstripe.py) on a free
    port: its URL; stopped on exit."""
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("w")
    proc = subprocess.Popen([sys.executable, str(LAUNCHER), "--port", str(port), *flags], stdout=log,
                            stderr=subprocess.STDOUT, cwd=str(tmp_path_factory.getbasetemp()))
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    """localstripe for the session."""
    with running_localstripe(tmp_path_factory) as url:
        yield url


@dataclass
class FakeStripe:
    """The test's side of localstripe: the real `stripe` client, creating what a story needs."""

    url: str
    client: stripe.StripeClient

    def customer(self, account_id: str, name: str = "Acme AG") -> str:
        return self.client.v1.customers.create(
            {"name": name, "email": f"billing@{account_id}.test", "metadata": {"account_id": account_id}}).id

    def plan(self, plan_id: str, amount_minor: int, currency: str = "eur", interval: str = "month") -> str:
        """A product and its price, both with the id `plan_id` (Backoffice's plan key is the product)."""
        product = self.client.v1.products.create({"id": plan_id, "name": plan_id.title()})
        self.client.v1.plans.create({"id": plan_id, "product": product.id, "amount": amount_minor,
                                     "currency": currency, "interval": interval})
        return plan_id

    def subscribe(self, customer_id: str, plan_id: str) -> dict:
        pm = self.client.v1.payment_methods.attach("pm_card_visa", {"customer": customer_id})
        self.client.v1.customers.update(customer_id, {"invoice_settings": {"default_payment_method": pm.id}})
        return self.client.v1.subscriptions.create(
            {"customer": customer_id, "items": [{"plan": plan_id}]}).to_dict()

    def change_plan(self, sub: dict, plan_id: str) -> dict:
        item = sub["items"]["data"][0]["id"]
        return self.client.v1.subscriptions.update(sub["id"], {"items": [{"id": item, "plan": plan_id}]}).to_dict()

    def events(self) -> list[dict]:
        return StripeGateway(API_KEY, self.url).events()


@pytest.fixture
def fake_stripe(localstripe_url) -> FakeStripe:
    requests.delete(f"{localstripe_url}/_config/data", timeout=10).raise_for_status()
    client = stripe.StripeClient(API_KEY, base_addresses={"api": localstripe_url}, max_network_retries=0)
    return FakeStripe(localstripe_url, client)


def fast_gateway(url: str, **kwargs) -> StripeGateway:
    """A gateway that retries without sleeping (the retry loop is tested on its own)."""
    sleeps: list[float] = []
    gateway = StripeGateway(API_KEY, url, timeout=5, backoff=0.01, sleep=sleeps.append, **kwargs)
    gateway.sleeps = sleeps
    return gateway


@pytest.fixture
def stripe_app(app, fake_stripe):
    """The test app pointed at localstripe (STRIPE_SECRET_KEY, STRIPE_API_BASE)."""
    app.config.update(STRIPE_SECRET_KEY=API_KEY, STRIPE_API_BASE=fake_stripe.url)
    app.extensions["stripe_gateway"] = fast_gateway(fake_stripe.url)
    return app


@pytest.fixture
def stripe_server():
    """The current-API-shaped fake Stripe server (fake_stripe.py), empty, for one test."""
    server = fake.FakeStripe().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def current_stripe_app(app, stripe_server):
    """The test app with its own gateway, built from its config, talking to `stripe_server`."""
    app.config.update(STRIPE_SECRET_KEY=fake.API_KEY, STRIPE_API_BASE=stripe_server.url, STRIPE_MAX_RETRIES=0)
    app.extensions.pop("stripe_gateway", None)
    return app


@pytest.fixture
def down_gateway(app):
    """Stripe down: a port where nothing listens."""
    gateway = fast_gateway(f"http://127.0.0.1:{free_port()}", max_retries=1)
    app.config.update(STRIPE_SECRET_KEY=API_KEY)
    app.extensions["stripe_gateway"] = gateway
    return gateway


def make_account(account_id: str, customer_id: str | None = None, **kwargs):
    from backoffice.accounts.models import Account

    account = Account(id=account_id, name=kwargs.pop("name", f"Account {account_id}"),
                      stripe_customer_id=customer_id, **kwargs)
    db.session.add(account)
    db.session.commit()
    return account
