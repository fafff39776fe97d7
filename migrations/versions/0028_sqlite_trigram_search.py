"""search speed on SQLite: the header search's "contains" matches (a partial account id, a name or
a user's e-mail that contains what was typed) read FTS5 trigram tables instead of every row
(backoffice/search/sqlite_fts.py). PostgreSQL already reads pg_trgm indexes: nothing changes there.

Each table holds the searched row's key and text; triggers keep it, a changed or deleted row found
by its key (LIKE reads the trigram index; `=` keeps the one row). The fill copies what exists.

Revision ID: 0028_sqlite_trigram_search
Revises: 0027_long_stripe_customer_ids
"""
from alembic import op

revision = '0028_sqlite_trigram_search'
down_revision = '0027_long_stripe_customer_ids'
branch_labels = None
depends_on = None

INDEXED = {'accounts': ('id', 'name'), 'users': ('id', 'email')}  # table: key, searched columns after it


def upgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table, columns in INDEXED.items():
        key, names = columns[0], ', '.join(columns)
        new = ', '.join(f'new.{c}' for c in columns)
        changed = ' OR '.join(f'old.{c} IS NOT new.{c}' for c in columns)
        drop_old = f'DELETE FROM {table}_fts WHERE {key} LIKE old.{key} AND {key} = old.{key};'
        op.execute(f"CREATE VIRTUAL TABLE {table}_fts USING fts5({names}, tokenize = 'trigram')")
        op.execute(f'INSERT INTO {table}_fts ({names}) SELECT {names} FROM {table}')
        op.execute(f'CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN '
                   f'INSERT INTO {table}_fts ({names}) VALUES ({new}); END')
        op.execute(f'CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {names} ON {table} WHEN {changed} BEGIN '
                   f'{drop_old} INSERT INTO {table}_fts ({names}) VALUES ({new}); END')
        op.execute(f'CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN {drop_old} END')


def downgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table in reversed(INDEXED):
        for event in ('delete', 'update', 'insert'):
            op.execute(f'DROP TRIGGER {table}_fts_{event}')
        op.execute(f'DROP TABLE {table}_fts')
