"""One live idea per title on a board: `ideas.title_key` and its partial unique index.

`title_key` is the SHA-256 of the title after Unicode NFKC, casefolding and collapsing
whitespace (models/idea.py title_key()). Existing ideas are given theirs here; where live
ideas on one board already share a title, the oldest keeps the key and the others keep
NULL (they predate the rule and are not refused after the fact), so the index can be built.

Plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35+ and PostgreSQL), never a batch copy of
the table: a copy of `ideas` would lose the SQLite full-text triggers.

Revision ID: 7b2e91c4d0a5
Revises: b7d41e0a9c35
Create Date: 2026-12-06 02:00:00

"""

import hashlib
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "7b2e91c4d0a5"
down_revision = "b7d41e0a9c35"
branch_labels = None
depends_on = None

LIVE = "deleted_at IS NULL"


def _title_key(title: str) -> str:
    # A copy of models/idea.py title_key() as of this revision: a migration must not
    # change when the model's code does.
    normal = " ".join(unicodedata.normalize("NFKC", title or "").casefold().split())
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


def upgrade():
    with op.batch_alter_table("ideas", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("title_key", sa.String(length=64), nullable=True))

    conn = op.get_bind()
    ideas = sa.table(
        "ideas",
        sa.column("id", sa.Integer),
        sa.column("board_id", sa.Integer),
        sa.column("title", sa.String),
        sa.column("title_key", sa.String),
        sa.column("deleted_at", sa.DateTime),
    )
    rows = conn.execute(
        sa.select(ideas.c.id, ideas.c.board_id, ideas.c.title, ideas.c.deleted_at).order_by(
            ideas.c.id
        )
    )
    seen: set[tuple[int, str]] = set()
    batch: list[dict] = []
    update = (
        sa.update(ideas)
        .where(ideas.c.id == sa.bindparam("b_id"))
        .values(title_key=sa.bindparam("b_key"))
    )
    for idea_id, board_id, title, deleted_at in rows.all():
        key = _title_key(title)
        if deleted_at is None:
            if (board_id, key) in seen:
                continue  # a live duplicate from before the rule: keeps NULL
            seen.add((board_id, key))
        batch.append({"b_id": idea_id, "b_key": key})
        if len(batch) >= 5000:
            conn.execute(update, batch)
            batch = []
    if batch:
        conn.execute(update, batch)

    op.create_index(
        "uq_ideas_board_title_key",
        "ideas",
        ["board_id", "title_key"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def downgrade():
    op.drop_index(
        "uq_ideas_board_title_key",
        table_name="ideas",
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )
    with op.batch_alter_table("ideas", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("title_key")
