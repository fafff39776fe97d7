"""indexes for sorting the invoices page by total and by status

Revision ID: 0006_invoice_sort_indexes
Revises: 0005_dashboard_indexes
"""
from alembic import op

revision = '0006_invoice_sort_indexes'
down_revision = '0005_dashboard_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_payment_transactions_total_date_id', 'payment_transactions', ['invoice_total', 'date', 'id'])
    op.create_index('ix_payment_transactions_status_date_id', 'payment_transactions', ['status', 'date', 'id'])


def downgrade():
    op.drop_index('ix_payment_transactions_status_date_id', table_name='payment_transactions')
    op.drop_index('ix_payment_transactions_total_date_id', table_name='payment_transactions')
