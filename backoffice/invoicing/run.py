"""The month-end run (DOMAIN §6 "The month-end run"): for a calendar month, one draft invoice per
account with billable activity, priced by the quote engine from the usage logs and the price book.

An account's deployments, their plan, add-on and suspension events and its usage totals are read
for a whole batch of accounts at once (one query per table, the usage totals with one GROUP BY),
priced in memory, and the batch's drafts written with one INSERT per table and one commit. One
account's error (a plan in use without a price, mixed currencies) is noted in the summary and
never stops the others. The database's unique (account, period) constraint, with ON CONFLICT DO
NOTHING, keeps two runs of one month at once from making two invoices for an account.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from backoffice.accounts.models import Account
from backoffice.dbtypes import utcnow
from backoffice.errors import BadRequest, NotFound, Unprocessable
from backoffice.extensions import db
from backoffice.invoicing import engine, queries
from backoffice.invoicing.models import InvoicingRun, PlatformInvoice, PlatformInvoiceLine
from backoffice.ledger import sql
from backoffice.usage.models import AddonEvent, Deployment, PlanEvent, SuspensionEvent, UsageRecord

BATCH_ACCOUNTS = 500  # accounts per batch: its reads, its writes, one commit

# Why an account with deployments in the month got no new draft.
SKIP_AUTO_INVOICE_OFF = "auto-invoice off"
SKIP_EXISTS = "invoice exists"
SKIP_ISSUED = "invoice issued"
SKIP_NOTHING_BILLABLE = "nothing billable"


def parse_period(text: object, now: datetime | None = None) -> engine.Period:
    """`YYYY-MM` of a month that has ended; BadRequest naming `period` otherwise."""
    try:
        period = engine.Period.parse(text)
    except ValueError:
        raise BadRequest(f"period must be a month written YYYY-MM, not {text!r}.", field="period") from None
    if period.end > (now or utcnow()):
        raise Unprocessable(f"period {period} has not ended yet: a month is invoiced once it is over.",
                            field="period")
    return period


@dataclass
class Outcome:
    """What a run (or one batch of it) did; batches' outcomes add up to the run's summary."""

    examined: int = 0
    created: int = 0
    rebuilt: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason → accounts
    failures: list[tuple[str, str]] = field(default_factory=list)  # (account id, reason)
    totals: dict[str, Decimal] = field(default_factory=dict)  # currency → Σ totals of the drafts written

    def add(self, other: Outcome) -> Outcome:
        self.examined += other.examined
        self.created += other.created
        self.rebuilt += other.rebuilt
        self.skipped.update(other.skipped)
        self.failures += other.failures
        for currency, amount in other.totals.items():
            self.totals[currency] = self.totals.get(currency, Decimal(0)) + amount
        return self

    def as_dict(self) -> dict:
        return {"examined": self.examined, "created": self.created, "rebuilt": self.rebuilt,
                "skipped": dict(sorted(self.skipped.items())),
                "failures": [{"account_id": a, "reason": r} for a, r in self.failures],
                "totals": {c: str(engine.cents(t)) for c, t in sorted(self.totals.items())}}

    @classmethod
    def of(cls, data: dict) -> Outcome:
        return cls(data["examined"], data["created"], data["rebuilt"], Counter(data["skipped"]),
                   [(f["account_id"], f["reason"]) for f in data["failures"]],
                   {c: Decimal(t) for c, t in data["totals"].items()})


# --- the run --------------------------------------------------------------------------------

def start(period: engine.Period, *, force: bool = False, account_id: str | None = None,
          trigger: str, actor: str) -> InvoicingRun:
    """The run's row, committed, before any account is priced (the Invoicing page shows it running)."""
    if account_id is not None and db.session.get(Account, account_id) is None:
        raise NotFound(f"No account with id {account_id!r}.", field="account_id")
    run = InvoicingRun(period=str(period), force=force, account_id=account_id, trigger=trigger, actor=actor,
                       status="running", summary={})
    db.session.add(run)
    db.session.commit()
    return run


def accounts_to_examine(period: engine.Period, account_id: str | None = None) -> list[str]:
    """The accounts with a deployment that existed at some time in the month, in id order."""
    stmt = (db.select(Deployment.account_id).distinct()
            .where(Deployment.created_at < period.end,
                   db.or_(Deployment.deleted_at.is_(None), Deployment.deleted_at > period.start))
            .order_by(Deployment.account_id))
    if account_id is not None:
        stmt = stmt.where(Deployment.account_id == account_id)
    return list(db.session.execute(stmt).scalars())


def batches(account_ids: Sequence[str], size: int | None = None) -> Iterable[list[str]]:
    size = size or BATCH_ACCOUNTS
    for i in range(0, len(account_ids), size):
        yield list(account_ids[i:i + size])


def finish(run: InvoicingRun, outcome: Outcome, status: str = "done") -> InvoicingRun:
    run.examined, run.created, run.rebuilt = outcome.examined, outcome.created, outcome.rebuilt
    run.skipped, run.failed = sum(outcome.skipped.values()), len(outcome.failures)
    run.summary = outcome.as_dict()
    run.status, run.finished_at = status, utcnow()
    db.session.commit()
    return run


def run_in_process(run: InvoicingRun, progress: Callable[[int], None] | None = None) -> InvoicingRun:
    """Every batch in this process, then the summary; a batch that raises marks the run failed."""
    period = engine.Period.parse(run.period)
    book = queries.price_book(period.last_day)
    outcome = Outcome()
    try:
        for batch in batches(accounts_to_examine(period, run.account_id)):
            outcome.add(run_batch(run.id, period, batch, run.force, book))
            if progress:
                progress(len(batch))
    except Exception as e:  # noqa: BLE001 - any error ends the run as failed, with its reason
        db.session.rollback()
        outcome.failures.append(("", f"the run stopped: {type(e).__name__}: {e}"))
        return finish(run, outcome, "failed")
    return finish(run, outcome)


# --- one batch ------------------------------------------------------------------------------

def run_batch(run_id: int | None, period: engine.Period, account_ids: Sequence[str], force: bool,
              book: engine.PriceBook | None = None) -> Outcome:
    """Prices and writes the drafts of a batch of accounts, one commit; answers its outcome."""
    book = book or queries.price_book(period.last_day)
    vat = queries.vat_on(period.last_day)
    accounts = {a.id: a for a in db.session.execute(
        db.select(Account).where(sql.in_(Account.id, list(account_ids)))).scalars()}
    existing = {row.account_id: row for row in db.session.execute(
        db.select(PlatformInvoice.id, PlatformInvoice.account_id, PlatformInvoice.status)
        .where(PlatformInvoice.period == str(period), sql.in_(PlatformInvoice.account_id, list(account_ids))))}
    timelines = timelines_of(account_ids, period)
    usage = usage_totals(account_ids, period)

    outcome = Outcome()
    drafts: list[tuple[Account, engine.Quote]] = []
    replaced: list[int] = []
    for account_id in account_ids:
        account = accounts.get(account_id)
        if account is None:
            continue
        outcome.examined += 1
        found = existing.get(account_id)
        if not account.auto_invoice:
            outcome.skipped[SKIP_AUTO_INVOICE_OFF] += 1
            continue
        if found is not None and found.status != "draft":
            outcome.skipped[SKIP_ISSUED] += 1
            continue
        if found is not None and not force:
            outcome.skipped[SKIP_EXISTS] += 1
            continue
        decision = engine.vat_decision(vat.domestic_countries, vat.domestic_rate, customer_country(account),
                                       account.vat_id)
        try:
            quote = engine.price_account(timelines.get(account_id, []), period, book,
                                         usage.get(account_id, {}), decision)
        except engine.PricingError as e:
            outcome.failures.append((account_id, str(e)))
            continue
        if not quote.lines:
            outcome.skipped[SKIP_NOTHING_BILLABLE] += 1
            continue
        if found is not None:
            replaced.append(found.id)
        drafts.append((account, quote))

    if replaced:  # --force: drafts only (the statuses were read above; an issued one is never touched)
        db.session.execute(db.delete(PlatformInvoiceLine).where(sql.in_(PlatformInvoiceLine.invoice_id, replaced)))
        db.session.execute(db.delete(PlatformInvoice).where(sql.in_(PlatformInvoice.id, replaced),
                                                            PlatformInvoice.status == "draft"))
    written = write_drafts(run_id, period, vat.seller_country, drafts)
    rebuilt_accounts = {a for a, row in existing.items() if row.id in replaced}
    for account, quote in drafts:
        if account.id not in written:
            outcome.skipped[SKIP_EXISTS] += 1  # a concurrent run of the month wrote it first
            continue
        if account.id in rebuilt_accounts:
            outcome.rebuilt += 1
        else:
            outcome.created += 1
        outcome.totals[quote.currency] = outcome.totals.get(quote.currency, Decimal(0)) + quote.total
    db.session.commit()
    return outcome


def customer_country(account: Account) -> str | None:
    return account.billing_country or account.country


def write_drafts(run_id: int | None, period: engine.Period, seller_country: str,
                 drafts: Sequence[tuple[Account, engine.Quote]]) -> set[str]:
    """One INSERT of the invoices (a conflict on account + period writes nothing for that account),
    one of the lines of those written; answers the accounts whose draft was written."""
    if not drafts:
        return set()
    table = PlatformInvoice.__table__
    now = utcnow()
    rows = [{"account_id": account.id, "period": str(period), "status": "draft", "number": None,
             "currency": quote.currency, "subtotal": quote.subtotal, "tax": quote.tax, "total": quote.total,
             "vat_rate": quote.vat.rate, "vat_reason": quote.vat.reason, "vat_note": quote.vat.note,
             "seller_country": seller_country, "customer_name": account.billing_name or account.name,
             "customer_address": "\n".join(filter(None, (
                 account.billing_line1, account.billing_line2,
                 " ".join(filter(None, (account.billing_postal_code, account.billing_city)))))),
             "customer_country": quote.vat.customer_country, "customer_vat_id": quote.vat.customer_vat_id,
             "run_id": run_id, "created_at": now, "issued_at": None, "due_at": None, "paid_at": None}
            for account, quote in drafts]
    statement = (sql.upsert(table).on_conflict_do_nothing(index_elements=[table.c.account_id, table.c.period])
                 .returning(table.c.id, table.c.account_id))
    ids: dict[str, int] = {}
    for start in range(0, len(rows), 200):  # SQLite: 200 rows × 24 columns within its variable limit
        ids.update({account_id: invoice_id for invoice_id, account_id in
                    db.session.execute(statement.values(rows[start:start + 200])).all()})
    lines = [line_row(ids[account.id], position, line)
             for account, quote in drafts if account.id in ids
             for position, line in enumerate(quote.lines, 1)]
    if lines:
        db.session.execute(db.insert(PlatformInvoiceLine), lines)
    return set(ids)


def line_row(invoice_id: int, position: int, line: engine.Line) -> dict:
    return {"invoice_id": invoice_id, "position": position, "kind": line.kind, "deployment": line.deployment,
            "metric": line.metric, "key": line.key, "description": line.description, "quantity": line.quantity,
            "unit": line.unit, "unit_price": line.unit_price, "amount": line.amount,
            "price_valid_from": line.price_valid_from,
            "days": [[first.isoformat(), last.isoformat()] for first, last in line.days],
            "monthly_price": line.monthly_price, "used": line.used, "included": line.included}


# --- the month's inputs, for a batch of accounts --------------------------------------------

def timelines_of(account_ids: Sequence[str], period: engine.Period) -> dict[str, list[engine.Timeline]]:
    """Each account's deployments that existed in the month, with every plan, add-on and
    suspension event before its end (the state at the month's start is part of the timeline)."""
    deployments = db.session.execute(
        db.select(Deployment.name, Deployment.account_id, Deployment.created_at, Deployment.deleted_at)
        .where(sql.in_(Deployment.account_id, list(account_ids)), Deployment.created_at < period.end,
               db.or_(Deployment.deleted_at.is_(None), Deployment.deleted_at > period.start))
        .order_by(Deployment.name)).all()
    names = [d.name for d in deployments]
    plans: dict[str, list] = {}
    addons: dict[str, list] = {}
    suspensions: dict[str, list] = {}
    for model, found, value in ((PlanEvent, plans, lambda e: (e.occurred_at, e.plan)),
                                (AddonEvent, addons, lambda e: (e.occurred_at, e.addon, e.kind == "enabled")),
                                (SuspensionEvent, suspensions, lambda e: (e.occurred_at, e.kind == "suspended"))):
        for chunk in sql.chunks(names):
            for event in db.session.execute(
                    db.select(model).where(sql.in_(model.deployment_name, chunk), model.occurred_at < period.end)
                    .order_by(model.deployment_name, model.occurred_at, model.id)).scalars():
                found.setdefault(event.deployment_name, []).append(value(event))
    timelines: dict[str, list[engine.Timeline]] = {}
    for d in deployments:
        timelines.setdefault(d.account_id, []).append(engine.Timeline(
            d.name, d.created_at, d.deleted_at, plans.get(d.name, ()), addons.get(d.name, ()),
            suspensions.get(d.name, ())))
    return timelines


def usage_totals(account_ids: Sequence[str], period: engine.Period) -> dict[str, dict[str, dict[str, Decimal]]]:
    """account → deployment → metric → the month's metered total: one grouped query."""
    totals: dict[str, dict[str, dict[str, Decimal]]] = {}
    rows = db.session.execute(
        db.select(UsageRecord.account_id, UsageRecord.deployment_name, UsageRecord.metric,
                  db.func.sum(UsageRecord.quantity))
        .where(sql.in_(UsageRecord.account_id, list(account_ids)), UsageRecord.occurred_at >= period.start,
               UsageRecord.occurred_at < period.end)
        .group_by(UsageRecord.account_id, UsageRecord.deployment_name, UsageRecord.metric))
    for account_id, deployment, metric, quantity in rows:
        totals.setdefault(account_id, {}).setdefault(deployment, {})[metric] = Decimal(quantity)
    return totals


def previous_period(now: datetime | None = None) -> engine.Period:
    """The month just ended (the schedule's period on the 1st)."""
    return engine.Period.of((now or utcnow()).date()).previous()
