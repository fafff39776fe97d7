"""archive unmapped index: the events whose customer has no account yet, by customer

The webhook's INSERT releases, in the same statement, the customer's events that were
archived before the customer was linked to an account (`customer_id = :customer AND
account_id IS NULL`). With only `ix_stripe_events_customer_created` and
`ix_stripe_events_account_created` to go by, PostgreSQL answered that with a BitmapAnd whose
second half read every archived event without an account: events of customers still unknown,
and every customer-less event (plans, prices, products, payouts, balance: archived and
ignored, never mapped). That read grew with the archive and ran on every webhook: with
36,100 such events among 232,100, one gunicorn worker ingested 389-465 events/s instead of
1,069-1,203. The partial `ix_stripe_events_unmapped (customer_id) WHERE account_id IS NULL
AND customer_id IS NOT NULL` holds only the events of customers without an account, by
customer: the release looks up one customer's (nearly always none), and the list of customers
waiting for their account reads it too. Customer-less events are not in it (`customer_id =
:customer` implies `customer_id IS NOT NULL`, so both databases still use it).

Revision ID: 0015_archive_unmapped_index
Revises: 0014_statement_references
"""
import sqlalchemy as sa
from alembic import op

revision = '0015_archive_unmapped_index'
down_revision = '0014_statement_references'
branch_labels = None
depends_on = None

UNMAPPED = sa.text("account_id IS NULL AND customer_id IS NOT NULL")


def upgrade():
    with op.batch_alter_table('stripe_events') as batch_op:
        batch_op.create_index('ix_stripe_events_unmapped', ['customer_id'], unique=False,
                              postgresql_where=UNMAPPED, sqlite_where=UNMAPPED)


def downgrade():
    with op.batch_alter_table('stripe_events') as batch_op:
        batch_op.drop_index('ix_stripe_events_unmapped')
