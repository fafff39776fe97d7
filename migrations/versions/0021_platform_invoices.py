"""platform invoices: the month-end runs and the drafts they write (DOMAIN §6, issue 20 part 3)

Revision ID: 0021_platform_invoices
Revises: 0020_real_foreign_keys

Accounts get the language their invoices are written in (en by default). One invoice per account and period (a unique constraint: two runs of one month at once cannot
make two), its lines with their evidence, and each run with its summary.
"""
import sqlalchemy as sa
from alembic import op

import backoffice.dbtypes  # noqa: F401  (custom column types)

revision = '0021_platform_invoices'
down_revision = '0020_real_foreign_keys'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=2), server_default='en', nullable=False))
    op.create_table('invoicing_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('force', sa.Boolean(), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('started_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('examined', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('rebuilt', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoicing_runs'))
    )
    with op.batch_alter_table('invoicing_runs', schema=None) as batch_op:
        batch_op.create_index('ix_invoicing_runs_started', ['started_at'], unique=False)

    op.create_table('platform_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('tax', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('total', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('vat_rate', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('vat_reason', sa.String(length=20), nullable=False),
    sa.Column('vat_note', sa.Text(), nullable=False),
    sa.Column('seller_country', sa.String(length=2), nullable=False),
    sa.Column('customer_name', sa.String(length=200), nullable=False),
    sa.Column('customer_address', sa.Text(), nullable=False),
    sa.Column('customer_country', sa.String(length=2), nullable=True),
    sa.Column('customer_vat_id', sa.String(length=40), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('issued_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('due_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('paid_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'issued', 'void')", name=op.f('ck_platform_invoices_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_platform_invoices_account_id_accounts')),
    sa.ForeignKeyConstraint(['run_id'], ['invoicing_runs.id'], name=op.f('fk_platform_invoices_run_id_invoicing_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_invoices')),
    sa.UniqueConstraint('account_id', 'period', name=op.f('uq_platform_invoices_account_id_period')),
    sa.UniqueConstraint('number', name=op.f('uq_platform_invoices_number'))
    )
    with op.batch_alter_table('platform_invoices', schema=None) as batch_op:
        batch_op.create_index('ix_platform_invoices_period', ['period', 'account_id'], unique=False)

    op.create_table('platform_invoice_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('deployment', sa.String(length=100), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=True),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('quantity', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('unit', sa.String(length=40), nullable=False),
    sa.Column('unit_price', backoffice.dbtypes.UnitPrice(precision=18, scale=6), nullable=False),
    sa.Column('amount', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('price_valid_from', sa.Date(), nullable=True),
    sa.Column('days', sa.JSON(), nullable=False),
    sa.Column('monthly_price', backoffice.dbtypes.UnitPrice(precision=18, scale=6), nullable=True),
    sa.Column('used', backoffice.dbtypes.Money(precision=18, scale=4), nullable=True),
    sa.Column('included', backoffice.dbtypes.Money(precision=18, scale=4), nullable=True),
    sa.CheckConstraint("kind IN ('plan_base', 'setup', 'addon', 'overage')", name=op.f('ck_platform_invoice_lines_kind')),
    sa.ForeignKeyConstraint(['invoice_id'], ['platform_invoices.id'], name=op.f('fk_platform_invoice_lines_invoice_id_platform_invoices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_invoice_lines'))
    )
    with op.batch_alter_table('platform_invoice_lines', schema=None) as batch_op:
        batch_op.create_index('ix_platform_invoice_lines_invoice', ['invoice_id', 'position'], unique=False)



def downgrade():
    with op.batch_alter_table('platform_invoice_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_platform_invoice_lines_invoice')

    op.drop_table('platform_invoice_lines')
    with op.batch_alter_table('platform_invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_platform_invoices_period')

    op.drop_table('platform_invoices')
    with op.batch_alter_table('invoicing_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_invoicing_runs_started')

    op.drop_table('invoicing_runs')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('language')
