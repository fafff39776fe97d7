"""Reads of the usage logs: the state of a deployment at a moment, lists, timelines, usage totals."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm

from backoffice.accounts.models import Account
from backoffice.dbtypes import UTCDateTime
from backoffice.errors import NotFound
from backoffice.extensions import db
from backoffice.pagination import Page, paginate
from backoffice.usage.models import (
    AddonEvent,
    BackfillRun,
    Deployment,
    PlanEvent,
    SuspensionEvent,
    UsageRecord,
)


@dataclass(frozen=True)
class DeploymentState:
    """What the log says a deployment is: its plan, the add-ons on, whether it is suspended."""

    plan: str | None
    add_ons: frozenset[str]
    suspended: bool
    last_event_at: datetime | None = None


EMPTY_STATE = DeploymentState(plan=None, add_ons=frozenset(), suspended=False)

# One query, walking the (deployment, addon, occurred_at, id) index: a recursive CTE enumerates
# the deployment's distinct add-ons by skipping through the index, and for each one the latest
# event at or before T decides. It reads a few index entries per add-on, however long the log is.
_ADDONS_AT_SQL = """
WITH RECURSIVE addons(addon) AS (
    SELECT MIN(addon) FROM deployment_addon_events WHERE deployment_name = :name
  UNION ALL
    SELECT (SELECT MIN(e.addon) FROM deployment_addon_events e
            WHERE e.deployment_name = :name AND e.addon > addons.addon)
    FROM addons WHERE addons.addon IS NOT NULL
)
SELECT addons.addon FROM addons
WHERE addons.addon IS NOT NULL
  AND (SELECT e.kind FROM deployment_addon_events e
       WHERE e.deployment_name = :name AND e.addon = addons.addon {time_filter}
       ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) = 'enabled'
ORDER BY addons.addon
"""
_ADDONS_AT = sa.text(_ADDONS_AT_SQL.format(time_filter="AND e.occurred_at <= :at")).bindparams(
    sa.bindparam("at", type_=UTCDateTime()))
_ADDONS_NOW = sa.text(_ADDONS_AT_SQL.format(time_filter=""))


def addons_enabled_at(name: str, at: datetime | None = None) -> list[str]:
    """The add-ons enabled on `name` at `at` (inclusive; the latest state when None), sorted.
    Events at the same instant count in the order they were recorded."""
    if at is None:
        return list(db.session.execute(_ADDONS_NOW, {"name": name}).scalars())
    return list(db.session.execute(_ADDONS_AT, {"name": name, "at": at}).scalars())


def get_deployment(name: str) -> Deployment:
    dep = db.session.get(Deployment, name)
    if dep is None:
        raise NotFound(f"No deployment named {name!r}.", field="name")
    return dep


def current_state(name: str) -> DeploymentState:
    """The latest state of a deployment according to its own logs."""
    plan = db.session.execute(
        sa.select(PlanEvent.plan).where(PlanEvent.deployment_name == name)
        .order_by(PlanEvent.occurred_at.desc(), PlanEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    suspension = db.session.execute(
        sa.select(SuspensionEvent.kind).where(SuspensionEvent.deployment_name == name)
        .order_by(SuspensionEvent.occurred_at.desc(), SuspensionEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    last = db.session.execute(sa.select(sa.func.max(sa.literal_column("at"))).select_from(
        sa.union_all(
            sa.select(sa.func.max(AddonEvent.occurred_at).label("at")).where(AddonEvent.deployment_name == name),
            sa.select(sa.func.max(SuspensionEvent.occurred_at).label("at"))
            .where(SuspensionEvent.deployment_name == name),
            sa.select(sa.func.max(PlanEvent.occurred_at).label("at")).where(PlanEvent.deployment_name == name),
        ).subquery()
    )).scalar_one_or_none()
    if isinstance(last, str | datetime):
        last = UTCDateTime().process_result_value(last, db.session.get_bind().dialect)
    return DeploymentState(plan=plan, add_ons=frozenset(addons_enabled_at(name)),
                           suspended=suspension == "suspended", last_event_at=last)


def _latest_per(model, partition: list, names: list[str]):
    """Rows of `model` that are the latest per `partition` for these deployments (one query)."""
    rn = sa.func.row_number().over(partition_by=partition,
                                   order_by=(model.occurred_at.desc(), model.id.desc())).label("rn")
    sub = sa.select(model, rn).where(model.deployment_name.in_(names)).subquery()
    return sa.select(sub).where(sub.c.rn == 1)


def states_for(names: list[str]) -> dict[str, DeploymentState]:
    """Latest states of several deployments (a page of a list): three queries, whatever the count."""
    if not names:
        return {}
    plans = {r.deployment_name: r.plan for r in db.session.execute(
        _latest_per(PlanEvent, [PlanEvent.deployment_name], names))}
    suspended = {r.deployment_name: r.kind == "suspended" for r in db.session.execute(
        _latest_per(SuspensionEvent, [SuspensionEvent.deployment_name], names))}
    addons: dict[str, set[str]] = {}
    for r in db.session.execute(_latest_per(AddonEvent, [AddonEvent.deployment_name, AddonEvent.addon], names)):
        if r.kind == "enabled":
            addons.setdefault(r.deployment_name, set()).add(r.addon)
    return {n: DeploymentState(plan=plans.get(n), add_ons=frozenset(addons.get(n, ())),
                               suspended=suspended.get(n, False)) for n in names}


def usage_totals(names: list[str], start: datetime, end: datetime) -> dict[str, dict[str, Decimal]]:
    """Σ quantity per deployment and metric with start <= occurred_at < end (one grouped query)."""
    if not names:
        return {}
    rows = db.session.execute(
        sa.select(UsageRecord.deployment_name, UsageRecord.metric,
                  sa.func.sum(UsageRecord.quantity).label("total"))
        .where(UsageRecord.deployment_name.in_(names), UsageRecord.occurred_at >= start,
               UsageRecord.occurred_at < end)
        .group_by(UsageRecord.deployment_name, UsageRecord.metric)
    )
    out: dict[str, dict[str, Decimal]] = {}
    for name, metric, total in rows:  # SUM keeps the Money type: exact Decimal on both databases
        out.setdefault(name, {})[metric] = total
    return out


def deployments_page(page: int, page_size: int, account_id: str | None = None, search: str = "") -> Page:
    stmt = sa.select(Deployment, Account.name.label("account_name")).join(
        Account, Account.id == Deployment.account_id)
    if account_id:
        stmt = stmt.where(Deployment.account_id == account_id)
    if search:
        stmt = stmt.where(sa.or_(Deployment.name.ilike(f"%{search}%"), Deployment.account_id == search))
    stmt = stmt.order_by(Deployment.created_at.desc(), Deployment.name)
    return paginate(stmt, page, page_size, scalars=False)


def _timeline_union(names: list[str]):
    """Every event of these deployments as one union: lifecycle, plan, add-on and suspension rows."""
    lit = sa.literal_column
    # rank orders rows of the same instant as they happen: created, plan, add-ons, suspension, deleted.
    parts = [
        sa.select(Deployment.name.label("deployment_name"), Deployment.created_at.label("at"),
                  lit("'created'").label("kind"), sa.null().label("detail"), Deployment.source.label("source"),
                  sa.literal(0).label("rank"), sa.literal(0).label("seq"))
        .where(Deployment.name.in_(names)),
        sa.select(Deployment.name, Deployment.deleted_at, lit("'deleted'"), sa.null(), lit("'delete'"),
                  sa.literal(4), sa.literal(0))
        .where(Deployment.name.in_(names), Deployment.deleted_at.is_not(None)),
        sa.select(PlanEvent.deployment_name, PlanEvent.occurred_at, lit("'plan'"), PlanEvent.plan,
                  PlanEvent.source, sa.literal(1), PlanEvent.id)
        .where(PlanEvent.deployment_name.in_(names)),
        sa.select(AddonEvent.deployment_name, AddonEvent.occurred_at, AddonEvent.kind, AddonEvent.addon,
                  AddonEvent.source, sa.literal(2), AddonEvent.id)
        .where(AddonEvent.deployment_name.in_(names)),
        sa.select(SuspensionEvent.deployment_name, SuspensionEvent.occurred_at, SuspensionEvent.kind, sa.null(),
                  SuspensionEvent.source, sa.literal(3), SuspensionEvent.id)
        .where(SuspensionEvent.deployment_name.in_(names)),
    ]
    return sa.union_all(*parts).subquery()


def timeline_page(name: str, page: int, page_size: int) -> Page:
    """Every event of a deployment, newest first: lifecycle, plan, add-on and suspension rows."""
    union = _timeline_union([name])
    stmt = sa.select(union.c.at, union.c.kind, union.c.detail, union.c.source).order_by(
        union.c.at.desc(), union.c.rank.desc(), union.c.seq.desc())
    return paginate(stmt, page, page_size, scalars=False)


def recent_timelines(names: list[str], limit: int) -> dict[str, list]:
    """The latest `limit` events of each of these deployments, newest first (one query for a page of
    deployments; the same rows and order as `timeline_page`)."""
    if not names:
        return {}
    union = _timeline_union(names)
    order = (union.c.at.desc(), union.c.rank.desc(), union.c.seq.desc())
    rn = sa.func.row_number().over(partition_by=union.c.deployment_name, order_by=order).label("rn")
    ranked = sa.select(union, rn).subquery()
    rows = db.session.execute(
        sa.select(ranked.c.deployment_name, ranked.c.at, ranked.c.kind, ranked.c.detail, ranked.c.source)
        .where(ranked.c.rn <= limit)
        .order_by(ranked.c.deployment_name, ranked.c.rn))
    out: dict[str, list] = {n: [] for n in names}
    for r in rows:
        out[r.deployment_name].append(r)
    return out


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """[first instant of `now`'s UTC month, first instant of the next): "usage this month"."""
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def last_snapshot_run(with_snapshot: bool = False) -> BackfillRun | None:
    """The latest backfill snapshot the platform sent (what the admin button re-runs). The payload
    itself (up to 1 MiB) is loaded only when asked for."""
    stmt = sa.select(BackfillRun)
    if not with_snapshot:
        stmt = stmt.options(sa.orm.defer(BackfillRun.snapshot))
    return db.session.execute(
        stmt.where(BackfillRun.trigger == "api")
        .order_by(BackfillRun.at.desc(), BackfillRun.id.desc()).limit(1)
    ).scalar_one_or_none()


def recent_runs(limit: int = 10) -> list[BackfillRun]:
    return list(db.session.execute(
        sa.select(BackfillRun).options(sa.orm.defer(BackfillRun.snapshot))
        .order_by(BackfillRun.at.desc(), BackfillRun.id.desc()).limit(limit)
    ).scalars())


def counts() -> dict[str, int]:
    """Totals shown on the Usage page."""
    def n(model):
        return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()

    return {
        "deployments": n(Deployment),
        "live": db.session.execute(sa.select(sa.func.count()).select_from(Deployment)
                                   .where(Deployment.deleted_at.is_(None))).scalar_one(),
        "addon_events": n(AddonEvent),
        "suspension_events": n(SuspensionEvent),
        "usage_records": n(UsageRecord),
    }
