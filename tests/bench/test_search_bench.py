"""Benchmark of the header search (excluded by default; not a timed unit test).

    pytest -m bench tests/bench/test_search_bench.py -s -p no:cacheprovider            # SQLite
    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/bo_search_bench \\
      pytest -m bench tests/bench/test_search_bench.py -s -p no:cacheprovider          # PostgreSQL

Sizes (defaults: the issue's): BENCH_ACCOUNTS=50000 BENCH_USERS=200000 BENCH_INVOICES=20000 (Stripe
invoices; a tenth as many of Backoffice's own). Rows are bulk inserted (SQLAlchemy Core executemany),
then analysed; ~200 realistic queries (names, partial ids, cus_ ids, e-mails, invoice numbers, 2- and
3-character prefixes, no match) go through the real endpoint as the type-ahead sends them (htmx),
each once after a warm-up. Prints one `BENCH {...}` line: p50/p95/max in ms with the load average,
and the bare SQL of the slowest query's slowest group with its time. Target: p95 ≤ 100 ms.
"""
from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.invoicing.models import PlatformInvoice
from backoffice.search import queries
from backoffice.users.models import User
from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.bench

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "50000"))
USERS = int(os.environ.get("BENCH_USERS", "200000"))
INVOICES = int(os.environ.get("BENCH_INVOICES", "20000"))
CHUNK = 10_000

WORDS = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Theta", "Kappa", "Sigma", "Omega"]
KINDS = ["Rockets", "Widgets", "Boats", "Gears", "Labs", "Foods", "Health", "Media"]
FIRST = ["ada", "grace", "linus", "alan", "barbara", "ken", "margaret", "dennis"]
LAST = ["lovelace", "hopper", "torvalds", "turing", "liskov", "thompson", "hamilton", "ritchie"]


def _cus(i: int) -> str:
    return f"cus_{(i * 2654435761) % 16 ** 10:010X}{i % 7}"  # unique, scattered like Stripe's


def _number(i: int) -> str:
    return f"{(i * 40503) % 16 ** 8:08X}-{i % 97 + 1:04d}"


def _rows():
    when = datetime(2026, 1, 1, tzinfo=UTC)
    accounts = [{"id": f"acc_{i:07d}", "name": f"{WORDS[i % 10]} {KINDS[i % 8]} {i}", "created_at": when,
                 "modified_at": when, "stripe_customer_id": _cus(i),
                 "billing_email": f"billing{i}@{KINDS[i % 8].lower()}{i % 500}.example",
                 "deleted_at": when if i % 100 == 0 else None} for i in range(1, ACCOUNTS + 1)]
    users = [{"id": f"usr_{i:08d}", "email": f"{FIRST[i % 8]}.{LAST[i // 8 % 8]}{i}@{KINDS[i % 8].lower()}.example",
              "first_name": FIRST[i % 8].title(), "last_name": LAST[i // 8 % 8].title(), "created_at": when}
             for i in range(1, USERS + 1)]
    common = {"status": "succeeded", "date": when, "currency": "EUR", "amount": 108, "amount_excluding_tax": 100,
              "tax_amount": 8, "invoice_total": 108, "amount_from_credit": 0}
    stripe = [{**common, "account_id": f"acc_{i % ACCOUNTS + 1:07d}", "stripe_invoice_id": f"in_{i}",
               "number": _number(i)} for i in range(1, INVOICES + 1)]
    own = [{"account_id": f"acc_{i:07d}", "period": "2026-11", "status": "issued", "number": f"BO-2026-{i:05d}",
            "currency": "EUR", "subtotal": 100, "tax": 8, "total": 108, "vat_rate": 8, "vat_reason": "domestic",
            "vat_note": "", "seller_country": "CH", "customer_name": "x", "customer_address": "",
            "created_at": when} for i in range(1, INVOICES // 10 + 1)]
    return [(Account, accounts), (User, users), (PaymentTransaction, stripe), (PlatformInvoice, own)]


def _generate() -> float:
    started = time.perf_counter()
    with db.engine.begin() as conn:
        if IS_POSTGRES:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # no summary triggers
        for model, rows in _rows():
            for start in range(0, len(rows), CHUNK):
                conn.execute(model.__table__.insert(), rows[start:start + CHUNK])
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE" if IS_POSTGRES else "ANALYZE"))
    return time.perf_counter() - started


def _queries() -> list[str]:
    out = []
    for i in range(1, 21):
        n = i * 2377 % ACCOUNTS + 1
        out += [f"{WORDS[n % 10]} {KINDS[n % 8]} {n}", KINDS[i % 8].lower(), f"{WORDS[i % 10][:4]}",  # names
                f"acc_{n:07d}", f"acc_{n:07d}"[:9], f"{n:07d}"[2:],  # ids: exact, prefix, partial
                _cus(n), _cus(n)[:8],  # cus_ ids
                f"billing{n}@", f"{FIRST[n % 8]}.{LAST[n // 8 % 8]}{n}@{KINDS[n % 8].lower()}.example",  # e-mails
                f"{LAST[i % 8]}{n}", _number(n), _number(n)[:5], f"BO-2026-{n % 2000:05d}"]  # invoices
    out += [w[:2] for w in WORDS + FIRST + ["ac", "cu", "us", "bo"]]  # 2-character prefixes
    out += [w[:3] for w in WORDS + FIRST + ["acc", "cus", "bil", "BO-"]]  # 3-character prefixes
    out += ["zzzqqq", "xylophone", "nobody@nowhere.example", "cus_NOPE", "INV-NONE"] * 2  # no match
    return out


def _nearest_rank(times: list[float], p: float) -> float:
    return times[math.ceil(p * len(times)) - 1]


def test_search_bench(app, admin_client):
    with app.app_context():
        seconds = _generate()
    print(f"\ngenerated {ACCOUNTS} accounts, {USERS} users, {INVOICES} + {INVOICES // 10} invoices in {seconds:.1f} s")
    qs = _queries()
    hx = {"HX-Request": "true"}
    admin_client.get("/search", query_string={"q": qs[0]}, headers=hx)  # warm-up: templates, plan cache
    timed = []
    for q in qs:
        started = time.perf_counter()
        resp = admin_client.get("/search", query_string={"q": q}, headers=hx)
        resp.get_data()
        timed.append(((time.perf_counter() - started) * 1000, q))
        assert resp.status_code == 200, (q, resp.status_code)
    times = sorted(t for t, _q in timed)
    slowest_ms, slowest_q = max(timed)
    with app.app_context():  # the slowest query's groups, as bare SQL
        groups = []
        for name, stmt_of in queries.GROUPS.items():
            stmt = stmt_of(slowest_q)
            started = time.perf_counter()
            db.session.execute(stmt).all()
            groups.append(((time.perf_counter() - started) * 1000, name, stmt))
        group_ms, group, stmt = max(groups, key=lambda g: g[0])
        sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    figures = {
        "database": "postgresql" if IS_POSTGRES else "sqlite", "accounts": ACCOUNTS, "users": USERS,
        "invoices": INVOICES + INVOICES // 10, "queries": len(times),
        "p50_ms": round(_nearest_rank(times, 0.5), 1), "p95_ms": round(_nearest_rank(times, 0.95), 1),
        "max_ms": round(times[-1], 1), "slowest_query": slowest_q, "slowest_ms": round(slowest_ms, 1),
        "slowest_group": group, "slowest_group_sql_ms": round(group_ms, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print("BENCH " + json.dumps(figures))
    print(f"bare SQL of the slowest group ({group}, {group_ms:.1f} ms):\n{sql}")
    assert figures["p95_ms"] <= 100, figures
