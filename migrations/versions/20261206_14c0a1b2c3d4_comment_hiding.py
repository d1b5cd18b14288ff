"""Comments can be hidden (after reports, or by staff resolving them): `hidden_at` and
`hidden_reason` on `comments`. A hidden comment shows only to its author and staff, and
leaves `ideas.comment_count` while hidden.

Revision ID: 14c0a1b2c3d4
Revises: 3fd4a75651b8
Create Date: 2026-12-06 14:10:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "14c0a1b2c3d4"
down_revision = "3fd4a75651b8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hidden_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("hidden_reason", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_column("hidden_reason")
        batch_op.drop_column("hidden_at")
