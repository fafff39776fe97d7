"""Issue 17: the simulator's life stories sent in the 2016, 2020 and basil shapes replay to the
ledger and projections the current shape gives (DOMAIN §3: every API version since 2016 replays).

The four renderings share their event and object ids, so each one's ids get a tag of its own
(an opaque suffix) and all four go through the real webhook into one archive; the tag is taken
off again before the comparison.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from backoffice.demo import stripe_shapes
from backoffice.demo import stripe_sim as sim
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import services
from backoffice.ledger.models import BillingEvent, StripeEvent, Subscription

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = NOW - timedelta(days=150)
SECRET = "whsec_test"  # the app's STRIPE_WEBHOOK_SECRET in tests
TAGS = {None: "Zqcur", "2016": "Zq2016", "2020": "Zq2020", "2025": "Zq2025"}
_IDS = re.compile(r'"((?:evt|req|cus|pm|sub|si|in|il|inpay|ch|pi|re|txn|txi|cn|cnli|acc)[_-][A-Za-z0-9_-]+)"')


def profile(n: int, kind: str) -> sim.CustomerProfile:
    country = "CH" if n % 2 else "DE"
    return sim.CustomerProfile(
        id=f"acc-{kind.replace('_', '-')}", name=f"Company {n} AG", email=f"hello@c{n}.example", country=country,
        created_at=START - timedelta(days=30), billing_name=f"Company {n} AG",
        billing_email=f"billing@c{n}.example", line1=f"Bahnhofstrasse {n}", postal_code="8001", city="Zürich",
        vat_id=f"CHE-100.200.{n:03d} MWST" if country == "CH" else None)


PLANS = [sim.Plan(profile(n, kind), kind, START + timedelta(hours=n), NOW) for n, kind in enumerate(sim.STORIES)]


def tagged(event: dict, tag: str) -> dict:
    """The event with every Stripe object id and account id suffixed by `tag`."""
    return json.loads(_IDS.sub(lambda m: f'"{m.group(1)}{tag}"', sim.encode(event)))


def events_of(shape: str | None) -> list[dict]:
    simulator = sim.StripeSimulator(3, NOW, shape=shape)
    events = simulator.catalog_events() + [e for plan in PLANS for e in simulator.events_for(plan)]
    return [tagged(e, TAGS[shape]) for e in events]


def untag(value, tag: str):
    return value.replace(tag, "") if isinstance(value, str) else value


def _values(model, row, skip: set[str], tag: str) -> tuple:
    return tuple(untag(getattr(row, c.key), tag) for c in sa.inspect(model).columns if c.key not in skip)


def snapshot(tag: str) -> dict:
    """The ledger and projections of one rendering, ids untagged."""
    db.session.expire_all()
    subs = {s.id: s.stripe_subscription_id for s in db.session.execute(db.select(Subscription)).scalars()}
    ledger = sorted(
        (untag(r.stripe_event_id, tag), r.type, r.from_plan, r.to_plan, r.previous_amount, r.new_amount,
         r.amount_delta, r.committed_mrr, r.currency, r.occurred_at, untag(subs.get(r.subscription_id), tag))
        for r in db.session.execute(db.select(BillingEvent)).scalars() if r.account_id.endswith(tag))
    subscriptions = sorted(
        _values(Subscription, s, {"id", "created_at", "updated_at", "drift_checked_at"}, tag)
        for s in db.session.execute(db.select(Subscription)).scalars() if s.account_id.endswith(tag))
    payments = sorted(
        (*_values(PaymentTransaction, p, {"id", "subscription_id", "stripe_charge_id", "created_at", "updated_at"},
                  tag), untag(subs.get(p.subscription_id), tag))
        for p in db.session.execute(db.select(PaymentTransaction)).scalars() if p.account_id.endswith(tag))
    charges = {untag(p.stripe_invoice_id, tag): (p.status, untag(p.stripe_charge_id, tag))
               for p in db.session.execute(db.select(PaymentTransaction)).scalars() if p.account_id.endswith(tag)}
    states = sorted((untag(e.id, tag), e.state) for e in db.session.execute(db.select(StripeEvent)).scalars()
                    if e.id.endswith(tag))
    return {"ledger": ledger, "subscriptions": subscriptions, "payments": payments, "charges": charges,
            "states": states}


def test_the_stories_replay_alike_in_every_shape(client):
    """All four renderings through the webhook; one delivery for every comparison (it is the
    slow part)."""
    for shape in TAGS:
        report = sim.deliver(events_of(shape), SECRET, client=client)
        assert report.failed == []
    services.replay_pending()
    got = {shape: snapshot(tag) for shape, tag in TAGS.items()}
    current = got[None]
    assert {state for _, state in current["states"]} == {"processed", "ignored"}  # product.created: ignored
    moves = {row[1] for row in current["ledger"]}
    assert moves == {"no_op", "billing_info_added", "billing_info_updated", "payment_method_updated",
                     "subscription_created", "subscription_renewed", "subscription_upgraded",
                     "subscription_downgrade_scheduled", "subscription_downgraded",
                     "subscription_downgrade_cancelled", "subscription_cancelled", "subscription_reactivated",
                     "subscription_expired", "subscription_immediately_cancelled", "subscription_suspended",
                     "subscription_past_due", "payment_failed", "payment_recovered", "payment_refunded"}
    for shape in stripe_shapes.SHAPES:
        for part in ("ledger", "states", "subscriptions", "payments"):
            assert got[shape][part] == current[part], (shape, part)
        # Before basil an invoice names its charge; from basil a payment learns it from its refund.
        charges = got[shape]["charges"]
        known = {invoice: charge for invoice, (_, charge) in current["charges"].items() if charge}
        assert {invoice: charges[invoice][1] for invoice in known} == known, shape
        if shape == "2025":
            assert charges == current["charges"]
        else:
            assert {status for status, charge in charges.values() if charge is None} <= {"failed", "open", "void"}
            assert {status for status, charge in charges.values() if charge is not None} == {"succeeded"}
