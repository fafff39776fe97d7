"""usage tracking (deployment lifecycle, add-on, suspension and plan logs, metered usage,
backfill runs) and the price book

Revision ID: 0003_usage_price_book
Revises: 0002_job_runs
Create Date: 2026-11-21 05:20:00

"""
from alembic import op
import sqlalchemy as sa

import backoffice.dbtypes


revision = '0003_usage_price_book'
down_revision = '0002_job_runs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('price_addons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('addon', sa.String(length=100), nullable=False),
    sa.Column('period', sa.String(length=5), nullable=False),
    sa.Column('price', backoffice.dbtypes.UnitPrice(precision=18, scale=6), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('created_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("period IN ('day', 'month')", name=op.f('ck_price_addons_period')),
    sa.CheckConstraint('length(currency) = 3 AND currency = upper(currency)', name=op.f('ck_price_addons_currency')),
    sa.CheckConstraint('price >= 0', name=op.f('ck_price_addons_price_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_addons')),
    sa.UniqueConstraint('addon', 'valid_from', name=op.f('uq_price_addons_addon_valid_from'))
    )
    op.create_table('price_metered',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('unit_price', backoffice.dbtypes.UnitPrice(precision=18, scale=6), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('created_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(currency) = 3 AND currency = upper(currency)', name=op.f('ck_price_metered_currency')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_price_metered_unit_price_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_metered')),
    sa.UniqueConstraint('metric', 'valid_from', name=op.f('uq_price_metered_metric_valid_from'))
    )
    op.create_table('price_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('monthly_base', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('setup_fee', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('created_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(currency) = 3 AND currency = upper(currency)', name=op.f('ck_price_plans_currency')),
    sa.CheckConstraint('monthly_base >= 0', name=op.f('ck_price_plans_monthly_base_non_negative')),
    sa.CheckConstraint('setup_fee >= 0', name=op.f('ck_price_plans_setup_fee_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_plans')),
    sa.UniqueConstraint('plan', 'valid_from', name=op.f('uq_price_plans_plan_valid_from'))
    )
    op.create_table('price_vat_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seller_country', sa.String(length=2), nullable=False),
    sa.Column('domestic_countries', sa.String(length=100), nullable=False),
    sa.Column('domestic_rate', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('created_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('domestic_rate >= 0', name=op.f('ck_price_vat_settings_rate_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_vat_settings')),
    sa.UniqueConstraint('valid_from', name=op.f('uq_price_vat_settings_valid_from'))
    )
    op.create_table('usage_backfill_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=True),
    sa.Column('snapshot_run_id', sa.Integer(), nullable=True),
    sa.Column('deployments_examined', sa.Integer(), nullable=False),
    sa.Column('lifecycle_inserted', sa.Integer(), nullable=False),
    sa.Column('events_inserted', sa.Integer(), nullable=False),
    sa.Column('suspension_events_inserted', sa.Integer(), nullable=False),
    sa.CheckConstraint("trigger IN ('api', 'admin')", name=op.f('ck_usage_backfill_runs_trigger')),
    sa.ForeignKeyConstraint(['snapshot_run_id'], ['usage_backfill_runs.id'], name=op.f('fk_usage_backfill_runs_snapshot_run_id_usage_backfill_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_backfill_runs'))
    )
    with op.batch_alter_table('usage_backfill_runs', schema=None) as batch_op:
        batch_op.create_index('ix_usage_backfill_runs_at', ['at'], unique=False)

    op.create_table('deployments',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recorded_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.CheckConstraint("source IN ('state', 'backfill')", name=op.f('ck_deployments_source')),
    sa.CheckConstraint('deleted_at IS NULL OR deleted_at >= created_at', name=op.f('ck_deployments_deleted_after_created')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_deployments_account_id_accounts')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_deployments'))
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index('ix_deployments_account_id', ['account_id', 'created_at'], unique=False)
        batch_op.create_index('ix_deployments_created_at', ['created_at'], unique=False)

    op.create_table('price_plan_allowances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('price_plan_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('included_quantity', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.CheckConstraint('included_quantity >= 0', name=op.f('ck_price_plan_allowances_included_non_negative')),
    sa.ForeignKeyConstraint(['price_plan_id'], ['price_plans.id'], name=op.f('fk_price_plan_allowances_price_plan_id_price_plans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_plan_allowances')),
    sa.UniqueConstraint('price_plan_id', 'metric', name=op.f('uq_price_plan_allowances_price_plan_id_metric'))
    )
    op.create_table('deployment_addon_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deployment_name', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('addon', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('occurred_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.CheckConstraint("kind IN ('enabled', 'disabled')", name=op.f('ck_deployment_addon_events_kind')),
    sa.CheckConstraint("source IN ('state', 'event', 'backfill', 'delete')", name=op.f('ck_deployment_addon_events_source')),
    sa.ForeignKeyConstraint(['deployment_name'], ['deployments.name'], name=op.f('fk_deployment_addon_events_deployment_name_deployments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_addon_events'))
    )
    with op.batch_alter_table('deployment_addon_events', schema=None) as batch_op:
        batch_op.create_index('ix_deployment_addon_events_account', ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_deployment_addon_events_lookup', ['deployment_name', 'addon', 'occurred_at', 'id'], unique=False)

    op.create_table('deployment_plan_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deployment_name', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('plan', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.CheckConstraint("source IN ('state', 'event', 'backfill', 'delete')", name=op.f('ck_deployment_plan_events_source')),
    sa.ForeignKeyConstraint(['deployment_name'], ['deployments.name'], name=op.f('fk_deployment_plan_events_deployment_name_deployments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_plan_events'))
    )
    with op.batch_alter_table('deployment_plan_events', schema=None) as batch_op:
        batch_op.create_index('ix_deployment_plan_events_lookup', ['deployment_name', 'occurred_at', 'id'], unique=False)

    op.create_table('deployment_suspension_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deployment_name', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('occurred_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.CheckConstraint("kind IN ('suspended', 'resumed')", name=op.f('ck_deployment_suspension_events_kind')),
    sa.CheckConstraint("source IN ('state', 'event', 'backfill', 'delete')", name=op.f('ck_deployment_suspension_events_source')),
    sa.ForeignKeyConstraint(['deployment_name'], ['deployments.name'], name=op.f('fk_deployment_suspension_events_deployment_name_deployments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment_suspension_events'))
    )
    with op.batch_alter_table('deployment_suspension_events', schema=None) as batch_op:
        batch_op.create_index('ix_deployment_suspension_events_lookup', ['deployment_name', 'occurred_at', 'id'], unique=False)

    op.create_table('usage_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('deployment_name', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('quantity', backoffice.dbtypes.Money(precision=18, scale=4), nullable=False),
    sa.Column('occurred_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', backoffice.dbtypes.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_usage_records_quantity_non_negative')),
    sa.ForeignKeyConstraint(['deployment_name'], ['deployments.name'], name=op.f('fk_usage_records_deployment_name_deployments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_records')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_usage_records_idempotency_key'))
    )
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index('ix_usage_records_account', ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_usage_records_deployment', ['deployment_name', 'metric', 'occurred_at'], unique=False)

    # The usage logs are append-only in the database too (PostgreSQL): no UPDATE, no DELETE, no
    # TRUNCATE; the one exception is the lifecycle's deleted_at, stamped once from NULL.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_SQL)


APPEND_ONLY_SQL = r'''
CREATE OR REPLACE FUNCTION backoffice_deployments_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'table deployments is append-only: DELETE refused'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.deleted_at IS NOT NULL
     OR NEW.deleted_at IS NULL
     OR NEW.name IS DISTINCT FROM OLD.name
     OR NEW.account_id IS DISTINCT FROM OLD.account_id
     OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR NEW.recorded_at IS DISTINCT FROM OLD.recorded_at
     OR NEW.source IS DISTINCT FROM OLD.source THEN
    RAISE EXCEPTION 'deployments: only deleted_at may be stamped, once (deployment %)', OLD.name
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER deployments_guard BEFORE UPDATE OR DELETE ON deployments
  FOR EACH ROW EXECUTE FUNCTION backoffice_deployments_guard();
CREATE TRIGGER deployments_no_truncate BEFORE TRUNCATE ON deployments
  FOR EACH STATEMENT EXECUTE FUNCTION backoffice_refuse_change();

CREATE TRIGGER deployment_addon_events_no_update BEFORE UPDATE OR DELETE ON deployment_addon_events
  FOR EACH ROW EXECUTE FUNCTION backoffice_refuse_change();
CREATE TRIGGER deployment_addon_events_no_truncate BEFORE TRUNCATE ON deployment_addon_events
  FOR EACH STATEMENT EXECUTE FUNCTION backoffice_refuse_change();

CREATE TRIGGER deployment_suspension_events_no_update BEFORE UPDATE OR DELETE ON deployment_suspension_events
  FOR EACH ROW EXECUTE FUNCTION backoffice_refuse_change();
CREATE TRIGGER deployment_suspension_events_no_truncate BEFORE TRUNCATE ON deployment_suspension_events
  FOR EACH STATEMENT EXECUTE FUNCTION backoffice_refuse_change();

CREATE TRIGGER deployment_plan_events_no_update BEFORE UPDATE OR DELETE ON deployment_plan_events
  FOR EACH ROW EXECUTE FUNCTION backoffice_refuse_change();
CREATE TRIGGER deployment_plan_events_no_truncate BEFORE TRUNCATE ON deployment_plan_events
  FOR EACH STATEMENT EXECUTE FUNCTION backoffice_refuse_change();

CREATE TRIGGER usage_records_no_update BEFORE UPDATE OR DELETE ON usage_records
  FOR EACH ROW EXECUTE FUNCTION backoffice_refuse_change();
CREATE TRIGGER usage_records_no_truncate BEFORE TRUNCATE ON usage_records
  FOR EACH STATEMENT EXECUTE FUNCTION backoffice_refuse_change();
'''


def downgrade():
    # The usage logs are the source the invoices are recomputed from; no migration drops them.
    raise RuntimeError("0003_usage_price_book cannot be downgraded: it holds append-only usage history")
