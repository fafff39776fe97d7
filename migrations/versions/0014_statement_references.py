"""statement references: the ledger's and payments' references to accounts and subscriptions are
checked once per statement on PostgreSQL, not once per row

`billing_events` and `payment_transactions` name an account and (optionally) a subscription.
As declarative foreign keys, PostgreSQL checked each new row with a query of its own (one
executor start, index probe and row lock per reference: 4 per replayed invoice event, about a
sixth of the replay's database time). The replayer writes these rows in bulk (COPY), so here
the same rule is enforced per statement instead:

- AFTER INSERT ... FOR EACH STATEMENT (transition table `new_rows`): the accounts and
  subscriptions the new rows name are locked FOR KEY SHARE (as a foreign-key check locks its
  parent row: nobody deletes it or changes its id until this transaction ends), in key order;
  if fewer rows come back than distinct ids were named, the statement fails with SQLSTATE
  23503 (foreign_key_violation) naming the first missing id, as the foreign key did.
- AFTER UPDATE OF account_id, subscription_id ... FOR EACH ROW, only when one of them changed
  (payments are updated row by row; a foreign key also skipped unchanged references).
- AFTER DELETE OR UPDATE OF id ON accounts / subscriptions FOR EACH ROW: refused (23503) while
  a ledger row or payment names the old id (NO ACTION, as before). Under READ COMMITTED (the
  application's isolation) the check's fresh snapshot sees every child committed before the
  parent's row lock was granted.

SQLite keeps the declarative foreign keys (the models still declare them; see
`backoffice.models.include_object` for the comparison of models and database).

Revision ID: 0014_statement_references
Revises: 0013_replay_write_costs
"""
from alembic import op

revision = '0014_statement_references'
down_revision = '0013_replay_write_costs'
branch_labels = None
depends_on = None

CHILDREN = ("billing_events", "payment_transactions")
FOREIGN_KEYS = (("account_id", "accounts"), ("subscription_id", "subscriptions"))

CHECK_STATEMENT = """
CREATE FUNCTION backoffice_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
    locked bigint;
    missing text;
BEGIN
    SELECT count(DISTINCT account_id) INTO named FROM new_rows;
    PERFORM 1 FROM accounts WHERE id IN (SELECT account_id FROM new_rows) ORDER BY id FOR KEY SHARE;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < named THEN
        SELECT n.account_id INTO missing FROM new_rows n
        WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.account_id) ORDER BY 1 LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "%" violates the reference to "accounts"', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (account_id)=(%s) is not present in table "accounts".', missing);
    END IF;
    SELECT count(DISTINCT subscription_id) INTO named FROM new_rows;
    IF named > 0 THEN
        PERFORM 1 FROM subscriptions WHERE id IN (SELECT subscription_id FROM new_rows) ORDER BY id FOR KEY SHARE;
        GET DIAGNOSTICS locked = ROW_COUNT;
        IF locked < named THEN
            SELECT n.subscription_id::text INTO missing FROM new_rows n
            WHERE n.subscription_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = n.subscription_id) ORDER BY 1 LIMIT 1;
            RAISE EXCEPTION 'insert or update on table "%" violates the reference to "subscriptions"', TG_TABLE_NAME
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (subscription_id)=(%s) is not present in table "subscriptions".', missing);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""

CHECK_ROW = """
CREATE FUNCTION backoffice_check_row_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM accounts WHERE id = NEW.account_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" violates the reference to "accounts"', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (account_id)=(%s) is not present in table "accounts".', NEW.account_id);
    END IF;
    IF NEW.subscription_id IS NOT NULL THEN
        PERFORM 1 FROM subscriptions WHERE id = NEW.subscription_id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'insert or update on table "%" violates the reference to "subscriptions"', TG_TABLE_NAME
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (subscription_id)=(%s) is not present in table "subscriptions".',
                                      NEW.subscription_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""

REFUSE_PARENT = """
CREATE FUNCTION backoffice_refuse_referenced_{parent}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM billing_events WHERE {column} = OLD.id)
       OR EXISTS (SELECT 1 FROM payment_transactions WHERE {column} = OLD.id) THEN
        RAISE EXCEPTION 'update or delete on table "{parent}" violates a reference from the ledger or payments'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced.', OLD.id);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # Earlier migrations of the same transaction may have queued deferred trigger events on these
    # tables (the dashboard's change markers), and PostgreSQL alters no table with events pending.
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.execute(CHECK_STATEMENT)
    op.execute(CHECK_ROW)
    for child in CHILDREN:
        for column, parent in FOREIGN_KEYS:
            op.drop_constraint(f"fk_{child}_{column}_{parent}", child, type_="foreignkey")
        op.execute(f"CREATE TRIGGER {child}_references AFTER INSERT ON {child} "
                   "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backoffice_check_references()")
        op.execute(f"CREATE TRIGGER {child}_references_update AFTER UPDATE OF account_id, subscription_id ON {child} "
                   "FOR EACH ROW WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id "
                   "OR OLD.subscription_id IS DISTINCT FROM NEW.subscription_id) "
                   "EXECUTE FUNCTION backoffice_check_row_references()")
    for column, parent in FOREIGN_KEYS:
        op.execute(REFUSE_PARENT.format(parent=parent, column=column))
        op.execute(f"CREATE TRIGGER {parent}_referenced_delete AFTER DELETE ON {parent} "
                   f"FOR EACH ROW EXECUTE FUNCTION backoffice_refuse_referenced_{parent}()")
        op.execute(f"CREATE TRIGGER {parent}_referenced_update AFTER UPDATE OF id ON {parent} "
                   "FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
                   f"EXECUTE FUNCTION backoffice_refuse_referenced_{parent}()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for column, parent in FOREIGN_KEYS:
        op.execute(f"DROP TRIGGER {parent}_referenced_update ON {parent}")
        op.execute(f"DROP TRIGGER {parent}_referenced_delete ON {parent}")
        op.execute(f"DROP FUNCTION backoffice_refuse_referenced_{parent}()")
    for child in CHILDREN:
        op.execute(f"DROP TRIGGER {child}_references_update ON {child}")
        op.execute(f"DROP TRIGGER {child}_references ON {child}")
        for column, parent in FOREIGN_KEYS:
            op.create_foreign_key(f"fk_{child}_{column}_{parent}", child, parent, [column], ["id"])
    op.execute("DROP FUNCTION backoffice_check_row_references()")
    op.execute("DROP FUNCTION backoffice_check_references()")
