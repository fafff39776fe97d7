"""indexes for the dashboard: MRR from the ledger's delta rows, revenue, logins (covering, partial)

Revision ID: 0005_dashboard_indexes
Revises: 0004_list_indexes

Each dashboard query reads one of these with an index-only scan instead of the whole table:
the MRR trend, movements and KPI read only the MRR-moving ledger rows, in (subscription, time)
order so the LAG over them needs no sort; revenue reads only succeeded payments; the logins card
and the active-users tile read the login time, user and outcome.
"""
from alembic import op
import sqlalchemy as sa

revision = '0005_dashboard_indexes'
down_revision = '0004_list_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_billing_events_mrr', 'billing_events',
                    ['subscription_id', 'account_id', 'occurred_at', 'id'],
                    postgresql_include=['new_amount', 'committed_mrr', 'type'],
                    postgresql_where=sa.text('amount_delta IS NOT NULL'),
                    sqlite_where=sa.text('amount_delta IS NOT NULL'))
    op.create_index('ix_payment_transactions_revenue', 'payment_transactions', ['date'],
                    postgresql_include=['amount_excluding_tax', 'credit_noted_at', 'refunded_at',
                                        'credit_note_url'],
                    postgresql_where=sa.text("status = 'succeeded'"),
                    sqlite_where=sa.text("status = 'succeeded'"))
    op.create_index('ix_logins_at_user_outcome', 'logins', ['at', 'user_id', 'outcome'])


def downgrade():
    op.drop_index('ix_logins_at_user_outcome', table_name='logins')
    op.drop_index('ix_payment_transactions_revenue', table_name='payment_transactions')
    op.drop_index('ix_billing_events_mrr', table_name='billing_events')
