"""The Stripe webhook's fast path: a WSGI middleware that archives and acknowledges a verified
event without Flask's request machinery.

Why, measured (issue 19, which asked for it to go unless a speed target needs it): with the
replay running as users run it (SQLite, the default, one gthread worker, 8 senders for 60 s,
tests/bench/test_intake_bench.py, 2 cores, two runs each, alternating), the webhook through Flask
alone accepted 405 and 493 events/s at 1.9-2.1 ms of worker CPU per event, short of issue 18's
500; with this middleware 523 and 540 at 1.71-1.77 ms (the previous release: 553-561). What Flask adds around the view is the request
context, the before_request hooks of auth, errors and i18n, the rate limiter's check despite the
exemption, CSRFProtect, Babel's refresh, process_response and jsonify.

What it answers itself: `POST /stripe/webhook` without a query string or a cookie (Stripe sends
neither; Flask's hooks read both), with a Content-Length within MAX_CONTENT_LENGTH, a secret
configured, a signature header, and a body that `signature.verify_and_parse` accepts (the rules
stay there) and `archive.archive_event` stores. The answer is the view's, byte for byte:
jsonify's body and the `Vary: HX-Request, Cookie` that hx.py's and Flask-Login's after_request
hooks give every response (tests/stripe/test_webhook_fast.py compares them). The answer and
the replay it enqueues are the view's own `views.acknowledge`: the replay runs when the server
closes the answer, or before answering under TESTING.

What it hands to Flask, with the body it read put back as `wsgi.input`: everything else. Every
refusal (signature, content type, envelope, 503 without a secret, 413, a chunked or short body)
is answered by `views.webhook` and the error handlers, translated, as before; so is an event
whose archiving failed (the database down): archiving is idempotent, so an event half-archived
here is a duplicate there. `views.webhook` stays the whole webhook on its own.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable

from flask import Flask, Response, current_app, has_app_context
from werkzeug.http import parse_options_header

from backoffice import security
from backoffice.ledger import archive
from backoffice.stripe import signature, views

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/stripe/webhook"


class WebhookFastPath:
    """`app.wsgi_app = WebhookFastPath(app, app.wsgi_app)`: the test client and gunicorn alike
    go through it."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != WEBHOOK_PATH
                or environ.get("QUERY_STRING") or "HTTP_COOKIE" in environ):
            return self.wsgi_app(environ, start_response)
        body = self._read_body(environ)
        if body is None:
            return self.wsgi_app(environ, start_response)
        environ["wsgi.input"] = io.BytesIO(body)  # for Flask, should it answer after all
        response = self._answer(environ, body)
        if response is None:
            return self.wsgi_app(environ, start_response)
        return response(environ, start_response)

    def _read_body(self, environ: dict) -> bytes | None:
        """The whole body, or None when Flask must read it (no or a bad Content-Length, a
        chunked body, one above MAX_CONTENT_LENGTH: Flask answers 413) or the client sent less
        than it announced (Flask answers that as well)."""
        length = environ.get("CONTENT_LENGTH")
        if not length or not (length.isascii() and length.isdigit()) or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        size = int(length)
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        if limit is not None and size > limit:
            return None
        stream = environ["wsgi.input"]
        body = stream.read(size)
        while len(body) < size:
            chunk = stream.read(size - len(body))
            if not chunk:
                environ["wsgi.input"] = io.BytesIO(body)
                return None
            body += chunk
        return body

    def _answer(self, environ: dict, body: bytes) -> Response | None:
        """The view's answer to a stored, duplicate or divergent event; None for Flask to answer."""
        app = self.app
        secrets = app.config.get("STRIPE_WEBHOOK_SECRET")  # a tuple (config.webhook_secrets), as the view's
        header = environ.get("HTTP_STRIPE_SIGNATURE")
        if not secrets or not header:
            return None
        content_type = environ.get("CONTENT_TYPE", "")
        mimetype = "application/json" if content_type == "application/json" else (
            parse_options_header(content_type)[0].lower())
        # As Flask does: a request reuses an app context already pushed for the app (the
        # tests'), else pushes one, whose teardown removes the SQLAlchemy session.
        ctx = None
        if not (has_app_context() and current_app._get_current_object() is app):
            ctx = app.app_context()
            ctx.push()
        error = None
        try:
            try:
                event = signature.verify_and_parse(body, header, secrets, mimetype)
            except Exception:  # noqa: BLE001 - a refusal: Flask answers it, translated
                # (here, outside a request, translating the message fails with a RuntimeError)
                return None
            try:
                result = archive.archive_event(body, event)
            except Exception as e:  # noqa: BLE001 - Flask tries again, and answers its error
                log.warning("stripe webhook: archiving %s failed (%s); answered by Flask", event["id"], e)
                error = e
                return None
            response = views.acknowledge(result)  # the replay on close (or now, testing)
            security.defend(response)  # security.py's after_request (it runs first)
            response.vary.add("HX-Request")  # hx.py's after_request
            response.vary.add("Cookie")  # Flask-Login's after_request reads the session, always
            return response
        finally:
            if ctx is not None:
                ctx.pop(error)

