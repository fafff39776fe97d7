"""`backoffice stripe connect`: the official client against a tiny fake Stripe on 127.0.0.1
(localstripe has no /v1/webhook_endpoints), which records the form body it received."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from backoffice.ledger.archive import WEBHOOK_EVENT_TYPES

KEY = "sk_test_connect"
SECRET = "whsec_fresh_from_stripe"


class FakeStripe(ThreadingHTTPServer):
    """Answers POST /v1/webhook_endpoints as Stripe does (the `secret` on create only), or the
    (status, body) queued in `answers` first."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeStripe

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = parse_qsl(body, keep_blank_values=True)
        self.server.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers),
                                     "form": form})
        if self.server.answers:
            status, answer = self.server.answers.pop(0)
        else:
            status, answer = 200, {
                "id": "we_1Connect", "object": "webhook_endpoint", "api_version": None, "application": None,
                "created": 1796601600, "description": dict(form).get("description"),
                "enabled_events": [v for k, v in form if k.startswith("enabled_events[")],
                "livemode": False, "metadata": {}, "secret": SECRET, "status": "enabled",
                "url": dict(form)["url"]}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def fake_stripe():
    server = FakeStripe()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def app_config(app_config, fake_stripe):
    return {**app_config, "STRIPE_SECRET_KEY": KEY, "STRIPE_API_BASE": fake_stripe.url, "STRIPE_WEBHOOK_SECRET": "",
            "STRIPE_MAX_RETRIES": 1, "STRIPE_RETRY_BACKOFF": 0.01}


def _events(request: dict) -> list[str]:
    return [v for k, v in request["form"] if k.startswith("enabled_events[")]


EVENT_LINES = "".join(f"  {t}\n" for t in WEBHOOK_EVENT_TYPES)


def test_connect_creates_the_endpoint_with_the_handled_types_and_prints_its_secret(runner, fake_stripe):
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com/"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Created Stripe webhook endpoint we_1Connect (test mode): https://backoffice.example.com/stripe/webhook\n"
        f"Events (30):\n{EVENT_LINES}"
        f"Signing secret (Stripe's API answers it only now): {SECRET}\n"
        "Set it in Backoffice's environment and restart:\n"
        f"  STRIPE_WEBHOOK_SECRET={SECRET}\n")
    (request,) = fake_stripe.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/webhook_endpoints")
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["headers"]["Idempotency-Key"].startswith("backoffice-connect-")
    assert [k for k, _v in request["form"] if not k.startswith("enabled_events[")] == ["url", "description"]
    assert dict(request["form"])["url"] == "https://backoffice.example.com/stripe/webhook"
    assert dict(request["form"])["description"] == "Backoffice"
    assert [k for k, _v in request["form"] if k.startswith("enabled_events[")] == [
        f"enabled_events[{i}]" for i in range(30)]
    assert _events(request) == [
        "charge.refunded", "credit_note.created", "credit_note.updated", "credit_note.voided",
        "customer.created", "customer.deleted", "customer.subscription.created", "customer.subscription.deleted",
        "customer.subscription.updated", "customer.tax_id.created", "customer.tax_id.deleted",
        "customer.tax_id.updated", "customer.updated", "invoice.created", "invoice.finalized",
        "invoice.marked_uncollectible", "invoice.paid", "invoice.payment_failed", "invoice.payment_succeeded",
        "invoice.updated", "invoice.voided", "payment_method.attached", "plan.created", "plan.updated",
        "price.created", "price.updated", "subscription_schedule.canceled", "subscription_schedule.created",
        "subscription_schedule.released", "subscription_schedule.updated"]


def test_with_a_secret_set_already_it_says_to_append_the_new_one(app, runner, fake_stripe):
    app.config["STRIPE_WEBHOOK_SECRET"] = ("whsec_old",)
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com/stripe/webhook"])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        f"Signing secret (Stripe's API answers it only now): {SECRET}\n"
        "STRIPE_WEBHOOK_SECRET is set already: append the new secret, comma-separated, and restart:\n"
        f"  STRIPE_WEBHOOK_SECRET=<the secrets set now>,{SECRET}\n")
    assert "whsec_old" not in result.output
    assert dict(fake_stripe.requests[0]["form"])["url"] == "https://backoffice.example.com/stripe/webhook"


def test_plain_http_is_allowed_for_localhost_only(runner, fake_stripe):
    result = runner.invoke(args=["stripe", "connect", "--url", "http://127.0.0.1:5000"])
    assert result.exit_code == 0, result.output
    assert dict(fake_stripe.requests[0]["form"])["url"] == "http://127.0.0.1:5000/stripe/webhook"
    result = runner.invoke(args=["stripe", "connect", "--url", "http://backoffice.example.com"])
    assert result.exit_code == 1
    assert result.output == ("Error: --url must use https (Stripe delivers webhooks only there), not "
                             "'http://backoffice.example.com'; plain http is allowed for localhost and 127.0.0.1.\n")
    result = runner.invoke(args=["stripe", "connect", "--url", "backoffice.example.com"])
    assert result.exit_code == 1
    assert result.output == ("Error: --url must be an address like https://backoffice.example.com, "
                             "not 'backoffice.example.com'.\n")
    assert len(fake_stripe.requests) == 1


def test_dry_run_prints_the_endpoint_and_creates_nothing(runner, fake_stripe):
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output == ("Would create a Stripe webhook endpoint (test mode): "
                             f"https://backoffice.example.com/stripe/webhook\nEvents (30):\n{EVENT_LINES}")
    assert fake_stripe.requests == []


def test_without_a_secret_key_it_says_so(app, runner, fake_stripe):
    app.config["STRIPE_SECRET_KEY"] = ""
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com"])
    assert result.exit_code == 1
    assert result.output == ("Error: STRIPE_SECRET_KEY is not set: set the secret key of the Stripe mode to "
                             "connect (sk_test_... or sk_live_...).\n")
    assert fake_stripe.requests == []


def test_a_refused_key_is_one_line(runner, fake_stripe):
    fake_stripe.answers.append((401, {"error": {"message": "Invalid API Key provided: sk_test_****nect",
                                                "type": "invalid_request_error"}}))
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com"])
    assert result.exit_code == 1
    assert result.output == "Error: Stripe refused the API key: Invalid API Key provided: sk_test_****nect.\n"
    assert len(fake_stripe.requests) == 1  # not retried


def test_a_refused_request_is_one_line(runner, fake_stripe):
    fake_stripe.answers.append((400, {"error": {"message": "Invalid URL: must be publicly accessible.",
                                                "param": "url", "type": "invalid_request_error"}}))
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com"])
    assert result.exit_code == 1
    assert result.output == ("Error: Stripe refused the endpoint: Invalid URL: must be publicly accessible. "
                             "No endpoint was created.\n")


def test_stripe_unavailable_is_retried_with_the_same_idempotency_key_then_one_line(runner, fake_stripe):
    down = (503, {"error": {"message": "Stripe is down for maintenance.", "type": "api_error"}})
    fake_stripe.answers.extend([down, down])
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com"])
    assert result.exit_code == 1
    assert result.output == "Error: Stripe is unavailable: Stripe is down for maintenance.\n"
    first, retry = fake_stripe.requests
    assert first["headers"]["Idempotency-Key"] == retry["headers"]["Idempotency-Key"]


def test_stripe_unreachable_is_one_line_without_a_traceback(app, runner):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.config.update(STRIPE_API_BASE=f"http://127.0.0.1:{port}", STRIPE_MAX_RETRIES=0)
    result = runner.invoke(args=["stripe", "connect", "--url", "https://backoffice.example.com"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Stripe is unavailable: ")
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_baseline_without_a_secret_key_says_so(app, runner):
    """The README's next step after connecting: without a key it is one line too."""
    app.config["STRIPE_SECRET_KEY"] = ""
    result = runner.invoke(args=["stripe", "baseline"])
    assert result.exit_code == 1
    assert result.output == "Error: STRIPE_SECRET_KEY is not set: baseline history is read from Stripe.\n"
