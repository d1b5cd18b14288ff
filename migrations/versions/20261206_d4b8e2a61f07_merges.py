"""Merging duplicates: the `merged` status, `ideas.merged_into_id`, `merges`, `merge_moves`.

- `ideas.status` may be `merged` (the CHECK constraint widened); `ideas.merged_into_id`
  names the idea a merged one went into.
- `merges`: who merged which idea (B) into which (A), when, B's previous status, and
  whether and when it was undone.
- `merge_moves`: the ids of the votes and follows a merge inserted on A, so that undo
  removes exactly those.

SQLite cannot alter a CHECK constraint, and a batch copy of `ideas` would lose its
full-text triggers (see 034f2d45fbbc) and rewrite 100,000 rows. Widening a CHECK (and, on
downgrade, dropping a column's REFERENCES clause so that DROP COLUMN is allowed) changes no
stored row, so the table's schema text is edited in place, the procedure SQLite documents
for such changes (https://www.sqlite.org/lang_altertable.html#otheralter: writable_schema,
then a new schema_version so every connection reloads it). PostgreSQL alters as usual.

Revision ID: d4b8e2a61f07
Revises: e5a19c3b7f42
Create Date: 2026-12-06 06:00:00

"""

import re

import sqlalchemy as sa
from alembic import op

revision = "d4b8e2a61f07"
down_revision = "e5a19c3b7f42"
branch_labels = None
depends_on = None

OLD_STATUSES = "'heard', 'under_review', 'planned', 'in_progress', 'shipped', 'declined'"
NEW_STATUSES = OLD_STATUSES + ", 'merged'"
FK_SQL = (
    "CONSTRAINT fk_ideas_merged_into_id_ideas FOREIGN KEY(merged_into_id) "
    "REFERENCES ideas (id) ON DELETE SET NULL"
)


def _sqlite_edit_ideas(bind, edit) -> None:
    """Rewrite the CREATE TABLE text of `ideas` with `edit(sql) -> sql` (no row changes)."""
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ideas'"
    ).scalar_one()
    new = edit(sql)
    if new == sql:
        raise RuntimeError("ideas: the expected schema text was not found")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'ideas'", (new,)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _status_check(statuses: str):
    def edit(sql: str) -> str:
        return re.sub(
            r"(CONSTRAINT ck_ideas_status_known CHECK \(status IN \()[^)]*(\)\))",
            lambda m: m.group(1) + statuses + m.group(2),
            sql,
        )

    return edit


def _add_fk(sql: str) -> str:
    """The table's text with the foreign key as a last table constraint."""
    body = sql.rstrip()
    if not body.endswith(")"):
        return sql
    return body[:-1].rstrip() + ", " + FK_SQL + ")"


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Every value is NULL, so the new foreign key holds for every row already.
        op.execute("ALTER TABLE ideas ADD COLUMN merged_into_id INTEGER")
        _sqlite_edit_ideas(bind, lambda sql: _add_fk(_status_check(NEW_STATUSES)(sql)))
    else:
        op.add_column("ideas", sa.Column("merged_into_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_ideas_merged_into_id_ideas"),
            "ideas",
            "ideas",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )
        op.drop_constraint(op.f("ck_ideas_status_known"), "ideas", type_="check")
        op.execute(
            f"ALTER TABLE ideas ADD CONSTRAINT ck_ideas_status_known "
            f"CHECK (status IN ({NEW_STATUSES}))"
        )
    op.create_table(
        "merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merged_id", sa.Integer(), nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("previous_status", sa.String(length=16), nullable=False),
        sa.Column("votes_moved", sa.Integer(), server_default="0", nullable=False),
        sa.Column("follows_moved", sa.Integer(), server_default="0", nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_id"], ["ideas.id"], name=op.f("fk_merges_merged_id_ideas"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["into_id"], ["ideas.id"], name=op.f("fk_merges_into_id_ideas"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["by_id"], ["users.id"], name=op.f("fk_merges_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"],
            ["users.id"],
            name=op.f("fk_merges_undone_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merges")),
    )
    op.create_index("ix_merges_into_undone", "merges", ["into_id", "undone_at", "id"])
    op.create_index("ix_merges_merged_id", "merges", ["merged_id", "id"])
    op.create_table(
        "merge_moves",
        sa.Column("merge_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merge_id"],
            ["merges.id"],
            name=op.f("fk_merge_moves_merge_id_merges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("merge_id", "kind", "row_id", name=op.f("pk_merge_moves")),
    )


def downgrade():
    # Merged ideas get back the status they had (their moved votes stay, counted).
    op.execute(
        """
        UPDATE ideas SET status = COALESCE((
            SELECT previous_status FROM merges
            WHERE merges.merged_id = ideas.id AND merges.undone_at IS NULL
            ORDER BY merges.id DESC LIMIT 1
        ), 'heard')
        WHERE status = 'merged'
        """
    )
    op.drop_table("merge_moves")
    op.drop_index("ix_merges_merged_id", table_name="merges")
    op.drop_index("ix_merges_into_undone", table_name="merges")
    op.drop_table("merges")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite_edit_ideas(bind, _status_check(OLD_STATUSES))
        _sqlite_edit_ideas(bind, lambda sql: sql.replace(", " + FK_SQL, ""))
        op.execute("ALTER TABLE ideas DROP COLUMN merged_into_id")
    else:
        op.drop_constraint(op.f("ck_ideas_status_known"), "ideas", type_="check")
        op.execute(
            f"ALTER TABLE ideas ADD CONSTRAINT ck_ideas_status_known "
            f"CHECK (status IN ({OLD_STATUSES}))"
        )
        op.drop_constraint(op.f("fk_ideas_merged_into_id_ideas"), "ideas", type_="foreignkey")
        op.drop_column("ideas", "merged_into_id")
