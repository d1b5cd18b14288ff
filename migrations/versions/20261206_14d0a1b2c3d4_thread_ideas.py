"""Promotion of threads to ideas: indexes over `threads.idea_id`, so a community page lists
the ideas its threads became; `ideas.from_thread_id`, the thread an idea came from (kept
on the idea so that its page reads no community table). Also an index for each foreign
key of `replies` that had none (deleting a thread scanned every reply).

Revision ID: 14d0a1b2c3d4
Revises: 14c0a1b2c3d4
Create Date: 2026-12-06 14:15:00

"""

import sqlalchemy as sa
from alembic import op

HELD_SQL = "held_at IS NOT NULL AND deleted_at IS NULL"

# revision identifiers, used by Alembic.
revision = "14d0a1b2c3d4"
down_revision = "14c0a1b2c3d4"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN (no table copy on SQLite, so the ideas' triggers stay).
    op.add_column("ideas", sa.Column("from_thread_id", sa.Integer(), nullable=True))
    # Foreign keys of replies without an index of their own (a thread's cascade scanned
    # every reply; a quoted reply's SET NULL too).
    op.create_index("ix_replies_thread_fk", "replies", ["thread_id"], unique=False)
    op.create_index("ix_replies_community_fk", "replies", ["community_id"], unique=False)
    op.create_index("ix_replies_quote_of", "replies", ["quote_of_id"], unique=False)
    # The moderation queues' held posts.
    for table in ("threads", "replies"):
        op.create_index(
            f"ix_{table}_held",
            table,
            ["community_id", "id"],
            unique=False,
            sqlite_where=sa.text(HELD_SQL),
            postgresql_where=sa.text(HELD_SQL),
        )
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.create_index("ix_threads_idea", ["idea_id"], unique=False)
        batch_op.create_index(
            "ix_threads_community_idea", ["community_id", "idea_id"], unique=False
        )


def downgrade():
    op.drop_index("ix_replies_held", table_name="replies")
    op.drop_index("ix_threads_held", table_name="threads")
    op.drop_index("ix_replies_quote_of", table_name="replies")
    op.drop_index("ix_replies_community_fk", table_name="replies")
    op.drop_index("ix_replies_thread_fk", table_name="replies")
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_index("ix_threads_community_idea")
        batch_op.drop_index("ix_threads_idea")
    # SQLite's own DROP COLUMN (3.35+; the column has no index or constraint): a batch copy
    # of `ideas` would lose its full-text triggers (see d4b8e2a61f07).
    op.execute("ALTER TABLE ideas DROP COLUMN from_thread_id")
