"""A gateway answering recorded, current-API-shaped objects (tests/stripe/helpers.py) for
what localstripe cannot hold: subscription schedules, credit notes, events older than its data."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from backoffice.extensions import db
from backoffice.ledger import archive
from backoffice.stripe import gateway as gw
from tests.stripe import helpers as h

NOW = datetime.now(UTC).replace(microsecond=0)


def days_ago(days: float, plus_seconds: int = 0) -> int:
    return int((NOW - timedelta(days=days)).timestamp()) + plus_seconds


class RecordedGateway:
    """Duck-types StripeGateway's reads; `down = True` makes every read an outage."""

    def __init__(self, *, subscriptions=(), schedules=None, invoices=(), credit_notes=(), events=(),
                 prices=()):
        self.subscriptions_ = list(subscriptions)
        self.schedules = dict(schedules or {})
        self.prices = {p["id"]: p for p in prices}
        self.invoices_ = list(invoices)
        self.credit_notes_ = list(credit_notes)
        self.events_ = list(events)
        self.down = False
        self.calls = 0

    def _read(self, value):
        self.calls += 1
        if self.down:
            raise gw.StripeUnavailable("recorded outage")
        return value

    def events_since(self, customer_id, anchor):
        start = 0 if anchor is None else int(anchor.timestamp())
        return self._read(sorted((e for e in self.events_ if gw.event_customer(e) == customer_id
                                  and e["created"] >= start), key=lambda e: (e["created"], e["id"])))

    def subscriptions(self, customer_id):
        return self._read([s for s in self.subscriptions_ if s["customer"] == customer_id])

    def subscription_schedule(self, schedule_id):
        return self._read(self.schedules.get(schedule_id))

    def invoices(self, customer_id):
        return self._read([i for i in self.invoices_ if i["customer"] == customer_id])

    def credit_notes(self, customer_id):
        return self._read([c for c in self.credit_notes_ if c["customer"] == customer_id])

    def price(self, price_id):
        return self._read(self.prices.get(price_id))

    def customer(self, customer_id):
        return self._read(h.customer(customer_id))


def deliver(*events: dict) -> None:
    """Archives events as the webhook does (pending, not replayed)."""
    for event in events:
        archive.archive_event(json.dumps(event).encode(), event)


def replay(account_id: str) -> None:
    from backoffice.ledger import services

    report = services.replay_account(account_id)
    assert report.error is None, report.error
    db.session.expire_all()
