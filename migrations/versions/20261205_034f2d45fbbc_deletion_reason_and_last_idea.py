"""Why an idea was deleted; each user's last idea, so a double submit is decided in SQL.

- `ideas.deleted_reason`: the soft-delete mixin keeps who, when and why
  (models/base.py SoftDeleteMixin); the partial indexes over live ideas are unchanged.
- `users.last_idea_digest`, `users.last_idea_at`: the UPDATE that records a new idea
  compares them with the post (services/ideas.py), instead of locking the user's row
  and reading.

Plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+ and PostgreSQL), never a batch copy of
the table: a copy of `ideas` would lose the SQLite full-text triggers.

Revision ID: 034f2d45fbbc
Revises: c3f8a1d2e4b7
Create Date: 2026-12-05 08:23:54

"""

import sqlalchemy as sa
from alembic import op

revision = "034f2d45fbbc"
down_revision = "c3f8a1d2e4b7"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ideas", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("deleted_reason", sa.Text(), nullable=True))

    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("last_idea_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("last_idea_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("last_idea_at")
        batch_op.drop_column("last_idea_digest")

    with op.batch_alter_table("ideas", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("deleted_reason")
