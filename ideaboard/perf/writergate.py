"""The SQLite writer gate: writers queue on a file lock, and checkpoints run outside it.

See docs/performance.md ("SQLite writes queue, briefly") for why and what it measured.
"""

from __future__ import annotations

import fcntl
import math
import os
import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine


class GatedConnection(sqlite3.Connection):
    """A SQLite connection whose writers queue on a file lock, across threads and processes.

    SQLite lets one writer in at a time; the others wait in the busy handler, which polls
    with sleeps of up to 100 ms. Under many concurrent writers (vote toggles from several
    gunicorn workers) that sleeping, not the work, set the pace. Here a writing transaction
    first takes an exclusive `flock` on `<database>-writer.lock`: waiters block in the
    kernel and wake the moment the previous writer commits. The lock is released by
    commit, rollback or close, and by the kernel if the process dies. Writers that don't
    take it (the CLI, migrations) still meet SQLite's own lock and busy_timeout.

    Checkpoints (copying the write-ahead log into the database file) run after the gate is
    released, every CHECKPOINT_EVERY gated commits of the process. SQLite's own automatic
    checkpoint runs inside the commit that crosses its threshold, so it ran with the gate
    held: that commit took a hundredfold longer while every other writer queued behind it
    (docs/performance.md, "SQLite writes queue, briefly"). SQLite's threshold stays, raised,
    as the backstop for writers that commit a lot at once (a seed, an import).
    """

    #: Gated commits of this process since its last checkpoint (shared by its connections).
    commits_since_checkpoint = 0

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        name = os.fsdecode(database) if isinstance(database, str | bytes | os.PathLike) else ""
        in_memory = not name or name == ":memory:" or name.startswith("file::memory:")
        self._gate_path = None if in_memory else name + "-writer.lock"
        self._gate_fd: int | None = None
        self._gate_held = False

    def take_writer_gate(self) -> None:
        if self._gate_path is None or self._gate_held:
            return
        if self._gate_fd is None:
            self._gate_fd = os.open(self._gate_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._gate_fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        self._gate_held = True

    def _release_writer_gate(self) -> None:
        if self._gate_held:
            self._gate_held = False
            fcntl.flock(self._gate_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        wrote = self._gate_held
        try:
            super().commit()
        finally:
            self._release_writer_gate()
        if wrote:
            self._checkpoint_now_and_then()

    def _checkpoint_now_and_then(self) -> None:
        cls = GatedConnection
        cls.commits_since_checkpoint += 1
        if cls.commits_since_checkpoint < CHECKPOINT_EVERY:
            return
        cls.commits_since_checkpoint = 0
        try:
            # PASSIVE: copies what no reader still needs; neither readers nor writers wait.
            self.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        except sqlite3.Error:  # another connection is checkpointing: that one will do
            pass

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_writer_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_writer_gate()
            if self._gate_fd is not None:
                os.close(self._gate_fd)
                self._gate_fd = None


#: Gated commits between checkpoints, per process. A vote toggle writes about a dozen pages,
#: so 64 commits in each of a few workers keep the log to a few MB between checkpoints.
CHECKPOINT_EVERY = 64
#: SQLite's own automatic checkpoint, in pages (its default is 1,000): the backstop.
AUTOCHECKPOINT_PAGES = 10_000


def engine_options(url: str, options: dict) -> dict:
    """The engine options for `url`: SQLite connections get the writer gate; PostgreSQL
    sessions run with JIT compilation off."""
    if url.startswith("postgresql"):
        # JIT (on by default since PostgreSQL 12) compiles any statement whose estimated
        # cost passes jit_above_cost, and the estimate of a page's small indexed read on a
        # million-row table can pass it: the compile then costs 10-100 ms a request. With
        # it on, `make bench-postgres` served a member's board page at 264 req/s (p50 104
        # ms); off, 1,222 (26 ms). Nothing here is a long analytic query that JIT helps.
        connect_args = dict(options.get("connect_args", {}))
        connect_args["options"] = (connect_args.get("options", "") + " -c jit=off").strip()
        return {**options, "connect_args": connect_args}
    if not url.startswith("sqlite"):
        return options
    connect_args = {**options.get("connect_args", {}), "factory": GatedConnection}
    return {**options, "connect_args": connect_args}


# DDL such as a migration's CREATE TABLE) makes it a writer.
_READS = ("SELECT", "PRAGMA", "BEGIN", "EXPLAIN", "SAVEPOINT", "RELEASE", "ROLLBACK")


def _reads_only(statement: str) -> bool:
    return statement.lstrip()[:9].upper().startswith(_READS)


def _sqlite_connect(dbapi_connection, _record) -> None:
    # SQLAlchemy's "begin" event issues BEGIN itself (pysqlite's own handling is unreliable).
    dbapi_connection.isolation_level = None
    # The vote toggle rescores in SQL (services.ideas.trending_score_sql); SQLite builds
    # may lack math functions, and this keeps the numbers identical to Python's.
    dbapi_connection.create_function("log10", 1, math.log10, deterministic=True)
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    cur.close()


def _sqlite_begin(conn) -> None:
    # Every transaction starts as a reader; _sqlite_upgrade makes it a writer on its first
    # write.
    conn.exec_driver_sql("BEGIN")
    conn.info["sqlite_writer"] = False


def _sqlite_upgrade(conn, cursor, statement, *_args) -> None:
    """Before a transaction's first write: queue at the writer gate, then BEGIN IMMEDIATE.

    Only reads are ever committed early: DDL counts as a write, so a migration's steps all
    stay in the one IMMEDIATE transaction that its first CREATE or ALTER began.

    A deferred SQLite transaction that has read and then writes fails at once with
    "database is locked" if another writer committed in between (its snapshot is stale).
    So the reads so far are committed (they changed nothing) and the write starts a fresh
    IMMEDIATE transaction, as the only writer. The write lock is then held only from the
    first write to the commit, not while the request loads its user and objects. Rows read
    before that point may be a moment older than the write, which is what PostgreSQL's
    READ COMMITTED gives too: writes use SQL arithmetic and compare-and-set, never a
    value read earlier in Python.
    """
    if conn.info.get("sqlite_writer", True):
        return
    if _reads_only(statement):
        return
    _become_writer(conn, cursor)


def _become_writer(conn, cursor) -> None:
    cursor.execute("COMMIT")  # the reads, outside the gate: the gate is for writers only
    raw = conn.connection.dbapi_connection
    if isinstance(raw, GatedConnection):
        raw.take_writer_gate()
    cursor.execute("BEGIN IMMEDIATE")
    conn.info["sqlite_writer"] = True


def configure_sqlite(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    if not event.contains(engine, "connect", _sqlite_connect):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "before_cursor_execute", _sqlite_upgrade)
