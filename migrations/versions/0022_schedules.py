"""schedules: each schedule's last and next run, and the lease that makes it run once across
the web processes of the embedded default (backoffice/schedule.py, issue 22 part 3)

Revision ID: 0022_schedules
Revises: 0021_platform_invoices
"""
import sqlalchemy as sa
from alembic import op

import backoffice.dbtypes  # noqa: F401  (custom column types)

revision = '0022_schedules'
down_revision = '0021_platform_invoices'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('schedules',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('next_run_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_started_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_ok', sa.Boolean(), nullable=True),
    sa.Column('last_result', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_schedules'))
    )


def downgrade():
    op.drop_table('schedules')
