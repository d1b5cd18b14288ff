"""Per-community freshness: `communities.stamp`, `community_directory_version`, and the
triggers that move them.

A committed write to a community's content (its row, threads, replies, thread follows,
members, bans) moves that community's stamp, and every change of a `communities` row moves
the directory's version. Triggers, so that no code path (ORM, Core, raw SQL, another
process) can forget: the stamp moves in the writer's own transaction and becomes visible
with the data, exactly like the page cache's version in the database. Those tables are
declared `page_content(True, scope=COMMUNITY)`: a write to them no longer moves the shared
content version (perf/freshness.py), and only pages keyed by the stamp show them
(perf/scopes.py).

On SQLite, a later batch migration that copies one of these tables drops its triggers:
tests/test_community_freshness.py fails until they are made again.

Revision ID: 14e0a1b2c3d4
Revises: 14d0a1b2c3d4
Create Date: 2026-12-06 14:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "14e0a1b2c3d4"
down_revision = "14d0a1b2c3d4"
branch_labels = None
depends_on = None

#: Tables of one community's content, and how a row names its community (frozen here, as
#: a migration must be; models.community declares the same tables with scope=COMMUNITY).
CHILDREN = {
    "threads": "{row}.community_id",
    "replies": "{row}.community_id",
    "community_members": "{row}.community_id",
    "community_bans": "{row}.community_id",
    "thread_follows": "(SELECT community_id FROM threads WHERE id = {row}.thread_id)",
}
BUMP = "UPDATE communities SET stamp = stamp + 1 WHERE id IN ({ids})"
DIRECTORY_BUMP = "UPDATE community_directory_version SET value = value + 1 WHERE id = 1"
DIRECTORY_VALUE = "(SELECT value FROM community_directory_version WHERE id = 1)"


def _sqlite_triggers():
    for table, community in CHILDREN.items():
        new, old = community.format(row="NEW"), community.format(row="OLD")
        yield f"{table}_stamp_insert", f"AFTER INSERT ON {table}", BUMP.format(ids=new)
        yield f"{table}_stamp_update", f"AFTER UPDATE ON {table}", BUMP.format(ids=f"{old}, {new}")
        yield f"{table}_stamp_delete", f"AFTER DELETE ON {table}", BUMP.format(ids=old)
    # Any change of a community's row (its own, or a child's BUMP) moves the directory's
    # version and takes it as the row's new stamp: stamps are never reused, even by a
    # community made again under a deleted one's slug. recursive_triggers is off (SQLite's
    # default): the trigger's own UPDATE does not fire it again.
    for verb in ("insert", "update"):
        yield (
            f"communities_stamp_{verb}",
            f"AFTER {verb.upper()} ON communities",
            f"{DIRECTORY_BUMP}; UPDATE communities SET stamp = {DIRECTORY_VALUE} WHERE id = NEW.id",
        )
    yield "communities_stamp_delete", "AFTER DELETE ON communities", DIRECTORY_BUMP


def _postgresql():
    for table, community in CHILDREN.items():
        new, old = community.format(row="NEW"), community.format(row="OLD")
        yield f"""
CREATE FUNCTION {table}_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN {BUMP.format(ids=new)};
  ELSIF TG_OP = 'UPDATE' THEN {BUMP.format(ids=f"{old}, {new}")};
  ELSE {BUMP.format(ids=old)};
  END IF;
  RETURN NULL;
END $$"""
        yield (
            f"CREATE TRIGGER {table}_stamp AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_stamp()"
        )
    # Any change of a community's row moves the directory's version and takes it as the
    # row's new stamp (never reused); the directory's row stays locked to the commit, so
    # stamps are handed out in commit order.
    yield f"""
CREATE FUNCTION communities_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {DIRECTORY_BUMP} RETURNING value INTO NEW.stamp;
  RETURN NEW;
END $$"""
    yield (
        "CREATE TRIGGER communities_stamp BEFORE INSERT OR UPDATE ON communities "
        "FOR EACH ROW EXECUTE FUNCTION communities_stamp()"
    )
    yield f"""
CREATE FUNCTION communities_directory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {DIRECTORY_BUMP};
  RETURN NULL;
END $$"""
    yield (
        "CREATE TRIGGER communities_directory AFTER DELETE ON communities "
        "FOR EACH ROW EXECUTE FUNCTION communities_directory()"
    )


def upgrade():
    op.add_column(
        "communities",
        sa.Column("stamp", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
    )
    op.create_table(
        "community_directory_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_directory_version")),
    )
    # Above every stamp already given (each community's stamp is 1 now).
    op.execute("INSERT INTO community_directory_version (id, value) VALUES (1, 2)")
    if op.get_bind().dialect.name == "postgresql":
        for statement in _postgresql():
            op.execute(statement)
    else:
        for name, when, body in _sqlite_triggers():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body}; END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in CHILDREN:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_stamp ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_stamp()")
        op.execute("DROP TRIGGER IF EXISTS communities_stamp ON communities")
        op.execute("DROP FUNCTION IF EXISTS communities_stamp()")
        op.execute("DROP TRIGGER IF EXISTS communities_directory ON communities")
        op.execute("DROP FUNCTION IF EXISTS communities_directory()")
    else:
        for name, _when, _body in _sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("community_directory_version")
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_column("stamp")
