"""dashboard without change markers: the per-process caches of the dashboard are gone, and with
them the sequences and triggers of migration 0007 that told them when a table changed

Every write to accounts, subscriptions, payment_transactions and logins ran two triggers (one per
statement, one deferred per row) for them. Measured without the caches (issue 19, figures in the
README), every dashboard card stays within its target.

Revision ID: 0021_dashboard_without_markers
Revises: 0020_real_foreign_keys
"""
from alembic import op

revision = '0021_dashboard_without_markers'
down_revision = '0020_real_foreign_keys'
branch_labels = None
depends_on = None

MARKED = {'payment_transactions': 'dashboard_payments_version', 'logins': 'dashboard_logins_version',
          'subscriptions': 'dashboard_subscriptions_version', 'accounts': 'dashboard_accounts_version'}


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no trigger is dropped with its events pending
    for table, sequence in MARKED.items():
        op.execute(f"DROP TRIGGER {table}_dashboard_version_commit ON {table}")
        op.execute(f"DROP TRIGGER {table}_dashboard_version ON {table}")
        op.execute(f"DROP SEQUENCE {sequence}")
    op.execute("DROP FUNCTION dashboard_bump_version()")


def downgrade():
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
