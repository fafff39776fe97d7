"""The browser's defences, on every response the app serves (pages, fragments, JSON, CSV, static
files, errors):

- Content-Security-Policy: scripts only from this origin (htmx, app.js and plotly are vendored
  under static/; no inline script, and htmx's eval is off in base.html's htmx-config); styles
  may be inline (plotly and htmx set them); nothing may frame the app, the kiosk included.
- X-Frame-Options: DENY (older browsers), X-Content-Type-Options: nosniff,
  Referrer-Policy: same-origin, Cross-Origin-Opener-Policy: same-origin.
- Strict-Transport-Security in production (SECURITY_HSTS_SECONDS; 0 turns it off), on HTTPS
  requests only (behind a proxy, with its X-Forwarded-Proto trusted: see the README).

A view may set its own header first; these never overwrite one that is already set.
"""
from __future__ import annotations

from flask import Flask, Response, request

DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY = "; ".join(DIRECTIVES)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def defend(resp: Response) -> Response:
    """Adds the headers a response does not set itself (also used by the webhook's fast path,
    which answers in front of Flask's after_request)."""
    for name, value in HEADERS.items():
        resp.headers.setdefault(name, value)
    return resp


def init_app(app: Flask) -> None:
    hsts = int(app.config.get("SECURITY_HSTS_SECONDS") or 0)

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        defend(resp)
        if hsts and request.is_secure:
            resp.headers.setdefault("Strict-Transport-Security", f"max-age={hsts}; includeSubDomains")
        return resp
