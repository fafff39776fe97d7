"""The invoices list's state (search, account, view, sort, page) from the query string and back."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from backoffice.accounts.filters import parse_id
from backoffice.errors import BadRequest
from backoffice.pagination import LIST_PAGE_SIZE, parse_page, parse_search, parse_sort, with_overrides

SORTS = ("date", "account", "total", "status")
DEFAULT_SORT = "-date"
SORT_ALIASES = {"account_name": "account"}  # the API's field names
VIEWS = ("all", "invoices", "reversals")
VIEW_LABELS = {"all": _l("All"), "invoices": _l("Invoices"), "reversals": _l("Refunds and credit notes")}
SOURCES = ("stripe", "backoffice")  # Stripe's invoices or Backoffice's own (the month-end run's)
SOURCE_LABELS = {"": _l("All sources"), "stripe": _l("Stripe"), "backoffice": _l("Backoffice")}


@dataclass
class InvoiceFilters:
    search: str = ""
    account: str = ""
    view: str = "all"
    source: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    page_size: int = LIST_PAGE_SIZE

    @classmethod
    def from_args(cls, args, account: str = "") -> InvoiceFilters:
        page, page_size = parse_page(args)
        view = args.get("view") or "all"
        if view not in VIEWS:
            raise BadRequest(_("view must be one of %(views)s.", views=", ".join(VIEWS)), field="view")
        source = args.get("source") or ""
        if source and source not in SOURCES:
            raise BadRequest(_("source must be one of %(sources)s.", sources=", ".join(SOURCES)), field="source")
        if not account and args.get("account"):
            account = parse_id(args.get("account"), "account")
        return cls(parse_search(args), account, view, source, parse_sort(args, SORTS, DEFAULT_SORT, SORT_ALIASES),
                   page, page_size)

    def args(self, **overrides) -> dict:
        out: dict = {}
        if self.search:
            out["search"] = self.search
        if self.view != "all":
            out["view"] = self.view
        if self.source:
            out["source"] = self.source
        return with_overrides(out, overrides, self.sort != DEFAULT_SORT and self.sort, self.page_size)

    @property
    def active(self) -> bool:
        return bool(self.search or self.view != "all" or self.source)
