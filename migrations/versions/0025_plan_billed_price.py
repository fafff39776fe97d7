"""plan billed price: a price's amount as billed (plans.period_amount every interval_count
intervals), so a yearly plan reads "€490.00 per year" beside its monthly equivalent (issue 22 part 4)

Existing rows get the amount back from their monthly one only where that is exact (monthly
prices); the others are filled in by the next replay or sync that reads the price.

Revision ID: 0025_plan_billed_price
Revises: 0024_partial_reversals
"""
import sqlalchemy as sa
from alembic import op

import backoffice.dbtypes

revision = '0025_plan_billed_price'
down_revision = '0024_partial_reversals'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('plans', sa.Column('period_amount', backoffice.dbtypes.Money(), nullable=True))
    op.add_column('plans', sa.Column('interval_count', sa.Integer(), server_default='1', nullable=False))
    op.execute("UPDATE plans SET period_amount = monthly_amount WHERE interval = 'month'")


def downgrade():
    with op.batch_alter_table('plans') as batch_op:
        batch_op.drop_column('interval_count')
        batch_op.drop_column('period_amount')
