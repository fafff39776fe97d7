"""The accounts list's state (search, filters, sort, page) from the query string and back."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from backoffice.errors import BadRequest
from backoffice.ledger import rules
from backoffice.pagination import LIST_PAGE_SIZE, parse_page, parse_search, parse_sort, with_overrides

SORTS = ("name", "plan", "mrr", "renewal", "status", "country", "created", "modified")
DEFAULT_SORT = "-modified"
SORT_ALIASES = {"renewal_at": "renewal", "created_at": "created", "modified_at": "modified"}  # the API's field names

# DOMAIN §3 "Account status", in the order the rules are checked (ledger/rules.py).
STATUSES = rules.STATUSES
STATUS_LABELS = {
    "trialing": _l("Trialing"),
    "canceling": _l("Canceling"),
    "downgrading": _l("Downgrading"),
    "active": _l("Active"),
    "canceled": _l("Canceled"),
    "free": _l("Free"),
}
STATUS_TONES = {"trialing": "info", "canceling": "warning", "downgrading": "warning", "active": "success",
                "canceled": "danger", "free": "neutral"}

# Ids are what the platform and Stripe use: letters, digits and _ . : - (at most 64).
ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
PLAN_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,255}$")


def parse_id(value: str, name: str = "id") -> str:
    """A well-formed id, or a 400 naming the parameter."""
    if not ID_RE.match(value or ""):
        raise BadRequest(_("%(name)s is not a valid id.", name=name), field=name)
    return value


FLAGS = ("0", "1", "false", "true")


def parse_flag(args, name: str) -> bool:
    raw = args.get(name) or ""
    if raw in ("", "0", "false"):
        return False
    if raw in ("1", "true"):
        return True
    raise BadRequest(_("%(name)s must be 1 or 0.", name=name), field=name)


def parse_choices(args, name: str, allowed: tuple[str, ...]) -> list[str]:
    values = _multi(args, name)
    for v in values:
        if v not in allowed:
            raise BadRequest(_("Unknown %(name)s %(value)s; use one of %(allowed)s.",
                               name=name, value=v[:40], allowed=", ".join(allowed)), field=name)
    return values


def _multi(args, name: str) -> list[str]:
    """A repeatable parameter (`?plan=a&plan=b`), also accepting comma-separated values."""
    raw = args.getlist(name) if hasattr(args, "getlist") else [args.get(name) or ""]
    out: list[str] = []
    for item in raw:
        for v in (item or "").split(","):
            v = v.strip()
            if v and v not in out:
                out.append(v)
    return out


@dataclass
class AccountFilters:
    search: str = ""
    plans: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    unsynced: bool = False
    drift: bool = False
    deleted: bool = False  # the deleted accounts instead of the live ones (their MRR stays in the KPI)
    sort: str = DEFAULT_SORT
    page: int = 1
    page_size: int = LIST_PAGE_SIZE

    @classmethod
    def from_args(cls, args) -> AccountFilters:
        page, page_size = parse_page(args)
        plans = _multi(args, "plan")
        for p in plans:
            if not PLAN_RE.match(p):
                raise BadRequest(_("plan %(value)s is not a valid plan.", value=p[:40]), field="plan")
        return cls(
            search=parse_search(args),
            plans=plans,
            statuses=parse_choices(args, "status", STATUSES),
            unsynced=parse_flag(args, "unsynced"),
            drift=parse_flag(args, "drift"),
            deleted=parse_flag(args, "deleted"),
            sort=parse_sort(args, SORTS, DEFAULT_SORT, SORT_ALIASES),
            page=page,
            page_size=page_size,
        )

    def args(self, **overrides) -> dict:
        """The non-default state as query arguments (links keep it; `page` is dropped unless given)."""
        out: dict = {}
        if self.search:
            out["search"] = self.search
        if self.plans:
            out["plan"] = list(self.plans)
        if self.statuses:
            out["status"] = list(self.statuses)
        if self.unsynced:
            out["unsynced"] = 1
        if self.drift:
            out["drift"] = 1
        if self.deleted:
            out["deleted"] = 1
        return with_overrides(out, overrides, self.sort != DEFAULT_SORT and self.sort, self.page_size)

    @property
    def active(self) -> bool:
        return bool(self.search or self.plans or self.statuses or self.unsynced or self.drift or self.deleted)
