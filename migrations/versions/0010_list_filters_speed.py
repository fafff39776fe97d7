"""list filters speed: accounts.has_ledger_rows kept by triggers on billing_events, statistics of the
account status expression (PostgreSQL 14+), memberships indexed by (account, user), users by last seen

Revision ID: 0010_list_filters_speed
Revises: 0009_dashboard_summaries

"Not synced yet" (DOMAIN §4 banners: a paid subscription and no ledger rows) probed the ledger once
per paid account (tens of thousands of index probes per request). `accounts.has_ledger_rows` says
whether the account has a ledger row, set by a trigger on billing_events in the writer's own
transaction, whichever path inserts (the replayer, a sync's baseline rows, recovery); a partial
index holds the live accounts without one (few: the accounts not synced yet and the free ones).
PostgreSQL refuses UPDATE and DELETE of ledger rows (0001), so an account never loses its mark
there; SQLite, where nothing forbids them, has triggers for them too. A load that bypasses the
triggers (session_replication_role = replica) must set the marks itself, as the backfill below.

The accounts list filters by status with the rank expression indexed by 0008 (so a filter reads
that index); on PostgreSQL 14+ extended statistics give the planner the expression's distribution
(the statistics of a partial index's expressions are never used), so a filter matching 4 % of the
accounts and one matching 60 % get different plans.

The users search finds the members of accounts whose name matches: (account_id, user_id) answers
that from the index alone; it replaces the index on account_id. The users list sorted by last seen,
newest first and the never seen last, reads an index in that order instead of sorting every user.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_list_filters_speed'
down_revision = '0009_dashboard_summaries'
branch_labels = None
depends_on = None

# The status rank of backoffice.accounts.queries (DOMAIN §3, first match), as in 0008.
PRICE = 'coalesce(price_amount, 0)'
STATUS_RANK = (f'CASE WHEN cancel_at_period_end IS TRUE AND {PRICE} > 0 THEN 0 '
               f'WHEN scheduled_plan IS NOT NULL AND scheduled_price_amount IS NOT NULL '
               f'AND scheduled_price_amount < {PRICE} THEN 1 WHEN {PRICE} > 0 THEN 2 '
               f'WHEN subscribed_since IS NOT NULL THEN 3 ELSE 4 END')
WITHOUT_LEDGER = 'NOT has_ledger_rows AND deleted_at IS NULL'

POSTGRES_TRIGGER = [
    # Once per account in its lifetime: only accounts not marked yet are locked (in id order, so two
    # writers of several accounts never deadlock) and updated; a statement that marks nothing
    # updates nothing, so it does not fire the accounts table's own triggers (0007's change markers).
    """
    CREATE FUNCTION accounts_mark_ledger_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM accounts WHERE NOT has_ledger_rows AND id IN (SELECT account_id FROM new_rows)
        ORDER BY id FOR UPDATE;
        IF FOUND THEN
            UPDATE accounts SET has_ledger_rows = true
            WHERE NOT has_ledger_rows AND id IN (SELECT account_id FROM new_rows);
        END IF;
        RETURN NULL;
    END $$""",
    """
    CREATE TRIGGER billing_events_mark_accounts AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION accounts_mark_ledger_rows()""",
]

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


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    op.add_column('accounts', sa.Column('has_ledger_rows', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index('ix_accounts_without_ledger_rows', 'accounts', ['id'],
                    postgresql_where=sa.text(WITHOUT_LEDGER), sqlite_where=sa.text(WITHOUT_LEDGER))
    for sql in POSTGRES_TRIGGER if postgres else SQLITE_TRIGGERS:
        op.execute(sql)

    op.create_index('ix_memberships_account_user', 'memberships', ['account_id', 'user_id'])
    op.drop_index('ix_memberships_account_id', table_name='memberships')
    # SQLite sorts NULLs last when descending already (and refuses NULLS LAST in an index).
    op.create_index('ix_users_last_seen_desc', 'users',
                    [sa.text('last_seen_at DESC NULLS LAST' if postgres else 'last_seen_at DESC'), sa.text('id DESC')])

    if postgres and int(bind.execute(sa.text('SHOW server_version_num')).scalar_one()) >= 140000:
        op.execute(f'CREATE STATISTICS st_subscriptions_plan_status ON plan, ({STATUS_RANK}) FROM subscriptions')
        op.execute('ANALYZE subscriptions')

    # The backfill comes last: updating accounts queues 0007's deferred triggers on it, after which
    # PostgreSQL refuses DDL on the table in this transaction.
    op.execute(f"UPDATE accounts SET has_ledger_rows = {'true' if postgres else '1'} "
               "WHERE id IN (SELECT account_id FROM billing_events)")


def downgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        op.execute('DROP STATISTICS IF EXISTS st_subscriptions_plan_status')
    op.drop_index('ix_users_last_seen_desc', table_name='users')
    op.create_index('ix_memberships_account_id', 'memberships', ['account_id'])
    op.drop_index('ix_memberships_account_user', table_name='memberships')
    if postgres:
        op.execute('DROP TRIGGER billing_events_mark_accounts ON billing_events')
        op.execute('DROP FUNCTION accounts_mark_ledger_rows()')
    else:
        for name in ('billing_events_move_accounts', 'billing_events_unmark_accounts', 'billing_events_mark_accounts'):
            op.execute(f'DROP TRIGGER {name}')
    op.drop_index('ix_accounts_without_ledger_rows', table_name='accounts')
    with op.batch_alter_table('accounts') as batch_op:
        batch_op.drop_column('has_ledger_rows')
