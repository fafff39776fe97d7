"""long Stripe customer ids: accounts.stripe_customer_id holds what the archive holds (255
characters, the length Stripe allows an id), so a customer whose id is over 64 characters gets an
account that names it (issue 21 part 1; PostgreSQL refused the insert: a 500 on the webhook)

On SQLite the column's type changes by recreating the table. Its rename back to `accounts` runs
with legacy_alter_table on, so SQLite does not check the ledger's triggers that update accounts
while no table has that name; the expression indexes SQLite cannot reflect (lower(...)), which the
recreation drops, are made again as their migrations made them.

Revision ID: 0027_long_stripe_customer_ids
Revises: 0026_search_indexes
"""
import warnings

import sqlalchemy as sa
from alembic import op

revision = '0027_long_stripe_customer_ids'
down_revision = '0026_search_indexes'
branch_labels = None
depends_on = None

SQLITE_EXPRESSION_INDEXES = {'ix_accounts_name_lower': 'lower(name)', 'ix_accounts_id_prefix': 'lower(id)',
                             'ix_accounts_stripe_customer_id_prefix': 'lower(stripe_customer_id)',
                             'ix_accounts_billing_email_prefix': 'lower(billing_email)',
                             'ix_accounts_id_trgm': 'lower(id)'}


def _set_length(length: int):
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute('PRAGMA legacy_alter_table = ON')
    with warnings.catch_warnings():  # the indexes it cannot reflect are made again below
        warnings.filterwarnings('ignore', 'Skipped unsupported reflection of expression-based index')
        with op.batch_alter_table('accounts') as batch_op:
            batch_op.alter_column('stripe_customer_id', type_=sa.String(length=length),
                                  existing_type=sa.String(length=255 if length == 64 else 64), existing_nullable=True)
    if sqlite:
        op.execute('PRAGMA legacy_alter_table = OFF')
        for name, expression in SQLITE_EXPRESSION_INDEXES.items():
            op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON accounts ({expression})')


def upgrade():
    _set_length(255)


def downgrade():
    _set_length(64)
