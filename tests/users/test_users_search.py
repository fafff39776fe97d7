"""A broad users search (more matches than the count cap) reads its page from the head of the list,
testing each user there; it must give exactly the rows of the full search, on every sort and page,
and fall back to the full search when the head holds too few matches."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backoffice.extensions import db
from backoffice.users import queries
from backoffice.users.filters import SORTS, UserFilters
from tests.factories import AccountFactory, MembershipFactory, UserFactory

START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def crowd(app):
    """30 users: every third found by its e-mail, others through an account named "Rocket…" (one of
    them in two such accounts), the rest not at all; some without names or a last-seen time."""
    rockets = [AccountFactory(id=f"acc_rocket_{n}", name=f"Rocket Labs {n}") for n in range(3)]
    other = AccountFactory(id="acc_other", name="Other")
    for i in range(30):
        user = UserFactory(id=f"usr_{i:02d}", email=f"{'rocketeer' if i % 3 == 0 else 'user'}{i}@x.io",
                           first_name=None if i % 4 == 0 else f"Name{i % 7}", last_name=f"Last{i % 5}",
                           created_at=START + timedelta(days=i % 11, minutes=i),
                           last_seen_at=None if i % 6 == 0 else START + timedelta(days=i % 9))
        account = rockets[i // 3 % 3] if i % 3 == 1 else other
        MembershipFactory(user_id=user.id, account_id=account.id)
        if i == 4:
            MembershipFactory(user_id=user.id, account_id=rockets[2].id)
    db.session.commit()
    app.config["LIST_COUNT_CAP"] = 5  # every search for "rocket" is broad (20 matches)


def _reference(f: UserFilters) -> list[str]:
    """The full search: every match, in list order."""
    return [u.id for u in db.session.execute(queries.users_stmt(f)).scalars()]


@pytest.mark.parametrize("sort", [*SORTS, *(f"-{s}" for s in SORTS)])
def test_pages_read_from_the_head_are_the_full_search_s_pages(crowd, monkeypatch, sort):
    answered = []
    head = queries._page_from_head

    def spy(f):
        read = head(f)

        def counted(limit, offset):
            rows = read(limit, offset)
            answered.append(rows is not None)
            return rows
        return counted

    monkeypatch.setattr(queries, "_page_from_head", spy)
    expected = _reference(UserFilters(search="ROCKET", sort=sort))
    assert len(expected) == 20
    for page in (1, 2, 3):
        f = UserFilters(search="ROCKET", sort=sort, page=page, page_size=7)
        result = queries.users_page(f)
        assert [u.id for u in result.items] == expected[(page - 1) * 7:page * 7]
        assert (result.capped, result.total, result.has_next) == (True, 5, page < 3)
    assert answered == [True, True, False]  # the last page is short: the full search answers it


def test_a_head_too_short_falls_back_to_the_full_search(crowd, monkeypatch):
    monkeypatch.setattr(queries, "WALK_ROWS", 6)
    f = UserFilters(search="rocket", sort="name", page_size=4)
    assert [u.id for u in queries.users_page(f).items] == _reference(f)[:4]
    f = UserFilters(search="rocket", sort="name", page=2, page_size=4)  # past the head: not even tried
    assert [u.id for u in queries.users_page(f).items] == _reference(f)[4:8]


def test_a_narrow_search_is_counted_exactly(crowd):
    f = UserFilters(search="labs 2")  # the members of one account, one of them in a second one too
    page = queries.users_page(f)
    assert [u.id for u in page.items] == _reference(f)
    assert (page.capped, page.total) == (False, len(page.items)) and page.total == 4
