"""Thread notifications and thread search (issue 14).

- `events` may name a community thread instead of an idea: `thread_id` (nullable, FK),
  `idea_id` nullable, and a CHECK that exactly one of the two is set. EventKind.REPLY
  (a new visible reply in a followed thread) is such an event.
- Threads are searched like ideas: on SQLite an FTS5 table `threads_fts` (external
  content on `threads`, kept by triggers, unicode61 without diacritic folding); on
  PostgreSQL a stored generated `threads.search_vector` ('simple' configuration) and a
  GIN index on it. Both made by hand: autogenerate does not know them (migrations/env.py).

Revision ID: 14f0a1b2c3d4
Revises: 14e0a1b2c3d4
Create Date: 2026-12-06 14:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "14f0a1b2c3d4"
down_revision = "14e0a1b2c3d4"
branch_labels = None
depends_on = None

PENDING = sa.text("fanned_out_at IS NULL")
DOCUMENT = "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(body, ''))"
FTS_TRIGGERS = {
    "threads_fts_ai": "AFTER INSERT ON threads BEGIN "
    "INSERT INTO threads_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "threads_fts_ad": "AFTER DELETE ON threads BEGIN "
    "INSERT INTO threads_fts(threads_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "threads_fts_au": "AFTER UPDATE OF title, body ON threads BEGIN "
    "INSERT INTO threads_fts(threads_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO threads_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
}


def upgrade():
    # The partial index is dropped and made again around the batch rebuild (SQLite).
    op.drop_index("ix_events_pending", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_id", sa.Integer(), nullable=True))
        batch_op.alter_column("idea_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_events_thread_id_threads"),
            "threads",
            ["thread_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_events_one_subject"), sa.text("(idea_id IS NULL) <> (thread_id IS NULL)")
        )
        batch_op.create_index("ix_events_thread_created", ["thread_id", "created_at", "id"])
    op.create_index(
        "ix_events_pending", "events", ["id"], sqlite_where=PENDING, postgresql_where=PENDING
    )
    _create_search()


def downgrade():
    _drop_search()
    op.execute("DELETE FROM events WHERE thread_id IS NOT NULL")
    op.drop_index("ix_events_pending", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_thread_created")
        batch_op.drop_constraint(batch_op.f("ck_events_one_subject"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_events_thread_id_threads"), type_="foreignkey")
        batch_op.alter_column("idea_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("thread_id")
    op.create_index(
        "ix_events_pending", "events", ["id"], sqlite_where=PENDING, postgresql_where=PENDING
    )


def _create_search():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE threads ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({DOCUMENT}) STORED"
        )
        op.execute("CREATE INDEX ix_threads_search ON threads USING gin (search_vector)")
        return
    op.execute(
        "CREATE VIRTUAL TABLE threads_fts USING fts5(title, body, content='threads', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')"
    )
    for name, body in FTS_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute("INSERT INTO threads_fts(threads_fts) VALUES ('rebuild')")


def _drop_search():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_threads_search")
        op.execute("ALTER TABLE threads DROP COLUMN IF EXISTS search_vector")
        return
    for name in FTS_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS threads_fts")
