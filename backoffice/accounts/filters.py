from __future__ import annotations

from dataclasses import dataclass

from backoffice.pagination import parse_page, parse_search, parse_sort

SORTS = ("name", "country", "created", "modified")


@dataclass
class AccountFilters:
    search: str = ""
    sort: str = "-modified"
    page: int = 1
    page_size: int = 25

    @classmethod
    def from_args(cls, args) -> AccountFilters:
        page, page_size = parse_page(args)
        return cls(parse_search(args), parse_sort(args, SORTS, "-modified"), page, page_size)

    def args(self) -> dict:
        """The non-default state as query arguments (for links that keep it)."""
        out = {}
        if self.search:
            out["search"] = self.search
        if self.sort != "-modified":
            out["sort"] = self.sort
        if self.page_size != 25:
            out["page_size"] = self.page_size
        return out

    @property
    def active(self) -> bool:
        return bool(self.search)
