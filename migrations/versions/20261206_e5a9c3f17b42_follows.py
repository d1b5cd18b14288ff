"""Following: the `follows` table and the exact `ideas.follower_count`.

- `follows`: one row per (member, idea); `active` while following; an unfollow keeps the
  row with `active = false` and `unfollowed_at`, so auto-follow never re-subscribes them.
- `ideas.follower_count`: the idea's active follows, kept exact by services/follows.py.
- Existing authors, voters and commenters follow their ideas, as new ones now do.

Revision ID: e5a9c3f17b42
Revises: c3f18a2d9e47
Create Date: 2026-12-06 03:05:00

"""

import sqlalchemy as sa
from alembic import op

revision = "e5a9c3f17b42"
down_revision = "c3f18a2d9e47"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("idea_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("unfollowed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["idea_id"], ["ideas.id"], name=op.f("fk_follows_idea_id_ideas"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_follows_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follows")),
        sa.UniqueConstraint("user_id", "idea_id", name="uq_follows_user_idea"),
    )
    op.create_index(
        "ix_follows_idea_active", "follows", ["idea_id", "active", "user_id"], unique=False
    )
    with op.batch_alter_table("ideas", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("follower_count", sa.Integer(), server_default="0", nullable=False)
        )
    # Everyone who would have been auto-followed: authors, voters, commenters (one
    # set-based statement each; UNION removes the overlaps).
    op.execute(
        """
        INSERT INTO follows (user_id, idea_id, active, created_at)
        SELECT user_id, idea_id, true, CURRENT_TIMESTAMP FROM (
            SELECT author_id AS user_id, id AS idea_id FROM ideas
            UNION SELECT user_id, idea_id FROM votes
            UNION SELECT author_id, idea_id FROM comments
        ) AS involved
        """
    )
    op.execute(
        """
        UPDATE ideas SET follower_count = (
            SELECT count(*) FROM follows WHERE follows.idea_id = ideas.id AND follows.active
        )
        """
    )


def downgrade():
    with op.batch_alter_table("ideas", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("follower_count")
    op.drop_index("ix_follows_idea_active", table_name="follows")
    op.drop_table("follows")
