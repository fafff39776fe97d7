"""The users list's state (search, sort, page) from the query string and back."""
from __future__ import annotations

from dataclasses import dataclass

from backoffice.pagination import LIST_PAGE_SIZE, parse_page, parse_search, parse_sort, with_overrides

SORTS = ("name", "email", "created", "last_seen")
DEFAULT_SORT = "-created"
SORT_ALIASES = {"display_name": "name", "created_at": "created", "last_seen_at": "last_seen"}  # the API's field names


@dataclass
class UserFilters:
    search: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    page_size: int = LIST_PAGE_SIZE

    @classmethod
    def from_args(cls, args) -> UserFilters:
        page, page_size = parse_page(args)
        return cls(parse_search(args), parse_sort(args, SORTS, DEFAULT_SORT, SORT_ALIASES), page, page_size)

    def args(self, **overrides) -> dict:
        out: dict = {}
        if self.search:
            out["search"] = self.search
        return with_overrides(out, overrides, self.sort != DEFAULT_SORT and self.sort, self.page_size)

    @property
    def active(self) -> bool:
        return bool(self.search)
