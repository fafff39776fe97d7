"""The billing-events list's state (search, account, view pill, type, period, sort, page)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from backoffice.accounts.filters import parse_id
from backoffice.errors import BadRequest, Unprocessable
from backoffice.ledger.classifier import MRR_VIEW_TYPES, OTHER_VIEW_TYPES, STATE_VIEW_TYPES
from backoffice.ledger.labels import EVENT_LABELS
from backoffice.pagination import (
    LIST_PAGE_SIZE,
    parse_date,
    parse_page,
    parse_search,
    parse_sort,
    with_overrides,
)


def _plain(types) -> frozenset[str]:
    """Plain strings (the classifier's sets may hold str-enum members)."""
    return frozenset(getattr(t, "value", t) for t in types)


MRR_VIEW_TYPES = _plain(MRR_VIEW_TYPES)
STATE_VIEW_TYPES = _plain(STATE_VIEW_TYPES)
OTHER_VIEW_TYPES = _plain(OTHER_VIEW_TYPES)
EVENT_TYPES = tuple(EVENT_LABELS)
SORTS = ("account", "event", "occurred")
DEFAULT_SORT = "-occurred"
SORT_ALIASES = {"account_name": "account", "type": "event", "occurred_at": "occurred"}  # the API's field names
VIEWS = ("all", "mrr", "state", "other")
VIEW_LABELS = {"all": _l("All"), "mrr": _l("MRR impact"), "state": _l("Subscription state"),
               "other": _l("Other")}


def view_types(view: str) -> frozenset[str] | None:
    """The event types of a pill; None for All (everything but NoOp)."""
    return {"mrr": MRR_VIEW_TYPES, "state": STATE_VIEW_TYPES, "other": OTHER_VIEW_TYPES}.get(view)


@dataclass
class EventFilters:
    search: str = ""
    account: str = ""
    view: str = "all"
    type: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None  # exclusive: the day after the `to` date
    sort: str = DEFAULT_SORT
    page: int = 1
    page_size: int = LIST_PAGE_SIZE

    @classmethod
    def from_args(cls, args, account: str = "") -> EventFilters:
        page, page_size = parse_page(args)
        view = args.get("view") or "all"
        if view not in VIEWS:
            raise BadRequest(_("view must be one of %(views)s.", views=", ".join(VIEWS)), field="view")
        event_type = args.get("type") or ""
        if event_type and event_type not in EVENT_TYPES:
            raise BadRequest(_("Unknown event type %(type)s.", type=event_type[:60]), field="type")
        if not account and args.get("account"):
            account = parse_id(args.get("account"), "account")
        date_from = parse_date(args, "from")
        date_to = parse_date(args, "to")
        if date_from and date_to and date_to < date_from:
            raise Unprocessable(_("to must not be before from."), field="to")
        return cls(
            search=parse_search(args),
            account=account,
            view=view,
            type=event_type,
            date_from=date_from,
            date_to=date_to + timedelta(days=1) if date_to else None,
            sort=parse_sort(args, SORTS, DEFAULT_SORT, SORT_ALIASES),
            page=page,
            page_size=page_size,
        )

    @property
    def from_text(self) -> str:
        return self.date_from.date().isoformat() if self.date_from else ""

    @property
    def to_text(self) -> str:
        return (self.date_to - timedelta(days=1)).date().isoformat() if self.date_to else ""

    def args(self, **overrides) -> dict:
        out: dict = {}
        if self.search:
            out["search"] = self.search
        if self.view != "all":
            out["view"] = self.view
        if self.type:
            out["type"] = self.type
        if self.date_from:
            out["from"] = self.from_text
        if self.date_to:
            out["to"] = self.to_text
        return with_overrides(out, overrides, self.sort != DEFAULT_SORT and self.sort, self.page_size)

    @property
    def active(self) -> bool:
        return bool(self.search or self.view != "all" or self.type or self.date_from or self.date_to)
