"""Paging and the parsing of list parameters shared by every list page and API list.

Bad input is a 400 that names the parameter: a page over MAX_PAGE, a page size over 100, a
search over 100 characters, an unknown sort column, a malformed date. A page beyond the end is no
error: a page (HTML) shows the last page with a note (`asked`, the page asked for); the API answers
what its document promises, no items and the real total (`past_end`). A capped count knows no last
page: past its end the page is empty and links the last page it counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from flask import current_app, has_request_context
from flask_babel import gettext as _

from backoffice.errors import BadRequest, api_request
from backoffice.extensions import db

MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000_000  # its offset stays far within a 64-bit integer the databases take
LIST_PAGE_SIZE = 25  # the lists' rows per page unless the URL says otherwise
MAX_SEARCH = 100
# The days a date filter may name: a list's `to` is read up to the next midnight, which must exist
# (9999-12-31 has none), and no event of the platform is older than the Unix epoch.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    page_size: int
    # A capped count (paginate_capped): `total` is a lower bound and `more` says whether a next page exists.
    capped: bool = False
    more: bool = False
    asked: int | None = None  # the page asked for, beyond the end: this page is the last instead

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def past_end(self) -> bool:
        """A page after the last one: empty, whatever the list holds."""
        return (self.page > 1 and not self.items) if self.capped else self.page > self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.more if self.capped else self.page < self.pages

    @property
    def first_index(self) -> int:
        return 0 if self.total == 0 or self.past_end else (self.page - 1) * self.page_size + 1

    @property
    def last_index(self) -> int:
        return 0 if self.past_end else min(self.total, self.page * self.page_size)


def _shows_last_page() -> bool:
    """A page past the end is answered with the last page on the pages, not in the API."""
    return has_request_context() and not api_request()


def within(page: int, total: int, page_size: int) -> tuple[int, int | None]:
    """The page to read and the page asked for if that was beyond the end (see the module's doc)."""
    last = max(1, math.ceil(total / page_size))
    return (last, page) if page > last and _shows_last_page() else (page, None)


def paginate(stmt, page: int, page_size: int, scalars: bool = True) -> Page:
    total = db.session.execute(
        db.select(db.func.count()).select_from(stmt.order_by(None).subquery())
    ).scalar_one()
    page, asked = within(page, total, page_size)
    result = db.session.execute(stmt.limit(page_size).offset((page - 1) * page_size))
    items = list(result.scalars()) if scalars else list(result)
    return Page(items, total, page, page_size, asked=asked)


COUNT_CAP = 10_000


def paginate_capped(stmt, page: int, page_size: int, scalars: bool = True, count_stmt=None,
                    cap: int | None = None, when_capped=None) -> Page:
    """Like `paginate`, but counts at most `cap` + 1 rows, so a list of millions answers as fast as a
    short one; beyond the cap the page says "more than N" (`capped`) and `more` drives "Next".
    `count_stmt` may be a cheaper statement with the same rows (no joins needed only for display).
    `when_capped(limit, offset)`, asked first when so many rows match, may answer the rows in a way
    that suits a broad match (reading the list in order, testing each row), or None to read `stmt`."""
    if cap is None:

        cap = current_app.config.get("LIST_COUNT_CAP", COUNT_CAP)
    counted = (count_stmt if count_stmt is not None else stmt).order_by(None).limit(cap + 1).subquery()
    total = db.session.execute(db.select(db.func.count()).select_from(counted)).scalar_one()
    capped = total > cap
    page, asked = (page, None) if capped else within(page, total, page_size)
    offset = (page - 1) * page_size
    items = when_capped(page_size + 1, offset) if capped and when_capped is not None else None
    if items is None:
        result = db.session.execute(stmt.limit(page_size + 1).offset(offset))
        items = list(result.scalars()) if scalars else list(result)
    more = len(items) > page_size
    return Page(items[:page_size], min(total, cap) if capped else total, page, page_size, capped, more, asked)


def parse_int(args, name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(_("%(name)s must be a whole number.", name=name), field=name) from None
    if value < minimum or (maximum is not None and value > maximum):
        if maximum is not None:
            msg = _("%(name)s must be between %(min)s and %(max)s.", name=name, min=minimum, max=maximum)
        else:
            msg = _("%(name)s must be at least %(min)s.", name=name, min=minimum)
        raise BadRequest(msg, field=name)
    return value


def parse_page(args) -> tuple[int, int]:
    page = parse_int(args, "page", 1, 1, MAX_PAGE)
    page_size = parse_int(args, "page_size", LIST_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return page, page_size


def parse_search(args, name: str = "search") -> str:
    value = args.get(name) or ""
    if len(value) > MAX_SEARCH:
        raise BadRequest(_("The search may have at most %(n)s characters.", n=MAX_SEARCH), field=name)
    return value.strip()


def parse_sort(args, allowed: tuple[str, ...], default: str, aliases: dict[str, str] | None = None) -> str:
    """The sort key (`-` for descending). `aliases` maps the field names the API answers with
    (e.g. `occurred_at`) to the keys (`occurred`): both are accepted; the key is returned."""
    value = args.get("sort") or default
    descending, name = value.startswith("-"), value.removeprefix("-")
    name = (aliases or {}).get(name, name)
    if name not in allowed:
        names = [*allowed, *(aliases or {})]
        raise BadRequest(
            _("Unknown sort column %(col)s; use one of %(cols)s.", col=value, cols=", ".join(names)),
            field="sort",
        )
    return ("-" if descending else "") + name


def parse_date(args, name: str) -> datetime | None:
    """A YYYY-MM-DD (or ISO datetime) parameter as an aware UTC datetime, from FIRST_DAY to LAST_DAY."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        # A day is its midnight (UTC); Python 3.11+ reads a trailing Z.
        value = datetime.combine(date.fromisoformat(raw), time()) if len(raw) == 10 else datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(_("%(name)s must be a date like 2026-01-31.", name=name), field=name) from None
    if not FIRST_DAY <= value.date() <= LAST_DAY:
        raise BadRequest(_("%(name)s must be a day from %(first)s to %(last)s.", name=name,
                           first=FIRST_DAY.isoformat(), last=LAST_DAY.isoformat()), field=name)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def with_overrides(args: dict, overrides: dict, sort: str | bool = False, page_size: int = LIST_PAGE_SIZE) -> dict:
    """A list's query arguments, with its sort (unless the default: pass False) and page size
    (unless LIST_PAGE_SIZE), some of them replaced; an empty override (None, "", False, [])
    removes the argument."""
    if sort:
        args["sort"] = sort
    if page_size != LIST_PAGE_SIZE:
        args["page_size"] = page_size
    for key, value in overrides.items():
        if value in (None, "", False, []):
            args.pop(key, None)
        else:
            args[key] = value
    return args
