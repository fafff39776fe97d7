"""Property test at the database level: random valid life stories of a subscription, archived and
replayed by the real replayer."""
from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.extensions import db
from backoffice.ledger import archive, services
from backoffice.ledger.classifier import DELTA_TYPES
from backoffice.ledger.models import BillingEvent, StripeEvent, Subscription
from tests.stripe import helpers as h

PRICES = {"basic": 4900, "pro": 15900, "business": 29900}
_story_ids = itertools.count(1)

action = st.sampled_from(["change", "cancel", "reactivate", "renew", "delete", "subscribe", "billing"])


def _life_story(n: int, plans: list[str], actions: list[str]) -> list[dict]:
    """A valid story: Stripe only sends what the subscription's state allows."""
    cus, t = f"cus_p{n}", h.ts("2025-01-01") + n * 10
    events = [h.envelope("customer.created", h.customer(cus, account_id=f"acc-p{n}"), t)]
    sub, plan, cancelling, generation, invoices = None, None, False, 0, 0
    plan_iter = itertools.cycle(plans)
    for act in actions:
        t += 86400
        price = lambda p: h.price(f"price_{p}", PRICES[p], product=p)
        if sub is None:
            if act in ("subscribe", "change", "renew"):
                generation += 1
                sub, plan, cancelling = f"sub_p{n}_{generation}", next(plan_iter), False
                events.append(h.envelope("customer.subscription.created",
                                         h.subscription(sub, cus, price(plan), created=t), t))
            elif act == "billing":
                events.append(h.envelope("payment_method.attached", h.payment_method(f"pm_{t}", cus), t))
            continue
        if act == "change":
            new = next(plan_iter)
            if new == plan:
                continue
            events.append(h.envelope("customer.subscription.updated",
                                     h.subscription(sub, cus, price(new), cancel_at_period_end=cancelling), t,
                                     previous_attributes={"items": {"data": [{"price": price(plan)}]}}))
            plan = new
        elif act in ("cancel", "reactivate"):
            wanted = act == "cancel"
            if cancelling == wanted:
                continue
            events.append(h.envelope("customer.subscription.updated",
                                     h.subscription(sub, cus, price(plan), cancel_at_period_end=wanted), t,
                                     previous_attributes={"cancel_at_period_end": cancelling}))
            cancelling = wanted
        elif act == "renew":
            invoices += 1
            events.append(h.envelope("invoice.paid", h.invoice(f"in_p{n}_{invoices}", cus, sub,
                                                               amount_paid=PRICES[plan], total=PRICES[plan],
                                                               created=t), t))
        elif act == "delete":
            events.append(h.envelope("customer.subscription.deleted",
                                     h.subscription(sub, cus, price(plan), status="canceled",
                                                    cancel_at_period_end=cancelling), t))
            sub, plan = None, None
        elif act == "billing":
            events.append(h.envelope("customer.updated", h.customer(cus, account_id=f"acc-p{n}", name="Renamed"),
                                     t, previous_attributes={"name": "Acme AG"}))
    return events


def _ledger(account_id: str) -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        db.select(BillingEvent.stripe_event_id, BillingEvent.type, BillingEvent.from_plan, BillingEvent.to_plan,
                  BillingEvent.previous_amount, BillingEvent.new_amount, BillingEvent.amount_delta,
                  BillingEvent.committed_mrr, BillingEvent.currency, BillingEvent.occurred_at)
        .where(BillingEvent.account_id == account_id).order_by(BillingEvent.id))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(st.sampled_from(sorted(PRICES)), min_size=1, max_size=3),
       actions=st.lists(action, min_size=1, max_size=12),
       batch=st.integers(min_value=1, max_value=4))
def test_replay_properties(app, plans, actions, batch):
    n = next(_story_ids)
    account_id = f"acc-p{n}"
    events = _life_story(n, plans, actions)
    # Delivered in batches, replayed after each (seeded from the live state every time).
    for start in range(0, len(events), batch):
        for event in events[start:start + batch]:
            archive.archive_event(h.encode(event), event)
        services.replay_account(account_id)
    first = _ledger(account_id)

    # Replaying again (a fresh replay from the archive) writes nothing and finds no difference.
    report = services.rebuild([account_id])
    assert (report.rows_appended, report.differences, report.missing_in_replay) == (0, [], [])
    assert _ledger(account_id) == first

    # Exactly one row per recognised event, all processed.
    assert sorted(r[0] for r in first) == sorted(e["id"] for e in events)
    states = set(db.session.execute(
        db.select(StripeEvent.state).where(StripeEvent.account_id == account_id)).scalars())
    assert states == {"processed"}
    for (_, kind, _, _, previous, new, delta, committed, _, _) in first:
        assert committed >= 0
        if previous is not None and new is not None and delta is not None:
            assert delta == new - previous
        if kind in {t.value for t in DELTA_TYPES} and delta is None:
            assert kind == "subscription_downgrade_cancelled"

    # Nothing is ever scheduled in these stories: MRR on the last day equals forward MRR.
    movements = [r for r in first if r[1] in {t.value for t in DELTA_TYPES} and r[5] is not None]
    mrr_last_day = movements[-1][5] if movements else Decimal(0)
    subs = db.session.execute(db.select(Subscription).where(Subscription.account_id == account_id)).scalars().all()
    forward = sum((s.price_amount for s in subs
                   if s.is_current and s.status == "active" and not s.cancel_at_period_end), Decimal(0))
    assert mrr_last_day == forward


def _pure_ledger(events: list[dict]) -> list[tuple]:
    """What the classifier writes for the story delivered once, in Stripe's order."""
    from backoffice.ledger import classifier

    result = classifier.classify(events, classifier.SubscriptionState(), classifier.Catalog())
    return [(r.stripe_event_id, r.type.value, r.from_plan, r.to_plan, r.previous_amount, r.new_amount,
             r.amount_delta, r.committed_mrr, r.currency, r.occurred_at) for r in result.rows]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(st.sampled_from(sorted(PRICES)), min_size=1, max_size=3),
       actions=st.lists(action, min_size=1, max_size=10),
       copies=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["2016", "2020", "2025"])),
                       min_size=10, max_size=10))
def test_redelivered_in_any_shape_the_ledger_is_the_once_in_order_ledger(client, plans, actions, copies):
    """Stripe delivers at least once, and an event's copies may come at other API versions (a
    pinned endpoint beside the default): through the real webhook, each event once more or twice
    more, some copies in another shape, gives the ledger of the story delivered once."""
    from backoffice.demo import stripe_shapes

    n = next(_story_ids)
    account_id = f"acc-p{n}"
    events = _life_story(n, plans, actions)
    for i, event in enumerate(events):
        extra, shape = copies[i % len(copies)]
        for copy in [event] + [stripe_shapes.render(event, shape) if shape != "2025" else event] * extra:
            assert h.deliver(client, copy).status_code == 200
    db.session.expire_all()
    stored = _ledger(account_id)
    assert sorted(stored, key=lambda r: (r[9], r[0])) == sorted(_pure_ledger(events), key=lambda r: (r[9], r[0]))
    states = set(db.session.execute(
        db.select(StripeEvent.state).where(StripeEvent.account_id == account_id)).scalars())
    assert states == {"processed"}
