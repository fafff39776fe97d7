"""dashboard summaries: MRR changes, revenue flows and logins per UTC day, kept by triggers in the
writers' own transactions (PostgreSQL)

Revision ID: 0009_dashboard_summaries
Revises: 0008_list_search_trgm

The dashboard read its all-time daily series (the ledger's MRR changes, net revenue flows, logins)
by aggregating their whole tables, cached per process until the table changed: the first request
after any webhook recomputed them (seconds at 2,000,000 ledger rows). These tables hold the same
sums per day, small (a row per key, plus one per concurrently writing transaction at most), and
exact at every commit:

- billing_events (append-only): after each INSERT statement, the MRR changes of the accounts it
  touched are recomputed over their whole history, once with the new rows and once without, and
  the difference is added per (day, type, sign). A late event (older than rows already stored)
  changes the next row's change too: recomputing the account's history covers it. The accounts of
  one statement are locked (transaction advisory locks, in account order) so two writers of one
  account never compute from each other's unseen rows; writers run in READ COMMITTED (the default).
- payment_transactions (updated in place by refunds and credit notes): each statement adds its new
  rows' revenue flows and subtracts its old rows' flows.
- logins: each statement adds its new rows and subtracts its deleted ones per (day, outcome), and
  counts every row it wrote in `writes`, which only grows: the dashboard keeps the distinct users
  of past days per process and knows from the past days' writes whether any of them changed.

A writer adds its sums to a row of the key that no other open transaction holds (FOR UPDATE SKIP
LOCKED), else inserts a row: no writer waits for another on a summary row (only the ledger's writers
of one account wait, as the replayer's own account locks make them anyway), and readers always sum
per key.
dashboard_rebuild_summaries() recomputes every summary from its source (after a bulk load with
triggers off, e.g. the benchmark's); it locks the sources against writers while it runs.
On SQLite the tables exist and stay empty: the dashboard aggregates the source tables there.
"""
import sqlalchemy as sa
from alembic import op

import backoffice.dbtypes

revision = '0009_dashboard_summaries'
down_revision = '0008_list_search_trgm'
branch_labels = None
depends_on = None

DAY = "date(timezone('UTC', {}))"

# The ledger's MRR change of each delta-carrying row of `rows` (a table or CTE of billing_events rows).
MRR_CHANGES = f"""
    SELECT {DAY.format('occurred_at')} AS day, type,
           coalesce(new_amount, committed_mrr)
             - coalesce(lag(coalesce(new_amount, committed_mrr)) OVER (
                 PARTITION BY subscription_id, account_id ORDER BY occurred_at, id), 0) AS change
    FROM {{rows}} WHERE amount_delta IS NOT NULL"""

# Net revenue flows ex-VAT of payment_transactions rows: + on the payment day, − on the reversal day.
REVENUE_FLOWS = f"""
    SELECT {DAY.format('date')} AS day, amount_excluding_tax AS change FROM {{rows}} WHERE status = 'succeeded'
    UNION ALL
    SELECT {DAY.format('coalesce(credit_noted_at, refunded_at, date)')}, -amount_excluding_tax FROM {{rows}}
    WHERE status = 'succeeded'
      AND (credit_note_url IS NOT NULL OR credit_noted_at IS NOT NULL OR refunded_at IS NOT NULL)"""

FUNCTIONS = [
    # Add to one row of a key that no other open transaction holds, else insert one.
    """
    CREATE FUNCTION dashboard_add_mrr(d date, t varchar, p boolean, c numeric) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE dashboard_mrr_daily SET change = change + c WHERE id = (
            SELECT id FROM dashboard_mrr_daily WHERE day = d AND type = t AND positive = p
            LIMIT 1 FOR UPDATE SKIP LOCKED);
        IF NOT FOUND THEN
            INSERT INTO dashboard_mrr_daily (day, type, positive, change) VALUES (d, t, p, c);
        END IF;
    END $$""",
    """
    CREATE FUNCTION dashboard_add_revenue(d date, c numeric) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE dashboard_revenue_daily SET change = change + c WHERE id = (
            SELECT id FROM dashboard_revenue_daily WHERE day = d LIMIT 1 FOR UPDATE SKIP LOCKED);
        IF NOT FOUND THEN
            INSERT INTO dashboard_revenue_daily (day, change) VALUES (d, c);
        END IF;
    END $$""",
    """
    CREATE FUNCTION dashboard_add_logins(d date, o varchar, n integer, w integer) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE dashboard_login_daily SET logins = logins + n, writes = writes + w WHERE id = (
            SELECT id FROM dashboard_login_daily WHERE day = d AND outcome = o LIMIT 1 FOR UPDATE SKIP LOCKED);
        IF NOT FOUND THEN
            INSERT INTO dashboard_login_daily (day, outcome, logins, writes) VALUES (d, o, n, w);
        END IF;
    END $$""",
    f"""
    CREATE FUNCTION dashboard_ledger_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('backoffice.dashboard_mrr:' || account_id, 0))
        FROM (SELECT DISTINCT account_id FROM new_rows WHERE amount_delta IS NOT NULL ORDER BY account_id) AS touched;
        PERFORM dashboard_add_mrr(day, type, positive, change) FROM (
            WITH history AS (
                SELECT * FROM billing_events WHERE amount_delta IS NOT NULL AND account_id IN (
                    SELECT account_id FROM new_rows WHERE amount_delta IS NOT NULL)),
            history_before AS (SELECT * FROM history WHERE id NOT IN (SELECT id FROM new_rows))
            SELECT day, type, positive, sum(change) AS change FROM (
                SELECT day, type, change > 0 AS positive, change FROM ({MRR_CHANGES.format(rows='history')}) AS with_new
                UNION ALL
                SELECT day, type, change > 0, -change FROM ({MRR_CHANGES.format(rows='history_before')}) AS without_new
            ) AS changes GROUP BY day, type, positive HAVING sum(change) <> 0 ORDER BY day, type, positive
        ) AS deltas;
        RETURN NULL;
    END $$""",
    f"""
    CREATE FUNCTION dashboard_payments_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM dashboard_add_revenue(day, change) FROM (
                SELECT day, sum(change) AS change FROM ({REVENUE_FLOWS.format(rows='new_rows')}) AS flows
                GROUP BY day HAVING sum(change) <> 0 ORDER BY day) AS deltas;
        ELSIF TG_OP = 'UPDATE' THEN
            PERFORM dashboard_add_revenue(day, change) FROM (
                SELECT day, sum(change) AS change FROM (
                    SELECT day, change FROM ({REVENUE_FLOWS.format(rows='new_rows')}) AS added
                    UNION ALL
                    SELECT day, -change FROM ({REVENUE_FLOWS.format(rows='old_rows')}) AS removed
                ) AS flows GROUP BY day HAVING sum(change) <> 0 ORDER BY day) AS deltas;
        ELSE
            PERFORM dashboard_add_revenue(day, -change) FROM (
                SELECT day, sum(change) AS change FROM ({REVENUE_FLOWS.format(rows='old_rows')}) AS flows
                GROUP BY day HAVING sum(change) <> 0 ORDER BY day) AS deltas;
        END IF;
        RETURN NULL;
    END $$""",
    f"""
    CREATE FUNCTION dashboard_logins_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM dashboard_add_logins(day, outcome, n::integer, n::integer) FROM (
                SELECT {DAY.format('at')} AS day, outcome, count(*) AS n FROM new_rows
                GROUP BY 1, 2 ORDER BY 1, 2) AS deltas;
        ELSIF TG_OP = 'UPDATE' THEN
            PERFORM dashboard_add_logins(day, outcome, n::integer, w::integer) FROM (
                SELECT day, outcome, sum(n) AS n, count(*) AS w FROM (
                    SELECT {DAY.format('at')} AS day, outcome, 1 AS n FROM new_rows
                    UNION ALL
                    SELECT {DAY.format('at')}, outcome, -1 FROM old_rows
                ) AS moved GROUP BY 1, 2 ORDER BY 1, 2) AS deltas;
        ELSE
            PERFORM dashboard_add_logins(day, outcome, -n::integer, n::integer) FROM (
                SELECT {DAY.format('at')} AS day, outcome, count(*) AS n FROM old_rows
                GROUP BY 1, 2 ORDER BY 1, 2) AS deltas;
        END IF;
        RETURN NULL;
    END $$""",
    f"""
    CREATE FUNCTION dashboard_rebuild_summaries() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE billing_events, payment_transactions, logins IN SHARE MODE;
        DELETE FROM dashboard_mrr_daily;
        INSERT INTO dashboard_mrr_daily (day, type, positive, change)
        SELECT day, type, change > 0, sum(change) FROM ({MRR_CHANGES.format(rows='billing_events')}) AS changes
        GROUP BY 1, 2, 3 HAVING sum(change) <> 0;
        DELETE FROM dashboard_revenue_daily;
        INSERT INTO dashboard_revenue_daily (day, change)
        SELECT day, sum(change) FROM ({REVENUE_FLOWS.format(rows='payment_transactions')}) AS flows
        GROUP BY 1 HAVING sum(change) <> 0;
        DELETE FROM dashboard_login_daily;
        INSERT INTO dashboard_login_daily (day, outcome, logins, writes)
        SELECT {DAY.format('at')}, outcome, count(*), count(*) FROM logins GROUP BY 1, 2;
    END $$""",
]

TRIGGERS = {
    'billing_events_dashboard_summaries':
        """AFTER INSERT ON billing_events REFERENCING NEW TABLE AS new_rows
           FOR EACH STATEMENT EXECUTE FUNCTION dashboard_ledger_inserted()""",
    **{name: sql for table, function in (('payment_transactions', 'dashboard_payments_changed'),
                                         ('logins', 'dashboard_logins_changed'))
       for name, sql in (
           (f'{table}_dashboard_insert',
            f"""AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows
           FOR EACH STATEMENT EXECUTE FUNCTION {function}()"""),
           (f'{table}_dashboard_update',
            f"""AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
           FOR EACH STATEMENT EXECUTE FUNCTION {function}()"""),
           (f'{table}_dashboard_delete',
            f"""AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows
           FOR EACH STATEMENT EXECUTE FUNCTION {function}()"""))},
}


def upgrade():
    op.create_table('dashboard_mrr_daily',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('type', sa.String(length=40), nullable=False),
                    sa.Column('positive', sa.Boolean(), nullable=False),
                    sa.Column('change', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_dashboard_mrr_daily')))
    op.create_index('ix_dashboard_mrr_daily_key', 'dashboard_mrr_daily', ['day', 'type', 'positive'])
    op.create_table('dashboard_revenue_daily',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('change', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_dashboard_revenue_daily')))
    op.create_index('ix_dashboard_revenue_daily_day', 'dashboard_revenue_daily', ['day'])
    op.create_table('dashboard_login_daily',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('day', sa.Date(), nullable=False),
                    sa.Column('outcome', sa.String(length=10), nullable=False),
                    sa.Column('logins', sa.Integer(), nullable=False),
                    sa.Column('writes', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_dashboard_login_daily')))
    op.create_index('ix_dashboard_login_daily_key', 'dashboard_login_daily', ['day', 'outcome'])
    if op.get_bind().dialect.name != 'postgresql':
        return
    for sql in FUNCTIONS:
        op.execute(sql)
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute("SELECT dashboard_rebuild_summaries()")
    op.execute("ANALYZE dashboard_mrr_daily, dashboard_revenue_daily, dashboard_login_daily")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for name, body in TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {body.split(' ON ', 1)[1].split()[0]}")
        for name in ('dashboard_rebuild_summaries()', 'dashboard_logins_changed()', 'dashboard_payments_changed()',
                     'dashboard_ledger_inserted()', 'dashboard_add_logins(date, varchar, integer, integer)',
                     'dashboard_add_revenue(date, numeric)',
                     'dashboard_add_mrr(date, varchar, boolean, numeric)'):
            op.execute(f"DROP FUNCTION {name}")
    op.drop_index('ix_dashboard_login_daily_key', table_name='dashboard_login_daily')
    op.drop_table('dashboard_login_daily')
    op.drop_index('ix_dashboard_revenue_daily_day', table_name='dashboard_revenue_daily')
    op.drop_table('dashboard_revenue_daily')
    op.drop_index('ix_dashboard_mrr_daily_key', table_name='dashboard_mrr_daily')
    op.drop_table('dashboard_mrr_daily')
