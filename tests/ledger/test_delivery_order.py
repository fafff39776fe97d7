"""Stripe's real delivery: at least once, in no guaranteed order, several at a time (issue 18).

Life stories are delivered through the real webhook shuffled, duplicated, from several threads
and from several processes; the current ledger (the rows not superseded) must equal, row for
row, the ledger of the same story delivered once in Stripe's order, and the dashboard must show
no MRR mismatch. An `invoice.paid` and its `invoice.payment_succeeded` come at the same second,
as Stripe sends them: whichever arrives first, the one first in Stripe's order classifies.
"""
from __future__ import annotations

import itertools
import multiprocessing
import random
import threading
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice import create_app
from backoffice.dashboard import queries as dashboard
from backoffice.extensions import db
from backoffice.ledger import classifier, services
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.conftest import IS_POSTGRES
from tests.ledger.test_replay_properties import PRICES, _life_story, action
from tests.stripe import helpers as h

_story_numbers = itertools.count(5000)
ROW = (BillingEvent.stripe_event_id, BillingEvent.type, BillingEvent.from_plan, BillingEvent.to_plan,
       BillingEvent.previous_amount, BillingEvent.new_amount, BillingEvent.amount_delta,
       BillingEvent.committed_mrr, BillingEvent.currency, BillingEvent.occurred_at)


def story_with_pairs(n: int, plans: list[str], actions: list[str], rng: random.Random) -> list[dict]:
    """A valid life story in which each paid invoice is announced twice in the same second
    (`invoice.paid` and `invoice.payment_succeeded`), either one with the lower event id."""
    events = []
    for event in _life_story(n, plans, actions):
        events.append(event)
        if event["type"] == "invoice.paid":
            twin = h.envelope("invoice.payment_succeeded", event["data"]["object"], event["created"])
            if rng.random() < 0.5:
                twin["id"], event["id"] = event["id"], twin["id"]
            events.append(twin)
    return events


def reference(events: list[dict]) -> list[tuple]:
    """The ledger of the story delivered once, in Stripe's order (the pure classifier)."""
    result = classifier.classify(events, classifier.SubscriptionState(), classifier.Catalog())
    return sorted((r.stripe_event_id, r.type.value, r.from_plan, r.to_plan, r.previous_amount, r.new_amount,
                   r.amount_delta, r.committed_mrr, r.currency, r.occurred_at) for r in result.rows)


def current_ledger(account_id: str) -> list[tuple]:
    db.session.expire_all()
    return sorted(tuple(r) for r in db.session.execute(
        db.select(*ROW).where(BillingEvent.account_id == account_id, BillingEvent.current())))


def assert_ledger_is_the_reference(stories: dict[str, list[dict]]) -> None:
    for account_id, events in stories.items():
        assert current_ledger(account_id) == reference(events), account_id
    states = set(db.session.execute(db.select(StripeEvent.state)).scalars())
    assert states == {"processed"}
    banners = dashboard.banners()
    assert not banners.mrr_mismatch, (banners.kpi_mrr, banners.ledger_mrr)
    # A rebuild from the archive agrees with every current row.
    report = services.rebuild(services.accounts_with_archive())
    assert (report.rows_appended, report.rows_corrected, report.differences) == (0, 0, [])


def deliveries(events: list[dict], rng: random.Random, copies: int = 3) -> list[dict]:
    """Each event once to `copies` times, the whole stream shuffled."""
    stream = [e for e in events for _ in range(rng.randint(1, copies))]
    rng.shuffle(stream)
    return stream


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(st.sampled_from(sorted(PRICES)), min_size=1, max_size=3),
       actions=st.lists(action, min_size=1, max_size=12),
       seed=st.integers(0, 2**32 - 1))
def test_shuffled_and_duplicated_delivery_gives_the_in_order_ledger(client, plans, actions, seed):
    rng = random.Random(seed)
    n = next(_story_numbers)
    events = story_with_pairs(n, plans, actions, rng)
    for event in deliveries(events, rng):
        assert h.deliver(client, event).status_code == 200
    assert_ledger_is_the_reference({f"acc-p{n}": events})


def test_a_late_paid_twin_supersedes_the_renewal_it_doubled(client):
    """The pair in the same second, the one later in Stripe's order delivered (and classified)
    first: it is Renewed until its twin arrives; then the twin is Renewed and the first row is
    superseded by a NoOp row."""
    rng = random.Random(7)
    n = next(_story_numbers)
    events = story_with_pairs(n, ["basic"], ["subscribe", "renew"], rng)
    first, second = sorted((e for e in events if e["type"].startswith("invoice.")), key=lambda e: e["id"])
    for event in [e for e in events if e not in (first, second)] + [second, first]:
        assert h.deliver(client, event).status_code == 200
    db.session.expire_all()
    rows = db.session.execute(
        db.select(BillingEvent).where(BillingEvent.stripe_event_id.in_([first["id"], second["id"]]))
        .order_by(BillingEvent.id)).scalars().all()
    assert sorted((r.stripe_event_id, r.type, r.superseded_at is None) for r in rows) == sorted([
        (second["id"], "subscription_renewed", False), (first["id"], "subscription_renewed", True),
        (second["id"], "no_op", True)])
    superseded = next(r for r in rows if r.superseded_at is not None)
    assert superseded.superseded_by == next(r.id for r in rows if r.stripe_event_id == second["id"] and r.type == "no_op")
    assert_ledger_is_the_reference({f"acc-p{n}": events})


def _stories(count: int, rng: random.Random) -> dict[str, list[dict]]:
    stories = {}
    for _ in range(count):
        n = next(_story_numbers)
        plans = [rng.choice(sorted(PRICES)) for _ in range(rng.randint(1, 3))]
        actions = [rng.choice(["change", "cancel", "reactivate", "renew", "renew", "delete", "subscribe", "billing"])
                   for _ in range(rng.randint(4, 12))]
        stories[f"acc-p{n}"] = story_with_pairs(n, plans, actions, rng)
    return stories


def _deliver_in_threads(app, stream: list[dict], threads: int) -> list[int]:
    """`threads` senders, each with its own client, taking the stream's events in turn."""
    statuses: list[int] = []
    lock = threading.Lock()
    todo = iter(stream)
    start = threading.Barrier(threads)

    def send() -> None:
        client = app.test_client()
        start.wait(timeout=30)
        while True:
            with lock:
                event = next(todo, None)
            if event is None:
                return
            status = h.deliver(client, event).status_code
            with lock:
                statuses.append(status)

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    return statuses


@pytest.mark.skipif(not IS_POSTGRES, reason="concurrent writers: PostgreSQL (SQLite has one writer)")
def test_eight_concurrent_senders_shuffled_and_duplicated_give_the_in_order_ledger(app):
    rng = random.Random(18)
    stories = _stories(16, rng)
    stream = deliveries([e for events in stories.values() for e in events], rng)
    statuses = _deliver_in_threads(app, stream, threads=8)
    assert statuses == [200] * len(stream)
    assert_ledger_is_the_reference(stories)


@pytest.mark.skipif(not IS_POSTGRES, reason="concurrent writers: PostgreSQL (SQLite has one writer)")
def test_a_paid_twin_pair_sent_at_the_same_moment_is_renewed_once(app):
    """Both announcements of each invoice sent at once from two threads, whoever wins."""
    rng = random.Random(3)
    stories = _stories(6, rng)
    client = app.test_client()
    for events in stories.values():
        pairs = [(a, b) for a, b in itertools.pairwise(events)
                 if a["type"] == "invoice.paid" and b["type"] == "invoice.payment_succeeded"
                 or b["type"] == "invoice.paid" and a["type"] == "invoice.payment_succeeded"]
        twins = {e["id"] for pair in pairs for e in pair}
        for event in events:
            if event["id"] in twins:
                continue
            assert h.deliver(client, event).status_code == 200
        for a, b in pairs:
            assert _deliver_in_threads(app, [a, b], threads=2) == [200, 200]
    assert_ledger_is_the_reference(stories)
    renewed = db.session.execute(
        db.select(db.func.count()).where(BillingEvent.type.in_(["subscription_renewed", "payment_recovered"]),
                                         BillingEvent.current())).scalar_one()
    invoices = sum(1 for events in stories.values() for e in events if e["type"] == "invoice.paid")
    assert renewed == invoices


def _deliver_from_a_process(config: dict, stream: list[dict]) -> list[int]:
    """A process of its own (spawned: its own interpreter, app and connections) delivering."""
    app = create_app(config)
    with app.app_context():
        client = app.test_client()
        try:
            return [h.deliver(client, event).status_code for event in stream]
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.mark.skipif(not IS_POSTGRES, reason="concurrent writers: PostgreSQL (SQLite has one writer)")
def test_three_processes_delivering_shuffled_give_the_in_order_ledger(app, app_config):
    rng = random.Random(1803)
    stories = _stories(12, rng)
    stream = deliveries([e for events in stories.values() for e in events], rng)
    slices = [stream[i::3] for i in range(3)]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        statuses = pool.starmap(_deliver_from_a_process, [(app_config, part) for part in slices])
    assert [s for part in statuses for s in part] == [200] * len(stream)
    assert_ledger_is_the_reference(stories)


def test_a_poisoned_event_in_a_shuffled_stream_fails_alone(client, runner):
    """An invoice whose total is NaN, delivered amid the story shuffled: it is failed, naming the
    field; every other event replays to the in-order ledger of the story without it, and
    `ledger replay` exits 0 (what is left is known-failed)."""
    rng = random.Random(99)
    n = next(_story_numbers)
    events = story_with_pairs(n, ["basic", "pro"], ["subscribe", "renew", "change", "renew", "cancel"], rng)
    poisoned = h.envelope("invoice.paid", h.invoice(f"in_poison_{n}", f"cus_p{n}", f"sub_p{n}_1",
                                                    amount_paid=4900, total=4900,
                                                    created=events[2]["created"] + 5), events[2]["created"] + 5)
    body = h.encode(poisoned).replace(b'"total":4900', b'"total":NaN', 1)
    stream = deliveries(events, rng)
    stream.insert(len(stream) // 2, body)
    for item in stream:
        assert h.deliver(client, item).status_code == 200
    db.session.expire_all()
    failed = db.session.get(StripeEvent, poisoned["id"])
    assert failed.state == "failed" and "total" in failed.error
    assert current_ledger(f"acc-p{n}") == reference(events)
    result = runner.invoke(args=["ledger", "replay"])
    assert result.exit_code == 0, result.output
    assert set(db.session.execute(db.select(StripeEvent.state).where(
        StripeEvent.id != poisoned["id"])).scalars()) == {"processed"}
    assert sum(r[6] or Decimal(0) for r in current_ledger(f"acc-p{n}")) >= 0
