from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from backoffice.errors import BadRequest
from backoffice.pagination import parse_date, parse_page, parse_search

RESULTS = ("ok", "error", "denied")


@dataclass
class AuditFilters:
    action: str = ""
    operator: str = ""
    target: str = ""
    result: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None
    page: int = 1
    page_size: int = 50

    @classmethod
    def from_args(cls, args) -> AuditFilters:
        page, page_size = parse_page(args)
        result = (args.get("result") or "").strip()
        if result and result not in RESULTS:
            raise BadRequest("result must be ok, error or denied.", field="result")
        date_to = parse_date(args, "to")
        return cls(
            action=parse_search(args, "action"),
            operator=parse_search(args, "operator"),
            target=parse_search(args, "target"),
            result=result,
            date_from=parse_date(args, "from"),
            date_to=date_to + timedelta(days=1) if date_to else None,
            page=page,
            page_size=page_size if "page_size" in args else 50,
        )

    def query(self, **overrides) -> str:
        values = {
            "action": self.action,
            "operator": self.operator,
            "target": self.target,
            "result": self.result,
            "from": self.date_from.date().isoformat() if self.date_from else "",
            "to": (self.date_to - timedelta(days=1)).date().isoformat() if self.date_to else "",
            "page": self.page if self.page != 1 else "",
        }
        values.update(overrides)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})

    @property
    def query_to(self) -> str:
        return (self.date_to - timedelta(days=1)).date().isoformat() if self.date_to else ""

    @property
    def active(self) -> bool:
        return bool(self.action or self.operator or self.target or self.result or self.date_from or self.date_to)
