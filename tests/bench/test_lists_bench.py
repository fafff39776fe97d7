"""Benchmark of the lists on PostgreSQL (excluded by default; not a timed unit test).

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/lists_bench \
      pytest -m bench tests/bench/test_lists_bench.py -s -p no:cacheprovider

Sizes (defaults: the issue's full size): BENCH_ACCOUNTS=50000 BENCH_USERS=200000
BENCH_LEDGER=2000000 BENCH_LOGINS=5000000 BENCH_TRANSACTIONS=500000. The data is generated with
SQL generate_series, then every list page and fragment is requested BENCH_RUNS times (default 40; nearest-rank p50 and p95)
through the app in-process: the figure is server time. Targets: p95 ≤ 100 ms per list page or
fragment, ≤ 50 ms for the side pane, CSV of all accounts ≤ 5 s with a flat memory peak.

BENCH_REUSE=1 keeps the generated data between runs (while developing: generating the full size
takes minutes): the database is not emptied, only the tables the benchmark does not generate, and
the data is generated again only when its row counts differ from the sizes asked for. Migrations
added since still run on it (the migrated template), then everything is vacuumed and analysed.
BENCH_URLS=unsynced,search measures only the list URLs containing one of the comma-separated parts.
"""
from __future__ import annotations

import math
import os
import time
import tracemalloc

import pytest
import sqlalchemy as sa

from backoffice.extensions import db
from backoffice.ledger.labels import EVENT_LABELS
from tests.conftest import IS_POSTGRES, _pg_truncate_all

pytestmark = pytest.mark.bench

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "50000"))
USERS = int(os.environ.get("BENCH_USERS", "200000"))
LEDGER = int(os.environ.get("BENCH_LEDGER", "2000000"))
LOGINS = int(os.environ.get("BENCH_LOGINS", "5000000"))
TRANSACTIONS = int(os.environ.get("BENCH_TRANSACTIONS", "500000"))
RUNS = int(os.environ.get("BENCH_RUNS", "40"))
REUSE = os.environ.get("BENCH_REUSE", "") == "1"
# BENCH_URLS=unsynced,status: only the list URLs containing one of these (while developing).
ONLY = [part for part in os.environ.get("BENCH_URLS", "").split(",") if part]

TYPES = list(EVENT_LABELS)  # the 20 types, snake_case

GENERATE = [
    # plans
    """INSERT INTO plans (price_id, plan_key, name, monthly_amount, interval, currency) VALUES
       ('price_basic', 'basic', 'Basic', 49, 'month', 'EUR'), ('price_pro', 'pro', 'Pro', 159, 'month', 'EUR'),
       ('price_business', 'business', 'Business', 499, 'month', 'EUR')""",
    # accounts
    """INSERT INTO accounts (id, name, country, created_at, modified_at, pay_by, auto_invoice, auto_reminders,
                             payment_terms_days, stripe_customer_id)
       SELECT 'acc_' || lpad(i::text, 7, '0'),
              (ARRAY['Alpha','Beta','Gamma','Delta','Epsilon','Zeta','Eta','Theta','Iota','Kappa'])[i % 10 + 1]
                || ' ' || (ARRAY['Rockets','Widgets','Boats','Gears','Labs','Foods','Health','Media'])[i % 8 + 1]
                || ' ' || i,
              (ARRAY['CH','DE','AT','FR','IT','US','GB','DK'])[i % 8 + 1],
              now() - (i % 1500) * interval '1 day', now() - (i % 977) * interval '1 hour',
              'card', true, true, 30, 'cus_' || i
       FROM generate_series(1, :accounts) AS i""",
    # subscriptions: 70 % of the accounts; some canceling, downgrading, drifting, free after paying
    """INSERT INTO subscriptions (account_id, stripe_subscription_id, is_current, status, plan, price_amount,
                                  currency, cancel_at_period_end, current_period_end, scheduled_plan,
                                  scheduled_price_amount, subscribed_since, drift_detected, created_at, updated_at)
       SELECT 'acc_' || lpad(i::text, 7, '0'), 'sub_' || i, true,
              CASE WHEN i % 23 = 0 THEN 'canceled' ELSE 'active' END,
              CASE WHEN i % 23 = 0 THEN 'free' ELSE (ARRAY['basic','pro','business'])[i % 3 + 1] END,
              CASE WHEN i % 23 = 0 THEN 0 ELSE (ARRAY[49,159,499])[i % 3 + 1] END,
              'EUR', i % 17 = 0, now() + (i % 30) * interval '1 day',
              CASE WHEN i % 19 = 0 AND i % 3 > 0 THEN 'basic' END,
              CASE WHEN i % 19 = 0 AND i % 3 > 0 THEN 49 END,
              now() - (i % 1400) * interval '1 day', i % 50 = 0, now(), now()
       FROM generate_series(1, :accounts) AS i WHERE i % 10 < 7""",
    # users and memberships (one account each; the first user of an account is its owner)
    """INSERT INTO users (id, email, first_name, last_name, created_at, last_seen_at)
       SELECT 'usr_' || lpad(i::text, 8, '0'), 'user' || i || '@example.com',
              CASE WHEN i % 11 = 0 THEN NULL ELSE (ARRAY['Ada','Grace','Linus','Alan','Barbara','Ken'])[i % 6 + 1] END,
              CASE WHEN i % 13 = 0 THEN NULL ELSE 'Surname' || (i % 997) END,
              now() - (i % 1500) * interval '1 day',
              CASE WHEN i % 7 = 0 THEN NULL ELSE now() - (i % 90) * interval '1 day' END
       FROM generate_series(1, :users) AS i""",
    """INSERT INTO memberships (user_id, account_id, role, state, created_at)
       SELECT 'usr_' || lpad(i::text, 8, '0'), 'acc_' || lpad(((i - 1) % :accounts + 1)::text, 7, '0'),
              CASE WHEN i <= :accounts THEN 'owner' ELSE 'member' END,
              CASE WHEN i % 20 = 0 THEN 'pending' ELSE 'active' END, now()
       FROM generate_series(1, :users) AS i""",
    # the ledger: 2 M rows over three years
    """INSERT INTO billing_events (account_id, subscription_id, stripe_event_id, type, from_plan, to_plan,
                                   previous_amount, new_amount, amount_delta, committed_mrr, currency,
                                   occurred_at, baseline, created_at)
       SELECT 'acc_' || lpad(((i - 1) % :accounts + 1)::text, 7, '0'), NULL, 'evt_' || i,
              (CAST(:types AS text[]))[i % 20 + 1], 'basic', 'pro', 49, 159, 110, 159, 'EUR',
              now() - (i % 1000000) * interval '90 seconds', false, now()
       FROM generate_series(1, :ledger) AS i""",
    # payment transactions: some refunded, some credit-noted
    """INSERT INTO payment_transactions (account_id, stripe_invoice_id, status, date, currency, amount,
                                         amount_excluding_tax, tax_amount, invoice_total, amount_from_credit,
                                         refunded_at, refund_amount, credit_noted_at, credit_note_url, number)
       SELECT 'acc_' || lpad(((i - 1) % :accounts + 1)::text, 7, '0'), 'in_' || i,
              CASE WHEN i % 31 = 0 THEN 'failed' ELSE 'succeeded' END,
              now() - (i % 900000) * interval '100 seconds', 'EUR', 171.88, 159, 12.88, 171.88, 0,
              CASE WHEN i % 20 = 0 THEN now() - (i % 900000) * interval '100 seconds' + interval '2 days' END,
              CASE WHEN i % 20 = 0 THEN 171.88 END,
              CASE WHEN i % 33 = 0 THEN now() - (i % 900000) * interval '100 seconds' + interval '3 days' END,
              CASE WHEN i % 33 = 0 THEN 'https://cn/' || i END, 'INV-' || i
       FROM generate_series(1, :transactions) AS i""",
    # logins and sessions
    """INSERT INTO logins (user_id, at, method, outcome, ip, user_agent)
       SELECT 'usr_' || lpad(((i - 1) % :users + 1)::text, 8, '0'), now() - (i % 2000000) * interval '20 seconds',
              (ARRAY['password','google','email_code'])[i % 3 + 1],
              CASE WHEN i % 9 = 0 THEN 'failure' ELSE 'success' END, '192.0.2.' || (i % 250),
              (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0',
                     'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
                     'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'])[i % 3 + 1]
       FROM generate_series(1, :logins) AS i""",
    """INSERT INTO user_sessions (id, user_id, created_at, last_seen_at, revoked_at, ip)
       SELECT 'ses_' || i, 'usr_' || lpad(((i - 1) % :users + 1)::text, 8, '0'), now() - interval '3 days',
              now() - (i % 72) * interval '1 hour', CASE WHEN i % 5 = 0 THEN now() END, '192.0.2.1'
       FROM generate_series(1, :users * 2) AS i""",
]


# The generated tables and the row count each must have for the data to be reused.
GENERATED = {"plans": 3, "accounts": ACCOUNTS, "subscriptions": None, "users": USERS, "memberships": USERS,
             "billing_events": LEDGER, "payment_transactions": TRANSACTIONS, "logins": LOGINS,
             "user_sessions": USERS * 2}


def _reusable(url: str) -> bool:
    """Empties the tables the benchmark does not generate; True when the generated ones hold data
    of the sizes asked for (else everything is emptied, to generate again)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            counts = {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in GENERATED}
            if any(counts[t] != n for t, n in GENERATED.items() if n is not None):
                return False
            others = [r[0] for r in conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))
                if r[0] not in GENERATED]
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # past the append-only triggers
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in others) + " RESTART IDENTITY"))
        return True
    finally:
        engine.dispose()


@pytest.fixture
def reused(migrated_template) -> bool:
    return REUSE and _reusable(migrated_template)


@pytest.fixture
def db_url(migrated_template, reused):
    """The conftest's database, kept when BENCH_REUSE=1 and it holds data of these sizes."""
    if not reused:
        _pg_truncate_all(migrated_template)
    return migrated_template


def _vacuum() -> float:
    """As after generating: a migration that rewrote rows leaves them to vacuum (autovacuum would)."""
    started = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def _generate() -> float:
    started = time.perf_counter()
    params = {"accounts": ACCOUNTS, "users": USERS, "ledger": LEDGER, "logins": LOGINS,
              "transactions": TRANSACTIONS, "types": TYPES}
    with db.engine.begin() as conn:
        # Bulk generation runs as the owner with triggers off, as the dashboard benchmark's does (the
        # dashboard summaries' trigger locks every account one statement touches: far too many
        # here); what triggers keep is then set from the generated rows.
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for sql in GENERATE:
            stmt = sa.text(sql)
            conn.execute(stmt, {k: v for k, v in params.items() if f":{k}" in sql})
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET has_ledger_rows = true "
                             "WHERE id IN (SELECT account_id FROM billing_events)"))  # as migration 0010
        if conn.execute(sa.text("SELECT to_regproc('dashboard_rebuild_summaries')")).scalar() is not None:
            conn.execute(sa.text("SELECT dashboard_rebuild_summaries()"))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def _measure(client, url: str, headers: dict | None = None) -> tuple[float, float]:
    client.get(url, headers=headers or {}).get_data()  # warm-up: template compilation, plan cache
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        resp = client.get(url, headers=headers or {})
        resp.get_data()
        times.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200, (url, resp.status_code, resp.get_data(as_text=True)[:300])
    times.sort()
    # Nearest-rank percentiles: p95 of 40 runs is the 38th fastest (not the slowest).
    return times[math.ceil(0.5 * len(times)) - 1], times[math.ceil(0.95 * len(times)) - 1]


HX = {"HX-Request": "true"}
LIST_URLS = [
    "/accounts", "/accounts?sort=name", "/accounts?sort=-mrr", "/accounts?sort=status", "/accounts?sort=plan",
    "/accounts?sort=renewal", "/accounts?status=canceling", "/accounts?status=downgrading&status=canceled",
    "/accounts?status=free", "/accounts?plan=pro&status=active", "/accounts?search=rockets",
    "/accounts?search=acc_0001234", "/accounts?unsynced=1", "/accounts?drift=1", f"/accounts?page={max(1, ACCOUNTS // 500)}",
    "/accounts?page_size=100&sort=-created",
    "/users", "/users?search=user1234", "/users?search=alpha", "/users?sort=name", "/users?sort=-last_seen",
    f"/users?page={max(1, USERS // 400)}",
    "/ledger", "/ledger?view=mrr", "/ledger?view=state", "/ledger?view=other",
    "/ledger?search=rockets", "/ledger?sort=account", "/ledger?sort=event",
    "/ledger?type=payment_failed", "/ledger?from=2026-01-01&to=2026-01-31",
    f"/ledger?page={max(1, LEDGER // 10000)}",
    "/invoices", "/invoices?view=invoices", "/invoices?view=reversals", "/invoices?search=rockets",
    "/invoices?sort=total", "/invoices?sort=account", "/invoices?sort=status", f"/invoices?page={max(1, TRANSACTIONS // 2500)}",
    "/accounts/acc_0000012", "/accounts/acc_0000012/users", "/accounts/acc_0000012/invoices",
    "/accounts/acc_0000012/ledger", "/accounts/acc_0000012/drift",
    "/users/usr_00000012", "/users/usr_00000012/logins", "/users/usr_00000012/sessions",
]


@pytest.mark.skipif(not IS_POSTGRES, reason="the list benchmark runs on PostgreSQL (set TEST_DATABASE_URL)")
def test_lists_bench(reused, app, admin_client):
    if reused:
        print(f"\nreused {ACCOUNTS} accounts, {USERS} users, {LEDGER} ledger rows, {LOGINS} logins, "
              f"{TRANSACTIONS} transactions (vacuumed in {_vacuum():.1f} s)")
    else:
        seconds = _generate()
        print(f"\ngenerated {ACCOUNTS} accounts, {USERS} users, {LEDGER} ledger rows, {LOGINS} logins, "
              f"{TRANSACTIONS} transactions in {seconds:.1f} s")
    slow = []
    print(f"{'url':60} {'page p50':>9} {'p95':>7} {'frag p50':>9} {'p95':>7}  (ms)")
    for url in [u for u in LIST_URLS if not ONLY or any(part in u for part in ONLY)]:
        p50, p95 = _measure(admin_client, url)
        f50, f95 = _measure(admin_client, url, HX)
        print(f"{url:60} {p50:9.1f} {p95:7.1f} {f50:9.1f} {f95:7.1f}")
        if max(p95, f95) > 100:
            slow.append((url, p95, f95))
    pane = []
    for account in ("acc_0000012", "acc_0000017", f"acc_{ACCOUNTS - 1:07d}", "acc_0000023"):
        _p50, p95 = _measure(admin_client, f"/accounts/{account}/pane", HX)
        pane.append(p95)
        print(f"{'/accounts/' + account + '/pane':60} {_p50:9.1f} {p95:7.1f}")
    started = time.perf_counter()
    resp = admin_client.get("/accounts?format=csv")
    lines = sum(chunk.count(b"\n") for chunk in resp.response)
    csv_seconds = time.perf_counter() - started
    tracemalloc.start()  # a second pass for the memory peak (tracemalloc slows Python several times)
    resp = admin_client.get("/accounts?format=csv")
    traced_lines = sum(chunk.count(b"\n") for chunk in resp.response)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"CSV of all accounts: {lines - 1} rows in {csv_seconds:.2f} s, tracemalloc peak {peak / 1e6:.1f} MB")
    assert traced_lines == lines
    assert lines - 1 == ACCOUNTS
    assert not slow, slow
    assert max(pane) <= 50, pane
    assert csv_seconds <= 5
    assert peak < 30e6  # flat: far below the size of the whole result
