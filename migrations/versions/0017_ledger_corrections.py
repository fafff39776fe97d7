"""ledger corrections: a ledger row can be superseded (once), exactly one current row per event

Revision ID: 0017_ledger_corrections
Revises: 0016_trialing_status

DOMAIN §3 "Corrections without rewriting": when a late event changes how later events classify,
the replay appends the corrected rows and marks the rows they replace superseded. Rows stay
immutable but for that one change: `superseded_at` from null to a time, with `superseded_by`
(the superseding row's id, or null when the event no longer has a row) and `superseded_because`
(the Stripe event whose late arrival made the correction; null for a `ledger rebuild`) in the
same UPDATE. The PostgreSQL trigger allows exactly that; deleting is refused as before.

- The unique constraint on `stripe_event_id` becomes a unique index over the current rows.
- The dashboard's MRR index (0005) covers current rows only, so the MRR reads stay index-only.
- The dashboard's MRR summaries (0009) count current rows: the INSERT trigger recomputes the
  touched accounts over their current rows, and a new UPDATE trigger subtracts what a superseded
  row contributed (the history with it, minus the history without it).
"""
import warnings

import sqlalchemy as sa
from alembic import op

import backoffice.dbtypes

revision = '0017_ledger_corrections'
down_revision = '0016_trialing_status'
branch_labels = None
depends_on = None

DAY = "date(timezone('UTC', {}))"

# As 0009's: the MRR change of each delta-carrying row of `rows`.
MRR_CHANGES = f"""
    SELECT {DAY.format('occurred_at')} AS day, type,
           coalesce(new_amount, committed_mrr)
             - coalesce(lag(coalesce(new_amount, committed_mrr)) OVER (
                 PARTITION BY subscription_id, account_id ORDER BY occurred_at, id), 0) AS change
    FROM {{rows}} WHERE amount_delta IS NOT NULL"""

GUARD = r'''
CREATE OR REPLACE FUNCTION backoffice_billing_events_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'table billing_events is append-only: DELETE refused'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- The one change a ledger row ever gets: superseded, once (superseded_at from null to a time,
  -- superseded_by and superseded_because set in the same statement), every other column as it was.
  IF OLD.superseded_at IS NOT NULL OR NEW.superseded_at IS NULL
     OR (ROW(NEW.id, NEW.account_id, NEW.subscription_id, NEW.stripe_event_id, NEW.type, NEW.from_plan,
             NEW.to_plan, NEW.previous_amount, NEW.new_amount, NEW.amount_delta, NEW.committed_mrr,
             NEW.currency, NEW.occurred_at, NEW.reason, NEW.baseline, NEW.created_at)
         IS DISTINCT FROM
         ROW(OLD.id, OLD.account_id, OLD.subscription_id, OLD.stripe_event_id, OLD.type, OLD.from_plan,
             OLD.to_plan, OLD.previous_amount, OLD.new_amount, OLD.amount_delta, OLD.committed_mrr,
             OLD.currency, OLD.occurred_at, OLD.reason, OLD.baseline, OLD.created_at))
     OR OLD.superseded_by IS NOT NULL THEN
    RAISE EXCEPTION 'billing_events: ledger row % is immutable (it may only be superseded, once)', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER billing_events_no_update ON billing_events;
CREATE TRIGGER billing_events_no_update BEFORE UPDATE OR DELETE ON billing_events
  FOR EACH ROW EXECUTE FUNCTION backoffice_billing_events_guard();
'''

CURRENT = "superseded_at IS NULL"

# 0010's triggers on SQLite, as they were: SQLite drops them with the table it rebuilds.
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER billing_events_mark_accounts AFTER INSERT ON billing_events BEGIN
        UPDATE accounts SET has_ledger_rows = 1 WHERE id = NEW.account_id AND NOT has_ledger_rows;
    END""",
    """
    CREATE TRIGGER billing_events_unmark_accounts AFTER DELETE ON billing_events BEGIN
        UPDATE accounts SET has_ledger_rows = EXISTS (SELECT 1 FROM billing_events WHERE account_id = OLD.account_id)
        WHERE id = OLD.account_id;
    END""",
    """
    CREATE TRIGGER billing_events_move_accounts AFTER UPDATE OF account_id ON billing_events BEGIN
        UPDATE accounts SET has_ledger_rows = 1 WHERE id = NEW.account_id;
        UPDATE accounts SET has_ledger_rows = EXISTS (SELECT 1 FROM billing_events WHERE account_id = OLD.account_id)
        WHERE id = OLD.account_id;
    END""",
]

SUMMARIES = [
    f"""
    CREATE OR REPLACE FUNCTION dashboard_ledger_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('backoffice.dashboard_mrr:' || account_id, 0))
        FROM (SELECT DISTINCT account_id FROM new_rows
              WHERE amount_delta IS NOT NULL AND {CURRENT} ORDER BY account_id) AS touched;
        PERFORM dashboard_add_mrr(day, type, positive, change) FROM (
            WITH history AS (
                SELECT * FROM billing_events WHERE amount_delta IS NOT NULL AND {CURRENT} AND account_id IN (
                    SELECT account_id FROM new_rows WHERE amount_delta IS NOT NULL AND {CURRENT})),
            history_before AS (SELECT * FROM history WHERE id NOT IN (SELECT id FROM new_rows))
            SELECT day, type, positive, sum(change) AS change FROM (
                SELECT day, type, change > 0 AS positive, change FROM ({MRR_CHANGES.format(rows='history')}) AS with_new
                UNION ALL
                SELECT day, type, change > 0, -change FROM ({MRR_CHANGES.format(rows='history_before')}) AS without_new
            ) AS changes GROUP BY day, type, positive HAVING sum(change) <> 0 ORDER BY day, type, positive
        ) AS deltas;
        RETURN NULL;
    END $$""",
    # A superseded row leaves the current history: its accounts' MRR changes are recomputed with
    # the rows it superseded (as they were before the statement) and without them.
    f"""
    CREATE FUNCTION dashboard_ledger_superseded() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('backoffice.dashboard_mrr:' || account_id, 0))
        FROM (SELECT DISTINCT account_id FROM old_rows
              WHERE amount_delta IS NOT NULL AND {CURRENT} ORDER BY account_id) AS touched;
        PERFORM dashboard_add_mrr(day, type, positive, change) FROM (
            WITH history AS (
                SELECT * FROM billing_events WHERE amount_delta IS NOT NULL AND {CURRENT} AND account_id IN (
                    SELECT account_id FROM old_rows WHERE amount_delta IS NOT NULL AND {CURRENT})),
            history_before AS (
                SELECT * FROM history
                UNION ALL
                SELECT * FROM old_rows WHERE amount_delta IS NOT NULL AND {CURRENT})
            SELECT day, type, positive, sum(change) AS change FROM (
                SELECT day, type, change > 0 AS positive, change FROM ({MRR_CHANGES.format(rows='history')}) AS after
                UNION ALL
                SELECT day, type, change > 0, -change FROM ({MRR_CHANGES.format(rows='history_before')}) AS before
            ) AS changes GROUP BY day, type, positive HAVING sum(change) <> 0 ORDER BY day, type, positive
        ) AS deltas;
        RETURN NULL;
    END $$""",
    """
    CREATE TRIGGER billing_events_dashboard_superseded
        AFTER UPDATE ON billing_events REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION dashboard_ledger_superseded()""",
    f"""
    CREATE OR REPLACE FUNCTION dashboard_rebuild_summaries() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE billing_events, payment_transactions, logins IN SHARE MODE;
        DELETE FROM dashboard_mrr_daily;
        INSERT INTO dashboard_mrr_daily (day, type, positive, change)
        SELECT day, type, change > 0, sum(change) FROM (
            {MRR_CHANGES.format(rows='(SELECT * FROM billing_events WHERE ' + CURRENT + ') AS current_rows')}
        ) AS changes
        GROUP BY 1, 2, 3 HAVING sum(change) <> 0;
        DELETE FROM dashboard_revenue_daily;
        INSERT INTO dashboard_revenue_daily (day, change)
        SELECT day, sum(change) FROM (
            SELECT {DAY.format('date')} AS day, amount_excluding_tax AS change FROM payment_transactions
            WHERE status = 'succeeded'
            UNION ALL
            SELECT {DAY.format('coalesce(credit_noted_at, refunded_at, date)')}, -amount_excluding_tax
            FROM payment_transactions
            WHERE status = 'succeeded'
              AND (credit_note_url IS NOT NULL OR credit_noted_at IS NOT NULL OR refunded_at IS NOT NULL)
        ) AS flows
        GROUP BY 1 HAVING sum(change) <> 0;
        DELETE FROM dashboard_login_daily;
        INSERT INTO dashboard_login_daily (day, outcome, logins, writes)
        SELECT {DAY.format('at')}, outcome, count(*), count(*) FROM logins GROUP BY 1, 2;
    END $$""",
]


def upgrade():
    with warnings.catch_warnings():
        # SQLite rebuilds the table to drop the constraint; reflecting it meets the accounts'
        # expression index (0008), which the rebuild does not touch.
        warnings.simplefilter('ignore', sa.exc.SAWarning)
        _alter_table()
    if op.get_bind().dialect.name == 'sqlite':
        for sql in SQLITE_TRIGGERS:  # the rebuilt table lost 0010's triggers
            op.execute(sql)
    _rest()


def _alter_table():
    with op.batch_alter_table('billing_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('superseded_at', backoffice.dbtypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('superseded_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('superseded_because', sa.String(length=255), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_billing_events_superseded_by_billing_events'),
                                    'billing_events', ['superseded_by'], ['id'],
                                    deferrable=True, initially='DEFERRED')
        batch_op.drop_constraint('uq_billing_events_stripe_event_id', type_='unique')


def _rest():
    op.create_index('uq_billing_events_current_event', 'billing_events', ['stripe_event_id'], unique=True,
                    postgresql_where=sa.text(CURRENT), sqlite_where=sa.text(CURRENT))
    # Every row of an event, current or not (the billing-events tab's corrections, the replay's lookups).
    op.create_index('ix_billing_events_stripe_event', 'billing_events', ['stripe_event_id'])
    op.drop_index('ix_billing_events_mrr', table_name='billing_events')
    op.create_index('ix_billing_events_mrr', 'billing_events',
                    ['subscription_id', 'account_id', 'occurred_at', 'id'],
                    postgresql_include=['new_amount', 'committed_mrr', 'type'],
                    postgresql_where=sa.text(f'amount_delta IS NOT NULL AND {CURRENT}'),
                    sqlite_where=sa.text(f'amount_delta IS NOT NULL AND {CURRENT}'))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(GUARD)
        for sql in SUMMARIES:
            op.execute(sql)


def downgrade():
    # Superseded rows would break the old uniqueness, and they are history: never dropped.
    raise RuntimeError("0017_ledger_corrections cannot be downgraded: superseded ledger rows are history")
