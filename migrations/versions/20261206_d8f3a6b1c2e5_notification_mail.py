"""Notification mail: outbox rows that name a notification, the unsubscribe header, and
each member's mail language.

- `mail_outbox.notification_id`: an instant notification mail is queued set-based as a
  reference and rendered at delivery (in the member's language); its index lets the same
  transaction mark which notifications got mail. No foreign key: queueing 50,000 rows in
  one statement would pay a key check per row, and delivery drops a row whose
  notification is gone.
- `mail_outbox.unsubscribe_url`: the RFC 8058 List-Unsubscribe address of a row.
- `mail_settings`: the language a member's mail is written in (no row: the default).

Revision ID: d8f3a6b1c2e5
Revises: a1e7c0d3b9f4
Create Date: 2026-12-06 05:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d8f3a6b1c2e5"
down_revision = "a1e7c0d3b9f4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mail_outbox", recreate="never") as batch:
        batch.add_column(sa.Column("notification_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("unsubscribe_url", sa.String(length=512), nullable=True))
        batch.create_index("ix_mail_outbox_notification_id", ["notification_id"])
    op.create_table(
        "mail_settings",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mail_settings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_mail_settings")),
    )


def downgrade():
    op.drop_table("mail_settings")
    with op.batch_alter_table("mail_outbox", recreate="never") as batch:
        batch.drop_index("ix_mail_outbox_notification_id")
        batch.drop_column("unsubscribe_url")
        batch.drop_column("notification_id")
