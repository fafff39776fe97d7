"""Users list, search, names, detail tabs, CSV and bad input."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.extensions import db
from backoffice.users import queries
from backoffice.users.filters import UserFilters
from tests.factories import AccountFactory, LoginFactory, MembershipFactory, UserFactory, UserSessionFactory
from tests.users.test_agents import CHROME_ANDROID, OPERA_DESKTOP


@pytest.fixture
def people(app):
    acme = AccountFactory(id="acc_acme", name="Acme Rockets")
    other = AccountFactory(id="acc_other", name="Other")
    both = UserFactory(id="usr_both", first_name="Grace", last_name="Hopper", email="grace@navy.mil",
                       created_at=datetime(2025, 1, 3, tzinfo=UTC))
    first = UserFactory(id="usr_first", first_name="Linus", last_name=None, email="l@kernel.org",
                        created_at=datetime(2025, 1, 2, tzinfo=UTC))
    last = UserFactory(id="usr_last", first_name="", last_name="Lovelace", email="ada@engine.uk",
                       created_at=datetime(2025, 1, 1, tzinfo=UTC))
    neither = UserFactory(id="usr_none", first_name=None, last_name=None, email="anon@x.io",
                          created_at=datetime(2024, 12, 31, tzinfo=UTC))
    MembershipFactory(user_id=both.id, account_id=acme.id, role="owner")
    MembershipFactory(user_id=both.id, account_id=other.id)
    MembershipFactory(user_id=neither.id, account_id=acme.id, state="pending")
    MembershipFactory(user_id=first.id, account_id=other.id)
    db.session.commit()
    return [both, first, last, neither]


def _ids(f: UserFilters) -> list[str]:
    return [u.id for u in queries.users_page(f).items]


def test_search_by_email_names_and_account(people):
    assert _ids(UserFilters(search="NAVY")) == ["usr_both"]
    assert _ids(UserFilters(search="linus")) == ["usr_first"]
    assert _ids(UserFilters(search="lovelace")) == ["usr_last"]
    assert _ids(UserFilters(search="acme")) == ["usr_both", "usr_none"]
    assert _ids(UserFilters(search="50%")) == []


def test_sort_by_display_name_and_names_shown_sensibly(people, admin_client):
    assert _ids(UserFilters(sort="name")) == ["usr_none", "usr_both", "usr_first", "usr_last"]
    html = admin_client.get("/users").get_data(as_text=True)
    for name in (">Grace Hopper<", ">Linus<", ">Lovelace<", ">anon@x.io<"):
        assert name in html
    assert "Acme Rockets" in html and "+1 more" in html
    for sort in ("email", "-email", "created", "last_seen", "-last_seen", "-name"):
        assert admin_client.get(f"/users?sort={sort}").status_code == 200


def test_detail_tabs_logins_and_sessions(people, admin_client):
    now = datetime.now(UTC)
    LoginFactory(user_id="usr_both", at=now - timedelta(days=1), user_agent=OPERA_DESKTOP)
    LoginFactory(user_id="usr_both", at=now - timedelta(days=2), user_agent=CHROME_ANDROID, outcome="failure")
    LoginFactory(user_id="usr_both", at=now - timedelta(days=45))
    UserSessionFactory(user_id="usr_both", created_at=now - timedelta(days=1), last_seen_at=now - timedelta(hours=1))
    UserSessionFactory(user_id="usr_both", created_at=now - timedelta(days=1), last_seen_at=now - timedelta(hours=2),
                       revoked_at=now - timedelta(hours=1))
    db.session.commit()
    tiles = queries.user_tiles("usr_both")
    assert (tiles.memberships, tiles.active_sessions, tiles.logins_30_days) == (2, 1, 2)
    html = admin_client.get("/users/usr_both").get_data(as_text=True)
    assert 'data-tab="overview"' in html and "Acme Rockets" in html
    assert "Opera 106 · Windows 10" in html and "Chrome Mobile 120 · Android 14" in html
    logins = admin_client.get("/users/usr_both/logins", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert logins.lstrip().startswith('<section id="user-tab"') and logins.count("<time") == 3
    sessions = admin_client.get("/users/usr_both/sessions").get_data(as_text=True)
    assert sessions.count(">Revoked<") == 1


@pytest.mark.parametrize("url,field", [
    ("/users?sort=age", "sort"), ("/users?page=0", "page"), ("/users?page_size=101", "page_size"),
    ("/users?search=" + "q" * 101, "search"), ("/users/bad%20id", "user_id"), ("/users/usr_both/logins?page=x", "page"),
])
def test_bad_input_is_a_clear_400(people, admin_client, url, field):
    resp = admin_client.get(url)
    assert resp.status_code == 400
    assert f"Parameter: {field}" in resp.get_data(as_text=True)


def test_fragment_and_csv(people, admin_client):
    frag = admin_client.get("/users?search=acme", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert frag.lstrip().startswith('<section id="user-table"')
    rows = list(csv.reader(io.StringIO(admin_client.get("/users?format=csv&sort=email").get_data(as_text=True))))
    assert rows[0] == ["Id", "E-mail", "First name", "Last name", "Created", "Last seen"]
    assert [r[1] for r in rows[1:]] == ["ada@engine.uk", "anon@x.io", "grace@navy.mil", "l@kernel.org"]
    assert rows[3][4] == "2025-01-03T00:00:00Z"
