"""job runs by account: an account page lists its latest syncs and disaster recoveries, which now
run as background jobs (issue 21 part 4)

Revision ID: 0023_job_runs_by_account
Revises: 0022_schedules
"""
from alembic import op

revision = '0023_job_runs_by_account'
down_revision = '0022_schedules'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_job_runs_target_started', 'job_runs', ['target_id', 'started_at'], unique=False)


def downgrade():
    op.drop_index('ix_job_runs_target_started', table_name='job_runs')
