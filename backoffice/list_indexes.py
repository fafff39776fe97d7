"""Indexes the list pages (accounts, users, billing events, invoices) sort and page by, declared on
the tables of the features that own them so the models and migration 0004_list_indexes agree.

Kept beside each other here because they exist for the lists' ORDER BY … LIMIT plans: a composite
(sort key, id) lets PostgreSQL read one page straight from the index instead of sorting the table.
"""
from __future__ import annotations

from sqlalchemy import Index

from backoffice.accounts.models import Account
from backoffice.extensions import db
from backoffice.invoices.models import PaymentTransaction as PT
from backoffice.ledger.models import BillingEvent
from backoffice.users.models import User

_EMPTY = db.literal_column("''")
REVERSED = "credit_noted_at IS NOT NULL OR credit_note_url IS NOT NULL OR refunded_at IS NOT NULL"

INDEXES = (
    Index("ix_accounts_modified_id", Account.modified_at, Account.id),
    Index("ix_accounts_created_id", Account.created_at, Account.id),
    Index("ix_billing_events_occurred_id", BillingEvent.occurred_at, BillingEvent.id),
    Index("ix_payment_transactions_date_id", PT.date, PT.id),
    # The reversal rows of the invoices page (credit note, else refund, else payment date).
    Index("ix_payment_transactions_reversal_date",
          db.func.coalesce(PT.credit_noted_at, PT.refunded_at, PT.date), PT.id,
          postgresql_where=db.text(REVERSED), sqlite_where=db.text(REVERSED)),
    # Sorting the invoices page by total or status (migration 0006_invoice_sort_indexes).
    Index("ix_payment_transactions_total_date_id", PT.invoice_total, PT.date, PT.id),
    Index("ix_payment_transactions_status_date_id", PT.status, PT.date, PT.id),
    Index("ix_users_created_id", User.created_at, User.id),
    Index("ix_users_last_seen_at", User.last_seen_at),
    # The users list's name sort key (backoffice.users.queries.sort_name).
    Index("ix_users_sort_name",
          db.func.lower(db.func.coalesce(db.func.nullif(User.first_name, _EMPTY),
                                         db.func.nullif(User.last_name, _EMPTY), User.email)),
          User.id),
)
