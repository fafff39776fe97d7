"""The replayer: the only writer of the billing-event ledger, and of the projections that come
from Stripe payloads (subscriptions, payment transactions, the plan catalog).

`replay_account` takes the pending (and failed) archived events of one account in Stripe's
order (created, then id), seeds the classifier from the live subscription and the committed MRR
of the latest ledger row (never a phantom zero), classifies them with the pure classifier
(ledger/classifier.py), appends only rows whose Stripe event id is missing and updates the
projections. Of the archive it changes only the processing columns. An account whose pending
events include one older (created, id) than its newest processed event, or whose newest
processed event was processed before an older one, is replayed from its whole archive and the
empty state instead (as `rebuild` does); only the replayed events' missing rows are appended.

Replays of one account take turns: a transaction advisory lock per account on PostgreSQL
(`_lock_accounts`), a process-wide lock on SQLite (`_serialized`); plans are upserted.

`rebuild` replays an account's whole archive from an empty state: it recomputes the
projections, appends rows that are missing, and reports every stored row that the fresh replay
would write differently, without changing it.
"""
from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from flask import current_app
from sqlalchemy import BigInteger, String
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.dialects.postgresql import JSON as JSON_PG
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import NullType

from backoffice.accounts.models import Account
from backoffice.bulk import insert_rows
from backoffice.dbtypes import utcnow
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import archive, readers
from backoffice.ledger import replay_adapter as adapter
from backoffice.ledger.classifier import unreadable_discrepancy
from backoffice.ledger.models import BillingEvent, Discrepancy, Plan, StripeEvent, Subscription

log = logging.getLogger(__name__)

ZERO = Decimal(0)
CENT = Decimal("0.01")
AMOUNT_CLAMPED = "AmountExcludingTaxClamped"
ROW_FIELDS = ("type", "from_plan", "to_plan", "previous_amount", "new_amount", "amount_delta",
              "committed_mrr", "currency", "occurred_at", "reason")
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
PAID_TYPES = frozenset({"invoice.paid", "invoice.payment_succeeded"})
CUSTOMER_TYPES = frozenset({"customer.created", "customer.updated", "payment_method.attached"})


@dataclass
class ReplayReport:
    account_id: str | None
    events: int = 0
    rows_appended: int = 0
    rows_corrected: int = 0  # stored rows superseded by a corrected row (or by none)
    processed: int = 0
    ignored: int = 0
    failed: int = 0
    discrepancies: int = 0
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RowDifference:
    account_id: str
    stripe_event_id: str
    field: str
    stored: object
    fresh: object


@dataclass
class RebuildReport:
    accounts: int = 0
    events: int = 0
    rows_appended: int = 0
    rows_corrected: int = 0
    differences: list[RowDifference] = field(default_factory=list)  # each corrected (superseded)
    missing_in_replay: list[str] = field(default_factory=list)  # stored rows a replay would not write
    failed_events: list[tuple[str, str]] = field(default_factory=list)  # (event id, why) it could not read


# --------------------------------------------------------------------------------------------
# Replaying pending events
# --------------------------------------------------------------------------------------------
BATCH_EVENTS = 5000  # archived events per batch of accounts (one commit each)
BATCH_ACCOUNTS = 500  # accounts per batch at most: a batch holds a lock per account (and the
# dashboard's ledger trigger another), and PostgreSQL's lock table is shared by all sessions
ID_CHUNK = 2000  # ids per IN (...) list (SQLite allows 32,766 variables)


# The states a replay reads: the pending events; `ledger replay --failed` adds the failed ones
# (after an upgrade taught the reader what they lacked). A failed event is not read again by
# every later replay of its account: it changes nothing until the code that reads it changes.
PENDING = ("pending",)
PENDING_AND_FAILED = ("pending", "failed")


def replay_account(account_id: str | None, states: tuple[str, ...] = PENDING,
                   received_before: datetime | None = None) -> ReplayReport:
    """One use case, one commit. A failure rolls back and notes the error on the account's
    pending events (the next replay retries them), under the same lock. With
    `received_before`, only the events received before that time are replayed (settled)."""
    report = ReplayReport(account_id)
    with _serialized(), _without_gc():
        try:
            _replay_catalog_events()
            if account_id is not None:
                done = _replay_batch([account_id], states, received_before)
                if account_id in done:
                    report = done[account_id]
            db.session.commit()
        except Exception as e:
            db.session.rollback()
            log.exception("replay of account %s failed", account_id)
            report = ReplayReport(account_id, error=f"{type(e).__name__}: {e}"[:2000])
            if account_id is not None:
                _lock_accounts([account_id])  # the rollback released the lock
                _note_replay_error(account_id, report.error)
            db.session.commit()
    return report


def replay_account_in_transaction(account_id: str) -> ReplayReport:
    """The replay of one account inside the caller's transaction, which the caller commits or
    rolls back: a sync writes the archive rows it recovered, the projections, the ledger rows
    and its anchor as one. Raises whatever the replay raises (nothing is marked failed)."""
    with _serialized(), _without_gc():
        _replay_catalog_events()
        return _replay_batch([account_id]).get(account_id, ReplayReport(account_id))


def replay_pending(progress: Callable[[int], None] | None = None,
                   batch_size: int | None = None, workers: int = 1,
                   states: tuple[str, ...] = PENDING,
                   received_before: datetime | None = None) -> list[ReplayReport]:
    """Every account with archived events in `states` (a worker's catch-up pass), in
    batches of accounts of about `batch_size` events: each batch is read with a few queries,
    classified in memory and written with one bulk insert per table, one commit per batch.
    A batch that fails is replayed again account by account, so one bad account fails alone.
    With `workers` > 1 on PostgreSQL the batches are shared among that many processes (the
    per-account advisory locks keep two replays of an account apart); SQLite has one writer.
    With `received_before`, only events received before that time (settled) are replayed."""
    stmt = (db.select(StripeEvent.account_id, db.func.count())
            .where(StripeEvent.state.in_(states), StripeEvent.account_id.is_not(None))
            .group_by(StripeEvent.account_id).order_by(StripeEvent.account_id))
    if received_before is not None:
        stmt = stmt.where(StripeEvent.received_at < received_before)
    counts = db.session.execute(stmt).all()
    batches = list(_batches(counts, batch_size or BATCH_EVENTS))
    refresh_statistics()
    if workers > 1 and len(batches) > 1 and _postgres():
        return _replay_in_processes(batches, workers, progress, states, received_before)
    reports: list[ReplayReport] = []
    for batch in batches:
        reports.extend(_replay_pending_batch(batch, states, received_before))
        refresh_statistics()
        if progress:
            progress(len(batch))
    return reports


GROWING_TABLES = ("stripe_events", "accounts", "subscriptions", "billing_events", "payment_transactions")
STATISTICS_SLACK = 500  # rows changed on top of the analysed row count before statistics are stale


def refresh_statistics(tables: Sequence[str] = GROWING_TABLES) -> list[str]:
    """ANALYZEs those of `tables` whose rows changed since their last ANALYZE by more than they
    then held (plus STATISTICS_SLACK): a bulk replay grows the ledger tables from nothing, and
    a plan chosen for a nearly empty table stays chosen — PostgreSQL caches each foreign-key
    check's plan per connection, so with an empty `subscriptions` every ledger row's check
    became a sequential scan of the whole table. ANALYZE replans them everywhere. This is what
    autovacuum does, at its own pace, when it is on; it is done here too because it may be off
    or lagging behind a bulk replay. Doubling thresholds keep it to a few ANALYZEs per table
    (each reads a sample of at most 30,000 rows). PostgreSQL only; answers the tables analysed
    (and commits)."""
    if not _postgres():
        return []
    stale = db.session.execute(db.text(
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.relname = ANY(:tables) AND s.schemaname = current_schema() "
        "AND s.n_mod_since_analyze > greatest(c.reltuples, 0) + :slack ORDER BY s.relname"
    ), {"tables": list(tables), "slack": STATISTICS_SLACK}).scalars().all()
    for table in stale:
        db.session.execute(db.text(f'ANALYZE "{table}"'))
    db.session.commit()
    return stale


def _replay_pending_batch(batch: list[str], states: tuple[str, ...] = PENDING,
                          received_before: datetime | None = None) -> list[ReplayReport]:
    try:
        with _serialized(), _without_gc():
            _replay_catalog_events()
            done = _replay_batch(batch, states, received_before)
            db.session.commit()
        return [done.get(a, ReplayReport(a)) for a in batch]
    except Exception:
        db.session.rollback()
        log.exception("batch replay of %d accounts failed; replaying them one by one", len(batch))
        return [replay_account(a, states, received_before) for a in batch]


_FORKED_APP = None  # the application a forked replay process works in


def _replay_in_processes(batches: list[list[str]], workers: int, progress: Callable[[int], None] | None,
                         states: tuple[str, ...] = PENDING,
                         received_before: datetime | None = None) -> list[ReplayReport]:
    """The batches replayed by `workers` forked processes, each on its own connections (a child
    drops the pool it inherited without closing the parent's connections). Reports come back
    in batch order."""
    global _FORKED_APP
    _FORKED_APP = current_app._get_current_object()
    db.session.remove()  # the parent's connection goes back to its pool before the fork
    reports: list[ReplayReport] = []
    with multiprocessing.get_context("fork").Pool(min(workers, len(batches)), initializer=_forked_start) as pool:
        for done in pool.imap(_forked_batch, [(batch, states, received_before) for batch in batches]):
            reports.extend(done)
            refresh_statistics()
            if progress:
                progress(len(done))
    return reports


def _forked_start() -> None:
    with _FORKED_APP.app_context():
        db.engine.dispose(close=False)


def _forked_batch(work: tuple[list[str], tuple[str, ...], datetime | None]) -> list[ReplayReport]:
    with _FORKED_APP.app_context():
        try:
            return _replay_pending_batch(*work)
        finally:
            db.session.remove()


def _batches(counts: Sequence, size: int) -> Iterable[list[str]]:
    batch: list[str] = []
    events = 0
    for account_id, count in counts:
        batch.append(account_id)
        events += count
        if events >= size or len(batch) >= BATCH_ACCOUNTS:
            yield batch
            batch, events = [], 0
    if batch:
        yield batch


def _chunks(values: Sequence, size: int = ID_CHUNK) -> Iterable[Sequence]:
    """Lists of ids for `_in`: one on PostgreSQL (an array is one parameter), chunks of `size`
    on SQLite (at most 32,766 variables per statement)."""
    if _postgres():
        if values:
            yield values
        return
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _in(column, values: Sequence):
    """`column IN (values)`. On PostgreSQL `column = ANY(:array)`: one parameter however many
    values, so the statement stays short (the driver parses and caches it once) and the planner
    still uses the column's index."""
    if _postgres():
        return column == db.any_(_pg_array(values, _array_of(column.type)))
    return column.in_(values)


def _array_of(element_type) -> ARRAY:
    """The array type to compare a column of `element_type` with. A string type loses its
    length: `CAST('{"abcd"}' AS VARCHAR(3)[])` is `{abc}`, so a value longer than the column
    would match a stored value equal to its beginning."""
    if isinstance(element_type, String):
        return ARRAY(String())
    return ARRAY(element_type)


def _pg_array(values: Sequence, array_type: ARRAY):
    """A bound PostgreSQL array of `values`. Strings and integers are sent as one text value in
    the array's input syntax, cast by the server: the driver's list adapter converts element by
    element in Python, about four times slower for the thousands of ids of a batch. Other
    values are bound as a list. The parameter has no type of its own (NullType: no `::VARCHAR`
    is rendered), so the server types it as the array and parses it once; cast from a VARCHAR
    parameter it would be an expression evaluated again for every row a scan compares."""
    literal = _array_literal(values)
    if literal is None:
        return db.bindparam(None, list(values), type_=array_type)
    return db.cast(db.bindparam(None, literal, type_=NullType()), array_type)


def _array_literal(values: Sequence) -> str | None:
    """`{"a","b"}` or `{1,2}`: the input syntax of a one-dimensional array of str or of int
    values (each string quoted, its quotes and backslashes escaped); None for other values."""
    kinds = {type(v) for v in values}
    if kinds == {str}:
        probe = "".join(values)
        if '"' in probe or "\\" in probe:
            values = [v.replace("\\", "\\\\").replace('"', '\\"') for v in values]
        return '{"' + '","'.join(values) + '"}'
    if kinds == {int}:
        return "{" + ",".join(map(str, values)) + "}"
    return "{}" if not kinds else None


def _replay_batch(account_ids: Sequence[str], states: tuple[str, ...] = PENDING,
                  received_before: datetime | None = None) -> dict[str, ReplayReport]:
    """Replays the events in `states` of these accounts (received before `received_before`,
    when given); answers a report per account that had any. Every read is one query for the
    whole batch; the caller commits."""
    ids = sorted(set(account_ids))
    _lock_accounts(ids)
    table = StripeEvent.__table__
    rows: list = []
    settled = () if received_before is None else (table.c.received_at < received_before,)
    for chunk in _chunks(ids):
        rows.extend(db.session.execute(
            db.select(table.c.id, table.c.type, table.c.payload, table.c.account_id, table.c.stripe_created_at)
            .where(_in(table.c.account_id, chunk), table.c.state.in_(states), *settled)
            .order_by(table.c.account_id, table.c.stripe_created_at, table.c.id)
        ).all())
    if not rows:
        return {}
    pending: dict[str, list] = {}
    for row in rows:
        pending.setdefault(row.account_id, []).append(row)
    # An account with a pending event older (created, id) than its newest processed one is
    # replayed from its whole archive and the empty state, as `rebuild` does: classified from the
    # live state, the late event would depend on delivery order.
    # So is an account whose newest processed event was replayed before an older one: its
    # latest ledger row was written without that event, it cannot seed a replay.
    newest, unsettled = _newest_processed(sorted(pending))
    late = sorted(a for a, account_rows in pending.items()
                  if a in unsettled or (a in newest and (account_rows[0].stripe_created_at, account_rows[0].id)
                                        < newest[a]))
    archived = _archive_rows(late)
    by_account: dict[str, tuple[list, list]] = {}
    for account_id, account_rows in pending.items():
        source = account_rows
        if account_id in archived:
            handled = {r.id for r in archived[account_id]}
            source = sorted(archived[account_id] + [r for r in account_rows if r.id not in handled],
                            key=lambda r: (r.stripe_created_at, r.id))
        by_account[account_id] = (source, [readers.parse_payload(row.payload, exact=False) for row in source])
    stored = _current_rows(late)
    if late:
        _reset_schedules(late)
    batch = _Batch(by_account)
    seeds = batch.seeds(newest)
    named = _latest_named(sorted(a for a in newest if a in by_account and a not in archived))
    reports = {}
    for account_id in ids:
        if account_id not in by_account:
            continue
        report = reports[account_id] = ReplayReport(account_id)
        account_rows = pending[account_id]  # only these change state in the archive
        events = by_account[account_id][1]
        report.events = len(account_rows)
        batch.project_catalog(events)
        if account_id in archived:
            # Classified again from the whole archive: the stored rows the late event changed
            # are superseded by corrected ones (DOMAIN §3, corrections without rewriting).
            batch.classify(account_id, account_rows, events, adapter.empty_state(), report, watermark=None,
                           stored=stored.get(account_id, {}))
            continue
        committed, classified, watermark = seeds(account_id)
        state = adapter.seed_state(batch.current(account_id), committed, classified)
        batch.classify(account_id, account_rows, events, state, report, watermark=watermark,
                       named_before=named.get(account_id))
    batch.write()
    return reports


def _latest_named(account_ids: Sequence[str]) -> dict[str, str]:
    """Account id → the Stripe subscription named by its newest replayed event that names one:
    where an incremental replay's walk of `_subscription_links` starts (a replay from the whole
    archive starts from nothing)."""
    if not account_ids:
        return {}
    t = StripeEvent.__table__
    latest = (t.c.stripe_created_at.desc(), t.c.id.desc())
    found: dict[str, str] = {}
    for chunk in _chunks(account_ids):
        where = (_in(t.c.account_id, chunk), t.c.state != "pending", t.c.stripe_subscription_id.is_not(None),
                 t.c.type.in_(sorted(archive.HANDLED_TYPES)))
        if _postgres():
            stmt = (db.select(t.c.account_id, t.c.stripe_subscription_id).where(*where)
                    .ext(distinct_on(t.c.account_id)).order_by(t.c.account_id, *latest))
        else:
            ranked = (db.select(t.c.account_id, t.c.stripe_subscription_id,
                                db.func.row_number().over(partition_by=t.c.account_id, order_by=latest).label("n"))
                      .where(*where).subquery())
            stmt = db.select(ranked.c.account_id, ranked.c.stripe_subscription_id).where(ranked.c.n == 1)
        found.update(db.session.execute(stmt).all())
    return found


def _newest_processed(account_ids: Sequence[str]) -> tuple[dict[str, tuple[datetime, str]], set[str]]:
    """Account id → (created, id) of its newest processed archived event; and the accounts where
    an older event was processed after that one (two queries per chunk). Both walk each
    account's (account, created, id) index from its newest event: the work grows with the
    batch's accounts, never with the archive."""
    t = StripeEvent.__table__
    acc = Account.__table__
    inner, older = t.alias("inner"), t.alias("older")
    newest: dict[str, tuple[datetime, str]] = {}
    unsettled: set[str] = set()
    for chunk in _chunks(account_ids):
        newest_id = (db.select(inner.c.id)
                     .where(inner.c.account_id == acc.c.id, inner.c.state == "processed")
                     .order_by(inner.c.stripe_created_at.desc(), inner.c.id.desc()).limit(1)
                     .scalar_subquery())
        top = (db.select(t.c.account_id, t.c.stripe_created_at, t.c.id, t.c.processed_at)
               .where(t.c.id.in_(db.select(newest_id).where(_in(acc.c.id, chunk)))).subquery())
        newest.update((r.account_id, (r.stripe_created_at, r.id)) for r in db.session.execute(
            db.select(top.c.account_id, top.c.stripe_created_at, top.c.id)))
        unsettled.update(db.session.execute(
            db.select(older.c.account_id).distinct()
            .join(top, top.c.account_id == older.c.account_id)
            .where(older.c.state == "processed", older.c.processed_at > top.c.processed_at,
                   db.or_(older.c.stripe_created_at < top.c.stripe_created_at,
                          db.and_(older.c.stripe_created_at == top.c.stripe_created_at, older.c.id < top.c.id)))
        ).scalars())
    return newest, unsettled


def _archive_rows(account_ids: Sequence[str]) -> dict[str, list]:
    """Account id → its whole archive of handled events in Stripe's order (what `rebuild`
    replays)."""
    t = StripeEvent.__table__
    found: dict[str, list] = {}
    for chunk in _chunks(account_ids):
        for row in db.session.execute(
            db.select(t.c.id, t.c.type, t.c.payload, t.c.account_id, t.c.stripe_created_at)
            .where(_in(t.c.account_id, chunk), t.c.type.in_(sorted(archive.HANDLED_TYPES)))
            .order_by(t.c.account_id, t.c.stripe_created_at, t.c.id)
        ):
            found.setdefault(row.account_id, []).append(row)
    return found


def _reset_schedules(account_ids: Sequence[str]) -> None:
    """Before a replay from the empty state: the schedules come from the classifier's state
    alone, the payloads set everything else again."""
    for chunk in _chunks(account_ids):
        for sub in db.session.execute(db.select(Subscription).where(_in(Subscription.account_id, chunk))).scalars():
            sub.scheduled_plan = None
            sub.scheduled_price_amount = None


# SQLite has one writer and no row locks: replays of this process take turns (reentrant: a
# failed batch is replayed account by account inside its turn).
_SQLITE_REPLAY_LOCK = threading.RLock()


@contextmanager
def _without_gc() -> Iterator[None]:
    """A batch allocates hundreds of thousands of short-lived objects (parsed payloads) and no
    reference cycles worth collecting: the cyclic collector's passes over them cost a third of
    the replay. It is paused for the batch and restored after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _serialized() -> Iterator[None]:
    """A replay's whole transaction, from its first read to its commit (or the marking of its
    failure): on SQLite one at a time per process; PostgreSQL serialises per account with
    advisory locks (`_lock_accounts`)."""
    if db.session.get_bind().dialect.name == "sqlite":
        with _SQLITE_REPLAY_LOCK:
            yield
    else:
        yield


def account_lock_key(account_id: str) -> int:
    """A stable signed 64-bit key of an account for pg_advisory_xact_lock."""
    digest = hashlib.blake2b(f"backoffice.replay:{account_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_accounts(account_ids: Sequence[str]) -> None:
    """Serialises replays of an account until the transaction ends: on PostgreSQL a transaction
    advisory lock per account, taken in key order so two batches never deadlock (one query per
    chunk); on SQLite `_serialized` holds the process lock already."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({account_lock_key(a) for a in account_ids})
    for chunk in _chunks(keys):
        ordered = (db.select(db.func.unnest(_pg_array(chunk, ARRAY(BigInteger)))
                             .label("k")).order_by("k").subquery())
        db.session.execute(db.select(db.func.pg_advisory_xact_lock(ordered.c.k))).all()


class _Accounted(NamedTuple):
    """What `_Batch.classify` found for one account and `_Batch.write` writes."""
    account_id: str
    rows: Sequence  # the archive rows being replayed
    events: Sequence[dict]
    result: object  # the classifier's result
    subscriptions: dict[str, Subscription]  # Stripe subscription id → row
    current: Subscription | None
    invoice_plans: dict
    links: dict[str, str | None]  # event id → the Stripe subscription its row belongs to
    report: ReplayReport
    rebuild: RebuildReport | None
    stored: dict | None  # the current stored rows by event id, when the whole archive is replayed


def _subscription_links(events: Sequence[dict], subscription_of: dict[str, str | None],
                        named_before: str | None) -> dict[str, str | None]:
    """Event id → the Stripe subscription its ledger row belongs to: the one it names, else
    (a customer's event) the one the account's events named last before it in Stripe's order,
    else none. A rule of the archive alone, so the same archive links the same rows whatever
    batches and threads delivery made of it (the subscription current when a row happens to be
    written depends on them)."""
    links, last = {}, named_before
    for event in events:  # in Stripe's order
        named = subscription_of[event["id"]]
        last = named or last
        links[event["id"]] = last
    return links


class _Batch:
    """One replay of a batch of accounts. What the per-account steps read is loaded once for
    the batch (plans, subscriptions, payment transactions, accounts, existing ledger rows) and
    what they write is written once: `classify` runs per account, in account order, on the same
    objects a replay account by account would see; `write` flushes the projections, inserts the
    ledger rows in one multi-row INSERT and marks the archive rows in one UPDATE per outcome."""

    def __init__(self, by_account: dict[str, tuple[list, list]], *, existing: set[str] | None = None):
        self.by_account = by_account
        self.account_ids = sorted(by_account)
        events = [e for _, evs in by_account.values() for e in evs]
        self.plans: dict[str, Plan] = {p.price_id: p for p in db.session.execute(db.select(Plan)).scalars()}
        self._catalog = None
        # The Stripe subscription each event names, read once (the steps below ask four times).
        self.subscription_of: dict[str, str | None] = {e["id"]: archive.event_subscription_id(e) for e in events}
        sub_ids = sorted({sid for sid in self.subscription_of.values() if sid})
        subs: dict[int, Subscription] = {}
        for chunk in _chunks(self.account_ids):
            subs.update((s.id, s) for s in db.session.execute(
                db.select(Subscription).where(_in(Subscription.account_id, chunk))).scalars())
        for chunk in _chunks(sub_ids):
            subs.update((s.id, s) for s in db.session.execute(
                db.select(Subscription).where(_in(Subscription.stripe_subscription_id, chunk))).scalars())
        self.subs_by_stripe = {s.stripe_subscription_id: s for s in subs.values() if s.stripe_subscription_id}
        self.subs_of: dict[str, list[Subscription]] = {}
        for s in sorted(subs.values(), key=lambda s: s.id):
            self.subs_of.setdefault(s.account_id, []).append(s)
        self.payments = _Payments(sorted(_invoice_ids(events)))
        self.amounts = adapter.InvoiceAmountsMemo()
        customer_accounts = sorted({a for a, (_, evs) in by_account.items()
                                    if any(e["type"] in CUSTOMER_TYPES for e in evs)})
        self.accounts: dict[str, Account] = {}
        for chunk in _chunks(customer_accounts):
            self.accounts.update((a.id, a) for a in db.session.execute(
                db.select(Account).where(_in(Account.id, chunk))).scalars())
        if existing is None:
            existing = set()
            event_ids = [e["id"] for e in events]
            for chunk in _chunks(event_ids):
                existing.update(db.session.execute(
                    db.select(BillingEvent.stripe_event_id)
                    .where(_in(BillingEvent.stripe_event_id, chunk), BillingEvent.current())).scalars())
        self.existing = existing
        self.accounted: list[_Accounted] = []  # per account, what `write` finishes after the flush
        self.marks: list[tuple[str, str, str | None]] = []

    # -- seeds of the state machine -------------------------------------------------------------
    def seeds(self, newest: dict[str, tuple[datetime, str]]
              ) -> Callable[[str], tuple[Decimal | None, set[str], datetime | None]]:
        """Per account: the committed MRR of the latest ledger row, the invoices of the batch
        already classified by a paid event, and the time of the newest processed event (the
        watermark, from `newest`: `_newest_processed` of the batch's accounts)."""
        latest: dict[str, Decimal] = {}
        for chunk in _chunks(self.account_ids):
            latest.update(db.session.execute(_latest_committed(chunk)).all())
        wanted = {(a, e["data"]["object"].get("id")) for a, (_, evs) in self.by_account.items() for e in evs
                  if e["type"] in PAID_TYPES}
        classified: dict[str, set[str]] = {}
        accounts = sorted({a for a, _ in wanted} & set(latest))  # no ledger row yet: nothing classified
        for chunk in _chunks(accounts):
            for account_id, invoice_id, is_string in db.session.execute(_classified_invoices(chunk)).all():
                if is_string and (account_id, invoice_id) in wanted:
                    classified.setdefault(account_id, set()).add(invoice_id)
        return lambda a: (latest.get(a), classified.get(a, set()), newest[a][0] if a in newest else None)

    # -- catalog ----------------------------------------------------------------------------------
    def project_catalog(self, events: Sequence[dict]) -> None:
        if _project_prices(self.plans, events):
            self._catalog = None

    def catalog(self):
        if self._catalog is None:
            self._catalog = adapter.catalog_of(self.plans.values())
        return self._catalog

    def plan(self, price_id: str | None) -> Plan | None:
        return self.plans.get(price_id) if price_id else None

    # -- one account ------------------------------------------------------------------------------
    def current(self, account_id: str) -> Subscription | None:
        return next((s for s in self.subs_of.get(account_id, ()) if s.is_current), None)

    def classify(self, account_id: str, rows: Sequence, events: Sequence[dict], state, report: ReplayReport,
                 *, watermark: datetime | None, rebuild: RebuildReport | None = None,
                 stored: dict | None = None, named_before: str | None = None) -> None:
        """Classifies the events and projects their payloads (subscriptions, the account's
        billing info, payment transactions); `write` appends the rows and marks the archive.
        `named_before`: the subscription the account's replayed events named last."""
        result = adapter.classify(events, state, self.catalog(), self.amounts)
        unreadable = set(result.unreadable_event_ids)
        readable = [e for e in events if e["id"] not in unreadable] if unreadable else events
        subscriptions = self._project_subscriptions(account_id, readable, watermark)
        final = adapter.final_state_of(result)
        current = self.current(account_id)
        latest_event = max((e["created"], e["id"]) for e in events)
        if current is not None and (watermark is None or _at(latest_event[0]) >= watermark):
            adapter.apply_state(current, final)
        _project_customer(self.accounts.get(account_id), events)
        invoice_plans = {e["id"]: adapter.invoice_plan(e["data"]["object"], self.plan)
                         for e in events if e["data"]["object"].get("object") == "invoice"}
        links = _subscription_links(events, self.subscription_of, named_before)
        self.accounted.append(_Accounted(account_id, rows, events, result, subscriptions, current, invoice_plans,
                                         links, report, rebuild, stored))

    def _project_subscriptions(self, account_id: str, events: Sequence[dict],
                               watermark: datetime | None) -> dict[str, Subscription]:
        """Subscription rows from subscription payloads; answers Stripe subscription id → row
        for every subscription the events mention."""
        subscription_of = self.subscription_of
        sub_ids = {sid for e in events if (sid := subscription_of[e["id"]])}
        rows = {sid: self.subs_by_stripe[sid] for sid in sub_ids if sid in self.subs_by_stripe}
        current = self.current(account_id)
        for event in events:
            obj = event["data"]["object"]
            if obj.get("object") != "subscription" or not event["type"].startswith("customer.subscription."):
                continue
            if watermark is not None and _at(event["created"]) < watermark:
                continue  # a late, older event: its row is written, the projection stays newer
            sub = rows.get(obj["id"])
            if sub is None:
                if current is not None and current.stripe_subscription_id is None:
                    sub = current  # adopt the placeholder the platform created
                    sub.stripe_subscription_id = obj["id"]
                else:
                    if current is not None:
                        current.is_current = False
                        db.session.flush()
                    sub = Subscription(account_id=account_id, stripe_subscription_id=obj["id"], is_current=True)
                    db.session.add(sub)
                    self.subs_of.setdefault(account_id, []).append(sub)
                rows[obj["id"]] = self.subs_by_stripe[obj["id"]] = sub
                current = sub
            elif not sub.is_current and event["type"] != "customer.subscription.deleted":
                if current is not None and current is not sub:
                    current.is_current = False
                    db.session.flush()
                sub.is_current = True
                current = sub
            adapter.apply_subscription_payload(sub, event, self.plan)
        return rows

    # -- writing ------------------------------------------------------------------------------------
    def write(self) -> None:
        selections = [self._select(entry) for entry in self.accounted]
        for entry, (_, appended, corrected) in zip(self.accounted, selections, strict=True):
            _start_subscriptions(entry.subscriptions, appended + [(e, r) for e, r, _ in corrected if r is not None],
                                 self.subscription_of)
            if appended:
                self._flag_ledger_rows(entry.account_id)
        db.session.flush()  # new subscriptions get their ids (inserted with their start)
        now = utcnow()
        ledger: list[dict] = []
        corrections: list[tuple[dict | None, object]] = []  # (the corrected row's values or None, stored row)
        for (account_id, rows, events, result, subscriptions, current, invoice_plans, links, report, rebuild,
             stored), (row_by_event, appended, corrected) in zip(self.accounted, selections, strict=True):
            sub_ids = {sid: sub.id for sid, sub in subscriptions.items()}
            unprojected = _project_payments(account_id, events, sub_ids, self.payments, invoice_plans,
                                            self.amounts, self.subscription_of,
                                            skip=frozenset(result.unreadable_event_ids))
            current_id = current.id if current is not None else None

            def values_of(event: dict, row, links=links, sub_ids=sub_ids, current_id=current_id,
                          account_id=account_id) -> dict:
                sub_id = links[event["id"]]
                if sub_id is None:
                    subscription_id = None
                else:
                    linked = sub_ids.get(sub_id) or getattr(self.subs_by_stripe.get(sub_id), "id", None)
                    subscription_id = linked or current_id
                return {"account_id": account_id, "subscription_id": subscription_id, **adapter.row_values(row)}

            appended = [(event, row) for event, row in appended if event["id"] not in unprojected]
            ledger.extend(values_of(event, row) for event, row in appended)
            corrected = [c for c in corrected if c[0]["id"] not in unprojected]
            for event, row, old in corrected:
                if rebuild is not None:
                    _compare(account_id, old, row, rebuild)
                corrections.append((None if row is None else values_of(event, row), old))
            report.rows_appended += len(appended)
            report.rows_corrected += len(corrected)
            if rebuild is not None:
                rebuild.rows_appended += len(appended)
                rebuild.rows_corrected += len(corrected)
                rebuild.missing_in_replay.extend(sorted(
                    event["id"] for event in events
                    if event["id"] in stored and event["id"] not in row_by_event
                    and event["id"] in result.unreadable_event_ids))
            problems = adapter.discrepancies_of(result) + [
                {**unreadable_discrepancy(event_id, exc).as_dict(), "fails_event": True}
                for event_id, exc in unprojected.items()]
            report.discrepancies += _record_discrepancies(account_id, problems)
            failed = {d["stripe_event_id"]: d["message"] for d in problems if d.get("fails_event")}
            if failed:
                self._flag_drift(account_id, current)
            skipped = adapter.skipped_of(result)
            if rebuild is not None:
                rebuild.failed_events.extend(sorted(failed.items()))
            for row in rows:
                if row.id in failed:
                    self.marks.append((row.id, "failed", failed[row.id][:2000]))
                    report.failed += 1
                elif row.id in skipped and row.id not in row_by_event and row.type not in archive.PROJECTION_TYPES:
                    self.marks.append((row.id, "ignored", skipped[row.id][:2000]))
                    report.ignored += 1
                else:
                    self.marks.append((row.id, "processed", None))
                    report.processed += 1
        db.session.flush()
        self.payments.write()
        _mark(self.marks, now)
        _supersede(corrections, now)
        insert_rows(BillingEvent.__table__, ledger)

    def _flag_drift(self, account_id: str, current: Subscription | None) -> None:
        """An event the replay cannot read is drift (DOMAIN §3): the account's flag is set, on a
        placeholder current subscription (no Stripe id, free) when it has none, so the banner,
        the drift filter and the Drift tab show it; the next drift check keeps it while the
        event stays failed."""
        if current is None:
            current = Subscription(account_id=account_id, is_current=True, plan="free", price_amount=ZERO)
            db.session.add(current)
            self.subs_of.setdefault(account_id, []).append(current)
        current.drift_detected = True

    def _flag_ledger_rows(self, account_id: str) -> None:
        """An account that gets its first ledger rows in a batch that also changes its billing
        info has `has_ledger_rows` set in that same UPDATE. The ledger's trigger would set it
        with a second UPDATE of the row, and neither can be a HOT update (both change indexed
        columns): every index of accounts, the trigram one included, would take two new
        entries instead of one. An account the batch does not change is left to the trigger
        (an UPDATE here would move its modified time)."""
        account = self.accounts.get(account_id)
        if account is not None and not account.has_ledger_rows and db.session.is_modified(account):
            account.has_ledger_rows = True

    def _select(self, entry: _Accounted) -> tuple[dict, list[tuple[dict, object]], list[tuple[dict, object, object]]]:
        """One account's classified rows by event id; the (event, row) pairs to append, in
        Stripe's order; and, when the whole archive was classified again (a late event, a
        rebuild), the (event, fresh row or None, stored row) of each stored current row a fresh
        replay writes differently, or not at all although the event reads: those are superseded.
        A replay appends the rows of the events it replays (a rebuild every missing row): an
        event not yet replayed (younger than the settle delay, failed) gets its row when it is."""
        rebuild, stored = entry.rebuild, entry.stored
        row_by_event = {row.stripe_event_id: row for row in adapter.rows_of(entry.result)}
        replaying = None if rebuild is not None else {row.id for row in entry.rows}
        unreadable = set(entry.result.unreadable_event_ids)
        appended, corrected = [], []
        for event in entry.events:
            event_id = event["id"]
            row = row_by_event.get(event_id)
            if stored is not None and event_id in stored:
                old = stored[event_id]
                if row is None:
                    if event_id not in unreadable:
                        corrected.append((event, None, old))
                elif _differs(old, row):
                    corrected.append((event, row, old))
                continue
            if row is None or (replaying is not None and event_id not in replaying):
                continue
            if stored is not None or event_id not in self.existing:
                appended.append((event, row))
        return row_by_event, appended, corrected


def _start_subscriptions(subscriptions: dict[str, Subscription], appended: Sequence[tuple[dict, object]],
                         subscription_of: dict[str, str | None]) -> None:
    """A subscription starts at its first appended subscription_created row; set before the
    flush, so a new subscription is inserted with its start (no second UPDATE)."""
    for event, row in appended:
        if getattr(row.type, "value", row.type) != "subscription_created":
            continue
        sub = subscriptions.get(subscription_of[event["id"]])
        if sub is not None and sub.subscribed_since is None:
            sub.subscribed_since = row.occurred_at


def _mark(marks: Sequence[tuple[str, str, str | None]], now: datetime) -> None:
    """The archive rows' processing columns (the only ones a trigger lets change): one UPDATE
    ... WHERE id IN (...) for the processed rows, one executemany for the others."""
    table = StripeEvent.__table__
    processed = [event_id for event_id, state, _ in marks if state == "processed"]
    for chunk in _chunks(processed):
        db.session.execute(db.update(table).where(_in(table.c.id, chunk))
                           .values(state="processed", error=None, processed_at=now))
    others = [{"b_id": i, "b_state": s, "b_error": e} for i, s, e in marks if s != "processed"]
    if others:
        db.session.execute(db.update(table).where(table.c.id == db.bindparam("b_id"))
                           .values(state=db.bindparam("b_state"), error=db.bindparam("b_error"), processed_at=now),
                           others)


def _supersede(corrections: Sequence[tuple[dict | None, object]], now: datetime) -> None:
    """Marks each stored row superseded by its corrected row (inserted here, with an id taken
    beforehand so the one UPDATE a ledger row may get names it), or by none. The stored row is
    marked first: one row per event is current at every statement."""
    if not corrections:
        return
    replacements = [values for values, _ in corrections if values is not None]
    ids = iter(_new_ledger_ids(len(replacements)))
    marks = []
    for values, old in corrections:
        new_id = None
        if values is not None:
            new_id = values["id"] = next(ids)
        marks.append({"b_old": old.id, "b_new": new_id})
    t = BillingEvent.__table__
    db.session.execute(db.update(t).where(t.c.id == db.bindparam("b_old"), t.c.superseded_at.is_(None))
                       .values(superseded_at=now, superseded_by=db.bindparam("b_new")), marks)
    insert_rows(t, replacements)


def _new_ledger_ids(n: int) -> list[int]:
    """`n` ids for new ledger rows: from the sequence on PostgreSQL; on SQLite after the largest
    (the replay has written already - the archive's marks - so it holds SQLite's one write lock
    and no other connection can take these ids)."""
    if n == 0:
        return []
    if _postgres():
        return list(db.session.execute(
            db.text("SELECT nextval(pg_get_serial_sequence('billing_events', 'id')) FROM generate_series(1, :n)"),
            {"n": n}).scalars())
    top = db.session.execute(db.select(db.func.max(BillingEvent.id))).scalar() or 0
    return list(range(top + 1, top + 1 + n))


def _current_rows(account_ids: Sequence[str]) -> dict[str, dict]:
    """Account id → its current ledger rows (not the recovery's baseline) by Stripe event id:
    what a replay of the whole archive compares its fresh rows with."""
    t = BillingEvent.__table__
    found: dict[str, dict] = {}
    for chunk in _chunks(account_ids):
        for row in db.session.execute(
            db.select(t.c.id, t.c.account_id, t.c.stripe_event_id, *(t.c[name] for name in ROW_FIELDS))
            .where(_in(t.c.account_id, chunk), t.c.superseded_at.is_(None), t.c.baseline.is_(False))
        ):
            found.setdefault(row.account_id, {})[row.stripe_event_id] = row
    return found


def _differs(stored, fresh) -> bool:
    values = adapter.row_values(fresh)
    return any(not _same(getattr(stored, name), values.get(name)) for name in ROW_FIELDS)


def _same(a, b) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return (a is None and b is None) or (a is not None and b is not None and Decimal(a) == Decimal(b))
    return a == b


def _latest_committed(account_ids: Sequence[str]):
    """(account id, committed MRR of its latest ledger row) for each account with rows. Latest
    in Stripe's order (time, then event id), not in insertion order: a late event's row is
    inserted after rows that follow it."""
    t = BillingEvent.__table__
    latest = (t.c.occurred_at.desc(), t.c.stripe_event_id.desc(), t.c.id.desc())
    if db.session.get_bind().dialect.name == "postgresql":
        return (db.select(t.c.account_id, t.c.committed_mrr)
                .where(_in(t.c.account_id, account_ids), t.c.superseded_at.is_(None))
                .ext(distinct_on(t.c.account_id)).order_by(t.c.account_id, *latest))
    ranked = (db.select(t.c.account_id, t.c.committed_mrr,
                        db.func.row_number().over(partition_by=t.c.account_id, order_by=latest).label("n"))
              .where(_in(t.c.account_id, account_ids), t.c.superseded_at.is_(None)).subquery())
    return db.select(ranked.c.account_id, ranked.c.committed_mrr).where(ranked.c.n == 1)


def _classified_invoices(account_ids: Sequence[str]):
    """(account id, invoice id, whether the id is a string) of paid / payment_succeeded events
    that have their ledger row: the other of the pair is then a NoOp (the classifier's state
    needs them across batches). The invoice id is read from the payload by the database, in the
    select list only: it reads the payloads of the rows that matched, never one the replay could
    not read (a body with NaN is no JSON to the database) - those have no ledger row."""
    se = StripeEvent.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        obj = db.cast(se.c.payload, JSON_PG)["data"]["object"]
        invoice_id, is_string = obj["id"].astext, db.func.json_typeof(obj["id"]) == "string"
    else:
        invoice_id = db.func.json_extract(se.c.payload, "$.data.object.id")
        is_string = db.func.json_type(se.c.payload, "$.data.object.id") == "text"
    return (db.select(se.c.account_id, invoice_id, is_string)
            .join(BillingEvent.__table__, BillingEvent.__table__.c.stripe_event_id == se.c.id)
            .where(_in(se.c.account_id, account_ids), se.c.type.in_(sorted(PAID_TYPES)),
                   BillingEvent.__table__.c.superseded_at.is_(None)))


def _invoice_ids(events: Iterable[dict]) -> set[str]:
    ids = set()
    for e in events:
        obj = e["data"]["object"]
        kind = obj.get("object")
        if kind == "invoice" and obj.get("id"):
            ids.add(obj["id"])
        elif kind in ("credit_note", "charge") and isinstance(obj.get("invoice"), str):
            ids.add(obj["invoice"])
    return ids


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _note_replay_error(account_id: str, error: str) -> int:
    """A replay that broke (not an event it could not read) leaves the account's events pending,
    retried by the next replay, with the error shown beside them."""
    result = db.session.execute(
        db.update(StripeEvent)
        .where(StripeEvent.account_id == account_id, StripeEvent.state == "pending")
        .values(error=error)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _record_discrepancies(account_id: str, problems: Iterable[dict]) -> int:
    """Adds each finding once (kind + Stripe event id), on the account."""
    problems = list(problems)
    if not problems:
        return 0
    ids = [p.get("stripe_event_id") for p in problems if p.get("stripe_event_id")]
    known = {tuple(r) for r in db.session.execute(
        db.select(Discrepancy.kind, Discrepancy.stripe_event_id)
        .where(Discrepancy.account_id == account_id, Discrepancy.stripe_event_id.in_(ids))
    )} if ids else set()
    added = 0
    for p in problems:
        key = (p["kind"], p.get("stripe_event_id"))
        if key in known:
            continue
        known.add(key)
        db.session.add(Discrepancy(account_id=account_id, kind=p["kind"], severity=p["severity"],
                                   field=p.get("field"), stripe_event_id=p.get("stripe_event_id"),
                                   message=p["message"]))
        added += 1
    return added


# --------------------------------------------------------------------------------------------
# Projections from payloads
# --------------------------------------------------------------------------------------------
def _replay_catalog_events() -> None:
    """Price and plan events carry no customer: they only feed the catalog."""
    rows = db.session.execute(
        db.select(StripeEvent)
        .where(StripeEvent.account_id.is_(None), StripeEvent.state == "pending",
               StripeEvent.type.in_(sorted(archive.CATALOG_TYPES)))
        .order_by(StripeEvent.stripe_created_at, StripeEvent.id)
    ).scalars().all()
    if not rows:
        return
    plans = {p.price_id: p for p in db.session.execute(db.select(Plan)).scalars()}
    _project_prices(plans, [readers.parse_payload(row.payload, exact=False) for row in rows])
    now = utcnow()
    for row in rows:
        row.state, row.processed_at = "processed", now


def _project_prices(plans: dict[str, Plan], events: Sequence[dict]) -> bool:
    """The plan catalog from the prices the payloads carry (price id → plan, monthly amount).
    `plans` holds every plan by price id; answers whether any changed."""
    seen: dict[str, dict] = {}
    for event in events:
        for price in _price_objects(event):
            values = adapter.plan_values(price)
            if values is not None:
                seen[values["price_id"]] = values
    changed = False
    new = [values for price_id, values in sorted(seen.items()) if price_id not in plans]
    if new:
        # Another replay may insert the same price meanwhile: insert what is missing, then
        # update it like any stored plan.
        insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        db.session.execute(insert(Plan.__table__).values(new).on_conflict_do_nothing(index_elements=["price_id"]))
        for chunk in _chunks([v["price_id"] for v in new]):
            plans.update((p.price_id, p) for p in db.session.execute(
                db.select(Plan).where(_in(Plan.price_id, chunk))).scalars())
        changed = True
    for price_id, values in seen.items():
        plan = plans[price_id]
        for key, value in values.items():
            changed = changed or getattr(plan, key) != value
            setattr(plan, key, value)
    return changed


def _price_objects(event: dict) -> Iterable[dict]:
    obj = event["data"]["object"]
    kind = obj.get("object")
    if kind in ("price", "plan"):
        yield obj
    elif kind == "subscription":
        for item in (obj.get("items") or {}).get("data") or []:
            candidate = item.get("price") or item.get("plan")
            if isinstance(candidate, dict):
                yield candidate


def _project_customer(account: Account | None, events: Sequence[dict]) -> None:
    """Billing info and card from customer and payment-method payloads (the platform's own
    account name is kept)."""
    if account is None:
        return
    for event in events:
        obj = event["data"]["object"]
        if event["type"] in ("customer.created", "customer.updated") and obj.get("object") == "customer":
            address = obj.get("address") if isinstance(obj.get("address"), dict) else {}
            account.billing_name = archive.account_text("billing_name", obj.get("name") or None) or account.billing_name
            account.billing_email = (archive.account_text("billing_email", obj.get("email") or None)
                                     or account.billing_email)
            if address:
                for column, value in archive.billing_address(address).items():
                    setattr(account, column, value)
        elif event["type"] == "payment_method.attached":
            card = obj.get("card") if isinstance(obj.get("card"), dict) else {}
            if card.get("last4"):
                account.card_brand = str(card.get("brand") or "")[:20] or None
                account.card_last4 = str(card["last4"])[:4]


_INVOICE_STATUS = {"paid": "succeeded", "open": "open", "draft": "draft", "void": "void",
                   "uncollectible": "uncollectible"}


class _Txn(dict):
    """A payment transaction row: a dict of its columns, read and set as attributes."""

    __slots__ = ()

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value) -> None:
        self[name] = value


_PT = PaymentTransaction.__table__
_PT_FIELDS = tuple(c.name for c in _PT.columns if c.name != "id")


class _Payments:
    """The payment transactions a batch projects, as plain rows by invoice id: loaded with one
    query, written with one executemany INSERT (new invoices) and one executemany UPDATE (rows
    whose values changed). The ORM's unit of work is not needed for rows nothing else holds,
    and costs more than the rest of the replay together."""

    def __init__(self, invoice_ids: Sequence[str]):
        self.by_invoice: dict[str, _Txn] = {}
        self.of_account: dict[str, list[_Txn]] = {}
        self._loaded: dict[int, dict] = {}  # id → the values as read, to find what changed
        self._new: list[_Txn] = []
        for chunk in _chunks(invoice_ids):
            self._adopt(db.session.execute(db.select(_PT).where(_in(_PT.c.stripe_invoice_id, chunk))).mappings())

    def _adopt(self, rows) -> list[_Txn]:
        """Stored rows as the batch's rows (a row the batch holds already is the batch's)."""
        found = []
        for row in rows:
            txn = self.by_invoice.get(row["stripe_invoice_id"])
            if txn is None:
                txn = _Txn(row)
                self._loaded[txn.id] = dict(row)
                self._hold(txn)
            found.append(txn)
        return found

    def _hold(self, txn: _Txn) -> None:
        self.by_invoice[txn.stripe_invoice_id] = txn
        self.of_account.setdefault(txn.account_id, []).append(txn)

    def get(self, invoice_id: str | None) -> _Txn | None:
        return self.by_invoice.get(invoice_id) if isinstance(invoice_id, str) else None

    def create(self, account_id: str, invoice_id: str) -> _Txn:
        txn = _Txn(dict.fromkeys(_PT_FIELDS), id=None)
        txn.update(account_id=account_id, stripe_invoice_id=invoice_id, amount_from_credit=ZERO)
        self._new.append(txn)
        self._hold(txn)
        return txn

    def by_charge(self, account_id: str, charge_id: str | None) -> _Txn | None:
        if not charge_id:
            return None
        for txn in self.of_account.get(account_id, ()):
            if txn.stripe_charge_id == charge_id:
                return txn
        stored = self._adopt(db.session.execute(
            db.select(_PT).where(_PT.c.stripe_charge_id == charge_id).limit(1)).mappings())
        return next((t for t in stored if t.stripe_charge_id == charge_id), None)

    def refundable(self, account_id: str, currency: str, amount: Decimal, at: datetime) -> _Txn | None:
        """The latest succeeded payment of the account with this amount and currency, on or
        before `at`, not refunded yet: the batch's rows and the stored ones (the batch's values
        win), newest by (date, id), rows not stored yet being the newest."""
        def matches(t: _Txn) -> bool:
            return (t.account_id == account_id and t.status == "succeeded" and t.refunded_at is None
                    and t.currency == currency and t.amount == amount and t.date is not None and t.date <= at)

        self._adopt(db.session.execute(
            db.select(_PT).where(_PT.c.account_id == account_id, _PT.c.status == "succeeded",
                                 _PT.c.refunded_at.is_(None), _PT.c.currency == currency, _PT.c.amount == amount,
                                 _PT.c.date <= at)
            .order_by(_PT.c.date.desc(), _PT.c.id.desc()).limit(100)).mappings())
        candidates = [t for t in self.of_account.get(account_id, ()) if matches(t)]
        if not candidates:
            return None
        return max(candidates, key=lambda t: (t.date, t.id if t.id is not None else float("inf")))

    def write(self) -> None:
        """Writes the new and the changed rows (once, when the batch is written)."""
        if self._new:
            insert_rows(_PT, self._new, columns=_PT_FIELDS)
        changed = [txn for txn_id, before in self._loaded.items()
                   if (txn := self.by_invoice[before["stripe_invoice_id"]]) != before]
        if changed:
            db.session.execute(
                db.update(_PT).where(_PT.c.id == db.bindparam("b_id"))
                .values({name: db.bindparam(f"b_{name}", type_=_PT.c[name].type) for name in _PT_FIELDS}),
                [{"b_id": t.id, **{f"b_{name}": t[name] for name in _PT_FIELDS}} for t in changed])
        self._loaded, self._new = {}, []  # written: once per batch


def _project_payments(account_id: str, events: Sequence[dict], subscriptions: dict[str, int],
                      payments: _Payments, invoice_plans: dict[str, str | None],
                      amounts: adapter.InvoiceAmountsMemo, subscription_of: dict[str, str | None],
                      skip: frozenset[str] = frozenset()) -> dict[str, readers.UnreadablePayload]:
    """Payment transactions from invoice, charge and credit-note payloads (`payments`: the
    batch's, loaded at once; `subscription_of`: event id → the Stripe subscription it names).
    Answers the events that could not be read (failed, never processed with nothing projected);
    `skip`: those the classifier failed already. A clamped ex-VAT amount is the classifier's
    finding (AmountExcludingTaxClamped)."""
    unreadable: dict[str, readers.UnreadablePayload] = {}
    for event in events:
        if event["id"] in skip:
            continue
        obj = event["data"]["object"]
        kind = obj.get("object")
        try:
            if event["type"].startswith("invoice."):
                _project_invoice(account_id, event, payments, subscriptions, invoice_plans, amounts,
                                 subscription_of[event["id"]])
            elif event["type"] == "charge.refunded" and kind == "charge":
                _project_refund(account_id, event, payments)
            elif event["type"].startswith("credit_note."):
                _project_credit_note(event, payments)
        except readers.UnreadablePayload as exc:
            unreadable[event["id"]] = exc
    return unreadable


def _project_invoice(account_id, event, payments, subscriptions, invoice_plans, memo, sub_id) -> None:
    obj = event["data"]["object"]
    if obj.get("object") != "invoice" or not isinstance(obj.get("id"), str) or not obj["id"]:
        raise readers.UnreadablePayload(event["type"], "data.object", event.get("api_version"))
    currency = (obj.get("currency") or "").upper()
    if len(currency) != 3:
        raise readers.UnreadablePayload(event["type"], "data.object.currency", event.get("api_version"))
    read = memo(event)
    # A negative total is a credit (DOMAIN §3): the transaction shows nothing paid, nothing due.
    amounts = {"amount_paid": max(read.amount_paid, ZERO), "total": max(read.total, ZERO), "tax": max(read.tax, ZERO),
               "amount_excluding_tax": read.amount_excluding_tax, "amount_from_credit": read.amount_from_credit}
    pt = payments.get(obj["id"]) or payments.create(account_id, obj["id"])
    status = _INVOICE_STATUS.get(readers.invoice_status(obj) or "", "open")
    if event["type"] == "invoice.payment_failed" and status == "open":
        status = "failed"
    elif event["type"] in ("invoice.paid", "invoice.payment_succeeded"):
        status = "succeeded"
    stale = pt.status == "succeeded" and status in ("open", "draft", "failed")
    if stale:
        status = "succeeded"  # a stale update never un-pays an invoice, nor its amounts
    transitions = obj.get("status_transitions") or {}
    moment = transitions.get("paid_at") or transitions.get("finalized_at") or obj.get("created") \
        or obj.get("date") or event["created"]
    pt.status = status
    pt.currency = currency
    pt.number = obj.get("number") or (pt.number if stale else None)
    pt.invoice_url = obj.get("hosted_invoice_url") or obj.get("invoice_pdf") or (pt.invoice_url if stale else None)
    if not stale:
        pt.date = _at(moment)
        pt.amount = amounts["amount_paid"]
        pt.invoice_total = amounts["total"]
        pt.tax_amount = amounts["tax"]
        pt.amount_excluding_tax = amounts["amount_excluding_tax"]
        pt.amount_from_credit = amounts["amount_from_credit"]
    pt.subscription_id = subscriptions.get(sub_id) if sub_id else pt.subscription_id
    pt.plan = invoice_plans.get(event["id"]) or pt.plan
    charge = readers.invoice_charge(obj)
    if charge is not None:
        pt.stripe_charge_id = charge
    # A clamped ex-VAT amount is reported by the classifier (AmountExcludingTaxClamped), once
    # per invoice, on the event that classifies it.


def _project_refund(account_id, event, payments: _Payments) -> None:
    obj = event["data"]["object"]
    pt = payments.get(obj.get("invoice")) or payments.by_charge(account_id, obj.get("id"))
    if pt is None:
        # The current API no longer names the invoice on a charge: the latest succeeded payment
        # of the account with the same amount and currency, not refunded yet.
        pt = payments.refundable(account_id, (obj.get("currency") or "").upper(),
                                 readers.amount_of(obj, "amount", event["type"]) or ZERO, _at(event["created"]))
    if pt is None:
        log.warning("charge.refunded %s: no payment transaction found", event["id"])
        return
    pt.stripe_charge_id = pt.stripe_charge_id or obj.get("id")
    pt.refunded_at = pt.refunded_at or _at(event["created"])
    pt.refund_amount = readers.amount_of(obj, "amount_refunded", event["type"]) or ZERO


def _project_credit_note(event, payments: _Payments) -> None:
    obj = event["data"]["object"]
    invoice_id = obj.get("invoice")
    pt = payments.get(invoice_id)
    if pt is None:  # failed, never processed with nothing projected; a sync brings the invoice
        raise readers.UnreadablePayload(event["type"], "data.object.invoice (no payment transaction for it)",
                                        event.get("api_version"))
    if obj.get("status") == "void" or event["type"] == "credit_note.voided":
        pt.credit_noted_at = pt.credit_note_url = pt.credit_note_amount = None
        return
    pt.credit_noted_at = _at(obj.get("effective_at") or obj.get("created") or event["created"])
    pt.credit_note_url = obj.get("pdf")
    pt.credit_note_amount = (readers.amount_of(obj, "total", event["type"]) or readers.amount_of(obj, "amount", event["type"])
                             or ZERO)


# --------------------------------------------------------------------------------------------
# Rebuild and verify
# --------------------------------------------------------------------------------------------
def accounts_with_archive(account_id: str | None = None) -> list[str]:
    stmt = (db.select(StripeEvent.account_id).where(StripeEvent.account_id.is_not(None))
            .group_by(StripeEvent.account_id).order_by(StripeEvent.account_id))
    if account_id is not None:
        stmt = stmt.where(StripeEvent.account_id == account_id)
    return list(db.session.execute(stmt).scalars())


def rebuild(account_ids: Sequence[str], progress: Callable[[int], None] | None = None) -> RebuildReport:
    """Replays each account's whole archive from an empty state. Projections are recomputed,
    missing rows appended; stored rows are compared, never changed. One commit per account."""
    report = RebuildReport()
    refresh_statistics()
    for n, account_id in enumerate(account_ids, 1):
        with _serialized():
            _rebuild_account(account_id, report)
            db.session.commit()
        report.accounts += 1
        if n % 100 == 0:
            refresh_statistics()
        if progress:
            progress(1)
    return report


def _rebuild_account(account_id: str, report: RebuildReport) -> None:
    _lock_accounts([account_id])
    _replay_catalog_events()
    rows = _archive_rows([account_id]).get(account_id, [])
    if not rows:
        return
    report.events += len(rows)
    events = [readers.parse_payload(row.payload, exact=False) for row in rows]
    stored = _current_rows([account_id]).get(account_id, {})
    # Projections are recomputed from scratch: subscriptions are reset to what the payloads say.
    _reset_schedules([account_id])
    batch = _Batch({account_id: (rows, events)}, existing=set(stored))
    batch.project_catalog(events)
    batch.classify(account_id, rows, events, adapter.empty_state(), ReplayReport(account_id), watermark=None,
                   rebuild=report, stored=stored)
    batch.write()


def _compare(account_id: str, stored, fresh, report: RebuildReport) -> None:
    """The fields a fresh replay writes differently (`fresh` None: the event has no row now)."""
    values = adapter.row_values(fresh) if fresh is not None else {}
    for name in ROW_FIELDS:
        a, b = getattr(stored, name), values.get(name)
        if not _same(a, b):
            report.differences.append(RowDifference(account_id, stored.stripe_event_id, name, a, b))
