"""Email verification: `users.email_verified_at` and `users.activated_at`.

- `email_verified_at`: when the account's current address was confirmed with an emailed
  link; NULL while it is unconfirmed (a new sign-up, or just after an email change).
  Notification mail goes only to confirmed addresses.
- `activated_at`: when the account's first address was confirmed. A sign-up from the
  registration form is not active until its link is opened, and cannot sign in with its
  password before that: otherwise "register with someone's address, then sign in with the
  password you chose" would tell whether that address already had an account.

Every account that exists when this runs counts as confirmed and active (both set to its
creation time), so nobody is cut off from sign-in or from mail by the upgrade.

Plain ADD/DROP COLUMN (SQLite 3.35+ and PostgreSQL), no batch copy.

Revision ID: e5a19c3b7f42
Revises: d8f3a6b1c2e5
Create Date: 2026-12-06 03:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "e5a19c3b7f42"
down_revision = "d8f3a6b1c2e5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("activated_at", sa.DateTime(), nullable=True))
    users = sa.table(
        "users",
        sa.column("created_at", sa.DateTime()),
        sa.column("email_verified_at", sa.DateTime()),
        sa.column("activated_at", sa.DateTime()),
    )
    op.get_bind().execute(
        users.update().values(email_verified_at=users.c.created_at, activated_at=users.c.created_at)
    )


def downgrade():
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("activated_at")
        batch_op.drop_column("email_verified_at")
