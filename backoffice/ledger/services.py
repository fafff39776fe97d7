"""The ledger's use cases, one commit each: the replay of one account (the webhook's job), of
every account with pending events (a worker's catch-up, `ledger replay`, in batches, shared
among processes on PostgreSQL) and the rebuild of accounts from their whole archive (`ledger
rebuild`). A batch that fails is replayed again account by account, so one bad account fails
alone; a replay that broke leaves the account's events pending with the error beside them.
The replay itself, the only writer of the ledger, is ledger/replay.py.

`rebuild` replays an account's whole archive from an empty state: it recomputes the
projections, appends rows that are missing, and supersedes every stored row that the fresh
replay writes differently with its corrected row.
"""
from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from flask import current_app

from backoffice.extensions import db
from backoffice.ledger import replay, sql
from backoffice.ledger.models import StripeEvent
from backoffice.ledger.replay import PENDING, PENDING_AND_FAILED, RebuildReport, ReplayReport

log = logging.getLogger(__name__)

__all__ = ["PENDING", "PENDING_AND_FAILED", "RebuildReport", "ReplayReport", "accounts_with_archive", "rebuild",
           "refresh_statistics", "replay_account", "replay_account_in_transaction", "replay_pending"]

# --------------------------------------------------------------------------------------------
# Replaying pending events
# --------------------------------------------------------------------------------------------
BATCH_EVENTS = 5000  # archived events per batch of accounts (one commit each)
BATCH_ACCOUNTS = 500  # accounts per batch at most: a batch holds a lock per account (and the
# dashboard's ledger trigger another), and PostgreSQL's lock table is shared by all sessions


def replay_account(account_id: str | None, states: tuple[str, ...] = PENDING,
                   received_before: datetime | None = None) -> ReplayReport:
    """One use case, one commit. A failure rolls back and notes the error on the account's
    pending events (the next replay retries them), under the same lock. With
    `received_before`, only the events received before that time are replayed (settled)."""
    report = ReplayReport(account_id)
    with replay.serialized(), replay.without_gc():
        try:
            replay.replay_catalog_events()
            if account_id is not None:
                done = replay.replay_batch([account_id], states, received_before)
                if account_id in done:
                    report = done[account_id]
            db.session.commit()
        except Exception as e:
            db.session.rollback()
            log.exception("replay of account %s failed", account_id)
            report = ReplayReport(account_id, error=f"{type(e).__name__}: {e}"[:2000])
            if account_id is not None:
                replay.lock_accounts([account_id])  # the rollback released the lock
                replay.note_replay_error(account_id, report.error)
            db.session.commit()
    return report


def replay_account_in_transaction(account_id: str) -> ReplayReport:
    """The replay of one account inside the caller's transaction, which the caller commits or
    rolls back: a sync writes the archive rows it recovered, the projections, the ledger rows
    and its anchor as one. Raises whatever the replay raises (nothing is marked failed)."""
    with replay.serialized(), replay.without_gc():
        replay.replay_catalog_events()
        return replay.replay_batch([account_id]).get(account_id, ReplayReport(account_id))


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
    if workers > 1 and len(batches) > 1 and sql.postgres():
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
    if not sql.postgres():
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
        with replay.serialized(), replay.without_gc():
            replay.replay_catalog_events()
            done = replay.replay_batch(batch, states, received_before)
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
    missing rows appended; a stored row a fresh replay writes differently is superseded by the
    corrected row (never rewritten) and reported. One commit per account."""
    report = RebuildReport()
    refresh_statistics()
    for n, account_id in enumerate(account_ids, 1):
        with replay.serialized():
            replay.rebuild_account(account_id, report)
            db.session.commit()
        report.accounts += 1
        if n % 100 == 0:
            refresh_statistics()
        if progress:
            progress(1)
    return report


