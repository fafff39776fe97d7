"""Every htmx header decision in one place.

A fragment is rendered only for an htmx request that is neither boosted nor a history restore;
every other request gets the whole page, so any pushed URL also works when loaded directly.
"""
from __future__ import annotations

from flask import Flask, Response, render_template, request
from jinja2_fragments.flask import render_block


def wants_fragment() -> bool:
    h = request.htmx
    return bool(h) and not h.boosted and not h.history_restore_request


def render(template: str, block: str | None = None, **context) -> str:
    """The whole page, or only `block` when the request wants a fragment (`fragment` tells the
    template which, e.g. to add out-of-band parts that a whole page has in place)."""
    if block and wants_fragment():
        return render_block(template, block, fragment=True, **context)
    return render_template(template, fragment=False, **context)


def render_fragment(template: str, block: str, **context) -> str:
    """Always one block (for URLs that only ever serve a fragment, such as polled banners)."""
    return render_block(template, block, **context)


def redirect_response(location: str) -> Response:
    """A redirect that works for htmx (HX-Redirect) and for plain requests (302)."""
    if request.htmx:
        resp = Response(status=204)
        resp.headers["HX-Redirect"] = location
        return resp
    resp = Response(status=302)
    resp.headers["Location"] = location
    return resp


def init_app(app: Flask) -> None:
    @app.after_request
    def _vary(resp: Response) -> Response:
        resp.vary.add("HX-Request")
        return resp
