"""indexes for the list pages: accounts, users, billing events, invoices

Revision ID: 0004_list_indexes
Revises: 0003_usage_price_book
"""
import sqlalchemy as sa
from alembic import op

revision = '0004_list_indexes'
down_revision = '0003_usage_price_book'
branch_labels = None
depends_on = None

REVERSED = "credit_noted_at IS NOT NULL OR credit_note_url IS NOT NULL OR refunded_at IS NOT NULL"


def upgrade():
    op.create_index('ix_accounts_modified_id', 'accounts', ['modified_at', 'id'])
    op.create_index('ix_accounts_created_id', 'accounts', ['created_at', 'id'])
    op.create_index('ix_billing_events_occurred_id', 'billing_events', ['occurred_at', 'id'])
    op.create_index('ix_payment_transactions_date_id', 'payment_transactions', ['date', 'id'])
    op.create_index('ix_payment_transactions_reversal_date', 'payment_transactions',
                    [sa.text('coalesce(credit_noted_at, refunded_at, date)'), 'id'],
                    postgresql_where=sa.text(REVERSED), sqlite_where=sa.text(REVERSED))
    op.create_index('ix_users_created_id', 'users', ['created_at', 'id'])
    op.create_index('ix_users_last_seen_at', 'users', ['last_seen_at'])
    op.create_index('ix_users_sort_name', 'users',
                    [sa.text("lower(coalesce(nullif(first_name, ''), nullif(last_name, ''), email))"),
                     'id'])


def downgrade():
    for name, table in [('ix_users_sort_name', 'users'), ('ix_users_last_seen_at', 'users'),
                        ('ix_users_created_id', 'users'),
                        ('ix_payment_transactions_reversal_date', 'payment_transactions'),
                        ('ix_payment_transactions_date_id', 'payment_transactions'),
                        ('ix_billing_events_occurred_id', 'billing_events'),
                        ('ix_accounts_created_id', 'accounts'), ('ix_accounts_modified_id', 'accounts')]:
        op.drop_index(name, table_name=table)
