"""dashboard speed: partial indexes for live accounts and sessions, and change markers (PostgreSQL)

Revision ID: 0007_dashboard_speed
Revises: 0006_invoice_sort_indexes

Indexes: the account counts of the KPI tiles, the growth card and the plan distribution read only
live (not deleted) accounts, index-only; the active-sessions tile reads only unrevoked sessions.

Change markers (PostgreSQL only): the dashboard keeps its figures (all-time daily revenue and
login series, blended MRR, plan and account counts, the banners' counts) per process and reuses
them while their tables are unchanged. These tables are updated in place (refunds, credit notes,
syncs, soft deletes), so "the newest row" cannot tell; instead every write to payment_transactions,
logins, subscriptions or accounts advances that table's sequence, once right away (for the
writer's own transaction) and once again just before commit (so no reader keeps a figure computed
before the commit under the new marker). Reading a sequence neither blocks nor is blocked by writers.
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_dashboard_speed'
down_revision = '0006_invoice_sort_indexes'
branch_labels = None
depends_on = None

MARKED = {'payment_transactions': 'dashboard_payments_version', 'logins': 'dashboard_logins_version',
          'subscriptions': 'dashboard_subscriptions_version', 'accounts': 'dashboard_accounts_version'}


def upgrade():
    op.create_index('ix_accounts_live_created_at', 'accounts', ['created_at'],
                    postgresql_where=sa.text('deleted_at IS NULL'), sqlite_where=sa.text('deleted_at IS NULL'))
    op.create_index('ix_accounts_deleted', 'accounts', ['id'],
                    postgresql_where=sa.text('deleted_at IS NOT NULL'),
                    sqlite_where=sa.text('deleted_at IS NOT NULL'))
    op.create_index('ix_user_sessions_live_last_seen_at', 'user_sessions', ['last_seen_at'],
                    postgresql_where=sa.text('revoked_at IS NULL'), sqlite_where=sa.text('revoked_at IS NULL'))
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("""
        CREATE FUNCTION dashboard_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM nextval(TG_ARGV[0]::regclass);
            RETURN NULL;
        END $$""")
    for table, sequence in MARKED.items():
        op.execute(f"CREATE SEQUENCE {sequence}")
        op.execute(f"""CREATE TRIGGER {table}_dashboard_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
                       ON {table} FOR EACH STATEMENT EXECUTE FUNCTION dashboard_bump_version('{sequence}')""")
        op.execute(f"""CREATE CONSTRAINT TRIGGER {table}_dashboard_version_commit AFTER INSERT OR UPDATE OR DELETE
                       ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                       EXECUTE FUNCTION dashboard_bump_version('{sequence}')""")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table, sequence in MARKED.items():
            op.execute(f"DROP TRIGGER {table}_dashboard_version_commit ON {table}")
            op.execute(f"DROP TRIGGER {table}_dashboard_version ON {table}")
            op.execute(f"DROP SEQUENCE {sequence}")
        op.execute("DROP FUNCTION dashboard_bump_version()")
    op.drop_index('ix_user_sessions_live_last_seen_at', table_name='user_sessions')
    op.drop_index('ix_accounts_deleted', table_name='accounts')
    op.drop_index('ix_accounts_live_created_at', table_name='accounts')
