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
from backoffice.invoicing.models import PlatformInvoice
from backoffice.ledger import rules
from backoffice.ledger.models import BillingEvent, Subscription
from backoffice.users.models import User

_EMPTY = db.literal_column("''")
_CREDIT = "credit_noted_at IS NOT NULL OR credit_note_url IS NOT NULL"
REVERSED = "credit_noted_at IS NOT NULL OR credit_note_url IS NOT NULL OR refunded_at IS NOT NULL"

# The accounts list's sort keys over the current subscription, as SQL text derived from the rules
# (ledger/rules.py), so the indexes below are exactly the expressions the list sorts by.
SUBSCRIPTION_SORT_KEYS = {
    "price": rules.TEXT_FIELDS.price,
    "mrr": rules.forward_mrr(rules.TEXT, rules.TEXT_FIELDS),
    "status": rules.status(rules.TEXT, rules.TEXT_FIELDS, tuple(str(i) for i in range(len(rules.STATUSES)))),
}

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
    # The users list's "last seen, newest first" (never seen last), read in order (migration 0010).
    Index("ix_users_last_seen_desc", User.last_seen_at.desc().nulls_last(), User.id.desc()),
    # The users list's name sort key (backoffice.users.queries.sort_name).
    Index("ix_users_sort_name",
          db.func.lower(db.func.coalesce(db.func.nullif(User.first_name, _EMPTY),
                                         db.func.nullif(User.last_name, _EMPTY), User.email)),
          User.id),
    # Sorting the reversal rows of the invoices page by total or status (migration 0008_list_search_trgm):
    # the same CASE expressions as backoffice.invoices.queries._branch, partial like the date index.
    # The text laid out as PostgreSQL reflects it (pg_get_indexdef's line breaks included), so
    # Alembic's models-vs-migrations comparison finds them equal.
    Index("ix_payment_transactions_reversal_total",
          db.text(f"\nCASE\n    WHEN {_CREDIT} THEN COALESCE(credit_note_amount, invoice_total)\n"
                  "    ELSE COALESCE(refund_amount, amount)\nEND"),
          db.func.coalesce(PT.credit_noted_at, PT.refunded_at, PT.date), PT.id,
          postgresql_where=db.text(REVERSED), sqlite_where=db.text(REVERSED)),
    Index("ix_payment_transactions_reversal_status",
          db.text(f"\nCASE\n    WHEN {_CREDIT} THEN 'credit_noted'::text\n    ELSE 'refunded'::text\nEND"),
          db.func.coalesce(PT.credit_noted_at, PT.refunded_at, PT.date), PT.id,
          postgresql_where=db.text(REVERSED), sqlite_where=db.text(REVERSED)),
    # Sorting the unfiltered accounts list by plan, MRR, status or renewal (migration
    # 0008_list_search_trgm): the current subscriptions in the order of backoffice.accounts.queries'
    # sort expressions (same SQL, constants inlined; laid out as PostgreSQL reflects it).
    *(Index(f"ix_subscriptions_current_{name}", db.text(expression), Subscription.account_id,
            postgresql_where=db.text("is_current"), sqlite_where=db.text("is_current"))
      for name, expression in SUBSCRIPTION_SORT_KEYS.items()),
    Index("ix_subscriptions_current_renewal", Subscription.current_period_end, Subscription.account_id,
          postgresql_where=db.text("is_current"), sqlite_where=db.text("is_current")),
    # "Contains" searches (migration 0008_list_search_trgm): pg_trgm GIN indexes on PostgreSQL, plain
    # indexes of the same names on SQLite. Account names are searched with ILIKE, users with lower() LIKE.
    Index("ix_accounts_name_trgm", Account.name, postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
    *(Index(f"ix_users_{column.key}_trgm", db.func.lower(column).label(f"lower_{column.key}"),
            postgresql_using="gin", postgresql_ops={f"lower_{column.key}": "gin_trgm_ops"})
      for column in (User.email, User.first_name, User.last_name)),
    # The header search (backoffice/search, migration 0026_search_indexes): case-insensitive prefix
    # matches read lower() btrees with text_pattern_ops on PostgreSQL (LIKE 'x%' under any collation),
    # plain lower() indexes on SQLite (read by a range beside the LIKE); a partial id, a trigram index.
    *(Index(f"ix_{column.table.name}_{column.key}_prefix", db.func.lower(column).label(f"lower_{column.key}"),
            postgresql_ops={f"lower_{column.key}": "text_pattern_ops"})
      for column in (Account.id, Account.stripe_customer_id, Account.billing_email, User.email, PT.number,
                     PlatformInvoice.number)),
    Index("ix_accounts_id_trgm", db.func.lower(Account.id).label("lower_id"),
          postgresql_using="gin", postgresql_ops={"lower_id": "gin_trgm_ops"}),
)
