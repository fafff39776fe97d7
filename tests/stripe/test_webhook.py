"""POST /stripe/webhook: verification before parsing, the archive, redelivery, divergence,
customer → account mapping, bad input. Every request goes through the real endpoint."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.api import services as api_services
from backoffice.extensions import db
from backoffice.ledger.models import BillingEvent, Discrepancy, StripeEvent
from tests.conftest import IS_POSTGRES
from tests.stripe import helpers as h


def _events() -> list[StripeEvent]:
    return list(db.session.execute(db.select(StripeEvent).order_by(StripeEvent.id)).scalars())


def _customer_created(cus="cus_A", account_id=None, created=None, **kw):
    return h.envelope("customer.created", h.customer(cus, account_id=account_id, **kw),
                      created or h.ts("2026-01-05T09:00:00"))


def test_signed_event_is_archived_as_received(client):
    event = _customer_created("cus_A", account_id="acc-1")
    body = h.encode(event)
    resp = h.deliver(client, body)
    assert resp.status_code == 200
    assert resp.json == {"received": True, "id": event["id"], "outcome": "stored"}
    (row,) = _events()
    assert row.payload == body.decode()
    assert row.payload_sha256 == hashlib.sha256(body).hexdigest()
    assert row.type == "customer.created"
    assert row.api_version == "2026-10-28.endive"
    assert row.stripe_created_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert row.customer_id == "cus_A"
    assert row.account_id == "acc-1"
    assert row.recovery_source is None
    assert (datetime.now(UTC) - row.received_at).total_seconds() < 60


def test_a_large_payload_is_archived_out_of_line_and_read_back_byte_for_byte(client):
    """On PostgreSQL the archive keeps payloads in its TOAST table (migration 0013), so marking
    an event processed rewrites a small row; the payload reads back exactly as received."""
    postgres = db.engine.dialect.name == "postgresql"
    toast_rows = None
    if postgres:
        toast = db.session.execute(db.text(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'stripe_events'")).scalar_one()
        toast_rows = db.text(f"SELECT count(*) FROM {toast}")
        before = db.session.execute(toast_rows).scalar_one()
        db.session.commit()
    assert h.deliver(client, _customer_created("cus_big", account_id="acc-big")).status_code == 200
    # An invoice as Stripe sends it: ~3.7 KB, ~1.9 KB compressed (inline without migration 0013).
    event = h.envelope("invoice.paid", h.invoice("in_big", "cus_big", "sub_big", amount_paid=4900, total=4900,
                                                 created=h.ts("2026-02-01")), h.ts("2026-02-01"))
    body = h.encode(event)
    assert h.deliver(client, body).status_code == 200
    row = db.session.get(StripeEvent, event["id"])
    assert row.payload == body.decode()
    if postgres:
        assert db.session.execute(toast_rows).scalar_one() > before  # the payload went out of line


def test_missing_signature_is_refused_and_nothing_stored(client):
    resp = h.deliver(client, _customer_created(), signature="")
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "Stripe-Signature"
    assert _events() == []


def test_wrong_secret_is_refused(client):
    resp = h.deliver(client, _customer_created(), secret="whsec_other")
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "bad_request"
    assert _events() == []


def test_signature_older_than_300_seconds_is_refused(client):
    body = h.encode(_customer_created())
    resp = h.deliver(client, body, signature=h.sign(body, timestamp=int(time.time()) - 301))
    assert resp.status_code == 400
    assert _events() == []


def test_tampered_body_is_refused(client):
    body = h.encode(_customer_created(account_id="acc-1"))
    signature = h.sign(body)
    resp = h.deliver(client, body.replace(b"acc-1", b"acc-2"), signature=signature)
    assert resp.status_code == 400
    assert _events() == []


def test_no_secret_configured_answers_503(app, client):
    app.config["STRIPE_WEBHOOK_SECRET"] = ""
    resp = h.deliver(client, _customer_created())
    assert resp.status_code == 503
    assert resp.json["error"]["code"] == "not_configured"
    assert _events() == []


def test_webhook_needs_no_sign_in_and_no_csrf(app, client):
    # The test app keeps CSRF on: the endpoint is exempt and public.
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    assert h.deliver(client, _customer_created()).status_code == 200


def test_non_json_body_is_refused(client):
    resp = h.deliver(client, b"this is not json")
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "body"
    assert _events() == []


def test_wrong_content_type_is_refused(client):
    resp = h.deliver(client, _customer_created(), content_type="text/plain")
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "Content-Type"
    assert _events() == []


def test_json_that_is_not_an_event_is_refused(client):
    resp = h.deliver(client, b'{"hello": "world"}')
    assert resp.status_code == 400
    assert resp.json["error"]["field"] == "id"
    assert _events() == []


def test_body_over_one_mebibyte_answers_413(client):
    event = _customer_created()
    event["data"]["object"]["description"] = "x" * (1024 * 1024)
    resp = h.deliver(client, event)
    assert resp.status_code == 413
    assert resp.json["error"]["code"] == "request_entity_too_large"
    assert _events() == []


def test_redelivery_answers_200_and_stores_nothing_new(client):
    event = _customer_created()
    assert h.deliver(client, event).status_code == 200
    again = h.deliver(client, event)
    assert again.status_code == 200
    assert again.json["outcome"] == "duplicate"
    assert len(_events()) == 1
    assert db.session.execute(db.select(db.func.count(Discrepancy.id))).scalar_one() == 0


def test_same_id_different_body_keeps_row_and_records_divergence(client):
    event = _customer_created("cus_A", account_id="acc-1")
    body = h.encode(event)
    h.deliver(client, body)
    changed = dict(event, data={"object": dict(event["data"]["object"], name="Changed GmbH")})
    resp = h.deliver(client, changed)
    assert resp.status_code == 200
    assert resp.json["outcome"] == "divergent"
    (row,) = _events()
    assert row.payload == body.decode()
    (disc,) = db.session.execute(db.select(Discrepancy)).scalars()
    assert (disc.kind, disc.severity, disc.account_id, disc.stripe_event_id) == (
        "PayloadDivergence", "warning", "acc-1", event["id"])
    # The same divergent body again records nothing new.
    h.deliver(client, changed)
    assert db.session.execute(db.select(db.func.count(Discrepancy.id))).scalar_one() == 1


def test_unrecognised_type_is_archived_and_ignored(client):
    event = h.envelope("balance.available", {"object": "balance", "available": []}, h.ts("2026-01-05"))
    resp = h.deliver(client, event)
    assert resp.status_code == 200
    (row,) = _events()
    assert (row.type, row.state, row.error) == ("balance.available", "ignored", "unrecognised event type")


def test_customer_with_known_account_id_maps_to_that_account(client):
    db.session.add(Account(id="acc-7", name="Seven AG"))
    db.session.commit()
    h.deliver(client, _customer_created("cus_7", account_id="acc-7"))
    account = db.session.get(Account, "acc-7")
    assert account.stripe_customer_id == "cus_7"
    assert account.name == "Seven AG"  # the platform's name stays
    assert db.session.execute(db.select(db.func.count(Account.id))).scalar_one() == 1


def test_customer_with_unseen_account_id_creates_that_account(client):
    h.deliver(client, _customer_created("cus_8", account_id="acc-8", name="Eight GmbH", email="a@eight.test"))
    account = db.session.get(Account, "acc-8")
    assert (account.name, account.email, account.stripe_customer_id) == ("Eight GmbH", "a@eight.test", "cus_8")
    assert (account.billing_line1, account.billing_postal_code, account.billing_city, account.billing_country) == (
        "Bahnhofstrasse 1", "8001", "Zürich", "CH")


def test_customer_without_metadata_creates_stripe_prefixed_account(client):
    h.deliver(client, _customer_created("cus_9", name="Nine SA"))
    account = db.session.get(Account, "stripe:cus_9")
    assert (account.name, account.stripe_customer_id) == ("Nine SA", "cus_9")


def test_events_of_unknown_customer_wait_pending_until_customer_created(client):
    sub = h.subscription("sub_X", "cus_X", h.price("price_basic", 4900), created=h.ts("2026-01-05T10:00:00"))
    early = h.envelope("customer.subscription.created", sub, h.ts("2026-01-05T10:00:00"))
    h.deliver(client, early)
    row = db.session.get(StripeEvent, early["id"])
    assert (row.state, row.account_id, row.customer_id, row.stripe_subscription_id) == (
        "pending", None, "cus_X", "sub_X")
    assert db.session.execute(db.select(db.func.count(Account.id))).scalar_one() == 0

    h.deliver(client, _customer_created("cus_X", account_id="acc-x", created=h.ts("2026-01-05T09:59:00")))
    db.session.expire_all()
    assert db.session.get(StripeEvent, early["id"]).account_id == "acc-x"


def test_events_of_unknown_customer_are_replayed_once_the_platform_links_it(client):
    """customer.created was missed; the platform names the account's customer over the API."""
    sub = h.subscription("sub_X", "cus_X", h.price("price_basic", 4900, product="basic"),
                         created=h.ts("2026-01-05T10:00:00"))
    early = h.envelope("customer.subscription.created", sub, h.ts("2026-01-05T10:00:00"))
    h.deliver(client, early)
    _t, secret = api_services.create_token("platform", "ingest")

    resp = client.put("/api/v1/accounts/acc-x", json={"name": "X AG", "stripe_customer_id": "cus_X"},
                      headers={"Authorization": f"Bearer {secret}"})

    assert resp.status_code == 201
    db.session.expire_all()
    row = db.session.get(StripeEvent, early["id"])
    assert (row.account_id, row.state) == ("acc-x", "processed")
    created = db.session.execute(
        db.select(BillingEvent).where(BillingEvent.stripe_event_id == early["id"])).scalar_one()
    assert (created.account_id, created.type, created.to_plan, created.new_amount, created.committed_mrr) == (
        "acc-x", "subscription_created", "basic", Decimal("49.00"), Decimal("49.00"))


def test_attach_customer_releases_waiting_events(app):
    from backoffice.ledger import archive

    db.session.add(StripeEvent(id="evt_wait", type="invoice.paid", stripe_created_at=datetime(2026, 1, 1, tzinfo=UTC),
                               payload="{}", payload_sha256="0" * 64, customer_id="cus_W"))
    db.session.commit()
    assert archive.waiting_customer_ids() == ["cus_W"]
    account_id = archive.attach_customer(h.customer("cus_W", account_id="acc-w"))
    assert account_id == "acc-w"
    assert db.session.get(StripeEvent, "evt_wait").account_id == "acc-w"
    assert archive.waiting_customer_ids() == []


def _deliver_at_once(app, bodies: list[bytes]) -> list:
    """Each body from a thread of its own (its own test client), all released together."""
    start = threading.Barrier(len(bodies))

    def deliver(body: bytes):
        client = app.test_client()
        start.wait()
        return h.deliver(client, body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(deliver, bodies))


def test_concurrent_events_of_a_new_customer_create_one_account(app):
    customer = h.customer("cus_C", account_id="acc-c")
    events = [h.envelope("customer.created", customer, h.ts("2026-01-05T09:00:00"))]
    events += [h.envelope("customer.updated", customer, h.ts("2026-01-05T09:00:00") + i) for i in range(1, 4)]
    sub = h.subscription("sub_C", "cus_C", h.price("price_basic", 4900), created=h.ts("2026-01-05T10:00:00"))
    events += [h.envelope("customer.subscription.created", sub, h.ts("2026-01-05T10:00:00"))]
    responses = _deliver_at_once(app, [h.encode(e) for e in events])
    assert [(r.status_code, r.json["outcome"]) for r in responses] == [(200, "stored")] * len(events)
    db.session.expire_all()
    (account,) = db.session.execute(db.select(Account)).scalars()
    assert (account.id, account.stripe_customer_id) == ("acc-c", "cus_C")
    assert {row.id: row.account_id for row in _events()} == {e["id"]: "acc-c" for e in events}


def test_concurrent_deliveries_of_one_event_store_it_once(app):
    for event in (_customer_created("cus_D", account_id="acc-d"),
                  h.envelope("invoice.paid", h.invoice("in_D", "cus_D", None, amount_paid=4900, total=4900,
                                                        created=h.ts("2026-01-06")), h.ts("2026-01-06"))):
        responses = _deliver_at_once(app, [h.encode(event)] * 4)
        assert {r.status_code for r in responses} == {200}
        assert sorted(r.json["outcome"] for r in responses) == ["duplicate", "duplicate", "duplicate", "stored"]
    db.session.expire_all()
    assert sorted((row.type, row.account_id) for row in _events()) == [("customer.created", "acc-d"),
                                                                        ("invoice.paid", "acc-d")]
    assert db.session.execute(db.select(db.func.count(Discrepancy.id))).scalar_one() == 0


def test_an_event_archived_inside_a_unit_of_work_commits_with_it(app):
    """A caller's pending changes commit with the event (one commit), as the session path did."""
    from backoffice.ledger import archive

    db.session.add(Account(id="acc-u", name="Unit AG", stripe_customer_id="cus_U"))
    event = h.envelope("invoice.paid", h.invoice("in_U", "cus_U", None, amount_paid=4900, total=4900,
                                                 created=h.ts("2026-01-06")), h.ts("2026-01-06"))
    result = archive.archive_event(h.encode(event), event)
    assert (result.outcome, result.account_id) == ("stored", "acc-u")
    db.session.rollback()  # nothing left to roll back: both are committed
    assert db.session.get(Account, "acc-u").stripe_customer_id == "cus_U"
    assert db.session.get(StripeEvent, event["id"]).account_id == "acc-u"


def test_json_that_orjson_reads_differently_is_read_as_json_reads_it(client):
    """The webhook parses with orjson, and with json where the two differ: an integer beyond 64
    bits (orjson would read a float), NaN and a lone surrogate escape (orjson refuses them)."""
    body = h.encode(_customer_created("cus_big", account_id="BIG"))
    body = body.replace(b'"account_id":"BIG"', b'"account_id":123456789012345678901234567890')
    assert h.deliver(client, body).json["outcome"] == "stored"
    assert db.session.get(Account, "123456789012345678901234567890").stripe_customer_id == "cus_big"

    body = h.encode(_customer_created("cus_nan", account_id="acc-nan"))
    body = body.replace(b'"livemode":false', b'"livemode":false,"n":NaN,"s":"\\ud800"', 1)
    assert h.deliver(client, body).json["outcome"] == "stored"
    assert db.session.get(StripeEvent, json.loads(body)["id"]).payload == body.decode()


def test_orjson_and_json_read_a_stripe_event_alike():
    from backoffice.stripe import gateway

    body = h.encode(h.envelope("invoice.paid", h.invoice("in_J", "cus_J", "sub_J", amount_paid=4900, total=4900,
                                                         created=h.ts("2026-02-01")), h.ts("2026-02-01")))
    body = body[:-1] + b',"big":18446744073709551616,"neg":-9223372036854775809,"max":18446744073709551615,"f":0.1}'
    parsed = gateway.verify_webhook(body, h.sign(body), h.SECRET)
    assert parsed == json.loads(body)
    assert (parsed["big"], parsed["neg"], parsed["max"], parsed["f"]) == (
        18446744073709551616, -9223372036854775809, 18446744073709551615, 0.1)
    assert type(parsed["big"]) is int


def _with_nul(event: dict, path: tuple[str, ...]) -> bytes:
    """The body of `event` with a NUL character (the JSON escape) appended to the string at `path`."""
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] += "\x00"
    return h.encode(event)


def test_an_id_with_a_nul_character_is_refused_naming_the_field(client):
    """No Stripe id holds a NUL character and no database text column can: a 400 that names the
    field (PostgreSQL answered a 500), nothing stored."""
    sub_event = h.envelope("customer.subscription.created",
                           h.subscription("sub_N", "cus_N", h.price("price_basic", 4900, product="basic")),
                           h.ts("2026-01-05"))
    cases = [
        (_customer_created("cus_N1"), ("id",), "id"),
        (_customer_created("cus_N2"), ("type",), "type"),
        (_customer_created("cus_N3"), ("api_version",), "api_version"),
        (_customer_created("cus_N4"), ("data", "object", "id"), "data.object.customer"),
        (sub_event, ("data", "object", "customer"), "data.object.customer"),
        (h.envelope("customer.subscription.created",
                    h.subscription("sub_M", "cus_M", h.price("price_basic", 4900, product="basic")),
                    h.ts("2026-01-05")), ("data", "object", "id"), "data.object.subscription"),
    ]
    for event, path, field in cases:
        resp = h.deliver(client, _with_nul(event, path))
        assert resp.status_code == 400, (field, resp.get_data(as_text=True))
        assert resp.json["error"]["field"] == field
        assert "NUL" in resp.json["error"]["message"]
    assert db.session.execute(db.select(db.func.count(StripeEvent.id))).scalar_one() == 0


def test_a_customer_text_with_a_nul_character_or_too_long_is_stored_cleaned(client):
    """A customer's free text becomes the account's columns without NUL characters and within
    the columns' lengths (each was a 500 on PostgreSQL), when the account is created from it
    and when the replay projects it; the archive keeps the body byte for byte."""
    event = _customer_created("cus_T1", account_id="acc-text")
    obj = event["data"]["object"]
    obj["name"] = "Acme\x00 AG " + "n" * 300
    obj["address"].update(line1="Main\x00 Street " + "l" * 300, city="C" * 150, postal_code="8" * 30)
    body = h.encode(event)
    resp = h.deliver(client, body)
    assert resp.status_code == 200 and resp.json["outcome"] == "stored"
    account = db.session.get(Account, "acc-text")
    assert account.name == ("Acme AG " + "n" * 300)[:200]
    assert (account.billing_name, account.billing_line1, account.billing_city, account.billing_postal_code) == (
        ("Acme AG " + "n" * 300)[:200], ("Main Street " + "l" * 300)[:200], "C" * 100, "8" * 20)
    assert db.session.get(StripeEvent, event["id"]).payload == body.decode()
    # The replay projected the same payload onto the account (it was not marked failed).
    assert db.session.get(StripeEvent, event["id"]).state == "processed"
    updated = h.envelope("customer.updated", dict(obj, address=dict(obj["address"], city="Z\x00" + "z" * 120)),
                         h.ts("2026-01-06"))
    assert h.deliver(client, updated).status_code == 200
    db.session.expire_all()
    assert db.session.get(StripeEvent, updated["id"]).state == "processed"
    assert db.session.get(Account, "acc-text").billing_city == ("Z" + "z" * 120)[:100]


# --- the database dropped the pool's connections (a restart, pg_terminate_backend) ---------

def _invoice_paid_n(n: int) -> dict:
    invoice = h.invoice(f"in_{n}", "cus_P", None, amount_paid=4900, total=4900, created=h.ts("2026-01-06"))
    return h.envelope("invoice.paid", invoice, h.ts("2026-01-06") + n)


def _pooled_backend_pids() -> list[int]:
    """The server processes of every idle connection in the app's pool (all checked out at once,
    so each is seen once)."""
    db.session.remove()
    connections = [db.engine.connect() for _ in range(max(db.engine.pool.checkedin(), 1))]
    try:
        return [c.execute(sa.select(sa.func.pg_backend_pid())).scalar_one() for c in connections]
    finally:
        for c in connections:
            c.close()


@pytest.mark.skipif(not IS_POSTGRES, reason="PostgreSQL: a server that drops connections")
def test_a_request_after_the_server_dropped_its_connections_succeeds(app, client):
    assert h.deliver(client, _invoice_paid_n(1)).status_code == 200  # leaves a pooled connection
    pids = _pooled_backend_pids()
    # Only the app's own connections are killed: other fixtures of the run keep theirs.
    killer = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with killer.connect() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
            " WHERE pid = ANY(:pids)"), {"pids": pids}).scalar_one()
    killer.dispose()
    assert killed == len(pids) >= 1
    assert h.deliver(client, _invoice_paid_n(2)).status_code == 200
    assert db.session.execute(sa.select(sa.func.count()).select_from(StripeEvent)).scalar_one() == 2
