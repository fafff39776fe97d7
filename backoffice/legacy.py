"""The URLs of the previous release, kept for one release as permanent redirects (issue 19 gave each
feature one name). Every answer is a 308, so a bookmarked page, a POSTed form and a script keep
working, with `Deprecation: true` and a `Link` to the new address; the whole module goes in the
release after next. Sign-in and the admin role apply as on the new URL (the redirect is a page like
any other)."""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

bp = Blueprint("legacy", __name__)

# old rule -> the endpoint that now answers it (the URL variables are the same)
MOVED = {
    "/billing-events": "ledger.index",
    "/accounts/<account_id>/billing-events": "accounts.ledger",
    "/accounts/<account_id>/billing-events/corrections": "accounts.corrections",
    "/usage/accounts/<account_id>/billing": "accounts.billing",
}


def _moved(endpoint: str):
    def view(**values):
        # The query string rebuilt by url_for (quoted again, so nothing raw reaches the header);
        # keys url_for would read as its own options (`_external`, `_anchor`, ...) are dropped.
        query = {k: v for k, v in request.args.lists() if not k.startswith("_")}
        target = url_for(endpoint, **{**query, **values})
        response = redirect(target, code=308)
        response.headers["Deprecation"] = "true"
        response.headers["Link"] = f'<{target}>; rel="successor-version"'
        return response

    return view


for rule, endpoint in MOVED.items():
    bp.add_url_rule(rule, endpoint=endpoint.replace(".", "_"), view_func=_moved(endpoint),
                    methods=["GET", "POST"])
