"""partial reversals: a credit note or refund takes back from net revenue the part it credits,
ex-VAT (payment_transactions.reversed_excluding_tax), not the whole invoice (issue 22 part 5)

Before, any credit note or refund removed the payment's whole ex-VAT amount from revenue, so a
half credit note dropped the other half too. The new column holds what the reversal takes back
(backoffice.ledger.readers.reversed_excluding_tax: the credited amount less its VAT share, pro
rata, in the currency's minor units, at most the payment's ex-VAT; null when nothing reversed it).
Existing rows are filled in here; on PostgreSQL the revenue summary's trigger and rebuild read the
column, and the summary is rebuilt from the payments.

Revision ID: 0024_partial_reversals
Revises: 0023_job_runs_by_account
"""
import sqlalchemy as sa
from alembic import op

import backoffice.dbtypes
from backoffice.ledger.readers import reversed_excluding_tax  # the rule as of this revision

revision = '0024_partial_reversals'
down_revision = '0023_job_runs_by_account'
branch_labels = None
depends_on = None

DAY = "date(timezone('UTC', {}))"
CURRENT = "superseded_at IS NULL"
MRR_CHANGES = f"""
    SELECT {DAY.format('occurred_at')} AS day, type,
           coalesce(new_amount, committed_mrr)
             - coalesce(lag(coalesce(new_amount, committed_mrr)) OVER (
                 PARTITION BY subscription_id, account_id ORDER BY occurred_at, id), 0) AS change
    FROM {{rows}} WHERE amount_delta IS NOT NULL"""
REVERSED_BEFORE = ("amount_excluding_tax",
                   "credit_note_url IS NOT NULL OR credit_noted_at IS NOT NULL OR refunded_at IS NOT NULL")
REVERSED_NOW = ("reversed_excluding_tax", "reversed_excluding_tax IS NOT NULL")


def _functions(taken: str, reversed_: str) -> list[str]:
    """0009's payments trigger and 0017's rebuild, with the reversal's amount and predicate."""
    flows = f"""
        SELECT {DAY.format('date')} AS day, amount_excluding_tax AS change FROM {{rows}} WHERE status = 'succeeded'
        UNION ALL
        SELECT {DAY.format('coalesce(credit_noted_at, refunded_at, date)')}, -{taken} FROM {{rows}}
        WHERE status = 'succeeded' AND ({reversed_})"""
    return [f"""
    CREATE OR REPLACE FUNCTION dashboard_payments_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM dashboard_add_revenue(day, change) FROM (
                SELECT day, sum(change) AS change FROM ({flows.format(rows='new_rows')}) AS flows
                GROUP BY day HAVING sum(change) <> 0 ORDER BY day) AS deltas;
        ELSIF TG_OP = 'UPDATE' THEN
            PERFORM dashboard_add_revenue(day, change) FROM (
                SELECT day, sum(change) AS change FROM (
                    SELECT day, change FROM ({flows.format(rows='new_rows')}) AS added
                    UNION ALL
                    SELECT day, -change FROM ({flows.format(rows='old_rows')}) AS removed
                ) AS flows GROUP BY day HAVING sum(change) <> 0 ORDER BY day) AS deltas;
        ELSE
            PERFORM dashboard_add_revenue(day, -change) FROM (
                SELECT day, sum(change) AS change FROM ({flows.format(rows='old_rows')}) AS flows
                GROUP BY day HAVING sum(change) <> 0 ORDER BY day) AS deltas;
        END IF;
        RETURN NULL;
    END $$""", f"""
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
        SELECT day, sum(change) FROM ({flows.format(rows='payment_transactions')}) AS flows
        GROUP BY 1 HAVING sum(change) <> 0;
        DELETE FROM dashboard_login_daily;
        INSERT INTO dashboard_login_daily (day, outcome, logins, writes)
        SELECT {DAY.format('at')}, outcome, count(*), count(*) FROM logins GROUP BY 1, 2;
    END $$"""]


COLUMNS = ("id", "currency", "amount_excluding_tax", "tax_amount", "credit_noted_at", "credit_note_url",
           "credit_note_amount", "refunded_at", "refund_amount")


def _fill() -> None:
    """Each reversed payment's reversed_excluding_tax, in batches (Money columns: SQLite keeps them
    as scaled integers, so they are read and written through the column type)."""
    money = backoffice.dbtypes.Money()
    payments = sa.table(
        'payment_transactions', sa.column('id', sa.Integer()), sa.column('currency', sa.String()),
        *(sa.column(c, money) for c in ("amount_excluding_tax", "tax_amount", "credit_note_amount", "refund_amount",
                                        "reversed_excluding_tax")),
        *(sa.column(c, backoffice.dbtypes.UTCDateTime()) for c in ("credit_noted_at", "refunded_at")),
        sa.column('credit_note_url', sa.String()))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(*(payments.c[c] for c in COLUMNS)).where(
                payments.c.id > last, sa.or_(payments.c.credit_noted_at.is_not(None),
                                             payments.c.credit_note_url.is_not(None),
                                             payments.c.refunded_at.is_not(None)))
            .order_by(payments.c.id).limit(1000)).mappings().all()
        if not rows:
            return
        bind.execute(payments.update().where(payments.c.id == sa.bindparam('b_id'))
                     .values(reversed_excluding_tax=sa.bindparam('b_taken', type_=money)),
                     [{'b_id': r['id'], 'b_taken': reversed_excluding_tax(r)} for r in rows])
        last = rows[-1]['id']


def upgrade():
    op.add_column('payment_transactions',
                  sa.Column('reversed_excluding_tax', backoffice.dbtypes.Money(), nullable=True))
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:  # every change of the table before the fill: its UPDATEs leave deferred trigger events
        for sql in _functions(*REVERSED_NOW):
            op.execute(sql)
        op.create_check_constraint(op.f('ck_payment_transactions_reversed_within_the_payment'), 'payment_transactions',
                                   'reversed_excluding_tax >= 0 AND reversed_excluding_tax <= amount_excluding_tax')
        op.drop_index('ix_payment_transactions_revenue', table_name='payment_transactions')
        op.create_index('ix_payment_transactions_revenue', 'payment_transactions', ['date'],
                        postgresql_include=['amount_excluding_tax', 'reversed_excluding_tax', 'credit_noted_at',
                                            'refunded_at'],
                        postgresql_where=sa.text("status = 'succeeded'"))
    _fill()
    if postgres:
        op.execute("SELECT dashboard_rebuild_summaries()")
        # The fill's deferred constraint checks run now: pending, they would refuse the next
        # migration's ALTER TABLE of payment_transactions in the same transaction.
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")


def downgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        for sql in _functions(*REVERSED_BEFORE):
            op.execute(sql)
        op.drop_index('ix_payment_transactions_revenue', table_name='payment_transactions')
        op.create_index('ix_payment_transactions_revenue', 'payment_transactions', ['date'],
                        postgresql_include=['amount_excluding_tax', 'credit_noted_at', 'refunded_at',
                                            'credit_note_url'],
                        postgresql_where=sa.text("status = 'succeeded'"))
        op.drop_constraint(op.f('ck_payment_transactions_reversed_within_the_payment'), 'payment_transactions')
    op.drop_column('payment_transactions', 'reversed_excluding_tax')
    if postgres:
        op.execute("SELECT dashboard_rebuild_summaries()")
