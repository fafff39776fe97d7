"""The header search: every kind of match finds its row, groups are cut at five with a link to the
list, the empty state, bad queries, sign-in, escaping, and the fragment beside the page."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from backoffice.extensions import db
from backoffice.search import queries
from tests.conftest import IS_POSTGRES
from tests.factories import AccountFactory, PaymentTransactionFactory, PlatformInvoiceFactory, UserFactory

DELETED = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def data(app):
    with app.app_context():
        AccountFactory(id="acc_7Q2xK9", name="Acme Rockets", stripe_customer_id="cus_Nx81Ab",
                       billing_email="Billing@Acme.example")
        AccountFactory(id="acc_7Q3zz1", name="Zeta Widgets", stripe_customer_id="cus_Zz00",
                       billing_email="ap@zeta.example", deleted_at=DELETED)
        AccountFactory(id="acc_hostile", name='<script>alert("x")</script> Evil', stripe_customer_id=None)
        AccountFactory(id="acc_zh", name="Ärztekammer Zürich", stripe_customer_id=None)
        UserFactory(id="usr_ada", email="Ada.Lovelace@acme.example", first_name="Ada", last_name="Lovelace")
        UserFactory(id="usr_bob", email="bob@zeta.example", first_name=None, last_name=None)
        PaymentTransactionFactory(account_id="acc_7Q2xK9", stripe_invoice_id="in_1", number="A1B2-0042")
        PlatformInvoiceFactory(account_id="acc_7Q3zz1", number="BO-2026-0007")
        db.session.commit()


def _ids(group) -> list:
    return [row.id for row in group.items]


@pytest.mark.parametrize(("q", "accounts"), [
    ("rocket", ["acc_7Q2xK9"]),  # name contains, any case
    ("ROCKETS", ["acc_7Q2xK9"]),
    ("acc_7Q2xK9", ["acc_7Q2xK9"]),  # id exact
    ("acc_7q", ["acc_7Q2xK9", "acc_7Q3zz1"]),  # id prefix, any case; ordered by name
    ("2xk", ["acc_7Q2xK9"]),  # partial id
    ("cus_Nx81Ab", ["acc_7Q2xK9"]),  # Stripe customer id exact
    ("cus_z", ["acc_7Q3zz1"]),  # and prefix
    ("billing@acme", ["acc_7Q2xK9"]),  # billing e-mail prefix, any case
    ("ap@zeta.example", ["acc_7Q3zz1"]),
    ("nothing-like-it", []),
    ("ZÜRICH", ["acc_zh"]),  # beyond ASCII: Unicode case folding on both databases
    ("ärztek", ["acc_zh"]),
])
def test_accounts_match(app, data, q, accounts):
    with app.test_request_context():
        assert _ids(queries.accounts(q)) == accounts


@pytest.mark.parametrize(("q", "users"), [
    ("ada.lovelace@acme.example", ["usr_ada"]),  # exact
    ("ADA.", ["usr_ada"]),  # prefix
    ("zeta.ex", ["usr_bob"]),  # contains
    ("example", ["usr_ada", "usr_bob"]),  # by e-mail
    ("lovelace", ["usr_ada"]),
])
def test_users_match_by_email(app, data, q, users):
    with app.test_request_context():
        assert _ids(queries.users(q)) == users


@pytest.mark.parametrize(("q", "invoices"), [
    ("A1B2-0042", [("stripe", "A1B2-0042", "acc_7Q2xK9")]),  # a Stripe invoice, exact
    ("a1b2", [("stripe", "A1B2-0042", "acc_7Q2xK9")]),  # prefix, any case
    ("bo-2026", [("backoffice", "BO-2026-0007", "acc_7Q3zz1")]),  # Backoffice's own
    ("0042", []),  # numbers match from the start only
])
def test_invoices_match_by_number(app, data, q, invoices):
    with app.test_request_context():
        group = queries.invoices(q)
        assert [(i.source, i.number, i.account_id) for i in group.items] == invoices


def test_groups_are_cut_at_five_with_a_link_to_the_list(app, admin_client):
    with app.app_context():
        for n in range(7):
            AccountFactory(id=f"acc_many_{n}", name=f"Many {n}")
            UserFactory(id=f"usr_many_{n}", email=f"many{n}@x.example")
        for n in range(6):
            PaymentTransactionFactory(number=f"MANY-{n}")
        db.session.commit()
        with app.test_request_context():
            group = queries.accounts("many")
            assert (_ids(group), group.more) == ([f"acc_many_{n}" for n in range(5)], True)
            assert _ids(queries.users("many")) == [f"usr_many_{n}" for n in range(5)]
            assert [i.number for i in queries.invoices("many").items] == [f"MANY-{n}" for n in range(5)]
    html = admin_client.get("/search?q=many").get_data(as_text=True)
    assert 'href="/accounts?search=many"' in html
    assert 'href="/users?search=many"' in html
    assert html.count("data-search-option") == 5 + 5 + 5 + 2  # the rows and two list links
    assert "More than 5: type more of the number." in html


def test_the_page_groups_and_links_results(data, admin_client):
    html = admin_client.get("/search?q=zeta").get_data(as_text=True)
    accounts = html.index('id="search-accounts"')
    users = html.index('id="search-users"')
    assert accounts < html.index('href="/accounts/acc_7Q3zz1"') < users < html.index('href="/users/usr_bob"')
    assert "Deleted" in html[accounts:users]  # a deleted account says so
    assert 'id="search-invoices"' not in html
    assert "/accounts?search=" not in html  # no link when nothing more matched
    html = admin_client.get("/search?q=bo-2026").get_data(as_text=True)
    assert 'href="/invoicing/invoices/' in html and "BO-2026-0007" in html
    html = admin_client.get("/search?q=a1b2").get_data(as_text=True)
    assert 'href="/accounts/acc_7Q2xK9/invoices"' in html


def test_nothing_found(data, admin_client):
    resp = admin_client.get("/search?q=qqqqq")
    assert resp.status_code == 200
    assert "Nothing found for “qqqqq”." in resp.get_data(as_text=True)


def test_a_short_query_answers_the_prompt_without_querying(data, admin_client, monkeypatch):
    monkeypatch.setattr(queries, "accounts", lambda q: pytest.fail("queried"))
    for q in ("", "a", " a "):
        html = admin_client.get("/search", query_string={"q": q}, headers={"HX-Request": "true"}).get_data(as_text=True)
        assert "Type at least 2 characters" in html


@pytest.mark.parametrize("q", ["x" * 101, "ab\x00c"])
def test_a_bad_query_is_a_400_naming_q(admin_client, q):
    resp = admin_client.get("/search", query_string={"q": q}, headers={"Accept": "application/json"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["field"] == "q"


def test_sign_in_is_required(client):
    resp = client.get("/search?q=acme")
    assert resp.status_code == 302 and "/sign-in" in resp.headers["Location"]


def test_a_viewer_may_search(data, viewer_client):
    assert 'href="/accounts/acc_7Q2xK9"' in viewer_client.get("/search?q=acme").get_data(as_text=True)


def test_output_is_escaped(data, admin_client):
    html = admin_client.get("/search?q=<script>").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Evil" in html
    assert 'value="&lt;script&gt;"' in html  # the query in the box too


def test_fragment_for_htmx_and_page_otherwise(data, admin_client):
    fragment = admin_client.get("/search?q=acme", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="search-results"') and "<html" not in body
    assert "HX-Request" in fragment.headers["Vary"]
    for headers in ({}, {"HX-Request": "true", "HX-Boosted": "true"},
                    {"HX-Request": "true", "HX-History-Restore-Request": "true"}):
        page = admin_client.get("/search?q=acme", headers=headers).get_data(as_text=True)
        assert "<html" in page and 'id="search-results"' in page


def test_the_header_box_is_on_every_page_but_the_kiosk(admin_client):
    html = admin_client.get("/accounts").get_data(as_text=True)
    box = re.search(r'<input id="header-search"[^>]*>', html).group(0)
    assert 'hx-get="/search"' in box and 'hx-sync="this:replace"' in box and 'name="q"' in box
    assert '<label for="header-search" class="visually-hidden">' in html
    assert 'action="/search"' in html and 'id="search-popup"' in html


@pytest.mark.parametrize("q", ["cus_many", "CUS_MANY", "pay@many", "acc_lot", "lot_", "ot_"])
def test_the_more_link_lands_on_a_list_that_holds_every_match(app, admin_client, q):
    """The accounts list's search finds what the header search finds an account by: a Stripe
    customer id or billing e-mail prefix, an id prefix or partial id, not only a name."""
    with app.app_context():
        for n in range(7):
            AccountFactory(id=f"acc_lot_{n}", name=f"Firm {n}", stripe_customer_id=f"cus_Many{n}",
                           billing_email=f"pay@many{n}.example")
        AccountFactory(id="acc_other", name="Other", stripe_customer_id="cus_Other", billing_email="x@other.example")
        db.session.commit()
        with app.test_request_context():
            assert queries.accounts(q).more
    html = admin_client.get(f"/search?q={q}").get_data(as_text=True)
    assert f'href="/accounts?search={q}"' in html
    listed = admin_client.get(f"/accounts?search={q}").get_data(as_text=True)
    assert sorted(set(re.findall(r'href="/accounts/(acc_lot_\d|acc_other)"', listed))) == [f"acc_lot_{n}" for n in range(7)]


def test_contains_follows_every_change_to_the_searched_rows(app, data):
    """A renamed account, a user whose e-mail changed and a deleted user are found as they are now
    (on SQLite the trigram tables are kept by triggers, migration 0028)."""
    with app.test_request_context():
        account = db.session.get(AccountFactory._meta.model, "acc_7Q2xK9")
        account.name = "Acme Spacecraft"
        user = db.session.get(UserFactory._meta.model, "usr_bob")
        user.email = "robert@omega.example"
        db.session.delete(db.session.get(UserFactory._meta.model, "usr_ada"))
        db.session.commit()
        assert _ids(queries.accounts("rocket")) == []
        assert _ids(queries.accounts("spacecr")) == ["acc_7Q2xK9"]
        assert _ids(queries.users("zeta.ex")) == []
        assert _ids(queries.users("omega.ex")) == ["usr_bob"]
        assert _ids(queries.users("lovelace")) == []
        AccountFactory(id="acc_new", name="Brand New Rockets")
        db.session.commit()
        assert _ids(queries.accounts("new rock")) == ["acc_new"]


@pytest.mark.parametrize(("q", "accounts"), [
    ('"50%"', ["acc_quote"]),  # quotes and LIKE's wildcards are only characters
    ("0%\" o", ["acc_quote"]),
    ("f_s", ["acc_under"]),
    ("f%s", []),
    ('" OR "', []),  # no query syntax inside what was typed
])
def test_contains_takes_what_was_typed_literally(app, q, accounts):
    with app.test_request_context():
        AccountFactory(id="acc_quote", name='Fifty "50%" Off')
        AccountFactory(id="acc_under", name="Staff_Store")
        AccountFactory(id="acc_plain", name="Fifty Percent Offers")
        db.session.commit()
        assert _ids(queries.accounts(q)) == accounts


@pytest.mark.skipif(IS_POSTGRES, reason="PostgreSQL reads pg_trgm indexes (its plans are checked by the benchmark)")
@pytest.mark.parametrize(("group", "table"), [("accounts", "accounts_fts"), ("users", "users_fts")])
def test_contains_reads_the_trigram_tables_on_sqlite(app, group, table):
    """Without them a fragment that matched few rows read every row (p95 148 ms at 200,000 users)."""
    with app.test_request_context():
        stmt = queries.GROUPS[group]("zzqq")
        compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = " | ".join(row[-1] for row in db.session.execute(db.text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert f"SCAN {table} VIRTUAL TABLE INDEX" in plan, plan
