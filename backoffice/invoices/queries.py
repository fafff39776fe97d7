"""The invoices page: every payment transaction is an Invoice row with its original outcome, plus
a Credit note row (dated at the credit note, else the refund, else the payment) or else a Refund
row — never both; beside them Backoffice's own invoices (the month-end run's, `source`
backoffice, dated when issued, else when drafted). One UNION ALL, sorted and paged in SQL.

For a page, each branch is sorted and cut to `offset + limit` rows on its own (from an index) and
only then merged, so page one reads a few dozen rows however many transactions there are; the
account names are joined to the rows of the page only.
"""
from __future__ import annotations

from flask import current_app

from backoffice.accounts.models import Account
from backoffice.dbtypes import Money
from backoffice.extensions import db
from backoffice.invoices.filters import InvoiceFilters
from backoffice.invoices.models import PaymentTransaction as PT
from backoffice.invoicing.models import PlatformInvoice as PI
from backoffice.pagination import COUNT_CAP, Page, within

KINDS = ("invoice", "credit_note", "refund")


def has_credit_note():
    return db.or_(PT.credit_noted_at.is_not(None), PT.credit_note_url.is_not(None))


def is_reversed():
    """The predicate of the reversal rows (also the predicate of their partial index)."""
    return db.or_(PT.credit_noted_at.is_not(None), PT.credit_note_url.is_not(None), PT.refunded_at.is_not(None))


def reversal_date():
    return db.func.coalesce(PT.credit_noted_at, PT.refunded_at, PT.date)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _branch(f: InvoiceFilters, reversal: bool, limit: int | None):
    """One side of the union, filtered, and when `limit` is given sorted and cut to it."""
    credit = has_credit_note()
    if reversal:
        kind = db.case((credit, "credit_note"), else_="refund")
        rank, row_date = 1, reversal_date()
        # Literal constants, not parameters: the same expression is indexed (list_indexes.py).
        status = db.case((credit, db.literal_column("'credit_noted'", db.String(20))),
                         else_=db.literal_column("'refunded'", db.String(20)))
        total = db.case((credit, db.func.coalesce(PT.credit_note_amount, PT.invoice_total)),
                        else_=db.func.coalesce(PT.refund_amount, PT.amount))
        url = db.case((credit, PT.credit_note_url), else_=PT.invoice_url)
        # The credited part's own ex-VAT and VAT, so that a row's columns add up (ex-VAT + VAT = total).
        excluding_tax = db.func.coalesce(PT.reversed_excluding_tax, PT.amount_excluding_tax)
        tax = db.type_coerce(total - excluding_tax, Money())
    else:
        kind, rank, row_date, status, total, url = (db.literal("invoice", db.String(20)), 0, PT.date, PT.status,
                                                    PT.invoice_total, PT.invoice_url)
        excluding_tax, tax = PT.amount_excluding_tax, PT.tax_amount
    columns = [
        PT.id.label("tx_id"), kind.label("kind"), db.literal(rank, db.Integer).label("kind_rank"),
        row_date.label("row_date"), PT.account_id.label("account_id"), status.label("status"),
        PT.number.label("number"), PT.plan.label("plan"), PT.currency.label("currency"),
        excluding_tax.label("amount_excluding_tax"), tax.label("tax_amount"),
        total.label("total"), url.label("url"), db.literal("stripe", db.String(10)).label("source"),
    ]
    return _finish(f, PT, columns, row_date, total, status, PT.id, PT.account_id, limit,
                   is_reversed() if reversal else None)


def _platform_branch(f: InvoiceFilters, limit: int | None):
    """Backoffice's own invoices as rows of the same shape."""
    row_date = db.func.coalesce(PI.issued_at, PI.created_at)
    columns = [
        PI.id.label("tx_id"), db.literal("invoice", db.String(20)).label("kind"),
        db.literal(2, db.Integer).label("kind_rank"), row_date.label("row_date"), PI.account_id.label("account_id"),
        PI.status.label("status"), PI.number.label("number"), db.null().label("plan"), PI.currency.label("currency"),
        PI.subtotal.label("amount_excluding_tax"), PI.tax.label("tax_amount"), PI.total.label("total"),
        db.null().label("url"), db.literal("backoffice", db.String(10)).label("source"),
    ]
    return _finish(f, PI, columns, row_date, PI.total, PI.status, PI.id, PI.account_id, limit, None)


def _finish(f: InvoiceFilters, table, columns: list, row_date, total, status, row_id, account_id, limit: int | None,
            where):
    """A branch's account filter, search and (with `limit`) its own sort and cut."""
    by_account = f.sort.lstrip("-") == "account"
    if by_account:
        columns.append(db.func.lower(Account.name).label("account_key"))
    stmt = db.select(*columns).select_from(table)
    if by_account:
        stmt = stmt.join(Account, Account.id == account_id)
    if where is not None:
        stmt = stmt.where(where)
    if f.account:
        stmt = stmt.where(account_id == f.account)
    if f.search:
        matching = db.select(Account.id).where(db.or_(
            Account.name.ilike(f"%{_escape_like(f.search)}%", escape="\\"), Account.id == f.search))
        stmt = stmt.where(account_id.in_(matching))
    if limit is None:
        return stmt
    keys = {"date": row_date, "total": total, "status": status, "account": db.func.lower(Account.name)}
    stmt = stmt.order_by(*_order(f.sort, keys[f.sort.lstrip("-")], row_date, row_id, None)).limit(limit)
    return db.select(stmt.subquery())  # SQLite takes ORDER BY/LIMIT in a union only inside a subquery


def _order(sort: str, key, row_date, tx_id, kind_rank) -> list:
    """The sort: the column, then the date and id in the same direction (so one index serves it)."""
    desc = sort.startswith("-")
    parts = [key] if sort.lstrip("-") == "date" else [key, row_date]
    parts.append(tx_id)
    if kind_rank is not None:
        parts.append(kind_rank)
    return [p.desc() if desc else p.asc() for p in parts]


def _rows(f: InvoiceFilters, limit: int | None):
    branches = []
    if f.source in ("", "stripe"):
        if f.view in ("all", "invoices"):
            branches.append(_branch(f, False, limit))
        if f.view in ("all", "reversals"):
            branches.append(_branch(f, True, limit))
    if f.source in ("", "backoffice") and f.view in ("all", "invoices"):
        branches.append(_platform_branch(f, limit))
    if not branches:  # Backoffice's own reversals: its credit notes come with issuing (the next issue)
        branches.append(_branch(f, True, limit).where(db.false()))
    return (db.union_all(*branches) if len(branches) > 1 else branches[0]).subquery("invoice_rows")


def invoice_rows_stmt(f: InvoiceFilters, limit: int | None = None, offset: int = 0):
    """Rows (tx_id, kind, row_date, account_id, account_name, status, number, ..., total, url), sorted;
    with `limit`, one page of them."""
    rows = _rows(f, None if limit is None else offset + limit)
    key = {"date": rows.c.row_date, "total": rows.c.total, "status": rows.c.status,
           "account": rows.c.account_key if f.sort.lstrip("-") == "account" else None}[f.sort.lstrip("-")]
    columns = [c for c in rows.c if c.name not in ("kind_rank", "account_key")]
    stmt = (db.select(*columns, Account.name.label("account_name"))
            .join(Account, Account.id == rows.c.account_id)
            .order_by(*_order(f.sort, key, rows.c.row_date, rows.c.tx_id, rows.c.kind_rank)))
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return stmt


def invoice_rows_page(f: InvoiceFilters) -> Page:
    """One page; the count stops at the cap (every transaction is one or two rows)."""
    cap = current_app.config.get("LIST_COUNT_CAP", COUNT_CAP)
    counted = db.select(_rows(f, None).c.tx_id).limit(cap + 1).subquery()
    total = db.session.execute(db.select(db.func.count()).select_from(counted)).scalar_one()
    capped = total > cap
    page, asked = (f.page, None) if capped else within(f.page, total, f.page_size)
    items = db.session.execute(invoice_rows_stmt(f, f.page_size + 1, (page - 1) * f.page_size)).all()
    return Page(items[:f.page_size], min(total, cap) if capped else total, page, f.page_size, capped,
                len(items) > f.page_size, asked)


def invoice_rows_preview(account_id: str, limit: int = 5) -> list:
    return db.session.execute(invoice_rows_stmt(InvoiceFilters(account=account_id), limit)).all()
