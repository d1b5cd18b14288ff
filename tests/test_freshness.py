"""Cached pages are never stale, whoever writes, and only page content empties them
(perf/freshness.py, models.page_content()).

"Served from the cache" is measured as a visitor's request that never reaches Flask;
"fresh" as one that does, and shows the write. Most tests run with each version store: the
backend's own (the file beside SQLite, the table in PostgreSQL) and Redis.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, Integer, MetaData, Table, insert, text, update
from werkzeug.test import EnvironBuilder

import ideaboard
from ideaboard.extensions import db
from ideaboard.models import PAGE_CONTENT, SCOPE, TABLES_WITHOUT_MODEL, Base, Idea, OutboxMessage
from ideaboard.perf import freshness
from ideaboard.perf.freshness import NOTHING, ROWS, SCHEMA, content_changed, declared, judge_sql
from ideaboard.services import accounts, votes

from . import freshness_kit
from .conftest import BACKEND, ROOT, _reset, fresh_app
from .factories import make_idea, make_user

# The shared fixtures and visitor (freshness_kit.py), found by pytest under these names.
settings, server, other = freshness_kit.settings, freshness_kit.server, freshness_kit.other
Visitor = freshness_kit.Visitor

postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL pass")


# --- fixtures and helpers --------------------------------------------------------------


def version(app):
    """The app's current content version, read as a request would."""
    with app.app_context():
        return app.extensions["ideaboard_cache"].versions.read()


def run_command(app, *args: str, input: str | None = None):
    """Run a `flask` command in `app` (its own context, as a separate process would)."""
    db.session.commit()  # end the test's transaction: the command must see its writes
    with app.app_context():
        result = app.test_cli_runner().invoke(args=list(args), input=input)
    assert result.exit_code == 0, result.output
    return result


def retitle(conn, idea_id: int, title: str) -> None:
    conn.execute(update(Idea.__table__).where(Idea.id == idea_id).values(title=title))


class _Undo(Exception):
    pass


# Each door writes `title` into idea `idea_id`, then commits or rolls back.
def _engine_begin_core(idea_id, title, commit):
    with db.engine.begin() as conn:
        retitle(conn, idea_id, title)
        if not commit:
            raise _Undo


def _engine_begin_text(idea_id, title, commit):
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE ideas SET title = :t WHERE id = :i"), {"t": title, "i": idea_id})
        if not commit:
            raise _Undo


def _exec_driver_sql(idea_id, title, commit):
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE ideas SET title = '{title}' WHERE id = {int(idea_id)}")
        if not commit:
            raise _Undo


def _session_connection(idea_id, title, commit):
    retitle(db.session.connection(), idea_id, title)
    db.session.commit() if commit else db.session.rollback()


def _connect_and_commit(idea_id, title, commit):
    with db.engine.connect() as conn:
        retitle(conn, idea_id, title)
        conn.commit() if commit else conn.rollback()


def _orm(idea_id, title, commit):
    db.session.get(Idea, idea_id).title = title
    db.session.flush()
    db.session.commit() if commit else db.session.rollback()


def _autocommit(idea_id, title, commit):
    if BACKEND != "postgres":
        pytest.skip("SQLite runs every statement in a transaction (perf/writergate.py)")
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        retitle(conn, idea_id, title)  # committed as it returns: nothing to roll back


DOORS = {
    "engine.begin() Core": _engine_begin_core,
    "engine.begin() text()": _engine_begin_text,
    "exec_driver_sql()": _exec_driver_sql,
    "session.connection()": _session_connection,
    "engine.connect() commit()": _connect_and_commit,
    "ORM session": _orm,
    "autocommit": _autocommit,
}


# --- item 1: every writer, every door ---------------------------------------------------


@pytest.mark.parametrize("door", DOORS.values(), ids=DOORS.keys())
def test_a_committed_write_through_any_door_is_on_every_next_visitor_page(server, other, door):
    """Any door's write: rolled back, the page stays cached; committed, every worker shows it."""
    idea = make_idea(title="Old title")
    here, there = Visitor(server), Visitor(other)
    assert "Old title" in here.warm() and "Old title" in there.warm()
    if door is not _autocommit:
        try:
            door(idea.id, "Undone title", commit=False)
        except _Undo:
            pass
        rendered, page = here.get()
        assert not rendered and "Old title" in page
        assert "Old title" in there.get()[1]
    door(idea.id, "New title", commit=True)
    rendered, page = here.get()
    assert rendered and "New title" in page
    # With Redis, the other worker may take the page this one just rendered.
    assert "New title" in there.get()[1]


def test_the_version_moves_at_the_commit_and_not_before(server):
    """The version moves at the writer's commit, not before (in the database: in its own)."""
    idea = make_idea()
    versions = server.extensions["ideaboard_cache"].versions
    before = version(server)
    with db.engine.connect() as conn:
        retitle(conn, idea.id, "Written")
        assert version(server) == before  # pages of what is committed are still right
        if versions.in_transaction:
            # The version's row is not locked yet: another writer's bump does not wait.
            with db.engine.connect() as bumper:
                bumper.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                bumper.exec_driver_sql(versions.SQL)
                bumper.commit()
            before = version(server)
        conn.commit()
    assert version(server) != before
    if versions.in_transaction:  # moved by the writer's own transaction, with the data
        with db.engine.connect() as conn:
            xmin = "SELECT CAST(xmin AS text) FROM {} WHERE id = {}"
            assert conn.exec_driver_sql(xmin.format("content_version", 1)).scalar() == (
                conn.exec_driver_sql(xmin.format("ideas", idea.id)).scalar()
            )


@pytest.mark.parametrize("how", ["session.connection()", "content_changed()"])
def test_a_write_inside_a_request_moves_the_version_before_the_response_can_leave(
    make_app, settings, how, caplog
):
    """A view's write moves the version before the response leaves, even with a one-slot pool."""
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 2, "hide_parameters": True}
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS=options, **settings)
    _reset(app)
    with app.app_context():
        idea_id = make_idea(title="Before").id

    def write():
        if how == "content_changed()":
            content_changed()  # as after a write SQLAlchemy did not see
        else:
            retitle(db.session.connection(), idea_id, "After")
            db.session.commit()
        db.session.get(Idea, idea_id)  # a read after it: the view holds the connection
        return "ok"

    app.add_url_rule("/_test/write", "test_write", write, methods=["POST"])
    before = version(app)
    answered = []
    environ = EnvironBuilder(path="/_test/write", method="POST").get_environ()
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: answered.append(status))
    moved = version(app)  # the server has sent nothing before it iterates the body
    assert answered == ["200 OK"] and b"".join(body) == b"ok"
    assert moved != before
    assert "could not bump" not in caplog.text


def test_driver_runner_writes_count_with_their_transaction(server):
    """The vote toggle's raw-cursor writes count when their transaction commits, not on rollback.
    (Counts start at 1: an idea starts with its author's vote.)"""
    idea, member = make_idea(), make_user()
    visitor = Visitor(server)
    assert '<span class="vote-count">1</span>' in visitor.warm()
    toggle = (idea.id, member.id, member.session_token)
    with db.engine.connect() as conn:
        assert votes.toggle_for_session(conn, *toggle) is not None
        conn.rollback()
    rendered, page = visitor.get()
    assert not rendered and '<span class="vote-count">1</span>' in page
    with db.engine.connect() as conn:
        assert votes.toggle_for_session(conn, *toggle) == (True, 2, True)
        conn.commit()
    rendered, page = visitor.get()
    assert rendered and '<span class="vote-count">2</span>' in page
    if BACKEND == "postgres":  # as the fast path runs it with Redis: one autocommit statement
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            assert votes.toggle_for_session(conn, *toggle) == (False, 1, True)
        rendered, page = visitor.get()
        assert rendered and '<span class="vote-count">1</span>' in page


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["users", "create", "--email", "new@example.com", "--name", "New Person"], None),
        (["boards", "create", "--slug", "mobile", "--name", "Mobile app"], "Mobile app"),
        (["demo"], "vote-count"),
    ],
    ids=["users create", "boards create", "demo"],
)
def test_a_command_that_changes_content_leaves_no_stale_page(server, other, command, shown):
    """users create, boards create and demo in another app instance leave no stale page."""
    visitor = Visitor(server)
    visitor.warm()
    if command[0] == "users":
        run_command(other, *command, "--password", "-", input="a long enough passphrase\n")
    else:
        run_command(other, *command)
    rendered, page = visitor.get()
    assert rendered
    assert shown is None or shown in page


def test_restore_leaves_no_stale_page(server, other, tmp_path):
    """A restore (backup API or pg_restore) in another app instance leaves no stale page."""
    idea = make_idea(title="Kept in the backup")
    backup = tmp_path / ("board.dump" if BACKEND == "postgres" else "board.sqlite3")
    run_command(other, "backup", "--output", str(backup))
    db.session.get(Idea, idea.id).title = "Written after the backup"
    db.session.commit()
    visitor = Visitor(server)
    assert "Written after the backup" in visitor.warm()
    run_command(other, "restore", "--force", str(backup))
    rendered, page = visitor.get()
    assert rendered and "Kept in the backup" in page


def test_bench_seed_leaves_no_stale_page(server, other, tmp_path):
    """The bench seed (Core batches, raw COPY on PostgreSQL) leaves no stale page, per chunk."""
    from bench.seed import Writer, seed_command
    from ideaboard.models import Board

    visitor = Visitor(server)
    visitor.warm()
    with other.app_context(), db.engine.connect() as conn:
        Writer(conn).insert(
            Board.__table__,
            ("slug", "name", "description", "created_at"),
            [("copied", "Copied board", "", datetime(2026, 1, 1))],
        )
    rendered, page = visitor.get()
    assert rendered and "Copied board" in page
    every = "/ideas?status=all"  # the seed ships and declines some; the default hides them
    visitor.warm(every)
    sizes = ["--ideas", "12", "--votes", "30", "--comments", "8", "--members", "6"]
    sizes += ["--communities", "2", "--threads", "4", "--replies", "10", "--big-thread", "5"]
    db.session.commit()
    with other.app_context():
        result = other.test_cli_runner().invoke(
            seed_command, ["--state", str(tmp_path / "state.json"), *sizes]
        )
    assert result.exit_code == 0, result.output
    rendered, page = visitor.get(every)
    assert rendered and page.count("vote-count") >= 12


def test_a_command_in_another_process_leaves_no_stale_page(server, database_url, tmp_path):
    """`flask boards create` in a separate process leaves no stale page."""
    visitor = Visitor(server)
    visitor.warm()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "x" * 32,
        "IDEABOARD_INSTANCE": str(tmp_path / "instance"),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    if server.config.get("REDIS_URL"):
        env["REDIS_URL"] = server.config["REDIS_URL"]
    db.session.commit()
    args = ["boards", "create", "--slug", "elsewhere", "--name", "Made elsewhere"]
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered, page = visitor.get()
    assert rendered and "Made elsewhere" in page


# --- item 2: only content invalidates content ------------------------------------------


def test_every_table_of_the_models_declares_whether_it_is_page_content():
    """Every table in the metadata declares page_content(True) or page_content(False)."""
    missing = [
        t.name
        for t in Base.metadata.sorted_tables
        if not isinstance(t.info.get(PAGE_CONTENT), bool)
    ]
    assert missing == [], f"add page_content(True or False) to __table_args__ of {missing}"


def test_every_table_of_the_migrated_database_is_declared(app):
    """Every table the migrations make is declared, by its model or in TABLES_WITHOUT_MODEL."""
    names = sa.inspect(db.engine).get_table_names()
    missing = [name for name in names if declared(name) is None]
    assert missing == [], f"declare {missing}: a model's page_content(), or TABLES_WITHOUT_MODEL"


def _declared_tables(shown: bool) -> list[str]:
    """Tables declared `shown`; content tables with a scope (community content, whose
    triggers move a stamp instead: test_community_freshness.py) are not among them."""
    names = [
        t.name
        for t in Base.metadata.sorted_tables
        if t.info.get(PAGE_CONTENT) is shown and not t.info.get(SCOPE)
    ]
    return names + sorted(n for n, s in TABLES_WITHOUT_MODEL.items() if s is shown)


def _touch(table: str, through: str) -> None:
    """A write to every row of `table` that changes nothing in it."""
    column = sa.inspect(db.engine).get_columns(table)[0]["name"]
    sql = f"UPDATE {table} SET {column} = {column}"
    if through == "engine.begin()":
        with db.engine.begin() as conn:
            if table in Base.metadata.tables:
                t = Base.metadata.tables[table]
                conn.execute(update(t).values({column: t.c[column]}))
            else:
                conn.exec_driver_sql(sql)
    elif through == "session.connection()":
        db.session.connection().execute(text(sql))
        db.session.commit()
    else:
        db.session.execute(text(sql))
        db.session.commit()


THROUGH = ["engine.begin()", "session.connection()", "session.execute()"]


def _exists(table: str) -> bool:
    return table in sa.inspect(db.engine).get_table_names()


@pytest.mark.parametrize("through", THROUGH)
@pytest.mark.parametrize("table", _declared_tables(True))
def test_a_write_to_each_content_table_refreshes_cached_pages(app, table, through):
    """A write to any content table, through any connection or the session, empties the cache."""
    if not _exists(table):
        pytest.skip(f"{table} exists on the other backend only")
    make_idea()
    visitor = Visitor(app)
    visitor.warm()
    _touch(table, through)
    assert visitor.get()[0], f"a write to {table} left a cached page"


@pytest.mark.parametrize("through", THROUGH)
@pytest.mark.parametrize("table", _declared_tables(False))
def test_a_write_to_each_other_table_keeps_cached_pages(app, table, through):
    """A write to a table declared not page content leaves the cached page served."""
    make_idea()
    visitor = Visitor(app)
    visitor.warm()
    _touch(table, through)
    assert not visitor.get()[0], f"a write to {table} emptied the cache"


def test_sending_queued_mail_keeps_cached_pages(server, other):
    """`flask mail send` (outbox and token writes) leaves the cached page and the version alone."""
    from ideaboard import outbox

    member = make_user()
    with server.test_request_context():
        for n in range(2):
            outbox.queue_mail(member.email, f"Hello {n}", "password_changed", to_name="M")
        outbox.queue_reset_request(member.email, member.id)
        db.session.commit()
    visitor = Visitor(server)
    visitor.warm()
    before = version(server)
    result = run_command(other, "mail", "send")
    assert "Sent 3," in result.output
    sent = sa.select(sa.func.count()).where(OutboxMessage.status == "sent")
    assert db.session.scalar(sent) == 3
    assert not visitor.get()[0]
    assert version(server) == before


def test_a_token_write_keeps_cached_pages(server):
    """Issuing and using up a reset token leaves the cached page and the version alone."""
    from ideaboard.models import AccountToken

    member = make_user()
    visitor = Visitor(server)
    visitor.warm()
    before = version(server)
    with server.test_request_context():
        accounts.issue_reset_token(member)
        db.session.commit()
    db.session.execute(update(AccountToken).values(used_at=sa.func.now()))
    db.session.commit()
    assert not visitor.get()[0]
    assert version(server) == before


def test_a_table_declared_later_as_not_content_keeps_cached_pages(server):
    """A new table declared not content keeps the cache warm; an undeclared one empties it."""
    reads = Table(
        "notification_reads",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("user_id", Integer),
        info={PAGE_CONTENT: False},
    )
    events = Table("analytics_events", MetaData(), Column("id", Integer, primary_key=True))
    tables = [reads, events]
    Base.metadata.create_all(db.engine, tables=[reads])
    events.create(db.engine)
    try:
        make_idea()
        visitor = Visitor(server)
        visitor.warm()
        db.session.execute(insert(reads).values(user_id=1))  # as a service would
        db.session.commit()
        with db.engine.begin() as conn:
            conn.execute(update(reads).values(user_id=2))
            conn.exec_driver_sql("DELETE FROM notification_reads WHERE user_id = 2")
        assert not visitor.get()[0], "a write to a table declared not content emptied it"
        db.session.execute(insert(events).values(id=1))
        db.session.commit()
        assert visitor.get()[0], "a write to an undeclared table kept a cached page"
    finally:
        for table in tables:
            table.drop(db.engine)
        Base.metadata.remove(reads)


POSTGRES_TOGGLE = votes._PG_TOGGLE_FOR_SESSION.text


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT * FROM ideas WHERE title = 'DELETE FROM ideas'", NOTHING),
        ("-- DELETE FROM ideas\nSELECT 1", NOTHING),
        ("SELECT id FROM ideas WHERE id = 1 FOR UPDATE", NOTHING),
        ("SELECT id FROM ideas FOR NO KEY UPDATE OF ideas SKIP LOCKED", NOTHING),
        ("PRAGMA foreign_keys=ON", NOTHING),
        ("SAVEPOINT sa_savepoint_1", NOTHING),
        ("SELECT setval('ideas_id_seq', 10)", NOTHING),
        ("COPY ideas TO STDOUT", NOTHING),
        ("UPDATE mail_outbox SET status = 'sent' WHERE id = 3", NOTHING),
        ('UPDATE "public"."account_tokens" SET used_at = now()', NOTHING),
        ("UPDATE mail_outbox SET subject = (SELECT title FROM ideas LIMIT 1)", NOTHING),
        ("INSERT INTO mail_outbox (kind) SELECT title FROM ideas", NOTHING),
        (
            "INSERT INTO account_tokens (id, user_id) VALUES (1, 2) "
            "ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id",
            NOTHING,
        ),
        ("INSERT OR REPLACE INTO account_tokens (id) VALUES (1)", NOTHING),
        ("TRUNCATE mail_outbox, account_tokens RESTART IDENTITY", NOTHING),
        ("DELETE FROM main.mail_outbox", NOTHING),
        ("UPDATE content_version SET value = value + 1 WHERE id = 1", NOTHING),
        ("UPDATE alembic_version SET version_num = 'x'", NOTHING),
        ("UPDATE ideas SET title = 'x'", ROWS),
        ("update Ideas set title = 'x'", ROWS),
        ("INSERT INTO votes (idea_id, user_id) VALUES (1, 2) ON CONFLICT DO NOTHING", ROWS),
        ("REPLACE INTO boards (id) VALUES (1)", ROWS),
        ("UPDATE OR IGNORE users SET role = 'admin'", ROWS),
        ("DELETE FROM ONLY comments", ROWS),
        ("TRUNCATE mail_outbox, votes", ROWS),
        ("INSERT INTO ideas_fts(ideas_fts) VALUES ('rebuild')", ROWS),
        ("WITH gone AS (DELETE FROM votes RETURNING id) SELECT count(*) FROM gone", ROWS),
        (POSTGRES_TOGGLE, ROWS),
        ("EXPLAIN ANALYZE DELETE FROM status_changes", ROWS),
        ("COPY votes (idea_id, user_id) FROM STDIN", ROWS),
        ("COPY (DELETE FROM comments RETURNING id) TO STDOUT", ROWS),
        ("SELECT 1; DELETE FROM ideas", ROWS),
        ("SELECT E'\\''; DELETE FROM ideas; SELECT 'x'", ROWS),
        ("DELETE FROM notifications_not_declared", ROWS),
        ("UPDATE mail_outbox SET x = 1; UPDATE users SET role = 'member'", ROWS),
        ("CREATE TABLE notifications (id integer)", SCHEMA),
        ("ALTER TABLE ideas ADD COLUMN x integer", SCHEMA),
        ("DROP TABLE content_version", SCHEMA),
        ("DO $$ BEGIN UPDATE ideas SET title = 'x'; END $$", SCHEMA),
        ("CALL refresh_everything()", SCHEMA),
        ("SELECT * INTO ideas_copy FROM ideas", SCHEMA),
        ("SELECT 'an open quote", SCHEMA),
    ],
)
def test_raw_sql_is_judged_by_the_tables_it_writes(sql, kind):
    """Raw SQL counts as content unless every table it writes is declared not content."""
    assert judge_sql(sql) == kind, sql


# --- item 1: nothing reaches the database around SQLAlchemy unseen ----------------------

PACKAGE = Path(ideaboard.__file__).resolve().parent
# Names and attributes that reach a DB-API connection, a cursor, a driver, another engine
# or a subprocess (the database's command-line tools).
RAW_NAMES = frozenset(
    {
        "dbapi_connection",
        "driver_connection",
        "raw_connection",
        "cursor",
        "executescript",
        "create_function",
        "sqlite3",
        "psycopg",
        "psycopg2",
        "create_engine",
        "subprocess",
        "Popen",
        "system",
        "popen",
    }
)
# Strings that name a database tool, or a pool or dialect event (whose listeners get a
# DB-API connection).
TOOLS = re.compile(r"\b(?:psql|pg_restore|pg_dump|sqlite3)\b")
RAW_EVENTS = frozenset(
    {"connect", "first_connect", "checkout", "checkin", "reset", "close", "do_connect"}
    | {"do_execute", "do_executemany", "do_execute_no_params"}
)

#: Modules that reach the database around SQLAlchemy, each with the test that proves it
#: keeps pages fresh. Add a module here only with such a test.
ALLOWED = {
    "backup.py": "test_restore_leaves_no_stale_page",
    "database.py": "test_database_wiring_only_pings",
    "perf/driver.py": "test_driver_runner_writes_count_with_their_transaction",
    "perf/pagefile.py": "test_the_page_file_is_never_the_database",
    "perf/freshness.py": "test_a_committed_write_through_any_door_is_on_every_next_visitor_page",
    "perf/writergate.py": "test_writer_gate_sends_no_content_write_around_sqlalchemy",
}


def raw_access(path: Path) -> list[str]:
    """Where `path` reaches the database around SQLAlchemy: "line: what" entries."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                docstrings.add(id(body[0].value))
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found = []
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Name) and node.id in RAW_NAMES:
            what = node.id
        elif isinstance(node, ast.arg) and node.arg in RAW_NAMES:
            what = node.arg
        elif isinstance(node, ast.alias) and node.name.split(".")[0] in RAW_NAMES:
            what = f"import {node.name}"
        elif isinstance(node, ast.Attribute) and node.attr in RAW_NAMES:
            what = f".{node.attr}"
        elif isinstance(node, ast.Attribute) and node.attr == "connection":
            # Connection.connection is the pool's DB-API connection (session.connection()
            # is a call, and a SQLAlchemy Connection).
            what = None if id(node) in called else ".connection"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and (
                TOOLS.search(node.value) or node.value in RAW_EVENTS
            ):
                what = repr(node.value)
        if what:
            found.append(f"{node.lineno}: {what}")
    return found


def test_nothing_reaches_the_database_around_sqlalchemy_unless_allowed():
    """No module reaches the database around SQLAlchemy unless allowlisted with a proof."""
    unexpected = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name not in ALLOWED and (found := raw_access(path)):
            unexpected[name] = found
    assert unexpected == {}, (
        "these write around SQLAlchemy, where perf.freshness cannot see them: go through "
        "SQLAlchemy, or call perf.freshness.content_changed() and allowlist the module in "
        f"tests/test_freshness.py with a test proving pages stay fresh: {unexpected}"
    )


def test_every_allowlisted_module_exists_reaches_around_and_has_its_proof():
    """Each allowlisted module exists, still reaches around SQLAlchemy and has its proving test."""
    for name, proof in ALLOWED.items():
        path = PACKAGE / name
        assert path.exists(), f"{name} is allowlisted but gone: move or drop its entry"
        assert raw_access(path), f"{name} no longer reaches around SQLAlchemy: drop it"
        assert callable(globals().get(proof)), f"{name}'s proof {proof} is not in this file"


def test_the_page_file_is_never_the_database(make_app):
    """perf/pagefile.py opens its own SQLite file beside the database (a cache of rendered
    pages), never the database: serving pages writes there and moves no version."""
    from ideaboard.perf.pagefile import FilePageStore

    if BACKEND != "sqlite":
        pytest.skip("the page file is SQLite's (SQLite pass)")
    with fresh_app(make_app) as app:
        idea = make_idea()
        db.session.commit()
        shared = getattr(app.extensions["ideaboard_cache"].pages, "shared", None)
        assert isinstance(shared, FilePageStore)
        database = Path(db.engine.url.database)
        assert shared.path == database.with_name(database.name + ".pages")
        before = version(app)
        client = app.test_client()
        for url in ("/ideas", f"/ideas/{idea.id}"):
            client.get(url)
        assert version(app) == before
        assert shared.used() > 0  # the pages went to the file...
        tables = set(sa.inspect(db.engine).get_table_names())
        assert not {"pages", "budget"} & tables  # ...and not to the database


def _calls(path: Path, method: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
    ]


def test_writer_gate_sends_no_content_write_around_sqlalchemy():
    """perf/writergate.py sends only transaction control and PRAGMAs to its DB-API connection."""
    path = PACKAGE / "perf" / "writergate.py"
    sql = []
    for call in _calls(path, "execute"):
        arg = call.args[0]
        if isinstance(arg, ast.JoinedStr):  # f"PRAGMA x={VALUE}"
            arg = ast.Constant(
                "".join(v.value if isinstance(v, ast.Constant) else "0" for v in arg.values)
            )
        assert isinstance(arg, ast.Constant), f"line {call.lineno}: SQL that is not a literal"
        sql.append(arg.value)
    assert sql and all(judge_sql(s) == NOTHING for s in sql), sql
    functions = [call.args[0].value for call in _calls(path, "create_function")]
    assert functions == ["log10"]


def test_database_wiring_only_pings():
    """database.py touches a DB-API connection only to ping it and to classify a disconnect."""
    path = PACKAGE / "database.py"
    assert not _calls(path, "execute") and not _calls(path, "cursor")
    uses = [
        call.func.attr
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(call, ast.Call)
        and any(isinstance(a, ast.Name) and a.id == "dbapi_connection" for a in call.args)
    ]
    assert sorted(uses) == ["do_ping", "is_disconnect"]


def test_the_verdict_of_a_statement_is_kept_by_its_sql(app):
    """Each SQL string is judged once: running it again costs one dict lookup."""
    sql = "UPDATE mail_outbox SET attempts = attempts WHERE 1 = 0"
    freshness._KINDS.pop(sql, None)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(sql)
    assert freshness._KINDS[sql] == NOTHING
