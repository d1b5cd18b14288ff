"""Promotion of threads to ideas: indexes over `threads.idea_id`, so the idea page finds
the thread it came from and a community page lists the ideas its threads became.

Revision ID: 14d0a1b2c3d4
Revises: 14c0a1b2c3d4
Create Date: 2026-12-06 14:15:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "14d0a1b2c3d4"
down_revision = "14c0a1b2c3d4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.create_index("ix_threads_idea", ["idea_id"], unique=False)
        batch_op.create_index(
            "ix_threads_community_idea", ["community_id", "idea_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_index("ix_threads_community_idea")
        batch_op.drop_index("ix_threads_idea")
