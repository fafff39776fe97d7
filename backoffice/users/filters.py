from __future__ import annotations

from dataclasses import dataclass

from backoffice.pagination import parse_page, parse_search


@dataclass
class UserFilters:
    search: str = ""
    page: int = 1
    page_size: int = 25

    @classmethod
    def from_args(cls, args) -> UserFilters:
        page, page_size = parse_page(args)
        return cls(parse_search(args), page, page_size)

    def args(self) -> dict:
        out = {}
        if self.search:
            out["search"] = self.search
        if self.page_size != 25:
            out["page_size"] = self.page_size
        return out

    @property
    def active(self) -> bool:
        return bool(self.search)
