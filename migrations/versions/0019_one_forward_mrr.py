"""one forward MRR: the accounts list's MRR sort index reads the rule the classifier and the KPI read

Revision ID: 0019_one_forward_mrr
Revises: 0018_archive_customer_once

Forward MRR was written three times (classifier, accounts list, dashboard) and the accounts list's
copy differed from the other two: a subscription without a price but with a scheduled one, or with a
scheduled price and no scheduled plan, listed the scheduled price as its MRR while the KPI counted
0 (resp. the price). The rule now lives once, in backoffice/ledger/rules.py, and the list sorts by
its SQL; this index is made again on that expression (the text as backoffice.list_indexes derives it,
frozen here as a migration must be).
"""
import sqlalchemy as sa
from alembic import op

revision = '0019_one_forward_mrr'
down_revision = '0018_archive_customer_once'
branch_labels = None
depends_on = None

PRICE = 'COALESCE(price_amount, 0)'
FORWARD_MRR = (f"CASE WHEN {PRICE} <= 0 OR cancel_at_period_end IS TRUE OR status = 'trialing' "
               "OR status = 'incomplete' THEN 0 "
               'WHEN scheduled_plan IS NOT NULL AND scheduled_price_amount IS NOT NULL THEN scheduled_price_amount '
               f'ELSE {PRICE} END')
OLD_FORWARD_MRR = ("CASE WHEN status = 'trialing' OR status = 'incomplete' THEN 0 "
                   'WHEN cancel_at_period_end IS TRUE THEN 0 '
                   f'WHEN scheduled_price_amount IS NOT NULL THEN scheduled_price_amount ELSE {PRICE} END')


def _rebuild(forward_mrr: str) -> None:
    op.drop_index('ix_subscriptions_current_mrr', table_name='subscriptions')
    op.create_index('ix_subscriptions_current_mrr', 'subscriptions', [sa.text(f'({forward_mrr})'), 'account_id'],
                    postgresql_where=sa.text('is_current'), sqlite_where=sa.text('is_current'))


def upgrade():
    _rebuild(FORWARD_MRR)


def downgrade():
    _rebuild(OLD_FORWARD_MRR)
