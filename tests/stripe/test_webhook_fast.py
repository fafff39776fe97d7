"""The webhook's fast path (stripe/webhook_fast.py): it answers what the Flask view answers,
byte for byte, hands every other request to Flask, and enqueues the replay as the view does.

Requests are WSGI calls with built environs: `app.wsgi_app` is the fast path, its `wsgi_app`
the Flask app it hands over to."""
from __future__ import annotations

import io
import threading
import time

import pytest
from flask import request
from werkzeug.test import EnvironBuilder

from backoffice import security
from backoffice.extensions import db
from backoffice.ledger import archive, drain
from backoffice.ledger.models import StripeEvent
from backoffice.stripe.webhook_fast import WebhookFastPath
from tests.stripe import helpers as h


class Answer:
    """A WSGI answer, read but (until `close()`) not closed."""

    def __init__(self, wsgi, environ: dict):
        def start_response(status, headers, exc_info=None):
            self.status, self.headers = status, headers

        self.iterable = wsgi(environ, start_response)
        self.body = b"".join(self.iterable)

    def close(self) -> None:
        if hasattr(self.iterable, "close"):
            self.iterable.close()

    def __eq__(self, other) -> bool:
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)

    def __repr__(self) -> str:
        return f"Answer({self.status!r}, {self.headers!r}, {self.body!r})"


def _environ(body: bytes, *, signature: str | None = None, content_type: str = "application/json",
             headers: dict | None = None, **kwargs) -> dict:
    headers = {"Stripe-Signature": h.sign(body) if signature is None else signature, **(headers or {})}
    return EnvironBuilder(path="/stripe/webhook", method="POST", data=body, content_type=content_type,
                          headers=headers, base_url="http://backoffice.test", **kwargs).get_environ()


def _both(app, body: bytes, **kwargs) -> tuple[Answer, Answer]:
    """The same request through the fast path, then through Flask alone."""
    fast = Answer(app.wsgi_app, _environ(body, **kwargs))
    flask_only = Answer(app.wsgi_app.wsgi_app, _environ(body, **kwargs))
    fast.close()
    flask_only.close()
    return fast, flask_only


@pytest.fixture
def flask_requests(app) -> list[str]:
    """The paths of the requests Flask's own machinery saw (a before_request hook)."""
    seen: list[str] = []
    app.before_request(lambda: seen.append(request.path))
    return seen


def _customer_created(cus: str, account_id: str | None = None) -> dict:
    return h.envelope("customer.created", h.customer(cus, account_id=account_id), h.ts("2026-01-05T09:00:00"))


def _invoice_paid(cus: str) -> dict:
    return h.envelope("invoice.paid", h.invoice(f"in_{cus}", cus, None, amount_paid=4900, total=4900,
                                                created=h.ts("2026-02-01")), h.ts("2026-02-01"))


def test_the_fast_path_is_installed(app):
    assert isinstance(app.wsgi_app, WebhookFastPath)


@pytest.mark.parametrize("make_event", [_customer_created, _invoice_paid])
def test_stored_duplicate_and_divergent_are_answered_as_the_view_answers(app, flask_requests, make_event):
    first, second = make_event("cus_F1"), make_event("cus_F2")
    assert len(first["id"]) == len(second["id"])
    # Stored: Flask stores the first event, the fast path the second; only the id differs.
    by_flask = Answer(app.wsgi_app.wsgi_app, _environ(h.encode(first)))
    fast = Answer(app.wsgi_app, _environ(h.encode(second)))
    assert by_flask.status == "200 OK"
    assert by_flask.body == b'{"id":"%s","outcome":"stored","received":true}\n' % first["id"].encode()
    assert by_flask.headers == [("Content-Type", "application/json"), ("Content-Length", str(len(by_flask.body))),
                                *security.HEADERS.items(), ("Vary", "HX-Request, Cookie")]
    assert (fast.status, fast.headers, fast.body) == (
        by_flask.status, by_flask.headers, by_flask.body.replace(first["id"].encode(), second["id"].encode()))
    # Duplicate and divergent: the same request through both, the same answer.
    fast, by_flask = _both(app, h.encode(first))
    assert fast == by_flask
    assert b'"outcome":"duplicate"' in fast.body
    changed = dict(first, data={"object": dict(first["data"]["object"], description="changed")})
    fast, by_flask = _both(app, h.encode(changed))
    assert fast == by_flask
    assert b'"outcome":"divergent"' in fast.body
    # Flask saw only its own requests: the stored, duplicate and divergent ones through Flask.
    assert flask_requests == ["/stripe/webhook"] * 3
    assert db.session.execute(db.select(db.func.count(StripeEvent.id))).scalar_one() == 2


def test_a_stored_event_through_the_test_client_skips_flask(client, flask_requests):
    """The test client (and gunicorn) call `app.wsgi_app`: a stored event never reaches Flask's
    hooks; a refused one does."""
    event = _customer_created("cus_T", "acc-t")
    resp = h.deliver(client, event)
    assert (resp.status_code, resp.json) == (200, {"received": True, "id": event["id"], "outcome": "stored"})
    assert flask_requests == []
    assert h.deliver(client, event, secret="whsec_other").status_code == 400
    assert flask_requests == ["/stripe/webhook"]


def _oversized() -> bytes:
    event = _customer_created("cus_R")
    event["data"]["object"]["description"] = "x" * (1024 * 1024)
    return h.encode(event)


REFUSALS = {
    "missing signature": (lambda: h.encode(_customer_created("cus_R")), {"signature": ""}, 400),
    "invalid signature": (lambda: h.encode(_customer_created("cus_R")), {"signature": "t=1,v1=00"}, 400),
    "wrong content type": (lambda: h.encode(_customer_created("cus_R")), {"content_type": "text/plain"}, 400),
    "not JSON": (lambda: b"this is not json", {}, 400),
    "not an event": (lambda: b'{"hello": "world"}', {}, 400),
    "no data object": (lambda: b'{"id": "evt_1", "type": "customer.created", "created": 1, "data": {}}', {}, 400),
    "over 1 MiB": (_oversized, {}, 413),
    "German": (lambda: b"this is not json", {"headers": {"Accept-Language": "de"}}, 400),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_are_answered_by_flask_as_before(app, flask_requests, case):
    make_body, kwargs, status = REFUSALS[case]
    fast, by_flask = _both(app, make_body(), **kwargs)
    assert fast == by_flask
    assert fast.status.startswith(str(status))
    assert b'"error"' in fast.body
    assert flask_requests == ["/stripe/webhook"] * 2
    assert db.session.execute(db.select(db.func.count(StripeEvent.id))).scalar_one() == 0
    if case == "German":
        assert b'"message":"Der Inhalt ist kein JSON."' in fast.body


def test_without_a_secret_flask_answers_503(app, flask_requests):
    app.config["STRIPE_WEBHOOK_SECRET"] = ""
    fast, by_flask = _both(app, h.encode(_customer_created("cus_S")))
    assert fast == by_flask
    assert fast.status == "503 SERVICE UNAVAILABLE"
    assert flask_requests == ["/stripe/webhook"] * 2


def test_a_chunked_body_is_read_by_flask(app, flask_requests):
    """No Content-Length: Flask decides (Werkzeug reads nothing from an unterminated stream)."""
    body = h.encode(_customer_created("cus_C"))
    environ = _environ(body)
    del environ["CONTENT_LENGTH"]
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    answer = Answer(app.wsgi_app, environ)
    assert answer.status == "400 BAD REQUEST"
    assert flask_requests == ["/stripe/webhook"]


@pytest.mark.parametrize("extra", [{"query_string": "source=stripe"}, {"headers": {"Cookie": "session=x"}}])
def test_a_query_string_or_a_cookie_goes_to_flask_which_stores_the_event(app, flask_requests, extra):
    event = _customer_created("cus_Q")
    answer = Answer(app.wsgi_app, _environ(h.encode(event), **extra))
    assert (answer.status, answer.body) == ("200 OK", b'{"id":"%s","outcome":"stored","received":true}\n'
                                            % event["id"].encode())
    assert flask_requests == ["/stripe/webhook"]


def test_other_requests_go_to_flask(client, flask_requests):
    assert client.get("/stripe/webhook").status_code == 405
    assert client.post("/stripe/webhook/", data=b"{}").status_code == 404
    assert flask_requests == ["/stripe/webhook", "/stripe/webhook/"]


def test_a_failed_archive_is_answered_by_flask(app, flask_requests, monkeypatch):
    """The database fails once (a restart): Flask's attempt stores the event and answers it."""
    real = archive.archive_event
    calls = []

    def fails_once(body, event, **kwargs):
        calls.append(event["id"])
        if len(calls) == 1:
            raise ConnectionError("server closed the connection")
        return real(body, event, **kwargs)

    monkeypatch.setattr(archive, "archive_event", fails_once)
    event = _customer_created("cus_X", "acc-x")
    answer = Answer(app.wsgi_app, _environ(h.encode(event)))
    assert (answer.status, answer.body) == ("200 OK", b'{"id":"%s","outcome":"stored","received":true}\n'
                                            % event["id"].encode())
    assert calls == [event["id"]] * 2
    assert flask_requests == ["/stripe/webhook"]


def test_when_the_archive_is_gone_the_answer_is_flasks_error(app, flask_requests):
    app.config["PROPAGATE_TEST_ERRORS"] = False
    db.session.execute(db.text("ALTER TABLE stripe_events RENAME TO stripe_events_gone"))
    db.session.commit()
    try:
        fast, by_flask = _both(app, h.encode(_customer_created("cus_G", "acc-g")))
    finally:
        db.session.rollback()
        db.session.execute(db.text("ALTER TABLE stripe_events_gone RENAME TO stripe_events"))
        db.session.commit()
    assert fast == by_flask
    assert fast.status == "500 INTERNAL SERVER ERROR"
    assert b'"code":"internal_error"' in fast.body
    assert flask_requests == ["/stripe/webhook"] * 2


def _state(event_id: str) -> str:
    return db.session.execute(db.select(StripeEvent.state).where(StripeEvent.id == event_id)).scalar_one()


def test_under_testing_the_replay_runs_before_answering(client, flask_requests):
    event = _customer_created("cus_P", "acc-p")
    assert h.deliver(client, event).json["outcome"] == "stored"
    assert _state(event["id"]) == "processed"
    assert flask_requests == []


def test_in_production_the_replay_runs_on_the_drain_thread_once_settled(app):
    app.testing = False
    app.config["REPLAY_SETTLE_SECONDS"] = 0.3
    event = _customer_created("cus_L", "acc-l")
    try:
        answer = Answer(app.wsgi_app, _environ(h.encode(event)))
        assert answer.status == "200 OK"
        answer.close()
        assert _state(event["id"]) == "pending"  # answered and closed, not replayed yet
        deadline = time.monotonic() + 10
        thread = drain.drain_thread(app)
        while (_state(event["id"]) == "pending" or thread.drains == 0) and time.monotonic() < deadline:
            db.session.rollback()  # a new snapshot each time: the drain thread writes
            time.sleep(0.05)
        assert _state(event["id"]) == "processed"
        assert (thread.drains, thread.events) == (1, 1)
    finally:
        drain.drain_thread(app).stop()


def test_the_replay_is_looked_up_on_drain_when_enqueued(client, monkeypatch):
    """The ingest benchmark replaces `drain.request_replay`; the fast path must call that one."""
    enqueued = []
    monkeypatch.setattr(drain, "request_replay", enqueued.append)
    h.deliver(client, _customer_created("cus_V", "acc-v"))
    h.deliver(client, _invoice_paid("cus_V"))
    assert enqueued == ["acc-v", "acc-v"]


def test_the_app_context_of_the_fast_path_removes_its_session(app):
    """Without an app context (a server's thread), the fast path pushes one; its teardown removes
    the session the duplicate's lookup opened, so no connection stays checked out."""
    event = _customer_created("cus_Z", "acc-z")
    h.deliver(app.test_client(), event)
    db.session.remove()
    sessions, checked_out = len(db.session.registry.registry), db.engine.pool.checkedout()
    answers = []
    thread = threading.Thread(target=lambda: answers.append(Answer(app.wsgi_app, _environ(h.encode(event)))))
    thread.start()
    thread.join()
    assert b'"outcome":"duplicate"' in answers[0].body
    assert (len(db.session.registry.registry), db.engine.pool.checkedout()) == (sessions, checked_out)


def test_a_short_body_is_left_to_flask(app, flask_requests):
    """A client that sends less than its Content-Length: Flask answers (400), as before."""
    body = h.encode(_customer_created("cus_B"))
    environ = _environ(body)
    environ["wsgi.input"] = io.BytesIO(body[:100])
    answer = Answer(app.wsgi_app, environ)
    assert answer.status == "400 BAD REQUEST"
    assert flask_requests == ["/stripe/webhook"]
