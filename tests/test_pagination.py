"""Every list page refuses bad list parameters with a 400 that names the parameter; never a 500."""
from __future__ import annotations

import re

import pytest

from backoffice.api import services
from backoffice.errors import BadRequest
from backoffice.extensions import db
from backoffice.operators.services import audit
from backoffice.pagination import Page, parse_int, parse_page, parse_search, parse_sort
from tests.factories import (
    AccountFactory,
    BillingEventFactory,
    PaymentTransactionFactory,
    SubscriptionFactory,
    UserFactory,
)

# list page → (its search parameter, whether it sorts)
LIST_PAGES = {
    "/accounts": ("search", True),
    "/users": ("search", True),
    "/ledger": ("search", True),
    "/invoices": ("search", True),
    "/operators/audit": ("operator", False),
}
JSON = {"Accept": "application/json"}


def _bad_queries(search: str, sorts: bool) -> list[tuple[str, str]]:
    cases = [
        ("page=99999999999999999999", "page"),
        ("page=1000000001", "page"),  # beyond MAX_PAGE
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=two", "page"),
        ("page_size=101", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=1.5", "page_size"),
        (f"{search}=" + "x" * 101, search),
    ]
    if sorts:
        cases += [("sort=no_such_column", "sort"), ("sort=-no_such_column", "sort"), ("sort=--name", "sort")]
    return cases


@pytest.mark.parametrize("path", LIST_PAGES)
def test_bad_list_parameter_is_400_naming_it(admin_client, path):
    """One test per page (each case is a request, not a fresh app), every failure reported."""
    failures = []
    for query, field in _bad_queries(*LIST_PAGES[path]):
        resp = admin_client.get(f"{path}?{query}", headers=JSON)
        error = resp.get_json()["error"] if resp.is_json else {}
        if resp.status_code != 400 or error.get("field") != field or error.get("code") != "bad_request":
            failures.append((query, resp.status_code, error))
            continue
        resp = admin_client.get(f"{path}?{query}")
        if resp.status_code != 400 or "<nav" not in resp.get_data(as_text=True):  # the shell stays around it
            failures.append((query, resp.status_code, "html"))
        resp = admin_client.get(f"{path}?{query}", headers={"HX-Request": "true"})
        if resp.status_code != 400:
            failures.append((query, resp.status_code, "htmx"))
    assert failures == []


EDGE_QUERIES = [
    "page=1", "page_size=100", "page_size=1", "search=" + "x" * 100, "search=%25_%5C'%22;--",
    "search=%C3%BCber", "search=+++", "unknown_parameter=1", "sort=",
]


@pytest.mark.parametrize("path", LIST_PAGES)
def test_edge_values_are_accepted_never_500(admin_client, path):
    search = LIST_PAGES[path][0]
    failures = []
    for query in EDGE_QUERIES:
        query = query.replace("search=", f"{search}=")
        resp = admin_client.get(f"{path}?{query}")
        if resp.status_code != 200:
            failures.append((query, resp.status_code))
    # PostgreSQL text cannot hold a NUL byte: a 400 naming the parameter, never a 500.
    resp = admin_client.get(f"{path}?{search}=a%00b", headers=JSON)
    if resp.status_code != 400 or resp.get_json()["error"]["field"] != search:
        failures.append(("NUL", resp.status_code))
    assert failures == []


def test_nul_bytes_anywhere_are_400(admin_client):
    assert admin_client.get("/accounts/acc%00x").status_code == 400
    assert admin_client.get("/users/u%00x", headers=JSON).get_json()["error"]["code"] == "bad_request"
    resp = admin_client.post("/operators/invite", data={"email": "a\x00@example.com", "role": "viewer",
                                                         "csrf_token": admin_client.csrf}, headers=JSON)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == "email"


def test_the_last_page_exists_and_the_next_is_past_the_end():
    assert not Page(items=[], total=0, page=1, page_size=25).past_end  # an empty list has page 1
    assert not Page(items=["z"], total=26, page=2, page_size=25).past_end
    past = Page(items=[], total=25, page=2, page_size=25)
    assert (past.past_end, past.pages, past.first_index, past.last_index) == (True, 1, 0, 0)
    # A capped count knows no last page: past the end is where no row came back.
    assert Page(items=[], total=10_000, page=900, page_size=25, capped=True).past_end


@pytest.fixture
def one_row_each(app, admin_client):
    """One row on every list."""
    with app.app_context():
        sub = SubscriptionFactory(account_id=AccountFactory(id="acc_only", name="Only Account").id)
        BillingEventFactory(subscription=sub)
        PaymentTransactionFactory(account_id="acc_only", number="ONLY-0001")
        UserFactory(id="usr_only", email="only@example.com")
        audit(None, "account.sync", "account", "acc_only")
        db.session.commit()


@pytest.mark.parametrize("path", LIST_PAGES)
def test_a_page_past_the_end_shows_the_last_page_with_a_note(admin_client, one_row_each, path):
    resp = admin_client.get(f"{path}?page=7")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Page 7 is beyond the end of the list; this is the last page." in html
    assert 'aria-current="page">Page 1 of 1<' in html
    assert ("only@example.com" if path == "/users" else "acc_only") in html  # the last page's row
    assert re.search(r'<span aria-disabled="true">Next</span>', html)


@pytest.mark.parametrize("path", LIST_PAGES)
def test_a_page_past_the_end_of_an_empty_list_is_its_empty_state(admin_client, path):
    resp = admin_client.get(f"{path}?page=7&search=nothing-matches-this" if LIST_PAGES[path][0] == "search"
                            else f"{path}?page=7&operator=nobody@example.com")
    assert resp.status_code == 200
    assert 'class="empty-state"' in resp.get_data(as_text=True)


def test_the_api_answers_a_page_past_the_end_as_its_document_says(app, client, one_row_each):
    _token, secret = services.create_token("lists", "read")
    body = client.get("/api/v1/accounts?page=7", headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert (body["items"], body["total"], body["page"]) == ([], 1, 7)


def test_page_arithmetic():
    page = Page(items=[], total=51, page=3, page_size=25)
    assert (page.pages, page.has_prev, page.has_next, page.first_index, page.last_index) == (3, True, False, 51, 51)
    empty = Page(items=[], total=0, page=1, page_size=25)
    assert (empty.pages, empty.has_prev, empty.has_next, empty.first_index, empty.last_index) == (1, False, False, 0, 0)


def test_parsers(app):
    with app.test_request_context():
        assert parse_page({}) == (1, 25)
        assert parse_page({"page": "3", "page_size": "100"}) == (3, 100)
        assert parse_int({"n": ""}, "n", 7) == 7
        assert parse_search({"search": "  padded  "}) == "padded"
        assert parse_search({"search": "x" * 100}) == "x" * 100
        assert parse_sort({"sort": "-name"}, ("name",), "name") == "-name"
        assert parse_sort({}, ("name",), "-name") == "-name"
        with pytest.raises(BadRequest) as e:
            parse_page({"page_size": "101"})
        assert (e.value.field, e.value.message) == ("page_size", "page_size must be between 1 and 100.")
        with pytest.raises(BadRequest) as e:
            parse_search({"q": "y" * 101}, "q")
        assert (e.value.field, e.value.message) == ("q", "The search may have at most 100 characters.")
        with pytest.raises(BadRequest) as e:
            parse_sort({"sort": "bogus"}, ("name", "created"), "name")
        assert (e.value.field, e.value.message) == ("sort", "Unknown sort column bogus; use one of name, created.")
