"""archive to-do index: the archive's state index only covers the events still to replay

`ix_stripe_events_state (state, stripe_created_at)` indexed every archived event by state,
although only pending and failed events are ever looked up by state (the replay's catch-up
pass, the CLI's count, the events waiting for their customer). Nearly every event ends
processed or ignored, so the index was almost all dead weight, updated on every marking, and
misled the planner: with statistics taken while the events were pending it read "every
processed event" through it to find one account's newest processed event (seconds per replay
batch at 200,000 events). The partial `ix_stripe_events_todo (account_id, customer_id) WHERE
state IN ('pending', 'failed')` holds only the events still to do.

Revision ID: 0012_archive_todo_index
Revises: 0011_archive_guard_columns
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_archive_todo_index'
down_revision = '0011_archive_guard_columns'
branch_labels = None
depends_on = None

TODO = sa.text("state IN ('pending', 'failed')")


def upgrade():
    with op.batch_alter_table('stripe_events') as batch_op:
        batch_op.drop_index('ix_stripe_events_state')
        batch_op.create_index('ix_stripe_events_todo', ['account_id', 'customer_id'], unique=False,
                              postgresql_where=TODO, sqlite_where=TODO)


def downgrade():
    with op.batch_alter_table('stripe_events') as batch_op:
        batch_op.drop_index('ix_stripe_events_todo')
        batch_op.create_index('ix_stripe_events_state', ['state', 'stripe_created_at'], unique=False)
