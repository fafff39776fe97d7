"""Error pages for people, JSON errors for the API and the webhook. Never a bare 500 page."""
from __future__ import annotations

import logging
from urllib.parse import quote

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class BadRequest(Exception):
    """Bad input from a person or a client: answered 400 with a message naming the field."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status:
            self.status = status
        if code:
            self.code = code


class NotFound(BadRequest):
    status = 404
    code = "not_found"


class Unprocessable(BadRequest):
    """Input its schema allows that a rule beyond the schema refuses (a time in the future, a
    field a new record needs): 422, so a 400 always means the OpenAPI document says no."""

    status = 422
    code = "unprocessable"


def api_request() -> bool:
    """A request to the JSON API (also where no route matched)."""
    return request.path.startswith("/api/")


def _wants_json() -> bool:
    return (
        api_request()  # an API client reads JSON
        or request.endpoint == "stripe.webhook"
        or request.accept_mimetypes.best == "application/json"
    )


def _respond(status: int, code: str, message: str, field: str | None = None):
    if _wants_json():
        return jsonify(error={"code": code, "message": message, "field": field}), status
    template = "errors/error.html"
    headers = {}
    if request.headers.get("HX-Request") and status in (400, 422):
        # An htmx request does not swap an error page in: app.js shows this message instead of its
        # generic one (percent-encoded, as a header carries Latin-1 only).
        headers["X-Error-Message"] = quote(message)
    return render_template(template, status=status, message=message, field=field), status, headers


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_nul_bytes():
        # No text column can hold a NUL byte (PostgreSQL refuses it): a clean 400, not a 500.
        if "\x00" in request.path:
            named = [k for k, v in (request.view_args or {}).items() if "\x00" in str(v)]
            raise BadRequest(_("The request was not understood."), field=named[0] if named else "path")
        fields = list(request.args.items(multi=True))
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields += request.form.items(multi=True)
        for name, value in fields:
            if "\x00" in value or "\x00" in name:
                raise BadRequest(_("The request was not understood."), field=name)

    @app.errorhandler(BadRequest)
    def _bad_request(e: BadRequest):
        return _respond(e.status, e.code, e.message, e.field)

    @app.errorhandler(CSRFError)
    def _csrf(e: CSRFError):
        return _respond(400, "csrf", _("The form expired or was not sent from Backoffice. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        messages = {
            400: _("The request was not understood."),
            403: _("You do not have permission to do this. Ask an admin."),
            404: _("This page does not exist."),
            405: _("This action is not allowed here."),
            413: _("The request body is too large."),
            429: _("Too many attempts. Wait a minute and try again."),
        }
        message = e.description if e.code == 400 and e.description and _wants_json() else messages.get(e.code, e.name)
        body, status, *own = _respond(e.code or 500, e.name.lower().replace(" ", "_"), message)
        # The exception's own headers (a 405's Allow, a 429's Retry-After), not its content type.
        headers = [(k, v) for k, v in e.get_headers() if k.lower() != "content-type"]
        return body, status, headers + list((own[0] if own else {}).items())

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if app.config.get("TESTING") and app.config.get("PROPAGATE_TEST_ERRORS", True):
            raise e
        return _respond(500, "internal_error", _("Something went wrong on our side. It has been logged."))
