"""A fake Stripe HTTP server answering current-API-shaped JSON for every read the gateway makes.

localstripe answers in the 2017 shape and has no prices, schedules or credit notes; the recorded
gateway (stubs.py) skips the real client. This one lets the real `stripe` client parse what
Stripe sends today, `*_decimal` strings included (stripe-python turns them into Decimal). The
test fills it with objects built by helpers.py; lists behave like Stripe's (newest first,
`limit`, `starting_after`, `has_more`). Stdlib only, on a free 127.0.0.1 port, in a thread.
"""
from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.stripe import helpers as h

API_KEY = "sk_test_fake_stripe"
MAX_LIMIT = 100

# List endpoint → (the object type it holds, the query parameters that filter on the field of that name).
LISTS = {
    "customers": ("customer", ("email",)),
    "subscriptions": ("subscription", ("customer",)),
    "subscription_schedules": ("subscription_schedule", ("customer",)),
    "invoices": ("invoice", ("customer", "status")),
    "credit_notes": ("credit_note", ("customer", "invoice")),
    "charges": ("charge", ("customer",)),
    "refunds": ("refund", ("charge",)),
    "prices": ("price", ("product", "currency")),
}
ENDED_SUBSCRIPTIONS = frozenset({"canceled", "incomplete_expired"})


class FakeStripe:
    """The objects Stripe holds (filled by the test) and the requests it was sent."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind, _filters in LISTS.values()}
        self.events: dict[str, dict] = {}
        self.requests: list[tuple[str, dict]] = []  # (path, query) of every request answered
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- filling ----------------------------------------------------------------------------------
    def add(self, obj: dict) -> dict:
        """Any object the server lists or retrieves (customer, subscription, price, ...)."""
        with self._lock:
            self.objects[obj["object"]][obj["id"]] = copy.deepcopy(obj)
        return obj

    def add_event(self, event_type: str, obj: dict, created: int, **kwargs) -> dict:
        """An event in Stripe's envelope (helpers.envelope); answered by /v1/events."""
        event = h.envelope(event_type, copy.deepcopy(obj), created, **kwargs)
        with self._lock:
            self.events[event["id"]] = event
        return event

    def calls(self, path: str) -> list[dict]:
        """The query of each request made to `path`."""
        return [query for p, query in self.requests if p == path]

    # -- answering --------------------------------------------------------------------------------
    def answer(self, path: str, query: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"] or len(parts) not in (2, 3):
            return _missing(path)
        name = parts[1]
        with self._lock:
            if name == "events" and len(parts) == 2:
                return self._page(path, self._events(query), query)
            if name == "events":
                found = self.events.get(parts[2])
                return (200, copy.deepcopy(found)) if found else _missing(path, parts[2])
            if name not in LISTS:
                return _missing(path)
            kind, filters = LISTS[name]
            if len(parts) == 3:
                found = self.objects[kind].get(parts[2])
                return (200, copy.deepcopy(found)) if found else _missing(path, parts[2])
            items = list(self.objects[kind].values())
            for param in filters:
                if param in query:
                    items = [o for o in items if _id(o.get(param)) == query[param]]
            if kind == "subscription":
                status = query.get("status")
                if status is None:  # Stripe's default leaves out ended subscriptions
                    items = [s for s in items if s.get("status") not in ENDED_SUBSCRIPTIONS]
                elif status != "all":
                    items = [s for s in items if s.get("status") == status]
            items.sort(key=lambda o: (o.get("created") or 0, o["id"]), reverse=True)
            return self._page(path, items, query)

    def _events(self, query: dict) -> list[dict]:
        events = list(self.events.values())
        for op, keep in (("gte", int.__ge__), ("gt", int.__gt__), ("lte", int.__le__), ("lt", int.__lt__)):
            bound = query.get(f"created[{op}]")
            if bound is not None:
                events = [e for e in events if keep(e["created"], int(bound))]
        if "type" in query:
            events = [e for e in events if e["type"] == query["type"]]
        # Newest first, as Stripe lists them (siblings in one second in no documented order).
        events.sort(key=lambda e: (e["created"], e["id"]), reverse=True)
        return events

    @staticmethod
    def _page(path: str, items: list[dict], query: dict) -> tuple[int, dict]:
        limit = max(1, min(MAX_LIMIT, int(query.get("limit", 10))))
        after = query.get("starting_after")
        if after is not None:
            ids = [o["id"] for o in items]
            if after not in ids:
                return 400, {"error": {"type": "invalid_request_error", "param": "starting_after",
                                       "message": f"No such object: '{after}'"}}
            items = items[ids.index(after) + 1:]
        return 200, {"object": "list", "data": copy.deepcopy(items[:limit]), "has_more": len(items) > limit,
                     "url": path}

    # -- the server -------------------------------------------------------------------------------
    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query))
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    status, body = 401, {"error": {"type": "invalid_request_error",
                                                   "message": "Invalid API Key provided."}}
                else:
                    with fake._lock:
                        fake.requests.append((url.path, query))
                    status, body = fake.answer(url.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_fake_{len(fake.requests)}")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):
                pass  # quiet tests

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-stripe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = self._thread = None


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _missing(path: str, object_id: str | None = None) -> tuple[int, dict]:
    message = f"No such object: '{object_id}'" if object_id else f"Unrecognized request URL (GET: {path})."
    return 404, {"error": {"type": "invalid_request_error", "message": message,
                           "code": "resource_missing" if object_id else None,
                           "param": "id" if object_id else None}}
