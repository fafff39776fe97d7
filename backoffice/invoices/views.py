"""Invoices: every payment transaction with its credit notes and refunds, and the CSV export."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, request
from flask_babel import gettext as _

from backoffice import exports, hx
from backoffice.invoices import queries
from backoffice.invoices.filters import SOURCE_LABELS, VIEW_LABELS, InvoiceFilters

bp = Blueprint("invoices", __name__, url_prefix="/invoices", template_folder="templates")


def csv_export(f: InvoiceFilters):
    headers = [_("Date"), _("Kind"), _("Account id"), _("Account"), _("Status"), _("Number"), _("Currency"),
               _("Excl. VAT"), _("VAT"), _("Total"), _("Source")]  # Source last: older spreadsheets keep their columns

    def cells(r):
        def signed(value: Decimal) -> Decimal:  # a credit note or refund takes back, as on the page (0 unsigned)
            return value if r.kind == "invoice" else Decimal(0) - value

        return (r.row_date, r.kind, r.account_id, r.account_name, r.status, r.number, r.currency,
                signed(r.amount_excluding_tax), signed(r.tax_amount), signed(r.total), r.source)

    return exports.csv_response("invoices.csv", headers, queries.invoice_rows_stmt(f), cells)


@bp.get("")
def index():
    f = InvoiceFilters.from_args(request.args)
    if exports.wants_csv(request.args):
        return csv_export(f)
    return hx.render("invoices/index.html", "invoice_table", f=f, rows=queries.invoice_rows_page(f),
                     view_labels=VIEW_LABELS, source_labels=SOURCE_LABELS)
