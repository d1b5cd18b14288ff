"""Content version: one shared counter that keys cached anonymous pages.

Revision ID: 5b1f0c2a7d3e
Revises: 09e7dd4ad8e9
Create Date: 2026-11-23 13:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "5b1f0c2a7d3e"
down_revision = "09e7dd4ad8e9"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "content_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_version")),
    )
    op.bulk_insert(table, [{"id": 1, "value": 1}])


def downgrade():
    op.drop_table("content_version")
