"""Events that are not the platform's billing (issue 17, part 8): a connected account's events and
thin (v2) events are archived and ignored, never mixed into the ledger and never refused (a 4xx
makes Stripe retry for days and then disable the endpoint); signed events with over-long labels
are archived, not answered 5xx. And the tax-id events that are billing-info changes."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.stripe import helpers as h


def _row(event_id: str) -> StripeEvent:
    db.session.expire_all()
    return db.session.get(StripeEvent, event_id)


def test_a_connected_accounts_event_is_archived_and_ignored(client):
    event = h.envelope("customer.created", h.customer("cus_connected", account_id="acc-of-someone-else"),
                       h.ts("2026-01-05T09:00:00"))
    event["account"] = "acct_1Connected000000"
    resp = h.deliver(client, event)
    assert resp.status_code == 200 and resp.json["outcome"] == "stored"
    row = _row(event["id"])
    assert (row.state, row.customer_id, row.account_id) == ("ignored", None, None)
    assert "connected account" in row.error
    # No account was made from the connected account's customer, and no ledger row written.
    assert db.session.get(Account, "acc-of-someone-else") is None
    assert db.session.execute(db.select(db.func.count(BillingEvent.id))).scalar_one() == 0


def test_a_connected_accounts_subscription_never_reaches_the_platforms_account(client):
    h.deliver(client, h.envelope("customer.created", h.customer("cus_P", account_id="acc-1"), h.ts("2026-01-05")))
    sub = h.subscription("sub_connected", "cus_P", h.price("price_x", 4900), created=h.ts("2026-01-06"))
    event = h.envelope("customer.subscription.created", sub, h.ts("2026-01-06"))
    event["account"] = "acct_1Connected000000"  # the same customer id, on a connected account
    assert h.deliver(client, event).status_code == 200
    assert (_row(event["id"]).state, _row(event["id"]).account_id) == ("ignored", None)
    assert [r.type for r in db.session.execute(db.select(BillingEvent)).scalars()] == ["billing_info_added"]


def test_a_thin_v2_event_is_archived_and_ignored(client):
    # The shape of Stripe's thin event notifications (docs.stripe.com/event-destinations).
    body = (b'{"id":"evt_test_65R9Ijk8TpRGQ1Rj2aW16SPwB1Zg9G38qJXsQNqf4xK","object":"v2.core.event",'
            b'"type":"v1.billing.meter.error_report_triggered","livemode":false,'
            b'"created":"2026-01-05T09:00:00.123Z","context":null,'
            b'"related_object":{"id":"mtr_test_61R9I","type":"billing.meter",'
            b'"url":"/v1/billing/meters/mtr_test_61R9I"},"reason":null}')
    resp = h.deliver(client, body)
    assert resp.status_code == 200
    row = _row("evt_test_65R9Ijk8TpRGQ1Rj2aW16SPwB1Zg9G38qJXsQNqf4xK")
    assert (row.state, row.type, row.customer_id) == ("ignored", "v1.billing.meter.error_report_triggered", None)
    assert row.stripe_created_at == datetime(2026, 1, 5, 9, 0, 0, 123000, tzinfo=UTC)
    assert row.payload.encode() == body and row.payload_sha256 == hashlib.sha256(body).hexdigest()
    assert "thin" in row.error
    assert h.deliver(client, body).json["outcome"] == "duplicate"


def test_a_thin_event_without_a_time_is_refused_naming_the_field(client):
    resp = h.deliver(client, b'{"id":"evt_1","object":"v2.core.event","type":"v1.x","created":"yesterday"}')
    assert resp.status_code == 400 and resp.json["error"]["field"] == "created"


def test_an_over_long_api_version_is_archived_and_read_by_its_date(client):
    h.deliver(client, h.envelope("customer.created", h.customer("cus_A", account_id="acc-1"), h.ts("2026-01-05")))
    label = "2020-08-27; orders_beta=v3; some_other_beta=v1; and_another=v2"
    sub = h.subscription("sub_1", "cus_A", h.price("price_x", 4900), created=h.ts("2026-01-06"))
    event = h.envelope("customer.subscription.created", sub, h.ts("2026-01-06"), api_version=label)
    resp = h.deliver(client, event)
    assert resp.status_code == 200
    row = _row(event["id"])
    assert (row.api_version, row.state) == (label[:40], "processed")
    created = db.session.execute(db.select(BillingEvent).where(BillingEvent.stripe_event_id == event["id"])).scalar_one()
    assert (created.type, created.new_amount) == ("subscription_created", 49)


def test_a_created_time_beyond_any_calendar_is_a_400_naming_created(client):
    event = h.envelope("customer.created", h.customer("cus_A"), 253402300800 * 1000)
    resp = h.deliver(client, event)
    assert resp.status_code == 400 and resp.json["error"]["field"] == "created"


def test_tax_id_events_are_billing_info_updates(client):
    h.deliver(client, h.envelope("customer.created", h.customer("cus_A", account_id="acc-1"), h.ts("2026-01-05")))
    tax_id = {"id": "txi_1NuMB12eZvKYlo2CMecoWkZd", "object": "tax_id", "country": "CH", "created": h.ts("2026-01-07"),
              "customer": "cus_A", "livemode": False, "type": "ch_vat", "value": "CHE-123.456.789 MWST",
              "verification": {"status": "pending", "verified_address": None, "verified_name": None}}
    events = [h.envelope(f"customer.tax_id.{kind}", tax_id, h.ts("2026-01-07") + n)
              for n, kind in enumerate(("created", "updated", "deleted"))]
    for event in events:
        assert h.deliver(client, event).status_code == 200
    assert [_row(e["id"]).state for e in events] == ["processed"] * 3
    rows = db.session.execute(db.select(BillingEvent.stripe_event_id, BillingEvent.type, BillingEvent.account_id)
                              .where(BillingEvent.stripe_event_id.in_([e["id"] for e in events]))
                              .order_by(BillingEvent.occurred_at)).all()
    assert [tuple(r) for r in rows] == [(e["id"], "billing_info_updated", "acc-1") for e in events]


def test_one_event_rendered_at_two_api_versions_is_a_redelivery_not_a_divergence(client):
    """A pinned endpoint beside the account's default endpoint receives the same event id at
    another version: what it says is compared, not its bytes, and it is counted once."""
    from backoffice.stripe.models import Discrepancy
    from tests.ledger import payloads as p

    customer = p.envelope("customer.created", {**p.customer(), "metadata": {"account_id": "acc-1"}},
                          created=p.ts(2026, 1, 1), event_id="evt_cus")
    created = p.sub_created(p.subscription(p.price()), created=p.ts(2026, 1, 2), event_id="evt_sub")
    paid = p.envelope("invoice.paid", p.invoice("in_1", amount_paid=16107, taxes=1207), created=p.ts(2026, 2, 2),
                      event_id="evt_inv")
    for event in (customer, created, paid):
        assert h.deliver(client, event).json["outcome"] == "stored"
    for event in (created, paid):
        again = p.to_legacy(event)
        assert again["api_version"] != event["api_version"]
        assert h.deliver(client, again).json["outcome"] == "duplicate"
    # A body that says something else is still a divergence.
    changed = p.to_legacy(paid)
    changed["data"]["object"]["amount_paid"] = 100
    assert h.deliver(client, changed).json["outcome"] == "divergent"
    kinds = [d.kind for d in db.session.execute(db.select(Discrepancy)).scalars()]
    assert kinds == ["PayloadDivergence"]
    rows = db.session.execute(db.select(BillingEvent.stripe_event_id).order_by(BillingEvent.stripe_event_id))
    assert rows.scalars().all() == ["evt_cus", "evt_inv", "evt_sub"]


def test_the_jobs_page_counts_waiting_and_unreadable_events(client, admin_client):
    h.deliver(client, h.envelope("customer.created", h.customer("cus_A", account_id="acc-1"), h.ts("2026-01-05")))
    assert "Every archived event the ledger reads could be read." in admin_client.get("/stripe/jobs").get_data(
        as_text=True)
    unreadable = h.envelope("customer.subscription.created",
                            {"object": "subscription", "id": "sub_x", "customer": "cus_A"}, h.ts("2026-01-06"))
    waiting = h.envelope("customer.updated", h.customer("cus_unknown"), h.ts("2026-01-07"),
                         previous_attributes={"name": "Old"})
    for event in (unreadable, waiting):
        assert h.deliver(client, event).status_code == 200
    assert (_row(unreadable["id"]).state, _row(waiting["id"]).state) == ("failed", "processed")
    from backoffice.ledger import archive
    stranger = h.envelope("invoice.paid", h.invoice("in_9", "cus_nobody", None, amount_paid=100, total=100,
                                                   created=h.ts("2026-01-08")), h.ts("2026-01-08"))
    archive.archive_event(h.encode(stranger), stranger)  # a customer no account is linked to: waits
    html = admin_client.get("/stripe/jobs").get_data(as_text=True)
    assert "1 archived event waits for its replay." in html
    assert "1 archived event could not be read" in html and "(1 account)" in html
    assert "backoffice ledger replay --failed" in html


def test_a_credit_note_for_an_unknown_invoice_fails_instead_of_being_processed_unprojected(client):
    """An invoice or credit-note event is never marked processed with nothing projected: a credit
    note whose invoice Backoffice has no payment for fails, raising drift (a sync brings the
    invoice; `ledger replay --failed` then reads the note). With its invoice it projects."""
    from backoffice.invoices.models import PaymentTransaction
    from backoffice.stripe.models import Discrepancy

    h.deliver(client, h.envelope("customer.created", h.customer("cus_A", account_id="acc-1"), h.ts("2026-01-05")))
    orphan = h.envelope("credit_note.created", h.credit_note("cn_1", "cus_A", "in_unknown", total=1000,
                                                             created=h.ts("2026-02-01")), h.ts("2026-02-01"))
    assert h.deliver(client, orphan).status_code == 200
    assert _row(orphan["id"]).state == "failed"
    (d,) = db.session.execute(db.select(Discrepancy).where(Discrepancy.stripe_event_id == orphan["id"])).scalars()
    assert (d.kind, d.severity) == ("UnreadablePayload", "critical") and "in_unknown" not in (d.field or "")
    paid = h.envelope("invoice.paid", h.invoice("in_1", "cus_A", None, amount_paid=4900, total=4900,
                                               created=h.ts("2026-02-02")), h.ts("2026-02-02"))
    note = h.envelope("credit_note.created", h.credit_note("cn_2", "cus_A", "in_1", total=1000,
                                                           created=h.ts("2026-02-03")), h.ts("2026-02-03"))
    for event in (paid, note):
        assert h.deliver(client, event).status_code == 200
    assert _row(note["id"]).state == "processed"
    pt = db.session.execute(db.select(PaymentTransaction).where(PaymentTransaction.stripe_invoice_id == "in_1")
                            ).scalar_one()
    assert pt.credit_note_amount == 10


def test_signed_events_with_odd_values_are_archived_never_a_5xx(client):
    """A customer whose address is a list, whose name is an object or holds a lone surrogate,
    and a body nested deeper than any parser's stack: 2xx and archived, or a 400 naming the
    body; never a 5xx (Stripe would retry for three days)."""
    odd = h.customer("cus_odd", account_id="acc-odd")
    odd.update(address=["Bahnhofstrasse 1", "Zürich"], name={"first": "Ada"})
    resp = h.deliver(client, h.envelope("customer.created", odd, h.ts("2026-01-05")))
    assert resp.status_code == 200
    account = db.session.get(Account, "acc-odd")
    assert (account.name, account.billing_line1, account.billing_city) == ("billing@acme.test", None, None)
    surrogate = b'{"id":"evt_sur","object":"event","type":"customer.created","created":1767600000,' \
                b'"api_version":"2026-10-28.endive","data":{"object":{"id":"cus_sur","object":"customer",' \
                b'"name":"Ada \\ud800 Lovelace","email":null,"metadata":{"account_id":"acc-sur"}}}}'
    assert h.deliver(client, surrogate).status_code == 200
    assert db.session.get(Account, "acc-sur").name == "Ada ? Lovelace"
    deep = b'{"id":"evt_deep","type":"x","created":1,"data":{"object":' + b'[' * 100000 + b']' * 100000 + b'}}'
    resp = h.deliver(client, deep)
    assert resp.status_code == 400 and resp.json["error"]["field"] == "body"


def test_long_customer_ids_are_two_accounts_never_one_cut_id(client):
    """Issue 21 part 1: a customer id too long for `stripe:<id>` (64 characters) was cut, so two that
    share their first 57 characters became one account; a metadata account id over 64 characters
    named a cut account. Now each long id gets an account of its own (a digest), the long metadata
    id names none."""
    from backoffice.ledger.archive import stripe_account_id

    first, second = "cus_" + "x" * 60 + "A", "cus_" + "x" * 60 + "B"
    for n, customer_id in enumerate((first, second)):
        customer = h.customer(customer_id, account_id="acc_" + "y" * 70)
        assert h.deliver(client, h.envelope("customer.created", customer, h.ts("2026-01-05") + n)).status_code == 200
    accounts = dict(db.session.execute(db.select(Account.stripe_customer_id, Account.id)).all())
    assert accounts == {first: stripe_account_id(first), second: stripe_account_id(second)}
    assert len({*accounts.values()}) == 2 and all(len(a) <= 64 for a in accounts.values())
    assert stripe_account_id("cus_Q1") == "stripe:cus_Q1"  # Stripe's own ids keep their readable account id
    for account_id in accounts.values():  # each reachable by its id
        assert client.get(f"/api/v1/accounts/{account_id}").status_code == 401  # a route, not a malformed id (400)


def test_a_live_refund_or_credit_note_amount_that_is_no_integer_is_refused_not_zero(app):
    """Issue 21 part 1: the sync's mirror of Stripe's live invoices stored a float or text amount
    of a refund or credit note as 0.00; now the payload is unreadable, naming the field."""
    import pytest

    from backoffice.ledger import projections, readers
    from backoffice.ledger.models import Subscription

    db.session.add(Account(id="acc_live", name="Live AG", stripe_customer_id="cus_live"))
    sub = Subscription(account_id="acc_live", stripe_subscription_id="sub_live", plan="standard")
    db.session.add(sub)
    db.session.flush()
    invoice = h.invoice("in_live", "cus_live", "sub_live", amount_paid=4900, total=4900, created=h.ts("2026-02-10"))
    for bad in (12.5, "12"):
        invoice["charge"] = {**h.charge("ch_live", "cus_live", amount=4900), "amount_refunded": bad}
        with pytest.raises(readers.UnreadablePayload) as refused:
            projections.mirror_payments("acc_live", sub, [invoice], [], {})
        assert refused.value.field.endswith("amount_refunded")
        db.session.rollback()
        db.session.add(Account(id="acc_live", name="Live AG", stripe_customer_id="cus_live"))
        sub = Subscription(account_id="acc_live", stripe_subscription_id="sub_live", plan="standard")
        db.session.add(sub)
        db.session.flush()
    note = {**h.credit_note("cn_live", "cus_live", "in_live", total=1000), "amount": 10.5}
    invoice.pop("charge")
    with pytest.raises(readers.UnreadablePayload) as refused:
        projections.mirror_payments("acc_live", sub, [invoice], [note], {})
    assert refused.value.field.endswith("amount")
