"""`backoffice ledger replay [--workers N]`: the catch-up of every pending archived event, in
batches, shared among processes on PostgreSQL; the same ledger whatever the worker count."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.dialects.postgresql import ARRAY

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.ledger import services, sql
from backoffice.ledger.models import BillingEvent, StripeEvent
from tests.conftest import IS_POSTGRES
from tests.stripe import helpers as h

BASIC = h.price("price_basic", 4900, product="basic")
PRO = h.price("price_pro", 15900, product="pro")


def archive_stories(client, monkeypatch, accounts: int) -> None:
    """Each account: created, subscribed to basic, upgraded to pro, one paid invoice; archived
    through the webhook without replaying (as when no worker ran)."""
    from backoffice.ledger import drain

    monkeypatch.setattr(drain, "request_replay", lambda account_id: None)
    for n in range(accounts):
        cus, sub, t = f"cus_rp{n}", f"sub_rp{n}", h.ts("2026-01-10T08:00:00") + n * 60
        for event in (
            h.envelope("customer.created", h.customer(cus, account_id=f"acc-rp{n}"), t - 30),
            h.envelope("customer.subscription.created", h.subscription(sub, cus, BASIC, created=t), t),
            h.envelope("customer.subscription.updated", h.subscription(sub, cus, PRO, created=t), t + 86400,
                       previous_attributes={"items": {"data": [{"price": BASIC}]}}),
            h.envelope("invoice.paid", h.invoice(f"in_rp{n}", cus, sub, amount_paid=15900, total=15900,
                                                 created=t + 86400), t + 86401),
        ):
            assert h.deliver(client, event).status_code == 200


@pytest.mark.parametrize("workers", [1, 2])
def test_replay_command_catches_up_every_pending_event(client, runner, monkeypatch, workers):
    archive_stories(client, monkeypatch, accounts=6)
    assert db.session.execute(db.select(db.func.count()).select_from(BillingEvent)).scalar_one() == 0
    monkeypatch.setattr(services, "BATCH_EVENTS", 8)  # three batches of two accounts
    result = runner.invoke(args=["ledger", "replay", "--workers", str(workers)])
    assert result.exit_code == 0, result.output
    assert "6 accounts, 24 archived events replayed, 24 ledger rows appended" in result.output
    db.session.expire_all()
    states = db.session.execute(db.select(StripeEvent.state, db.func.count()).group_by(StripeEvent.state)).all()
    assert dict(states) == {"processed": 24}
    latest = db.session.execute(
        db.select(BillingEvent.type, BillingEvent.amount_delta, BillingEvent.committed_mrr)
        .where(BillingEvent.account_id == "acc-rp3").order_by(BillingEvent.occurred_at)).all()
    assert [(t, d, m) for t, d, m in latest] == [
        ("billing_info_added", None, Decimal("0.0000")),
        ("subscription_created", Decimal("49.0000"), Decimal("49.0000")),
        ("subscription_upgraded", Decimal("110.0000"), Decimal("159.0000")),
        ("subscription_renewed", None, Decimal("159.0000")),
    ]
    again = runner.invoke(args=["ledger", "replay"])
    assert "0 accounts, 0 archived events replayed, 0 ledger rows appended" in again.output


def test_batches_hold_about_the_batch_events_and_at_most_500_accounts():
    one_each = [(f"acc-{i:04d}", 1) for i in range(1200)]
    assert [len(b) for b in services._batches(one_each, 5000)] == [500, 500, 200]
    many = [("acc-a", 3000), ("acc-b", 2500), ("acc-c", 10), ("acc-d", 6000)]
    assert list(services._batches(many, 5000)) == [["acc-a", "acc-b"], ["acc-c", "acc-d"]]


def _analysed(table: str) -> bool:
    return db.session.execute(db.text("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                                      "WHERE relname = :t"), {"t": table}).scalar_one()


def test_the_catch_up_refreshes_the_statistics_of_the_tables_it_grows(app, monkeypatch):
    """A bulk replay grows the ledger tables from nothing: their planner statistics (and the
    foreign-key checks' cached plans) are refreshed once a table has more than doubled since
    its last ANALYZE, whether or not autovacuum runs."""
    if not IS_POSTGRES:
        assert services.refresh_statistics() == []  # SQLite plans without statistics
        return
    from backoffice.accounts.models import Account

    db.session.add_all(Account(id=f"acc-st{n}", name=f"Stats {n}") for n in range(30))
    db.session.commit()
    db.session.execute(db.text("SELECT pg_stat_force_next_flush()"))  # PostgreSQL 15+
    db.session.commit()
    monkeypatch.setattr(services, "STATISTICS_SLACK", 20)
    assert "accounts" in services.refresh_statistics()
    assert _analysed("accounts")
    assert "accounts" not in services.refresh_statistics()  # nothing changed since


AWKWARD_IDS = ['evt_"quoted"', "evt_back\\slash", "evt_,comma", "evt_{brace}", "NULL", "", " spaced ",
               "évt_ünïcode", 'evt_\\"both']


def test_id_lists_match_every_id_exactly_however_it_is_spelled(app):
    """The ids a batch asks for are bound as one array (on PostgreSQL in the array's text syntax):
    quotes, backslashes, commas, braces, blanks, an empty id and the word NULL match themselves."""
    table = StripeEvent.__table__
    ids = [*AWKWARD_IDS, "evt_plain"]
    now = datetime(2026, 1, 10, 8, tzinfo=UTC)
    db.session.execute(table.insert(), [
        {"id": i, "type": "customer.created", "api_version": "x", "stripe_created_at": now, "received_at": now,
         "payload": "{}", "payload_sha256": "0" * 64, "state": "pending"} for i in ids])
    for wanted in (AWKWARD_IDS, ["evt_plain"], ["NULL", "evt_missing"], ['evt_"quoted"']):
        found = db.session.execute(db.select(table.c.id).where(sql.in_(table.c.id, wanted))).scalars()
        assert sorted(found) == sorted(set(wanted) & set(ids))
    if not IS_POSTGRES:
        return
    numbers = [2**40, -7, 0]
    selected = db.select(db.func.unnest(sql.pg_array(numbers, ARRAY(db.BigInteger))))
    assert sorted(db.session.execute(selected).scalars()) == sorted(numbers)


def test_an_id_longer_than_the_column_does_not_match_a_stored_id_it_begins_with(app):
    """The array is not cast to the column's length: cut to 64 characters, the 65-character
    account id would have matched the stored 64-character id that is its beginning."""
    stored = "acc-" + "x" * 60
    assert len(stored) == Account.__table__.c.id.type.length
    created = datetime(2026, 1, 2, 9, tzinfo=UTC)
    db.session.add(Account(id=stored, name="long", created_at=created, modified_at=created))
    db.session.flush()
    found = db.session.execute(db.select(Account.id).where(sql.in_(Account.id, [stored + "y"]))).scalars()
    assert list(found) == []
    found = db.session.execute(db.select(Account.id).where(sql.in_(Account.id, [stored]))).scalars()
    assert list(found) == [stored]


def test_array_literal_syntax():
    assert sql.array_literal(["a", 'b"c', "d\\e"]) == '{"a","b\\"c","d\\\\e"}'
    assert sql.array_literal([3, -1]) == "{3,-1}"
    assert sql.array_literal([]) == "{}"
    assert sql.array_literal([True]) is None  # a bool is not sent as an integer
    assert sql.array_literal(["a", 1]) is None


def test_an_id_list_is_typed_as_the_array_by_the_server():
    """The array text is cast straight to the column's array type, so PostgreSQL parses it once,
    as the parameter's value. Cast from a VARCHAR parameter instead, it was an expression parsed
    again for each row an UPDATE scanned (the replay's marking of 5,000 archived events ran for
    minutes). The array's strings have no length (see the test above)."""
    from sqlalchemy.dialects import postgresql

    table = StripeEvent.__table__
    clause = table.c.id == db.any_(sql.pg_array(["evt_1", "evt_2"], sql.array_of(table.c.id.type)))
    compiled = str(db.update(table).where(clause).values(error=None).compile(dialect=postgresql.psycopg.dialect()))
    assert "= ANY (CAST(%(param_1)s AS VARCHAR[]))" in compiled


def _account_updates_in_transaction() -> int:
    """PostgreSQL's count of the rows of accounts the current transaction has updated so far."""
    return db.session.execute(db.text(
        "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'accounts'")).scalar_one()


def test_a_new_account_is_flagged_as_having_ledger_rows_in_the_update_of_its_billing_info(client, monkeypatch):
    """The platform's accounts get their first ledger rows: the one whose billing info the
    replay fills has the flag set in that same UPDATE (on PostgreSQL the transaction updates
    its row once, not twice); the one the replay leaves unchanged gets it from the ledger's
    trigger, its modified time untouched."""
    from backoffice.ledger import drain

    monkeypatch.setattr(drain, "request_replay", lambda account_id: None)
    created = datetime(2026, 1, 2, 9, tzinfo=UTC)
    db.session.add_all([Account(id=a, name=a, created_at=created, modified_at=created)
                        for a in ("acc-filled", "acc-as-is")])
    db.session.commit()
    bare = h.customer("cus_as_is", account_id="acc-as-is", name="", email="")
    bare["address"] = None
    t = h.ts("2026-01-10T08:00:00")
    for event in (h.envelope("customer.created", h.customer("cus_filled", account_id="acc-filled"), t),
                  h.envelope("customer.created", bare, t + 1),
                  *(h.envelope("customer.subscription.created",
                               h.subscription(f"sub_{c}", f"cus_{c}", BASIC, created=t + 2), t + 2)
                    for c in ("filled", "as_is"))):
        assert h.deliver(client, event).status_code == 200
    db.session.execute(db.update(Account).values(modified_at=created))  # the webhook linked the customers
    db.session.commit()

    before = _account_updates_in_transaction() if IS_POSTGRES else 0
    services.replay_account_in_transaction("acc-filled")
    if IS_POSTGRES:
        assert _account_updates_in_transaction() - before == 1
    db.session.commit()
    services.replay_account("acc-as-is")
    db.session.expire_all()
    filled, as_is = db.session.get(Account, "acc-filled"), db.session.get(Account, "acc-as-is")
    assert (filled.has_ledger_rows, filled.billing_name, filled.modified_at > created) == (True, "Acme AG", True)
    assert (as_is.has_ledger_rows, as_is.billing_name, as_is.modified_at) == (True, None, created)
