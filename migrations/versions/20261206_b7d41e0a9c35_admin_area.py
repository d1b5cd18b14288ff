"""The admin area: archived boards, disabled accounts, member search.

- `boards.archived_at`: an archived board takes no new ideas and leaves the board lists.
- `users.disabled_at`: a disabled account cannot sign in.
- `users.search_name`: the display name NFKC-normalised and casefolded (Python does it:
  SQL's lower() is not casefold), filled here for existing accounts; on PostgreSQL with
  the "C" collation so a prefix LIKE and ORDER BY use the index `(search_name, id)`.
- `ix_users_email_prefix`: email prefix search; varchar_pattern_ops on PostgreSQL.

Plain ADD/DROP COLUMN and CREATE/DROP INDEX (SQLite 3.35+ and PostgreSQL), no batch copy.

Revision ID: b7d41e0a9c35
Revises: 034f2d45fbbc
Create Date: 2026-12-06 01:55:00

"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "b7d41e0a9c35"
down_revision = "034f2d45fbbc"
branch_labels = None
depends_on = None

SEARCH_NAME_MAX = 180
BATCH = 2000


def _search_name(display_name):
    return unicodedata.normalize("NFKC", display_name or "").casefold().strip()[:SEARCH_NAME_MAX]


def upgrade():
    search_type = sa.String(length=SEARCH_NAME_MAX).with_variant(
        sa.String(length=SEARCH_NAME_MAX, collation="C"), "postgresql"
    )
    with op.batch_alter_table("boards", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))

    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("search_name", search_type, nullable=False, server_default=sa.text("''"))
        )
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(), nullable=True))

    conn = op.get_bind()
    users = sa.table(
        "users", sa.column("id", sa.Integer), sa.column("display_name"), sa.column("search_name")
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(users.c.id, users.c.display_name)
            .where(users.c.id > last)
            .order_by(users.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            users.update().where(users.c.id == sa.bindparam("uid")),
            [{"uid": r.id, "search_name": _search_name(r.display_name)} for r in rows],
        )
        last = rows[-1].id

    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.create_index("ix_users_search_name", ["search_name", "id"], unique=False)
        batch_op.create_index(
            "ix_users_email_prefix",
            ["email_key"],
            unique=False,
            postgresql_ops={"email_key": "varchar_pattern_ops"},
        )


def downgrade():
    with op.batch_alter_table("users", schema=None, recreate="never") as batch_op:
        batch_op.drop_index("ix_users_email_prefix")
        batch_op.drop_index("ix_users_search_name")
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("search_name")

    with op.batch_alter_table("boards", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("archived_at")
