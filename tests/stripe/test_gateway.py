"""The Stripe gateway against localstripe: paging, order, customer filter, retries, outages."""
from __future__ import annotations

import pytest
import stripe

from backoffice.stripe import gateway as gw
from tests.stripe.conftest import API_KEY, fast_gateway, free_port


def test_events_since_pages_through_everything_in_order_for_one_customer(fake_stripe, monkeypatch):
    fake_stripe.plan("standard", 4900)
    a = fake_stripe.customer("acc_a")
    b = fake_stripe.customer("acc_b")
    fake_stripe.subscribe(a, "standard")
    fake_stripe.subscribe(b, "standard")
    monkeypatch.setattr(gw, "PAGE_SIZE", 2)
    gateway = fast_gateway(fake_stripe.url)

    events = gateway.events_since(a, None)

    every = fake_stripe.events()
    expected = [e["id"] for e in every if gw.event_customer(e) == a]
    assert [e["id"] for e in events] == expected
    assert len(expected) == 6  # customer created/updated, subscription, invoice created/paid, payment method
    assert [(e["created"], e["id"]) for e in events] == sorted((e["created"], e["id"]) for e in events)
    assert all(isinstance(e, dict) for e in events)
    assert len(every) == 14  # + product.created, plan.created
    assert gateway.calls == 7  # 14 events, 2 a page


def test_resources_come_back_as_plain_dicts(fake_stripe):
    fake_stripe.plan("standard", 4900)
    cus = fake_stripe.customer("acc_a")
    sub = fake_stripe.subscribe(cus, "standard")
    gateway = fast_gateway(fake_stripe.url)

    assert gateway.customer(cus)["metadata"] == {"account_id": "acc_a"}
    assert [s["id"] for s in gateway.subscriptions(cus)] == [sub["id"]]
    invoices = gateway.invoices(cus)
    assert [i["amount_paid"] for i in invoices] == [4900]
    assert [c["amount"] for c in gateway.charges(cus)] == [4900]
    assert gateway.customer("cus_missing") is None
    # localstripe has no credit notes or schedules: an absent resource, not an outage.
    assert gateway.credit_notes(cus) == []
    assert gateway.subscription_schedule("sub_sched_missing") is None


def _failing(times: int, error: Exception, then):
    calls = {"n": 0}

    def fn(*args):
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return then(*args)

    return fn, calls


def test_5xx_and_429_are_retried_with_growing_jittered_backoff(fake_stripe):
    gateway = fast_gateway(fake_stripe.url, max_retries=3)
    gateway.backoff = 0.5
    fn, calls = _failing(3, stripe.APIError("boom", http_status=503), lambda *a: "ok")

    assert gateway._call(fn) == "ok"
    assert calls["n"] == 4
    # attempt n waits within [base/2, base] with base = 0.5 * 2**n
    for n, delay in enumerate(gateway.sleeps):
        base = 0.5 * 2 ** n
        assert base / 2 <= delay <= base
    fn, calls = _failing(1, stripe.RateLimitError("slow down", http_status=429), lambda *a: "ok")
    assert gateway._call(fn) == "ok"


def test_retries_exhausted_raise_stripe_unavailable(fake_stripe):
    gateway = fast_gateway(fake_stripe.url, max_retries=2)
    fn, calls = _failing(10, stripe.RateLimitError("slow down", http_status=429), lambda *a: "ok")
    with pytest.raises(gw.StripeUnavailable):
        gateway._call(fn)
    assert calls["n"] == 3


def test_a_4xx_is_not_retried(fake_stripe):
    gateway = fast_gateway(fake_stripe.url, max_retries=3)
    fn, calls = _failing(10, stripe.InvalidRequestError("bad", param="x", http_status=400), lambda *a: "ok")
    with pytest.raises(stripe.InvalidRequestError):
        gateway._call(fn)
    assert calls["n"] == 1


def test_nothing_listening_is_stripe_unavailable():
    gateway = fast_gateway(f"http://127.0.0.1:{free_port()}", max_retries=1)
    with pytest.raises(gw.StripeUnavailable):
        gateway.events_since("cus_x", None)
    assert gateway.calls == 2


def test_a_page_failing_midway_raises_and_answers_nothing_partial(fake_stripe, monkeypatch):
    fake_stripe.plan("standard", 4900)
    fake_stripe.subscribe(fake_stripe.customer("acc_a"), "standard")
    monkeypatch.setattr(gw, "PAGE_SIZE", 2)
    gateway = fast_gateway(fake_stripe.url, max_retries=0)
    real = gateway.client.v1.events.list

    def second_page_fails(params):
        if "starting_after" in params:
            raise stripe.APIError("gateway timeout", http_status=504)
        return real(params)

    monkeypatch.setattr(gateway.client.v1.events, "list", second_page_fails)
    with pytest.raises(gw.StripeUnavailable):
        gateway.events(None)


def test_not_configured():
    with pytest.raises(gw.StripeNotConfigured):
        gw.StripeGateway("")


def test_verify_webhook_checks_the_signature_before_parsing():
    body = '{"id": "evt_1", "type": "customer.created"}'
    header = gw.signature_header(body, "whsec_x")
    assert gw.verify_webhook(body.encode(), header, "whsec_x") == {"id": "evt_1", "type": "customer.created"}
    with pytest.raises(ValueError):
        gw.verify_webhook(body.encode(), header, "whsec_other")
    with pytest.raises(ValueError):
        gw.verify_webhook(b"not json", gw.signature_header("other", "whsec_x"), "whsec_x")
    with pytest.raises(ValueError):
        gw.verify_webhook(body, None, "whsec_x")
    old = gw.signature_header(body, "whsec_x", timestamp=1_000_000_000)
    with pytest.raises(ValueError):
        gw.verify_webhook(body, old, "whsec_x")


def test_verify_webhook_takes_several_secrets():
    """Any one of them verifies (a secret rolling); none of them, or none at all, refuses."""
    body = '{"id": "evt_1", "type": "customer.created"}'
    for secret in ("whsec_old", "whsec_new"):
        header = gw.signature_header(body, secret)
        assert gw.verify_webhook(body, header, ("whsec_old", "whsec_new")) == {"id": "evt_1", "type": "customer.created"}
    with pytest.raises(ValueError, match="No signatures found matching the expected signature"):
        gw.verify_webhook(body, gw.signature_header(body, "whsec_third"), ("whsec_old", "whsec_new"))
    with pytest.raises(ValueError, match="missing Stripe-Signature header or webhook secret"):
        gw.verify_webhook(body, gw.signature_header(body, "whsec_old"), ("", ""))


def test_gateway_comes_from_the_config(app):
    app.config.update(STRIPE_SECRET_KEY=API_KEY, STRIPE_API_BASE="http://127.0.0.1:1", STRIPE_MAX_RETRIES=5)
    gateway = gw.get_gateway()
    assert gateway.max_retries == 5
    assert gw.get_gateway() is gateway


def test_retry_after_is_honoured_through_the_real_client():
    """A server that answers 429 with Retry-After: 3 once: the gateway waits at least 3 s (its
    own backoff would wait well under one), then reads the page."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if not answers:
                answers.append(429)
                body, status, extra = b'{"error": {"type": "rate_limit_error", "message": "slow down"}}', 429, {
                    "Retry-After": "3"}
            else:
                answers.append(200)
                body, status, extra = json.dumps({"object": "list", "data": [], "has_more": False}).encode(), 200, {}
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gateway = fast_gateway(f"http://127.0.0.1:{server.server_port}", max_retries=2)
        gateway.backoff = 0.1
        assert gateway.subscriptions("cus_x") == []
        assert answers == [429, 200]
        assert gateway.sleeps and gateway.sleeps[0] >= 3
    finally:
        server.shutdown()
        server.server_close()


def test_a_retry_after_beyond_a_minute_is_capped():
    error = stripe.RateLimitError("slow down", http_status=429, headers={"Retry-After": "3600"})
    assert gw._retry_after(error) == gw.MAX_RETRY_AFTER
    assert gw._retry_after(stripe.RateLimitError("x", http_status=429)) == 0.0
    assert gw._retry_after(stripe.RateLimitError("x", http_status=429, headers={"retry-after": "soon"})) == 0.0
