"""Two replays of one account at the same time (the webhook defers each replay to the end of its
response, and the servers are threaded): they take turns per account (an advisory lock on
PostgreSQL, a process lock on SQLite), so each event gets exactly one row and the projections
are written once. A paid invoice's amounts survive a stale draft replayed after it."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import archive, replay, services
from backoffice.ledger import replay_adapter as adapter
from backoffice.ledger.models import BillingEvent, Plan, StripeEvent, Subscription
from tests.stripe import helpers as h

CUS = "cus_race"
ACC = "acc-race"
SUB = "sub_race"
BASIC = h.price("price_basic", 4900, product="basic")


def archive_only(*events: dict) -> None:
    """Stores the events as the webhook does, without replaying them."""
    for event in events:
        assert archive.archive_event(h.encode(event), event).outcome == "stored"


def story() -> list[dict]:
    created = h.ts("2026-03-01T09:00:00")
    return [
        h.envelope("customer.created", h.customer(CUS, account_id=ACC), created - 60),
        h.envelope("customer.subscription.created", h.subscription(SUB, CUS, BASIC, created=created), created),
        h.envelope("invoice.payment_succeeded",
                   h.invoice("in_race", CUS, SUB, amount_paid=4900, total=4900, created=created,
                             billing_reason="subscription_create"), created + 1),
    ]


def replay_in_threads(app, monkeypatch, count: int = 2) -> list[object]:
    """`count` threads (each its own app context, session and connection) replay ACC at once;
    classification is slowed so that without the lock both would read before either writes."""
    classify = adapter.classify

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return classify(*args, **kwargs)

    monkeypatch.setattr(adapter, "classify", slow)
    barrier = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                outcomes[i] = services.replay_account(ACC)
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                outcomes[i] = e
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_concurrent_replays_of_one_account_write_each_row_once(app, monkeypatch):
    events = story()
    with app.app_context():
        archive_only(*events)
    outcomes = replay_in_threads(app, monkeypatch)

    assert [type(o).__name__ for o in outcomes] == ["ReplayReport", "ReplayReport"]
    assert [o.error for o in outcomes] == [None, None]
    # One replay did the work, the other found nothing pending once it had its turn.
    assert sorted(o.processed for o in outcomes) == [0, 3]
    with app.app_context():
        ledger = db.session.execute(
            db.select(BillingEvent.stripe_event_id, BillingEvent.type).order_by(BillingEvent.occurred_at)).all()
        assert ledger == [(events[0]["id"], "billing_info_added"), (events[1]["id"], "subscription_created"),
                          (events[2]["id"], "no_op")]
        states = dict(db.session.execute(db.select(StripeEvent.id, StripeEvent.state)).all())
        assert states == {e["id"]: "processed" for e in events}
        assert db.session.execute(db.select(StripeEvent.error).where(StripeEvent.error.is_not(None))).all() == []
        subs = db.session.execute(db.select(Subscription.stripe_subscription_id, Subscription.is_current)).all()
        assert subs == [(SUB, True)]
        assert db.session.execute(db.select(Plan.price_id)).scalars().all() == ["price_basic"]
        pts = db.session.execute(db.select(PaymentTransaction.stripe_invoice_id, PaymentTransaction.status,
                                           PaymentTransaction.amount)).all()
        assert pts == [("in_race", "succeeded", Decimal("49.00"))]


def test_concurrent_replays_of_new_plans_insert_each_plan_once(app, monkeypatch):
    """The catalog is shared by every account: two accounts' replays meeting the same new price
    both insert it (INSERT ... ON CONFLICT DO NOTHING)."""
    with app.app_context():
        archive_only(*story())
        # Another account's replay inserted the plan meanwhile (committed after this one read
        # the catalog): this replay's insert must not fail.
        original = replay.Batch.project_catalog

        def meanwhile(self, events):
            if "price_basic" not in self.plans:
                db.session.execute(db.insert(Plan).values(price_id="price_basic", plan_key="basic", name="basic",
                                                          monthly_amount=Decimal("49.00"), interval="month",
                                                          currency="EUR"))
            original(self, events)

        monkeypatch.setattr(replay.Batch, "project_catalog", meanwhile)
        report = services.replay_account(ACC)
        assert (report.error, report.processed) == (None, 3)
        assert db.session.execute(db.select(Plan.price_id, Plan.monthly_amount)).all() == [
            ("price_basic", Decimal("49.0000"))]


def test_a_stale_draft_after_the_payment_keeps_the_paid_amounts(client):
    """A retried invoice.created (draft, 0.00 paid) replayed after invoice.payment_succeeded of
    the same second never downgrades the paid transaction."""
    events = story()
    created = events[2]["created"]
    for event in events:
        assert h.deliver(client, event).status_code == 200
    draft = h.invoice("in_race", CUS, SUB, amount_paid=0, total=4900, created=created - 1, status="draft",
                      billing_reason="subscription_create")
    assert h.deliver(client, h.envelope("invoice.created", draft, created)).status_code == 200
    db.session.expire_all()
    pt = db.session.execute(db.select(PaymentTransaction)).scalar_one()
    assert (pt.status, pt.amount, pt.invoice_total) == ("succeeded", Decimal("49.00"), Decimal("49.00"))


@pytest.mark.parametrize("count", [4])
def test_many_concurrent_replays_take_turns(app, monkeypatch, count):
    events = story()
    with app.app_context():
        archive_only(*events)
    outcomes = replay_in_threads(app, monkeypatch, count)
    assert [getattr(o, "error", o) for o in outcomes] == [None] * count
    assert sorted(o.processed for o in outcomes) == [0] * (count - 1) + [3]
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(BillingEvent.id))).scalar_one() == 3
