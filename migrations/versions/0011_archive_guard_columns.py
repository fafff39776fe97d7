"""archive guard per column: the stripe_events immutability trigger fires only for UPDATEs that
name an immutable column (the replayer's marking of processed events names none)

The guard compared every immutable column of every updated row, the payload included (a
detoasted text comparison per row), on each UPDATE of the processing columns. As an
`UPDATE OF <immutable columns>` trigger it runs only when an UPDATE names one of them, and then
refuses any change exactly as before; DELETE and TRUNCATE stay refused.

Revision ID: 0011_archive_guard_columns
Revises: 0010_list_filters_speed
"""
from alembic import op

revision = '0011_archive_guard_columns'
down_revision = '0010_list_filters_speed'
branch_labels = None
depends_on = None

IMMUTABLE = ("id, type, api_version, stripe_created_at, received_at, payload, payload_sha256, "
             "recovery_source, recovered_at")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # One transaction: the table is never without its guard.
    op.execute("DROP TRIGGER stripe_events_immutable ON stripe_events")
    op.execute(f"CREATE TRIGGER stripe_events_immutable BEFORE UPDATE OF {IMMUTABLE} ON stripe_events "
               "FOR EACH ROW EXECUTE FUNCTION backoffice_stripe_events_guard()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER stripe_events_immutable ON stripe_events")
    op.execute("CREATE TRIGGER stripe_events_immutable BEFORE UPDATE ON stripe_events "
               "FOR EACH ROW EXECUTE FUNCTION backoffice_stripe_events_guard()")
