"""Operators review the drafts (issue 20 part 4): the platform invoices list's state from the query
string and back, its rows (sorted and paged in SQL, the account's name joined), one invoice with
its lines, and the admin's rebuild and delete of a draft (audited)."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from backoffice.accounts.filters import parse_id
from backoffice.accounts.models import Account
from backoffice.errors import BadRequest, NotFound
from backoffice.extensions import db
from backoffice.invoicing import engine, quotes, run
from backoffice.invoicing.models import INVOICE_STATUSES, InvoicingRun, PlatformInvoice
from backoffice.operators.services import audit
from backoffice.pagination import (
    LIST_PAGE_SIZE,
    Page,
    paginate,
    parse_page,
    parse_search,
    parse_sort,
    with_overrides,
)

SORTS = ("period", "account", "total", "status")
DEFAULT_SORT = "-period"


@dataclass
class DraftFilters:
    period: str = ""
    status: str = ""
    search: str = ""
    account: str = ""
    sort: str = DEFAULT_SORT
    page: int = 1
    page_size: int = LIST_PAGE_SIZE

    @classmethod
    def from_args(cls, args, account: str = "") -> DraftFilters:
        page, page_size = parse_page(args)
        period = (args.get("period") or "").strip()
        if period:
            try:
                period = str(engine.Period.parse(period))
            except ValueError:
                raise BadRequest(_("period must be a month written YYYY-MM."), field="period") from None
        status = (args.get("status") or "").strip()
        if status and status not in INVOICE_STATUSES:
            raise BadRequest(_("status must be one of %(statuses)s.", statuses=", ".join(INVOICE_STATUSES)),
                             field="status")
        if not account and args.get("account"):
            account = parse_id(args.get("account").strip(), "account")
        return cls(period, status, parse_search(args), account, parse_sort(args, SORTS, DEFAULT_SORT), page, page_size)

    def args(self, **overrides) -> dict:
        out = {k: v for k, v in (("period", self.period), ("status", self.status), ("search", self.search)) if v}
        return with_overrides(out, overrides, self.sort != DEFAULT_SORT and self.sort, self.page_size)

    @property
    def active(self) -> bool:
        return bool(self.period or self.status or self.search)


def invoices_stmt(f: DraftFilters):
    stmt = (db.select(PlatformInvoice, Account.name.label("account_name"))
            .join(Account, Account.id == PlatformInvoice.account_id))
    if f.account:
        stmt = stmt.where(PlatformInvoice.account_id == f.account)
    if f.period:
        stmt = stmt.where(PlatformInvoice.period == f.period)
    if f.status:
        stmt = stmt.where(PlatformInvoice.status == f.status)
    if f.search:
        like = f"%{f.search.lower()}%"
        stmt = stmt.where(db.or_(db.func.lower(Account.name).like(like), db.func.lower(Account.id).like(like)))
    column = {"period": PlatformInvoice.period, "account": Account.name, "total": PlatformInvoice.total,
              "status": PlatformInvoice.status}[f.sort.removeprefix("-")]
    order = column.desc() if f.sort.startswith("-") else column.asc()
    return stmt.order_by(order, PlatformInvoice.account_id, PlatformInvoice.id)


def invoices_page(f: DraftFilters) -> Page:
    return paginate(invoices_stmt(f), f.page, f.page_size, scalars=False)


def get_invoice(invoice_id: int) -> PlatformInvoice:
    found = db.session.execute(db.select(PlatformInvoice).options(selectinload(PlatformInvoice.lines))
                               .where(PlatformInvoice.id == invoice_id)).scalar_one_or_none()
    if found is None:
        raise NotFound(_("No platform invoice with id %(id)s.", id=invoice_id))
    return found


def document(invoice: PlatformInvoice) -> dict:
    """The invoice in the shape the lines template and the API read (quotes.quote_json's)."""
    return {"currency": invoice.currency, "lines": [quotes.line_json(line) for line in invoice.lines],
            "subtotal": str(engine.cents(invoice.subtotal)), "tax": str(engine.cents(invoice.tax)),
            "total": str(engine.cents(invoice.total)),
            "vat": quotes.vat_json(invoice.vat_rate, invoice.vat_reason, invoice.vat_note)}


def vat_why(invoice: PlatformInvoice) -> str:
    """Why the VAT decision is what it is, in the operator's words."""
    country = invoice.customer_country or _("no country on file")
    if invoice.vat_reason == "domestic":
        return _("The customer's country (%(country)s) is taxed at the seller's domestic rate (seller in "
                 "%(seller)s).", country=country, seller=invoice.seller_country)
    if invoice.vat_reason == "reverse_charge":
        return _("The customer is abroad (%(country)s) with VAT id %(vat_id)s: reverse charge, 0 %%.",
                 country=country, vat_id=invoice.customer_vat_id)
    return _("The customer is abroad (%(country)s) without a VAT id: an export of services, 0 %%.", country=country)


def _draft(invoice_id: int) -> PlatformInvoice:
    invoice = get_invoice(invoice_id)
    if invoice.status != "draft":
        raise BadRequest(_("Only a draft can be changed; invoice %(id)s is %(status)s.", id=invoice_id,
                           status=invoice.status), field="status", status=409, code="conflict")
    return invoice


def rebuild_draft(invoice_id: int, actor) -> InvoicingRun:
    """Prices the draft's account and month again from the logs (a --force run of that account)."""
    invoice = _draft(invoice_id)
    audit(actor, "invoicing.draft_rebuild", "platform_invoice", invoice.id,
          before={"period": invoice.period, "account_id": invoice.account_id, "total": str(invoice.total)})
    started = run.start(engine.Period.parse(invoice.period), force=True, account_id=invoice.account_id,
                        trigger="page", actor=actor.email)  # commits the audit entry with the run
    return run.run_in_process(started)


def delete_draft(invoice_id: int, actor) -> None:
    invoice = _draft(invoice_id)
    audit(actor, "invoicing.draft_delete", "platform_invoice", invoice.id,
          before={"period": invoice.period, "account_id": invoice.account_id, "total": str(invoice.total)})
    db.session.delete(invoice)  # its lines with it (loaded: the ORM deletes them, on SQLite too)
    db.session.commit()


def invoice_of(account_id: str, period: str) -> PlatformInvoice | None:
    return db.session.execute(db.select(PlatformInvoice).where(PlatformInvoice.account_id == account_id,
                                                               PlatformInvoice.period == period)).scalar_one_or_none()
