"""Votes by idea and time: the idea page's latest voters without sorting all its votes.

Revision ID: 8c4d2e1f9a6b
Revises: 5b1f0c2a7d3e
Create Date: 2026-11-23 13:50:00

"""

from alembic import op

revision = "8c4d2e1f9a6b"
down_revision = "5b1f0c2a7d3e"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.create_index("ix_votes_idea_created", ["idea_id", "created_at", "id"])


def downgrade():
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_index("ix_votes_idea_created")
