"""replay write costs: no prefix indexes on the ledger and payments; archived payloads out of line

- `ix_billing_events_occurred (occurred_at)` and `ix_payment_transactions_date (date)` are
  prefixes of `(occurred_at, id)` and `(date, id)`: every query they served is served as well
  by the longer index, while each ledger row and payment the replayer writes paid one more
  index insert. Dropped.
- PostgreSQL: `stripe_events` stores each payload (about 2 KB compressed) in its TOAST table
  (`toast_tuple_target = 128`) instead of inside the row. The archive's row then holds about
  200 bytes, so marking an event processed (the replayer's one UPDATE per event) writes a
  small row version instead of copying the whole payload, and reads of the archive's other
  columns (lists, counts) touch a tenth of the pages. Payloads are unchanged, byte for byte;
  rows archived before this migration keep their payload inline until rewritten.

Revision ID: 0013_replay_write_costs
Revises: 0012_archive_todo_index
"""
from alembic import op

revision = '0013_replay_write_costs'
down_revision = '0012_archive_todo_index'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('billing_events') as batch_op:
        batch_op.drop_index('ix_billing_events_occurred')
    with op.batch_alter_table('payment_transactions') as batch_op:
        batch_op.drop_index('ix_payment_transactions_date')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE stripe_events SET (toast_tuple_target = 128)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE stripe_events RESET (toast_tuple_target)")
    with op.batch_alter_table('payment_transactions') as batch_op:
        batch_op.create_index('ix_payment_transactions_date', ['date'], unique=False)
    with op.batch_alter_table('billing_events') as batch_op:
        batch_op.create_index('ix_billing_events_occurred', ['occurred_at'], unique=False)
