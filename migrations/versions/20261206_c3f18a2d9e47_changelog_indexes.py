"""Indexes for the shipped changelog and the status-change feed.

`ix_status_changes_to_created` (to_status, created_at, id): the changelog walks the moves
to shipped newest first, and the headline counts those of the last 12 months, from this
index alone. `ix_status_changes_created` (created_at, id): the changes feed takes the
newest 50 moves.

Revision ID: c3f18a2d9e47
Revises: 7b2e91c4d0a5
Create Date: 2026-12-06 03:05:00

"""

from alembic import op

revision = "c3f18a2d9e47"
down_revision = "7b2e91c4d0a5"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_status_changes_to_created",
        "status_changes",
        ["to_status", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_status_changes_created", "status_changes", ["created_at", "id"], unique=False
    )


def downgrade():
    op.drop_index("ix_status_changes_created", table_name="status_changes")
    op.drop_index("ix_status_changes_to_created", table_name="status_changes")
