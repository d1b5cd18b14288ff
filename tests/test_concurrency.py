"""Votes under concurrency: counts equal rows, one row per member, never a server error.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from functools import partial

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Vote
from ideaboard.services import votes

from .factories import at_once, login_as, make_idea, make_user, reload

THREADS = 16


def _run_all(app, jobs):
    """POST every job (client, path) at once; return the statuses."""
    answers = at_once([partial(client.post, path) for client, path in jobs])
    return [r.status_code for r in answers]


def _rows(idea):
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea.id))


def test_many_members_toggling_at_once_keep_count_equal_to_rows(app):
    """Sixteen members each toggle three times at once: 16 votes, 16 rows, no errors."""
    idea = make_idea()
    members = [make_user() for _ in range(THREADS)]
    jobs = []
    for member in members:
        client = app.test_client()
        login_as(client, member)
        jobs += [(client, f"/ideas/{idea.id}/vote")]
    for _round in range(3):
        statuses = _run_all(app, jobs)
        assert set(statuses) == {303}, statuses
    assert reload(idea).vote_count == _rows(idea) == THREADS
    assert votes.count_mismatches() == []


def test_same_member_double_clicking_from_many_tabs(app):
    """One member's simultaneous toggles never make two rows, and the count matches."""
    idea = make_idea()
    member = make_user()
    jobs = []
    for _ in range(THREADS):
        client = app.test_client()  # separate tabs: separate connections
        login_as(client, member)
        jobs.append((client, f"/ideas/{idea.id}/vote"))
    statuses = _run_all(app, jobs)
    assert set(statuses) == {303}, statuses
    rows = _rows(idea)
    assert rows in (0, 1)
    assert reload(idea).vote_count == rows
    assert votes.count_mismatches() == []


def test_sqlite_writers_queue_on_the_writer_gate(tmp_path):
    """A second SQLite writer waits for the first one's commit, then goes straight in."""
    import sqlite3
    import threading
    import time

    from ideaboard.perf.writergate import GatedConnection

    path = str(tmp_path / "gate.db")
    first = sqlite3.connect(path, factory=GatedConnection, isolation_level=None)
    second = sqlite3.connect(
        path, factory=GatedConnection, isolation_level=None, check_same_thread=False
    )
    first.execute("CREATE TABLE t (n INTEGER)")
    first.take_writer_gate()
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO t VALUES (1)")
    got_in = threading.Event()

    def write():
        second.take_writer_gate()
        got_in.set()
        second.execute("BEGIN IMMEDIATE")
        second.execute("INSERT INTO t VALUES (2)")
        second.commit()

    worker = threading.Thread(target=write)
    worker.start()
    assert not got_in.wait(0.3), "the second writer got past the gate while the first wrote"
    started = time.monotonic()
    first.commit()
    assert got_in.wait(2), "the second writer never got the gate after the first committed"
    worker.join(2)
    assert time.monotonic() - started < 1
    assert [n for (n,) in first.execute("SELECT n FROM t ORDER BY n")] == [1, 2]
    first.close()
    second.close()


def test_sqlite_write_transaction_with_ddl_stays_atomic(tmp_path):
    """Taking the write lock at the first write never commits a write made before it: a
    migration's CREATE TABLE and its data go in, or out, together."""
    import sqlalchemy as sa

    from ideaboard.perf.writergate import configure_sqlite, engine_options

    url = f"sqlite:///{tmp_path / 'atomic.db'}"
    engine = sa.create_engine(url, **engine_options(url, {}))
    configure_sqlite(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("the migration's next step fails")
    with engine.connect() as conn:
        assert "t" not in sa.inspect(conn).get_table_names()
    engine.dispose()


def test_sqlite_log_is_copied_into_the_database_every_so_many_writes(tmp_path):
    """Every CHECKPOINT_EVERY gated commits the write-ahead log is copied into the database
    file (after the commit has let the next writer in), not only when SQLite's own, much
    larger, threshold is crossed."""
    import os

    import sqlalchemy as sa

    from ideaboard.perf import writergate
    from ideaboard.perf.writergate import GatedConnection, configure_sqlite, engine_options

    url = f"sqlite:///{tmp_path / 'log.db'}"
    path = tmp_path / "log.db"
    engine = sa.create_engine(url, **engine_options(url, {}))
    configure_sqlite(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (body BLOB)")
    GatedConnection.commits_since_checkpoint = 0  # other tests' commits in this process
    size = os.path.getsize(path)
    blob = os.urandom(8192)
    for _ in range(writergate.CHECKPOINT_EVERY - 1):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", (blob,))
    assert os.path.getsize(path) == size, "copied before CHECKPOINT_EVERY commits"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (blob,))
    assert os.path.getsize(path) >= size + writergate.CHECKPOINT_EVERY * len(blob)
    with engine.connect() as conn:  # and nothing was lost on the way
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == writergate.CHECKPOINT_EVERY
        )
    engine.dispose()
