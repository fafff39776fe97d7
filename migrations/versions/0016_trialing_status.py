"""trialing status: the accounts list's status and forward-MRR sort indexes know trials and unpaid
starts

Revision ID: 0016_trialing_status
Revises: 0015_archive_unmapped_index

DOMAIN §3 "Account status" starts with Trialing (a trial not yet converted: MRR 0 everywhere), and
an unpaid start (`incomplete`) pays nothing yet either. The accounts list listed both as Active with
their price as MRR while the KPI counted 0. The list sorts and filters by the status rank and the
forward MRR read from indexes on exactly these expressions (0008; constants inlined, the same text
as backoffice.list_indexes), so the indexes and the planner statistics of 0010 are made again with
the new rule.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016_trialing_status'
down_revision = '0015_archive_unmapped_index'
branch_labels = None
depends_on = None

PRICE = 'coalesce(price_amount, 0)'
STATUS_RANK = (f"CASE WHEN status = 'trialing' AND {PRICE} > 0 THEN 0 "
               "WHEN status = 'incomplete' AND subscribed_since IS NOT NULL THEN 4 "
               "WHEN status = 'incomplete' THEN 5 "
               f'WHEN cancel_at_period_end IS TRUE AND {PRICE} > 0 THEN 1 '
               f'WHEN scheduled_plan IS NOT NULL AND scheduled_price_amount IS NOT NULL '
               f'AND scheduled_price_amount < {PRICE} THEN 2 WHEN {PRICE} > 0 THEN 3 '
               f'WHEN subscribed_since IS NOT NULL THEN 4 ELSE 5 END')
FORWARD_MRR = ("CASE WHEN status = 'trialing' OR status = 'incomplete' THEN 0 "
               'WHEN cancel_at_period_end IS TRUE THEN 0 '
               f'WHEN scheduled_price_amount IS NOT NULL THEN scheduled_price_amount ELSE {PRICE} END')
OLD_STATUS_RANK = (f'CASE WHEN cancel_at_period_end IS TRUE AND {PRICE} > 0 THEN 0 '
                   f'WHEN scheduled_plan IS NOT NULL AND scheduled_price_amount IS NOT NULL '
                   f'AND scheduled_price_amount < {PRICE} THEN 1 WHEN {PRICE} > 0 THEN 2 '
                   f'WHEN subscribed_since IS NOT NULL THEN 3 ELSE 4 END')
OLD_FORWARD_MRR = ('CASE WHEN cancel_at_period_end IS TRUE THEN 0 '
                   f'WHEN scheduled_price_amount IS NOT NULL THEN scheduled_price_amount ELSE {PRICE} END')


def _rebuild(status_rank: str, forward_mrr: str) -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    for name, expression in (('status', status_rank), ('mrr', forward_mrr)):
        op.drop_index(f'ix_subscriptions_current_{name}', table_name='subscriptions')
        op.create_index(f'ix_subscriptions_current_{name}', 'subscriptions', [sa.text(f'({expression})'), 'account_id'],
                        postgresql_where=sa.text('is_current'), sqlite_where=sa.text('is_current'))
    if postgres and int(bind.execute(sa.text('SHOW server_version_num')).scalar_one()) >= 140000:
        op.execute('DROP STATISTICS IF EXISTS st_subscriptions_plan_status')
        op.execute(f'CREATE STATISTICS st_subscriptions_plan_status ON plan, ({status_rank}) FROM subscriptions')
        op.execute('ANALYZE subscriptions')


def upgrade():
    _rebuild(STATUS_RANK, FORWARD_MRR)


def downgrade():
    _rebuild(OLD_STATUS_RANK, OLD_FORWARD_MRR)
