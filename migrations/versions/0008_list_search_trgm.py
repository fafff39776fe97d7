"""list speed: trigram indexes for "contains" searches on account names and user e-mails and names;
indexes for sorting the invoices page's reversal rows by total and by status, and the accounts list by
plan, MRR, status and renewal (expressions over the current subscription)

Revision ID: 0008_list_search_trgm
Revises: 0007_dashboard_speed
"""
import sqlalchemy as sa
from alembic import op

revision = '0008_list_search_trgm'
down_revision = '0007_dashboard_speed'
branch_labels = None
depends_on = None

TRGM = {'postgresql_using': 'gin'}
REVERSED = 'credit_noted_at IS NOT NULL OR credit_note_url IS NOT NULL OR refunded_at IS NOT NULL'
CREDIT = '(credit_noted_at IS NOT NULL OR credit_note_url IS NOT NULL)'
REVERSAL_KEYS = {
    'ix_payment_transactions_reversal_total':
        f'CASE WHEN {CREDIT} THEN coalesce(credit_note_amount, invoice_total) ELSE coalesce(refund_amount, amount) END',
    'ix_payment_transactions_reversal_status': f"CASE WHEN {CREDIT} THEN 'credit_noted' ELSE 'refunded' END",
}

# The sort keys of backoffice.accounts.queries over the current subscription (constants inlined).
PRICE = 'coalesce(price_amount, 0)'
SUBSCRIPTION_SORT_KEYS = {
    'price': PRICE,
    'mrr': (f'CASE WHEN cancel_at_period_end IS TRUE THEN 0 WHEN scheduled_price_amount IS NOT NULL '
            f'THEN scheduled_price_amount ELSE {PRICE} END'),
    'status': (f'CASE WHEN cancel_at_period_end IS TRUE AND {PRICE} > 0 THEN 0 '
               f'WHEN scheduled_plan IS NOT NULL AND scheduled_price_amount IS NOT NULL '
               f'AND scheduled_price_amount < {PRICE} THEN 1 WHEN {PRICE} > 0 THEN 2 '
               f'WHEN subscribed_since IS NOT NULL THEN 3 ELSE 4 END'),
}


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    # On SQLite the PostgreSQL options are ignored: plain indexes of the same names and columns.
    op.create_index('ix_accounts_name_trgm', 'accounts', ['name'], postgresql_ops={'name': 'gin_trgm_ops'},
                    **TRGM)
    for column in ('email', 'first_name', 'last_name'):
        op.create_index(f'ix_users_{column}_trgm', 'users', [sa.text(f'lower({column}) gin_trgm_ops')
                        if op.get_bind().dialect.name == 'postgresql' else sa.text(f'lower({column})')], **TRGM)
    for name, key in REVERSAL_KEYS.items():
        op.create_index(name, 'payment_transactions',
                        [sa.text(f'({key})'), sa.text('coalesce(credit_noted_at, refunded_at, date)'), 'id'],
                        postgresql_where=sa.text(REVERSED), sqlite_where=sa.text(REVERSED))
    for name, key in SUBSCRIPTION_SORT_KEYS.items():
        op.create_index(f'ix_subscriptions_current_{name}', 'subscriptions', [sa.text(f'({key})'), 'account_id'],
                        postgresql_where=sa.text('is_current'), sqlite_where=sa.text('is_current'))
    op.create_index('ix_subscriptions_current_renewal', 'subscriptions', ['current_period_end', 'account_id'],
                    postgresql_where=sa.text('is_current'), sqlite_where=sa.text('is_current'))


def downgrade():
    for name in (*SUBSCRIPTION_SORT_KEYS, 'renewal'):
        op.drop_index(f'ix_subscriptions_current_{name}', table_name='subscriptions')
    for name in REVERSAL_KEYS:
        op.drop_index(name, table_name='payment_transactions')
    for column in ('email', 'first_name', 'last_name'):
        op.drop_index(f'ix_users_{column}_trgm', table_name='users')
    op.drop_index('ix_accounts_name_trgm', table_name='accounts')
