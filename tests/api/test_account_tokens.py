"""Issue 21 part 6: a token of scope account reads its own account, its billing events and its
invoices, and nothing else. The walk goes over every API route of the url_map: a route added
tomorrow is refused to account tokens unless it is listed in OWN with the checks of what it
answers."""
from __future__ import annotations

import re
from datetime import timedelta

import jsonschema
import pytest

from backoffice.api import services
from backoffice.api.models import ApiToken
from backoffice.extensions import db
from tests.factories import (
    NOW,
    AccountFactory,
    BillingEventFactory,
    PaymentTransactionFactory,
    PlatformInvoiceFactory,
    SubscriptionFactory,
)
from tests.test_security import RULES, is_api, url_of

A, B = "acc_alpha", "acc_beta"


@pytest.fixture
def two(app):
    """Accounts A and B, each with two billing events, a Stripe invoice and a draft of Backoffice's
    own; a token of scope account for A. Answers the headers and A's and B's platform invoice ids."""
    invoices = {}
    for account_id, name in ((A, "Alpha AG"), (B, "Beta GmbH")):
        AccountFactory(id=account_id, name=name)
        sub = SubscriptionFactory(account_id=account_id)
        BillingEventFactory(subscription=sub, occurred_at=NOW)
        BillingEventFactory(subscription=sub, occurred_at=NOW + timedelta(days=1), type="subscription_upgraded",
                            from_plan="pro", to_plan="pro", previous_amount=sub.price_amount,
                            new_amount=sub.price_amount * 2)
        PaymentTransactionFactory(account_id=account_id)
        invoices[account_id] = PlatformInvoiceFactory(account_id=account_id).id
    db.session.commit()
    _token, secret = services.create_token("alpha portal", "account", A)
    return {"headers": {"Authorization": f"Bearer {secret}"}, "invoices": invoices}


def _check(doc: dict, schema: str, answer: dict) -> None:
    validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}",
                                                 "components": doc["components"]})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(answer)]
    assert errors == [], errors


def _refused(resp, field: str | None) -> dict:
    assert resp.status_code == 403, resp.get_data(as_text=True)[:300]
    error = resp.get_json()["error"]
    assert (error["code"], error["field"]) == ("forbidden", field) and error["message"]
    return error


def _says_nothing_of_b(resp) -> None:
    text = resp.get_data(as_text=True)
    assert B not in text and "Beta" not in text, text[:300]


# --- the routes an account token may call, each with what it must answer ------------------------

def _own_account(client, two, doc) -> None:
    headers = two["headers"]
    mine = client.get(f"/api/v1/accounts/{A}", headers=headers)
    assert mine.status_code == 200 and mine.get_json()["id"] == A and mine.get_json()["name"] == "Alpha AG"
    _check(doc, "AccountDetail", mine.get_json())
    _says_nothing_of_b(mine)
    theirs = client.get(f"/api/v1/accounts/{B}", headers=headers)
    _refused(theirs, "account_id")
    _says_nothing_of_b(theirs)
    # The refusal is the same for an account that does not exist: it tells nothing about B.
    assert theirs.get_json() == client.get("/api/v1/accounts/acc_nobody", headers=headers).get_json()


def _own_billing_events(client, two, doc) -> None:
    headers = two["headers"]
    for query in ("", f"?account={A}", "?view=mrr", "?search=Beta"):
        listed = client.get(f"/api/v1/billing-events{query}", headers=headers)
        assert listed.status_code == 200, (query, listed.get_json())
        body = listed.get_json()
        expected = 0 if query == "?search=Beta" else 2  # a search for B's name finds nothing of A's
        assert body["total"] == expected and [i["account_id"] for i in body["items"]] == [A] * expected, query
        for item in body["items"]:
            _check(doc, "BillingEvent", item)
        _says_nothing_of_b(listed)
    theirs = client.get(f"/api/v1/billing-events?account={B}", headers=headers)
    _refused(theirs, "account")
    assert theirs.get_json() == client.get("/api/v1/billing-events?account=acc_nobody", headers=headers).get_json()


def _own_invoices(client, two, doc) -> None:
    headers = two["headers"]
    for query in ("", f"?account={A}", "?source=backoffice"):
        listed = client.get(f"/api/v1/invoices{query}", headers=headers)
        assert listed.status_code == 200, (query, listed.get_json())
        items = listed.get_json()["items"]
        assert {i["account_id"] for i in items} == {A}, query
        for item in items:
            _check(doc, "InvoiceRow", item)
        _says_nothing_of_b(listed)
    every = client.get("/api/v1/invoices", headers=headers).get_json()["items"]
    assert sorted(i["source"] for i in every) == ["backoffice", "stripe"]
    theirs = client.get(f"/api/v1/invoices?account={B}", headers=headers)
    _refused(theirs, "account")
    assert theirs.get_json() == client.get("/api/v1/invoices?account=acc_nobody", headers=headers).get_json()


def _own_invoice(client, two, doc) -> None:
    headers, invoices = two["headers"], two["invoices"]
    mine = client.get(f"/api/v1/invoices/backoffice:{invoices[A]}", headers=headers)
    assert mine.status_code == 200 and mine.get_json()["account_id"] == A
    _check(doc, "PlatformInvoice", mine.get_json())
    # Another account's invoice is not found, exactly as one that does not exist.
    theirs = client.get(f"/api/v1/invoices/backoffice:{invoices[B]}", headers=headers)
    nobody = client.get("/api/v1/invoices/backoffice:999999", headers=headers)
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.get_json()["error"]["message"] == f"No invoice 'backoffice:{invoices[B]}'."
    assert nobody.get_json()["error"]["message"] == "No invoice 'backoffice:999999'."
    _check(doc, "Error", theirs.get_json())


OWN = {
    "api.lists.get_account": _own_account,
    "api.lists.list_billing_events": _own_billing_events,
    "api.lists.list_invoices": _own_invoices,
    "api.lists.get_invoice": _own_invoice,
}
PUBLIC = frozenset({"api.openapi"})


def _api_cases() -> list:
    return [pytest.param(rule, method, id=f"{method} {rule.rule}") for rule in RULES if is_api(rule)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]


@pytest.mark.parametrize(("rule", "method"), _api_cases())
def test_an_account_token_on_every_api_route(client, two, rule, method):
    """Its own account's routes answer A's data only; every other route, whatever it is about
    (writes, metrics, drift, the price book, users, the list of accounts), refuses it with 403.
    Each URL argument is filled with A's own id, so the refusal is the route's, not the account's."""
    if rule.endpoint in PUBLIC:
        assert client.get(url_of(rule)).status_code == 200
        return
    if rule.endpoint in OWN:
        OWN[rule.endpoint](client, two, client.get("/api/v1/openapi.json").get_json())
        return
    resp = client.open(url_of(rule).replace("dummy", A), method=method, headers=two["headers"], json={})
    error = _refused(resp, None)
    assert error["message"] == ("An account-scoped token reads only its own account, its billing events and its "
                                "invoices.")


def test_the_walk_knows_the_routes_it_lets_through():
    """OWN and PUBLIC name real endpoints (a rename must not turn their checks off)."""
    endpoints = {rule.endpoint for rule in RULES if is_api(rule)}
    assert set(OWN) | PUBLIC <= endpoints


def test_other_tokens_still_read_every_account(client, two):
    _token, secret = services.create_token("bi", "read")
    headers = {"Authorization": f"Bearer {secret}"}
    events = client.get("/api/v1/billing-events", headers=headers).get_json()
    assert events["total"] == 4 and {i["account_id"] for i in events["items"]} == {A, B}
    assert client.get(f"/api/v1/billing-events?account={B}", headers=headers).get_json()["total"] == 2
    assert client.get(f"/api/v1/accounts/{B}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/invoices/backoffice:{two['invoices'][B]}", headers=headers).status_code == 200


def test_a_revoked_account_token_is_refused(client, two):
    token = db.session.execute(db.select(ApiToken)).scalar_one()
    services.revoke_token(token.id)
    assert client.get(f"/api/v1/accounts/{A}", headers=two["headers"]).status_code == 401


def test_openapi_says_which_operations_take_account_tokens(client):
    """Every operation lists the scopes that may call it and documents the 403 of the others;
    those that take account tokens are exactly the walk's OWN and say what such a token reads."""
    doc = client.get("/api/v1/openapi.json").get_json()
    taking = set()
    for rule in RULES:
        if not is_api(rule) or rule.endpoint in PUBLIC:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = doc["paths"][path][method.lower()]
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            scopes = [scope for requirement in op["security"] for scope in requirement["bearer"]]
            assert scopes[0] == "admin", (method, path)
            if "account" in scopes:
                taking.add(rule.endpoint)
                assert "A token of scope account reads its own account's only" in op["description"]
    assert taking == set(OWN)
    assert "A token of scope account reads one account's own records" in doc["info"]["description"]
