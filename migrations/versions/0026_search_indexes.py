"""search speed: the header search's prefix matches on account ids, Stripe customer ids, billing
e-mails, user e-mails and both kinds of invoice number read lower() btree indexes (text_pattern_ops on
PostgreSQL, so LIKE 'x%' uses them under any collation); a partial account id reads a trigram index

Revision ID: 0026_search_indexes
Revises: 0025_plan_billed_price
"""
import sqlalchemy as sa
from alembic import op

revision = '0026_search_indexes'
down_revision = '0025_plan_billed_price'
branch_labels = None
depends_on = None

PREFIX = [('accounts', 'id'), ('accounts', 'stripe_customer_id'), ('accounts', 'billing_email'),
          ('users', 'email'), ('payment_transactions', 'number'), ('platform_invoices', 'number')]


def upgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        # Upgraded in one transaction with 0024, whose fill leaves deferred trigger events pending:
        # PostgreSQL refuses CREATE INDEX on payment_transactions until they have fired.
        op.execute('SET CONSTRAINTS ALL IMMEDIATE')
    # On SQLite the operator classes are PostgreSQL's: plain lower() indexes of the same names.
    for table, column in PREFIX:
        op.create_index(f'ix_{table}_{column}_prefix', table,
                        [sa.text(f'lower({column}) text_pattern_ops' if postgres else f'lower({column})')])
    op.create_index('ix_accounts_id_trgm', 'accounts',
                    [sa.text('lower(id) gin_trgm_ops' if postgres else 'lower(id)')], postgresql_using='gin')


def downgrade():
    op.drop_index('ix_accounts_id_trgm', table_name='accounts')
    for table, column in reversed(PREFIX):
        op.drop_index(f'ix_{table}_{column}_prefix', table_name=table)
