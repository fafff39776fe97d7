"""Demo data for usage tracking, fed THROUGH the ingest API exactly as the platform would feed it:
deployments created after their account, add-ons toggled (sometimes twice a day), suspensions and
resumptions, plan changes, deletions (and every deployment of a deleted account), daily message
usage, and a closing backfill snapshot (with two legacy deployments only the snapshot knows) so
the Usage page's backfill button has something to re-run.

How it is fed, so that hundreds of accounts take seconds, not minutes:
- each deployment is created with one state PUT at its creation time;
- its history older than `LIVE_DAYS` goes in one `POST /deployments/<name>/events` (explicit,
  timestamped history, as a platform posts when it starts reporting);
- each change of the last `LIVE_DAYS` days is one state PUT (what the platform sends live), and a
  deletion one DELETE;
- usage is one record per deployment, metric and UTC day (the platform's daily aggregate, never
  one per message), sent in batches of 1,000 that span many days and deployments.

Deterministic: every account draws from its own `random.Random` derived from `rng` and the
account's id, so the same seed and `now` give the same calls whatever subset is fed."""
from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from flask import Flask
from flask.testing import FlaskClient

from backoffice.api import services as api_services

PLANS = ("starter", "team", "business")
ADDONS = ("threema", "searxng-local-search", "calendar", "mail", "web-browser", "voice")
ROLES = ("prod", "staging", "lab")
BATCH = 1000  # usage records per POST /usage (the API's limit)
SNAPSHOT_CHUNK = 3000  # deployments per backfill call (its body stays well under 1 MiB)
LIVE_DAYS = 14  # changes this recent are reported live, one state PUT each
DAY = timedelta(days=1)
_LAST_SECOND = timedelta(hours=23, minutes=59, seconds=59)
# Messages per running day by plan (outgoing; incoming are about 80 % of them), and by weekday.
_DAILY_MESSAGES = {"starter": (20, 120), "team": (80, 400), "business": (250, 1200)}
_WEEKDAY = (1.0, 1.05, 1.05, 1.0, 0.95, 0.5, 0.4)


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@dataclass
class DeploymentPlan:
    """One deployment's life as the platform would report it (pure data, no database)."""
    name: str
    account_id: str
    created: datetime
    plan: str
    add_ons: frozenset[str]
    history: list[dict] = field(default_factory=list)  # events older than the live window
    live: list[tuple[datetime, dict]] = field(default_factory=list)  # (at, committed state)
    deleted_at: datetime | None = None
    usage: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)  # plan, add_ons, suspended_at: its entry in the snapshot


class _Api:
    def __init__(self, client: FlaskClient, secret: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}
        self.calls = 0

    def send(self, method: str, path: str, body=None) -> dict:
        self.calls += 1
        resp = getattr(self.client, method)("/api/v1" + path, json=body, headers=self.headers)
        if resp.status_code >= 400:
            raise RuntimeError(f"demo feed: {method.upper()} {path} answered {resp.status_code}: {resp.get_json()}")
        return resp.get_json()


def _field(account, name: str, default=None):
    return getattr(account, name, default) if not isinstance(account, str) else default


def _slug(text: str | None) -> str:
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    out = "".join(c if c.isalnum() else "-" for c in ascii_text.lower())
    return "-".join(part for part in out.split("-") if part)[:40].strip("-")


def plan_account(seed: str, account, start: datetime, now: datetime,
                 metrics: tuple[str, ...] = ("messages_in", "messages_out")) -> list[DeploymentPlan]:
    """The deployments of one account over [start, now): pure and reproducible from `seed`."""
    account_id = str(_field(account, "id", account))
    rng = random.Random(f"{seed}:{account_id}")
    born = max(start, _field(account, "created_at") or start)
    gone = _field(account, "deleted_at")
    end = min(now, gone) if gone else now
    last_start = end - timedelta(hours=2)
    if last_start <= born:
        return []
    slug = _slug(_field(account, "name")) or "deployment"
    tail = _slug(account_id.rsplit("_", 1)[-1][-8:]) or "x"  # the id's tail keeps names unique
    plans = []
    for d in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if d == 0:  # the first one soon after sign-up, the others any time later
            created = born + timedelta(seconds=rng.randint(600, 5 * 86400))
        else:
            created = born + (last_start - born) * rng.uniform(0.05, 1.0)
        if created >= last_start:
            continue
        created = created.replace(microsecond=0)
        name = f"{slug}-{ROLES[d]}-{tail}"
        plans.append(_plan_deployment(rng, name, account_id, created, end, gone is not None, now, metrics))
    return plans


def _plan_deployment(rng: random.Random, name: str, account_id: str, created: datetime, end: datetime,
                     account_gone: bool, now: datetime, metrics: tuple[str, ...]) -> DeploymentPlan:
    plan = rng.choice(PLANS)
    addons = set(rng.sample(ADDONS, rng.randint(0, 3)))
    dep = DeploymentPlan(name=name, account_id=account_id, created=created, plan=plan, add_ons=frozenset(addons))
    if account_gone:
        dep.deleted_at = end
    elif rng.random() < 0.12:
        dep.deleted_at = (created + (end - created) * rng.uniform(0.4, 0.95)).replace(microsecond=0)
    stop = dep.deleted_at or end
    live_from = now - timedelta(days=LIVE_DAYS)
    suspended = False
    paused: list[tuple[datetime, datetime]] = []

    def change(at: datetime, events: list[dict]) -> None:
        if at < live_from:
            for e in events:
                dep.history.append({**e, "occurred_at": _iso(at)})
        else:
            dep.live.append((at, {"account_id": account_id, "plan": plan, "add_ons": sorted(addons),
                                  "suspended": suspended, "occurred_at": _iso(at)}))

    at = created
    while True:
        at += timedelta(days=rng.randint(9, 45), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        if at >= stop:
            break
        roll = rng.random()
        if roll < 0.55:  # toggle an add-on; now and then back again the same day
            addon = rng.choice(ADDONS)
            for _ in range(2 if rng.random() < 0.2 else 1):
                kind = "add_on_disabled" if addon in addons else "add_on_enabled"
                addons ^= {addon}
                change(at, [{"type": kind, "add_on": addon}])
                at += timedelta(hours=rng.randint(1, 5))
                if at >= stop:
                    break
        elif roll < 0.7 and not suspended:  # suspended for a while, then resumed
            suspended = True
            change(at, [{"type": "suspended"}])
            resume = at + timedelta(days=rng.randint(2, 25), hours=rng.randint(0, 23))
            paused.append((at, min(resume, stop)))
            if resume < stop:
                suspended = False
                at = resume
                change(at, [{"type": "resumed"}])
        elif roll < 0.8:
            plan = rng.choice([p for p in PLANS if p != plan])
            change(at, [{"type": "plan_changed", "plan": plan}])
    dep.usage = _daily_usage(rng, dep, stop, paused, metrics)
    dep.final = {"plan": plan, "add_ons": sorted(addons),
                 "suspended_at": _iso(paused[-1][0]) if suspended else None}
    return dep


def _daily_usage(rng: random.Random, dep: DeploymentPlan, stop: datetime,
                 paused: list[tuple[datetime, datetime]], metrics: tuple[str, ...]) -> list[dict]:
    """One record per metric and UTC day, at the day's last second (or at the deletion), scaled by
    the part of the day the deployment was running."""
    low, high = _DAILY_MESSAGES[dep.plan]
    base = rng.uniform(low, high)
    growth = rng.uniform(-0.3, 0.8) / max((stop - dep.created).total_seconds(), 1.0)  # over its life
    shares = [(metric, 0.8 if metric == "messages_in" else 1.0, f"demo:{dep.name}:{metric}:") for metric in metrics]
    gauss, name = rng.gauss, dep.name
    records = []
    day_start = datetime.combine(dep.created.date(), time(tzinfo=UTC))
    while day_start < stop:
        lo, hi = max(day_start, dep.created), min(day_start + _LAST_SECOND, stop)
        running = (hi - lo).total_seconds()
        for s, e in paused:
            if s < hi and e > lo:
                running -= (min(hi, e) - max(lo, s)).total_seconds()
        if running > 0:
            level = base * (1 + growth * (lo - dep.created).total_seconds())
            level *= _WEEKDAY[day_start.weekday()] * running / 86400
            at, day = _iso(hi), day_start.date().isoformat()
            for metric, share, key in shares:
                mean = level * share
                records.append({"deployment": name, "metric": metric, "quantity": max(0, round(gauss(mean, mean / 4))),
                                "occurred_at": at, "idempotency_key": key + day})
        day_start += DAY
    return records


def feed_demo(client_or_app: FlaskClient | Flask, accounts: Iterable, rng: random.Random, now: datetime,
              months: int = 18, usage_metrics: tuple[str, ...] = ("messages_in", "messages_out"),
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Feeds deployments and usage for `accounts` over the last `months` months. An account is an
    id, or an object with `.id` and optionally `.name`, `.created_at` and `.deleted_at` (a
    deployment lives within its account's life). Accounts unknown to Backoffice are created
    through PUT /accounts. Call inside an app context; creates its own `ingest` token.
    `progress(done, total)` is called once per account. Returns counts of what was appended."""
    client = client_or_app.test_client() if isinstance(client_or_app, Flask) else client_or_app
    _token, secret = api_services.create_token("demo ingest", "ingest")
    api = _Api(client, secret)
    now = min(now.astimezone(UTC), datetime.now(UTC))
    start = now - timedelta(days=round(30.44 * months))
    seed = f"usage:{rng.getrandbits(64):016x}"
    accounts = list(accounts)
    summary = {"deployments": 0, "deleted": 0, "plan_events": 0, "add_on_events": 0, "suspension_events": 0,
               "state_calls": 0, "history_calls": 0, "usage_records": 0}
    pending: list[dict] = []
    fed: list[DeploymentPlan] = []

    def flush_usage(force: bool = False) -> None:
        while len(pending) >= BATCH or (force and pending):
            chunk = pending[:BATCH]
            del pending[:BATCH]
            summary["usage_records"] += api.send("post", "/usage", {"records": chunk})["inserted"]

    def count(appended: dict) -> None:
        summary["plan_events"] += appended.get("plan", 0) + appended.get("plan_events_inserted", 0)
        summary["add_on_events"] += appended.get("add_on", 0) + appended.get("add_on_events_inserted", 0)
        summary["suspension_events"] += (appended.get("suspension", 0)
                                         + appended.get("suspension_events_inserted", 0))

    for n, account in enumerate(accounts):
        if isinstance(account, str):
            api.send("put", f"/accounts/{account}", {"name": account})
        for dep in plan_account(seed, account, start, now, usage_metrics):
            created = api.send("put", f"/deployments/{dep.name}", {
                "account_id": dep.account_id, "plan": dep.plan, "add_ons": sorted(dep.add_ons),
                "suspended": False, "occurred_at": _iso(dep.created)})
            count(created["appended"])
            summary["deployments"] += 1
            summary["state_calls"] += 1
            for start_at in range(0, len(dep.history), 1000):
                count(api.send("post", f"/deployments/{dep.name}/events",
                               {"events": dep.history[start_at:start_at + 1000]}))
                summary["history_calls"] += 1
            for _at, state in dep.live:
                count(api.send("put", f"/deployments/{dep.name}", state)["appended"])
                summary["state_calls"] += 1
            if dep.deleted_at is not None:
                api.send("delete", f"/deployments/{dep.name}", {"occurred_at": _iso(dep.deleted_at)})
                summary["deleted"] += 1
            pending.extend(dep.usage)
            dep.usage = []
            fed.append(dep)
            flush_usage()
        if progress:
            progress(n + 1, len(accounts))
    flush_usage(force=True)
    # The platform's snapshot of its live deployments, plus two it ran before tracking existed.
    live = _live_snapshot(fed, accounts, rng, start)
    backfill = {"deployments_examined": 0, "lifecycle_inserted": 0, "events_inserted": 0,
                "suspension_events_inserted": 0}
    for start_at in range(0, len(live), SNAPSHOT_CHUNK):
        for k, v in api.send("post", "/deployments/backfill",
                             {"deployments": live[start_at:start_at + SNAPSHOT_CHUNK]}).items():
            backfill[k] += v
    summary["backfill"] = backfill
    summary["api_calls"] = api.calls
    return summary


def _live_snapshot(deployments: list[DeploymentPlan], accounts: list, rng: random.Random,
                   start: datetime) -> list[dict]:
    """What the platform runs today, as it would send it to the backfill."""
    live = [{"name": d.name, "account_id": d.account_id, "created_at": _iso(d.created), **d.final}
            for d in sorted(deployments, key=lambda d: d.name) if d.deleted_at is None]
    live_accounts = [a for a in accounts if _field(a, "deleted_at") is None]
    if live_accounts:
        for i in range(2):
            account = live_accounts[i % len(live_accounts)]
            account_id = str(_field(account, "id", account))
            live.append({"name": f"legacy-{i + 1}", "account_id": account_id,
                         "created_at": _iso(start - timedelta(days=30 * (i + 1))),
                         "add_ons": sorted(rng.sample(ADDONS, 2 + i)), "plan": "starter",
                         "suspended_at": _iso(start + timedelta(days=10)) if i == 1 else None})
    return live
