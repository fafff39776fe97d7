"""job runs: totals and progress of background jobs (drift pass, account sync)

Revision ID: 0002_job_runs
Revises: 0001
Create Date: 2026-11-21 05:10:00

"""
from alembic import op
import sqlalchemy as sa

import backoffice.dbtypes


revision = '0002_job_runs'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('actor_email', sa.String(length=254), nullable=True),
    sa.Column('started_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('timed_out', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_job_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_kind_started', ['kind', 'started_at'], unique=False)
        batch_op.create_index('ix_job_runs_started', ['started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_started')
        batch_op.drop_index('ix_job_runs_kind_started')
    op.drop_table('job_runs')
