"""archive: an event's Stripe customer, once known, never changes (PostgreSQL trigger)

`stripe_events.customer_id` is filled when the event is archived (or once, when a customer-less
event's customer becomes known); changing it afterwards would move an event to another
account's history. The trigger refuses an UPDATE that changes a non-null customer_id.

Revision ID: 0018_archive_customer_once
Revises: 0017_ledger_corrections
"""
from alembic import op

revision = '0018_archive_customer_once'
down_revision = '0017_ledger_corrections'
branch_labels = None
depends_on = None

GUARD = r'''
CREATE FUNCTION backoffice_stripe_events_customer_once() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'stripe_events: the customer of archived event % is immutable once set', OLD.id
    USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER stripe_events_customer_once BEFORE UPDATE OF customer_id ON stripe_events
  FOR EACH ROW WHEN (OLD.customer_id IS NOT NULL AND NEW.customer_id IS DISTINCT FROM OLD.customer_id)
  EXECUTE FUNCTION backoffice_stripe_events_customer_once();
'''


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(GUARD)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER stripe_events_customer_once ON stripe_events')
        op.execute('DROP FUNCTION backoffice_stripe_events_customer_once()')
