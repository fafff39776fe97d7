"""STRIPE_WEBHOOK_SECRET with several secrets (a secret rolling, endpoints sharing the URL): a
signature valid for any of them verifies, on the fast path and in the Flask view alike."""
from __future__ import annotations

import pytest
from flask import request
from werkzeug.test import Client as WsgiClient

from backoffice.config import webhook_secrets
from backoffice.extensions import db
from backoffice.ledger.models import StripeEvent
from tests.stripe import helpers as h

OLD, NEW = "whsec_old", "whsec_new"


@pytest.fixture
def app_config(app_config):
    # Whitespace around the entries and an empty one, as an operator may type them.
    return {**app_config, "STRIPE_WEBHOOK_SECRET": f" {OLD} , ,{NEW} ,"}


@pytest.fixture
def flask_requests(app) -> list[str]:
    seen: list[str] = []
    app.before_request(lambda: seen.append(request.path))
    return seen


def _event(n: int) -> bytes:
    return h.encode(h.envelope("customer.created", h.customer(f"cus_{n}", account_id=f"acc-{n}"),
                               h.ts("2026-01-05T09:00:00"), event_id=f"evt_roll_{n}"))


def _stored() -> list[str]:
    return list(db.session.execute(db.select(StripeEvent.id).order_by(StripeEvent.id)).scalars())


def test_the_setting_is_parsed_once_into_a_tuple(app):
    assert app.config["STRIPE_WEBHOOK_SECRET"] == (OLD, NEW)
    assert webhook_secrets(" a, ,b ,, ") == ("a", "b")
    assert webhook_secrets("") == ()
    assert webhook_secrets(None) == ()
    assert webhook_secrets(("a", "b")) == ("a", "b")


def test_fast_path_verifies_a_signature_of_either_secret_and_refuses_a_third(client, flask_requests):
    for n, secret in ((1, OLD), (2, NEW)):
        resp = h.deliver(client, _event(n), secret=secret)
        assert resp.status_code == 200
        assert resp.json == {"received": True, "id": f"evt_roll_{n}", "outcome": "stored"}
    assert flask_requests == []  # both answered in front of Flask
    resp = h.deliver(client, _event(3), secret="whsec_third")
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "Stripe-Signature"
    assert flask_requests == ["/stripe/webhook"]  # the refusal is Flask's
    assert _stored() == ["evt_roll_1", "evt_roll_2"]


def test_flask_view_verifies_a_signature_of_either_secret_and_refuses_a_third(app):
    flask_only = WsgiClient(app.wsgi_app.wsgi_app)  # behind the fast path: the view alone

    def post(body: bytes, secret: str):
        return flask_only.post("/stripe/webhook", data=body, content_type="application/json",
                               headers={"Stripe-Signature": h.sign(body, secret)},
                               base_url="http://backoffice.test")

    assert post(_event(1), OLD).status_code == 200
    assert post(_event(2), NEW).status_code == 200
    resp = post(_event(3), "whsec_third")
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "Stripe-Signature"
    assert _stored() == ["evt_roll_1", "evt_roll_2"]


def test_a_header_with_a_signature_per_secret_verifies(client):
    """While a secret rolls Stripe signs with both: one header, two v1 values."""
    body = _event(4)
    old, new = h.sign(body, OLD), h.sign(body, NEW)
    header = f"{old},{new.split(',')[1]}"
    assert h.deliver(client, body, signature=header).status_code == 200
    assert _stored() == ["evt_roll_4"]
