"""The replay of a batch of accounts: the only writer of the billing-event ledger.

`replay_batch` takes the pending (and failed) archived events of its accounts in Stripe's order
(created, then id), seeds the classifier from the live subscription and the committed MRR of
the latest ledger row (never a phantom zero), classifies them with the pure classifier
(ledger/classifier.py), appends only rows whose Stripe event id is missing, hands the payloads to
the projections (ledger/projections.py) and marks the archive rows (of the archive it changes
only the processing columns). An account whose pending events include one older (created, id)
than its newest processed event, or whose newest processed event was processed before an older
one, is replayed from its whole archive and the empty state instead (as a rebuild is); each
stored current row the fresh replay writes differently is superseded by its corrected row,
naming the late event that caused it (DOMAIN §3, corrections without rewriting).
Every read is one query for the whole batch, every write one statement per table.

Replays of one account take turns (`serialized`, `lock_accounts`): a transaction advisory lock
per account on PostgreSQL, the database's write lock on SQLite. Nothing here commits: the use cases
(ledger/services.py) do.
"""
from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import BigInteger
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.dialects.postgresql import JSON as JSON_PG

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.extensions import db, sqlite_write_lock
from backoffice.ledger import archive, projections, readers, sql
from backoffice.ledger import replay_adapter as adapter
from backoffice.ledger.classifier import unreadable_discrepancy
from backoffice.ledger.models import BillingEvent, Discrepancy, Plan, StripeEvent, Subscription

log = logging.getLogger(__name__)

ROW_FIELDS = ("type", "from_plan", "to_plan", "previous_amount", "new_amount", "amount_delta",
              "committed_mrr", "currency", "occurred_at", "reason")
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


# The states a replay reads: the pending events; `ledger replay --failed` adds the failed ones
# (after an upgrade taught the reader what they lacked). A failed event is not read again by
# every later replay of its account: it changes nothing until the code that reads it changes.
PENDING = ("pending",)
PENDING_AND_FAILED = ("pending", "failed")


# --------------------------------------------------------------------------------------------
# One batch of accounts
# --------------------------------------------------------------------------------------------
def replay_batch(account_ids: Sequence[str], states: tuple[str, ...] = PENDING,
                 received_before: datetime | None = None) -> dict[str, ReplayReport]:
    """Replays the events in `states` of these accounts (received before `received_before`,
    when given); answers a report per account that had any. Every read is one query for the
    whole batch; the caller commits."""
    ids = sorted(set(account_ids))
    lock_accounts(ids)
    table = StripeEvent.__table__
    rows: list = []
    settled = () if received_before is None else (table.c.received_at < received_before,)
    for chunk in sql.chunks(ids):
        rows.extend(db.session.execute(
            db.select(table.c.id, table.c.type, table.c.payload, table.c.account_id, table.c.stripe_created_at)
            .where(sql.in_(table.c.account_id, chunk), table.c.state.in_(states), *settled)
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
        projections.reset_schedules(late)
    batch = Batch(by_account)
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
    for chunk in sql.chunks(account_ids):
        where = (sql.in_(t.c.account_id, chunk), t.c.state != "pending", t.c.stripe_subscription_id.is_not(None),
                 t.c.type.in_(sorted(archive.HANDLED_TYPES)))
        if sql.postgres():
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
    for chunk in sql.chunks(account_ids):
        newest_id = (db.select(inner.c.id)
                     .where(inner.c.account_id == acc.c.id, inner.c.state == "processed")
                     .order_by(inner.c.stripe_created_at.desc(), inner.c.id.desc()).limit(1)
                     .scalar_subquery())
        top = (db.select(t.c.account_id, t.c.stripe_created_at, t.c.id, t.c.processed_at)
               .where(t.c.id.in_(db.select(newest_id).where(sql.in_(acc.c.id, chunk)))).subquery())
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
    for chunk in sql.chunks(account_ids):
        for row in db.session.execute(
            db.select(t.c.id, t.c.type, t.c.payload, t.c.account_id, t.c.stripe_created_at)
            .where(sql.in_(t.c.account_id, chunk), t.c.type.in_(sorted(archive.HANDLED_TYPES)))
            .order_by(t.c.account_id, t.c.stripe_created_at, t.c.id)
        ):
            found.setdefault(row.account_id, []).append(row)
    return found


@contextmanager
def without_gc() -> Iterator[None]:
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
def serialized() -> Iterator[None]:
    """A replay's whole transaction, from its first read to its commit (or the marking of its
    failure): on SQLite one at a time in every thread and process — the transaction takes the
    database's write lock before its first read (`BEGIN IMMEDIATE`), unless it holds it already
    (a sync that wrote archive rows first). With one lock there is no order to get wrong: a
    process lock as well let a drain that held the database's lock wait for a replay that
    waited for it. PostgreSQL serialises per account with advisory locks (`lock_accounts`)."""
    sqlite_write_lock()
    yield


def account_lock_key(account_id: str) -> int:
    """A stable signed 64-bit key of an account for pg_advisory_xact_lock."""
    digest = hashlib.blake2b(f"backoffice.replay:{account_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_accounts(account_ids: Sequence[str]) -> None:
    """Serialises replays of an account until the transaction ends: on PostgreSQL a transaction
    advisory lock per account, taken in key order so two batches never deadlock (one query per
    chunk); on SQLite `serialized` holds the database's write lock already."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({account_lock_key(a) for a in account_ids})
    for chunk in sql.chunks(keys):
        ordered = (db.select(db.func.unnest(sql.pg_array(chunk, ARRAY(BigInteger)))
                             .label("k")).order_by("k").subquery())
        db.session.execute(db.select(db.func.pg_advisory_xact_lock(ordered.c.k))).all()


class _Accounted(NamedTuple):
    """What `Batch.classify` found for one account and `Batch.write` writes."""
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


class Batch:
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
        self.subscriptions = projections.Subscriptions(
            self.account_ids, sorted({sid for sid in self.subscription_of.values() if sid}))
        self.payments = projections.Payments(sorted(_invoice_ids(events)))
        self.amounts = adapter.InvoiceAmountsMemo()
        customer_accounts = sorted({a for a, (_, evs) in by_account.items()
                                    if any(e["type"] in CUSTOMER_TYPES for e in evs)})
        self.accounts: dict[str, Account] = {}
        for chunk in sql.chunks(customer_accounts):
            self.accounts.update((a.id, a) for a in db.session.execute(
                db.select(Account).where(sql.in_(Account.id, chunk))).scalars())
        if existing is None:
            existing = set()
            event_ids = [e["id"] for e in events]
            for chunk in sql.chunks(event_ids):
                existing.update(db.session.execute(
                    db.select(BillingEvent.stripe_event_id)
                    .where(sql.in_(BillingEvent.stripe_event_id, chunk), BillingEvent.current())).scalars())
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
        for chunk in sql.chunks(self.account_ids):
            latest.update(db.session.execute(_latest_committed(chunk)).all())
        wanted = {(a, e["data"]["object"].get("id")) for a, (_, evs) in self.by_account.items() for e in evs
                  if e["type"] in PAID_TYPES}
        classified: dict[str, set[str]] = {}
        accounts = sorted({a for a, _ in wanted} & set(latest))  # no ledger row yet: nothing classified
        for chunk in sql.chunks(accounts):
            for account_id, invoice_id, is_string in db.session.execute(_classified_invoices(chunk)).all():
                if is_string and (account_id, invoice_id) in wanted:
                    classified.setdefault(account_id, set()).add(invoice_id)
        return lambda a: (latest.get(a), classified.get(a, set()), newest[a][0] if a in newest else None)

    # -- catalog ----------------------------------------------------------------------------------
    def project_catalog(self, events: Sequence[dict]) -> None:
        if projections.project_prices(self.plans, events):
            self._catalog = None

    def catalog(self):
        if self._catalog is None:
            self._catalog = adapter.catalog_of(self.plans.values())
        return self._catalog

    def plan(self, price_id: str | None) -> Plan | None:
        return self.plans.get(price_id) if price_id else None

    # -- one account ------------------------------------------------------------------------------
    def current(self, account_id: str) -> Subscription | None:
        return self.subscriptions.current(account_id)

    def classify(self, account_id: str, rows: Sequence, events: Sequence[dict], state, report: ReplayReport,
                 *, watermark: datetime | None, rebuild: RebuildReport | None = None,
                 stored: dict | None = None, named_before: str | None = None) -> None:
        """Classifies the events and projects their payloads (subscriptions, the account's
        billing info, payment transactions); `write` appends the rows and marks the archive.
        `named_before`: the subscription the account's replayed events named last."""
        result = adapter.classify(events, state, self.catalog(), self.amounts)
        unreadable = set(result.unreadable_event_ids)
        readable = [e for e in events if e["id"] not in unreadable] if unreadable else events
        subscriptions = self.subscriptions.project(account_id, readable, watermark, self.subscription_of, self.plan)
        final = adapter.final_state_of(result)
        current = self.current(account_id)
        latest_event = max((e["created"], e["id"]) for e in events)
        if current is not None and (watermark is None or _at(latest_event[0]) >= watermark):
            adapter.apply_state(current, final)
        projections.project_customer(self.accounts.get(account_id), events)
        invoice_plans = {e["id"]: adapter.invoice_plan(e["data"]["object"], self.plan)
                         for e in events if e["data"]["object"].get("object") == "invoice"}
        links = _subscription_links(events, self.subscription_of, named_before)
        self.accounted.append(_Accounted(account_id, rows, events, result, subscriptions, current, invoice_plans,
                                         links, report, rebuild, stored))

    # -- writing ------------------------------------------------------------------------------------
    def write(self) -> None:
        selections = [self._select(entry) for entry in self.accounted]
        for entry, (_, appended, corrected) in zip(self.accounted, selections, strict=True):
            projections.start_subscriptions(entry.subscriptions, appended + [(e, r) for e, r, _ in corrected if r is not None],
                                 self.subscription_of)
            if appended:
                self._flag_ledger_rows(entry.account_id)
        db.session.flush()  # new subscriptions get their ids (inserted with their start)
        now = utcnow()
        ledger: list[dict] = []
        # (the corrected row's values or None, stored row, the late event that caused it or None)
        corrections: list[tuple[dict | None, object, str | None]] = []
        for (account_id, rows, events, result, subscriptions, current, invoice_plans, links, report, rebuild,
             stored), (row_by_event, appended, corrected) in zip(self.accounted, selections, strict=True):
            sub_ids = {sid: sub.id for sid, sub in subscriptions.items()}
            unprojected = projections.project_payments(account_id, events, sub_ids, self.payments, invoice_plans,
                                            self.amounts, self.subscription_of,
                                            skip=frozenset(result.unreadable_event_ids))
            current_id = current.id if current is not None else None

            def values_of(event: dict, row, links=links, sub_ids=sub_ids, current_id=current_id,
                          account_id=account_id) -> dict:
                sub_id = links[event["id"]]
                if sub_id is None:
                    subscription_id = None
                else:
                    linked = sub_ids.get(sub_id) or getattr(self.subscriptions.by_stripe.get(sub_id), "id", None)
                    subscription_id = linked or current_id
                return {"account_id": account_id, "subscription_id": subscription_id, **adapter.row_values(row)}

            appended = [(event, row) for event, row in appended if event["id"] not in unprojected]
            ledger.extend(values_of(event, row) for event, row in appended)
            corrected = [c for c in corrected if c[0]["id"] not in unprojected]
            # A replay corrects because its oldest pending event arrived late; a rebuild, on its own.
            cause = rows[0].id if rebuild is None and rows else None
            for event, row, old in corrected:
                if rebuild is not None:
                    _compare(account_id, old, row, rebuild)
                corrections.append((None if row is None else values_of(event, row), old, cause))
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
        sql.insert_rows(BillingEvent.__table__, ledger)

    def _flag_drift(self, account_id: str, current: Subscription | None) -> None:
        """An event the replay cannot read is drift (DOMAIN §3): the account's flag is set, on a
        placeholder current subscription (no Stripe id, free) when it has none, so the banner,
        the drift filter and the Drift tab show it; the next drift check keeps it while the
        event stays failed."""
        if current is None:
            current = self.subscriptions.placeholder(account_id)
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


def _mark(marks: Sequence[tuple[str, str, str | None]], now: datetime) -> None:
    """The archive rows' processing columns (the only ones a trigger lets change): one UPDATE
    ... WHERE id IN (...) for the processed rows, one executemany for the others."""
    table = StripeEvent.__table__
    processed = [event_id for event_id, state, _ in marks if state == "processed"]
    for chunk in sql.chunks(processed):
        db.session.execute(db.update(table).where(sql.in_(table.c.id, chunk))
                           .values(state="processed", error=None, processed_at=now))
    others = [{"b_id": i, "b_state": s, "b_error": e} for i, s, e in marks if s != "processed"]
    if others:
        db.session.execute(db.update(table).where(table.c.id == db.bindparam("b_id"))
                           .values(state=db.bindparam("b_state"), error=db.bindparam("b_error"), processed_at=now),
                           others)


def _supersede(corrections: Sequence[tuple[dict | None, object, str | None]], now: datetime) -> None:
    """Marks each stored row superseded by its corrected row (inserted here, with an id taken
    beforehand so the one UPDATE a ledger row may get names it), or by none, and with the late
    event that caused it (None: a rebuild). The stored row is marked first: one row per event is
    current at every statement."""
    if not corrections:
        return
    replacements = [values for values, _, _ in corrections if values is not None]
    ids = iter(sql.new_ids(BillingEvent.__table__, len(replacements)))
    marks = []
    for values, old, cause in corrections:
        new_id = None
        if values is not None:
            new_id = values["id"] = next(ids)
        marks.append({"b_old": old.id, "b_new": new_id, "b_cause": cause})
    t = BillingEvent.__table__
    db.session.execute(db.update(t).where(t.c.id == db.bindparam("b_old"), t.c.superseded_at.is_(None))
                       .values(superseded_at=now, superseded_by=db.bindparam("b_new"),
                               superseded_because=db.bindparam("b_cause")), marks)
    sql.insert_rows(t, replacements)


def _current_rows(account_ids: Sequence[str]) -> dict[str, dict]:
    """Account id → its current ledger rows (not the recovery's baseline) by Stripe event id:
    what a replay of the whole archive compares its fresh rows with."""
    t = BillingEvent.__table__
    found: dict[str, dict] = {}
    for chunk in sql.chunks(account_ids):
        for row in db.session.execute(
            db.select(t.c.id, t.c.account_id, t.c.stripe_event_id, *(t.c[name] for name in ROW_FIELDS))
            .where(sql.in_(t.c.account_id, chunk), t.c.superseded_at.is_(None), t.c.baseline.is_(False))
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
                .where(sql.in_(t.c.account_id, account_ids), t.c.superseded_at.is_(None))
                .ext(distinct_on(t.c.account_id)).order_by(t.c.account_id, *latest))
    ranked = (db.select(t.c.account_id, t.c.committed_mrr,
                        db.func.row_number().over(partition_by=t.c.account_id, order_by=latest).label("n"))
              .where(sql.in_(t.c.account_id, account_ids), t.c.superseded_at.is_(None)).subquery())
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
            .where(sql.in_(se.c.account_id, account_ids), se.c.type.in_(sorted(PAID_TYPES)),
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


def note_replay_error(account_id: str, error: str) -> int:
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
# The catalog's events (no account)
# --------------------------------------------------------------------------------------------
def replay_catalog_events() -> None:
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
    projections.project_prices(plans, [readers.parse_payload(row.payload, exact=False) for row in rows])
    now = utcnow()
    for row in rows:
        row.state, row.processed_at = "processed", now


# --------------------------------------------------------------------------------------------
# Baseline history
# --------------------------------------------------------------------------------------------
def replay_baseline(account_id: str, events: Sequence[dict], now: datetime) -> int:
    """The ledger rows of a baseline's synthetic events (stripe/recovery.py; archived
    already, in Stripe's order): classified on their own from the empty state, written marked
    `baseline` on the account's current subscription, and their archive rows marked processed.
    In the caller's unit of work; answers how many rows were written."""
    result = adapter.classify(events, adapter.empty_state(), adapter.load_catalog())
    rows = {r["stripe_event_id"]: r for r in (adapter.row_values(x) for x in adapter.rows_of(result))}
    current = db.session.execute(
        db.select(Subscription).where(Subscription.account_id == account_id, Subscription.is_current.is_(True))
    ).scalar_one_or_none()
    written = 0
    for event in events:
        values = rows.get(event["id"])
        if values is not None:
            db.session.add(BillingEvent(account_id=account_id, subscription_id=current.id if current else None,
                                        baseline=True, **values))
            written += 1
    db.session.flush()
    _mark([(event["id"], "processed", None) for event in events], now)
    return written


# --------------------------------------------------------------------------------------------
# Rebuild
# --------------------------------------------------------------------------------------------
def rebuild_account(account_id: str, report: RebuildReport) -> None:
    lock_accounts([account_id])
    replay_catalog_events()
    rows = _archive_rows([account_id]).get(account_id, [])
    if not rows:
        return
    report.events += len(rows)
    events = [readers.parse_payload(row.payload, exact=False) for row in rows]
    stored = _current_rows([account_id]).get(account_id, {})
    # Projections are recomputed from scratch: subscriptions are reset to what the payloads say.
    projections.reset_schedules([account_id])
    batch = Batch({account_id: (rows, events)}, existing=set(stored))
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
