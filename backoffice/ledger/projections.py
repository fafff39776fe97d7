"""The projections of Stripe's objects: subscriptions, payment transactions, the plan catalog
(and an account's billing info and card). The only writer of those tables, fed two ways:

- the replay (ledger/replay.py) hands over the payloads of the events it replays, in Stripe's
  order, for a batch of accounts at once (`Subscriptions`, `Payments`, `project_prices`,
  `project_customer`); the classifier's state is applied to the subscription rows by the
  replay adapter;
- a sync (stripe/sync.py) hands over Stripe's live objects, which win over what the
  payloads said (`mirror_subscription`, `mirror_payments`, `remember_price`); drift detection
  asks for placeholder subscriptions (`hold_placeholders`).

Nothing here commits: the caller's use case does.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction
from backoffice.ledger import archive, readers, sql
from backoffice.ledger import replay_adapter as adapter
from backoffice.ledger.models import Plan, Subscription

log = logging.getLogger(__name__)

ZERO = Decimal(0)


# --------------------------------------------------------------------------------------------
# From the replayed payloads
# --------------------------------------------------------------------------------------------
class Subscriptions:
    """The subscription rows a replay projects: those of its accounts and those its events name,
    loaded at once (ORM objects: the classifier's state is applied to them)."""

    def __init__(self, account_ids: Sequence[str], stripe_ids: Sequence[str]):
        subs: dict[int, Subscription] = {}
        for chunk in sql.chunks(account_ids):
            subs.update((s.id, s) for s in db.session.execute(
                db.select(Subscription).where(sql.in_(Subscription.account_id, chunk))).scalars())
        for chunk in sql.chunks(stripe_ids):
            subs.update((s.id, s) for s in db.session.execute(
                db.select(Subscription).where(sql.in_(Subscription.stripe_subscription_id, chunk))).scalars())
        self.by_stripe = {s.stripe_subscription_id: s for s in subs.values() if s.stripe_subscription_id}
        self.of_account: dict[str, list[Subscription]] = {}
        for s in sorted(subs.values(), key=lambda s: s.id):
            self.of_account.setdefault(s.account_id, []).append(s)

    def current(self, account_id: str) -> Subscription | None:
        return next((s for s in self.of_account.get(account_id, ()) if s.is_current), None)

    def project(self, account_id: str, events: Sequence[dict], watermark: datetime | None,
                subscription_of: dict[str, str | None], plan: Callable[[str | None], Plan | None]
                ) -> dict[str, Subscription]:
        """Subscription rows from subscription payloads; answers Stripe subscription id → row
        for every subscription the events mention (`subscription_of`: event id → the Stripe
        subscription it names; `plan`: the catalog's plan of a price id)."""
        sub_ids = {sid for e in events if (sid := subscription_of[e["id"]])}
        rows = {sid: self.by_stripe[sid] for sid in sub_ids if sid in self.by_stripe}
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
                    self.of_account.setdefault(account_id, []).append(sub)
                rows[obj["id"]] = self.by_stripe[obj["id"]] = sub
                current = sub
            elif not sub.is_current and event["type"] != "customer.subscription.deleted":
                if current is not None and current is not sub:
                    current.is_current = False
                    db.session.flush()
                sub.is_current = True
                current = sub
            adapter.apply_subscription_payload(sub, event, plan)
        return rows

    def placeholder(self, account_id: str) -> Subscription:
        """A current placeholder subscription (no Stripe id, free) for an account that has none:
        what an account's drift flag lives on."""
        current = Subscription(account_id=account_id, is_current=True, plan="free", price_amount=ZERO)
        db.session.add(current)
        self.of_account.setdefault(account_id, []).append(current)
        return current


def reset_schedules(account_ids: Sequence[str]) -> None:
    """Before a replay from the empty state: the schedules come from the classifier's state
    alone, the payloads set everything else again."""
    for chunk in sql.chunks(account_ids):
        for sub in db.session.execute(db.select(Subscription).where(sql.in_(Subscription.account_id, chunk))).scalars():
            sub.scheduled_plan = None
            sub.scheduled_price_amount = None


def start_subscriptions(subscriptions: dict[str, Subscription], appended: Sequence[tuple[dict, object]],
                        subscription_of: dict[str, str | None]) -> None:
    """A subscription starts at its first appended subscription_created row; set before the
    flush, so a new subscription is inserted with its start (no second UPDATE)."""
    for event, row in appended:
        if getattr(row.type, "value", row.type) != "subscription_created":
            continue
        sub = subscriptions.get(subscription_of[event["id"]])
        if sub is not None and sub.subscribed_since is None:
            sub.subscribed_since = row.occurred_at


def project_prices(plans: dict[str, Plan], events: Sequence[dict]) -> bool:
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
        db.session.execute(sql.upsert(Plan.__table__).values(new).on_conflict_do_nothing(index_elements=["price_id"]))
        for chunk in sql.chunks([v["price_id"] for v in new]):
            plans.update((p.price_id, p) for p in db.session.execute(
                db.select(Plan).where(sql.in_(Plan.price_id, chunk))).scalars())
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


def project_customer(account: Account | None, events: Sequence[dict]) -> None:
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


_PT = PaymentTransaction.__table__
_PT_FIELDS = tuple(c.name for c in _PT.columns if c.name != "id")
Txn = dict  # a payment transaction row: its columns by name


class Payments:
    """The payment transactions a batch projects, as plain rows by invoice id: loaded with one
    query, written with one executemany INSERT (new invoices) and one executemany UPDATE (rows
    whose values changed). The ORM's unit of work is not needed for rows nothing else holds,
    and costs more than the rest of the replay together."""

    def __init__(self, invoice_ids: Sequence[str]):
        self.by_invoice: dict[str, Txn] = {}
        self.of_account: dict[str, list[Txn]] = {}
        self._loaded: dict[int, dict] = {}  # id → the values as read, to find what changed
        self._new: list[Txn] = []
        for chunk in sql.chunks(invoice_ids):
            self._adopt(db.session.execute(db.select(_PT).where(sql.in_(_PT.c.stripe_invoice_id, chunk))).mappings())

    def _adopt(self, rows) -> list[Txn]:
        """Stored rows as the batch's rows (a row the batch holds already is the batch's)."""
        found = []
        for row in rows:
            txn = self.by_invoice.get(row["stripe_invoice_id"])
            if txn is None:
                txn = dict(row)
                self._loaded[txn["id"]] = dict(row)
                self._hold(txn)
            found.append(txn)
        return found

    def _hold(self, txn: Txn) -> None:
        self.by_invoice[txn["stripe_invoice_id"]] = txn
        self.of_account.setdefault(txn["account_id"], []).append(txn)

    def get(self, invoice_id: str | None) -> Txn | None:
        return self.by_invoice.get(invoice_id) if isinstance(invoice_id, str) else None

    def create(self, account_id: str, invoice_id: str) -> Txn:
        txn = dict.fromkeys(_PT_FIELDS, None) | {"id": None}
        txn.update(account_id=account_id, stripe_invoice_id=invoice_id, amount_from_credit=ZERO)
        self._new.append(txn)
        self._hold(txn)
        return txn

    def by_charge(self, account_id: str, charge_id: str | None) -> Txn | None:
        if not charge_id:
            return None
        for txn in self.of_account.get(account_id, ()):
            if txn["stripe_charge_id"] == charge_id:
                return txn
        stored = self._adopt(db.session.execute(
            db.select(_PT).where(_PT.c.stripe_charge_id == charge_id).limit(1)).mappings())
        return next((t for t in stored if t["stripe_charge_id"] == charge_id), None)

    def refundable(self, account_id: str, currency: str, amount: Decimal, at: datetime) -> Txn | None:
        """The latest succeeded payment of the account with this amount and currency, on or
        before `at`, not refunded yet: the batch's rows and the stored ones (the batch's values
        win), newest by (date, id), rows not stored yet being the newest."""
        def matches(t: Txn) -> bool:
            return (t["account_id"] == account_id and t["status"] == "succeeded" and t["refunded_at"] is None
                    and t["currency"] == currency and t["amount"] == amount and t["date"] is not None and t["date"] <= at)

        self._adopt(db.session.execute(
            db.select(_PT).where(_PT.c.account_id == account_id, _PT.c.status == "succeeded",
                                 _PT.c.refunded_at.is_(None), _PT.c.currency == currency, _PT.c.amount == amount,
                                 _PT.c.date <= at)
            .order_by(_PT.c.date.desc(), _PT.c.id.desc()).limit(100)).mappings())
        candidates = [t for t in self.of_account.get(account_id, ()) if matches(t)]
        if not candidates:
            return None
        return max(candidates, key=lambda t: (t["date"], t["id"] if t["id"] is not None else float("inf")))

    def write(self) -> None:
        """Writes the new and the changed rows (once, when the batch is written), each with what
        its credit note or refund takes back from revenue."""
        for txn in self.by_invoice.values():
            txn["reversed_excluding_tax"] = readers.reversed_excluding_tax(txn)
        sql.insert_rows(_PT, self._new, columns=_PT_FIELDS)
        changed = [txn for txn_id, before in self._loaded.items()
                   if (txn := self.by_invoice[before["stripe_invoice_id"]]) != before]
        if changed:
            db.session.execute(
                db.update(_PT).where(_PT.c.id == db.bindparam("b_id"))
                .values({name: db.bindparam(f"b_{name}", type_=_PT.c[name].type) for name in _PT_FIELDS}),
                [{"b_id": t["id"], **{f"b_{name}": t[name] for name in _PT_FIELDS}} for t in changed])
        self._loaded, self._new = {}, []  # written: once per batch


def project_payments(account_id: str, events: Sequence[dict], subscriptions: dict[str, int],
                      payments: Payments, invoice_plans: dict[str, str | None],
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
    stale = pt["status"] == "succeeded" and status in ("open", "draft", "failed")
    if stale:
        status = "succeeded"  # a stale update never un-pays an invoice, nor its amounts
    transitions = obj.get("status_transitions") or {}
    moment = transitions.get("paid_at") or transitions.get("finalized_at") or obj.get("created") \
        or obj.get("date") or event["created"]
    pt["status"] = status
    pt["currency"] = currency
    pt["number"] = obj.get("number") or (pt["number"] if stale else None)
    pt["invoice_url"] = obj.get("hosted_invoice_url") or obj.get("invoice_pdf") or (pt["invoice_url"] if stale else None)
    if not stale:
        pt["date"] = _at(moment)
        pt["amount"] = amounts["amount_paid"]
        pt["invoice_total"] = amounts["total"]
        pt["tax_amount"] = amounts["tax"]
        pt["amount_excluding_tax"] = amounts["amount_excluding_tax"]
        pt["amount_from_credit"] = amounts["amount_from_credit"]
    pt["subscription_id"] = subscriptions.get(sub_id) if sub_id else pt["subscription_id"]
    pt["plan"] = invoice_plans.get(event["id"]) or pt["plan"]
    charge = readers.invoice_charge(obj)
    if charge is not None:
        pt["stripe_charge_id"] = charge
    # A clamped ex-VAT amount is reported by the classifier (AmountExcludingTaxClamped), once
    # per invoice, on the event that classifies it.


def _project_refund(account_id, event, payments: Payments) -> None:
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
    pt["stripe_charge_id"] = pt["stripe_charge_id"] or obj.get("id")
    pt["refunded_at"] = pt["refunded_at"] or _at(event["created"])
    pt["refund_amount"] = readers.amount_of(obj, "amount_refunded", event["type"]) or ZERO


def _project_credit_note(event, payments: Payments) -> None:
    obj = event["data"]["object"]
    invoice_id = obj.get("invoice")
    pt = payments.get(invoice_id)
    if pt is None:  # failed, never processed with nothing projected; a sync brings the invoice
        raise readers.UnreadablePayload(event["type"], "data.object.invoice (no payment transaction for it)",
                                        event.get("api_version"))
    if obj.get("status") == "void" or event["type"] == "credit_note.voided":
        pt["credit_noted_at"] = pt["credit_note_url"] = pt["credit_note_amount"] = None
        return
    pt["credit_noted_at"] = _at(obj.get("effective_at") or obj.get("created") or event["created"])
    pt["credit_note_url"] = obj.get("pdf")
    pt["credit_note_amount"] = (readers.amount_of(obj, "total", event["type"]) or readers.amount_of(obj, "amount", event["type"])
                             or ZERO)


# --------------------------------------------------------------------------------------------
# From Stripe's live objects (a sync) and for drift detection
# --------------------------------------------------------------------------------------------
def remember_price(price: dict | None) -> None:
    """The catalog learns the prices it sees on live subscriptions and schedules (the replayer's rule)."""
    values = adapter.plan_values(price) if isinstance(price, dict) else None
    if values is None or db.session.get(Plan, values["price_id"]) is not None:
        return
    db.session.add(Plan(**values))
    db.session.flush()


def mirror_subscription(account_id: str, live: readers.LiveSubscription, live_raw: dict | None,
                         schedule: dict | None, catalog: dict[str, str], amounts: dict[str, Decimal],
                         existing: Subscription | None) -> Subscription:
    """The current subscription row mirrors Stripe's live subscription (free when none)."""
    sub = existing
    if live.id and (sub is None or sub.stripe_subscription_id != live.id):
        mirrored = db.session.execute(
            db.select(Subscription).where(Subscription.stripe_subscription_id == live.id)
        ).scalar_one_or_none()
        if sub is not None and sub is not mirrored:
            sub.is_current = False
            db.session.flush()
        sub = mirrored
    if sub is None:
        sub = Subscription(account_id=account_id, stripe_subscription_id=live.id, is_current=True,
                           events_anchor=existing.events_anchor if existing else None)
        db.session.add(sub)
    sub.is_current = True
    if live_raw:
        item = ((live_raw.get("items") or {}).get("data") or [None])[0] or {"plan": live_raw.get("plan")}
        remember_price(item.get("price") or item.get("plan"))
    sub.status = live.status
    sub.plan = live.plan
    sub.price_amount = live.price
    sub.currency = live.currency or sub.currency
    sub.cancel_at_period_end = live.cancel_at_period_end
    sub.current_period_end = live.current_period_end
    if live.started_at and live.is_paid:
        sub.subscribed_since = sub.subscribed_since or live.started_at
    change = readers.read_schedule(schedule, live.plan, catalog, amounts)
    sub.scheduled_plan = change.plan if change else None
    sub.scheduled_price_amount = change.price if change else None
    db.session.flush()
    return sub


def mirror_payments(account_id: str, sub: Subscription, invoices: list[dict], credit_notes: list[dict],
                     catalog: dict[str, str]) -> list[readers.LiveInvoice]:
    """One payment transaction per Stripe invoice, upserted; answers the clamped invoices."""
    if not invoices:
        return []
    live = [readers.read_invoice(inv, catalog) for inv in invoices]
    existing = {
        tx.stripe_invoice_id: tx
        for tx in db.session.execute(
            db.select(PaymentTransaction).where(
                PaymentTransaction.stripe_invoice_id.in_([inv.id for inv in live]))
        ).scalars()
    }
    notes_by_invoice: dict[str, dict] = {}
    for note in credit_notes:
        if note.get("status") != "void" and note.get("invoice"):
            notes_by_invoice.setdefault(note["invoice"], note)
    charges = {inv["id"]: inv.get("charge") for inv in invoices if isinstance(inv.get("charge"), dict)}
    clamped = []
    for inv in live:
        if not inv.currency:
            continue
        tx = existing.get(inv.id)
        if tx is None:
            tx = PaymentTransaction(account_id=account_id, stripe_invoice_id=inv.id)
            db.session.add(tx)
        tx.subscription_id = sub.id if inv.subscription_id and inv.subscription_id == sub.stripe_subscription_id \
            else tx.subscription_id
        tx.stripe_charge_id = inv.charge_id or tx.stripe_charge_id  # basil invoices name no charge
        tx.number = inv.number
        tx.plan = inv.price.plan_key if inv.price else tx.plan
        tx.status = inv.status
        tx.date = inv.date
        tx.currency = inv.currency
        tx.amount = inv.amount
        tx.amount_excluding_tax = inv.amount_excluding_tax
        tx.tax_amount = inv.tax_amount
        tx.invoice_total = inv.invoice_total
        tx.amount_from_credit = inv.amount_from_credit
        tx.invoice_url = inv.invoice_url or tx.invoice_url
        charge = charges.get(inv.id)
        # A refunded amount that is not an integer of minor units is unreadable (UnreadablePayload:
        # the sync fails naming it), never a 0.00 refund.
        refunded = readers.amount_of(charge, "amount_refunded", "charge") if charge else None
        if refunded:
            refunds = ((charge.get("refunds") or {}).get("data")) or []
            when = max((r.get("created") or 0 for r in refunds), default=charge.get("created"))
            tx.refunded_at = readers.timestamp(when)
            tx.refund_amount = refunded
        note = notes_by_invoice.get(inv.id)
        if note:
            tx.credit_noted_at = readers.timestamp(note.get("effective_at") or note.get("created"))
            tx.credit_note_amount = readers.amount_of(note, "amount", "credit_note")
            tx.credit_note_url = note.get("pdf") or tx.credit_note_url
        if inv.clamped:
            clamped.append(inv)
    db.session.flush()
    return clamped


def hold_placeholders(account_ids: Sequence[str]) -> None:
    """A free placeholder subscription (no Stripe id), current, for each of these accounts that
    have none: the row their drift flag lives on, which the replay adopts when the account's
    subscription events arrive."""
    for account_id in account_ids:
        db.session.add(Subscription(account_id=account_id, is_current=True, plan=readers.FREE_PLAN,
                                    price_amount=ZERO))


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
