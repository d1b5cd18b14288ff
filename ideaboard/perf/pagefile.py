"""Rendered pages shared by the workers of one machine, in a SQLite file beside the database.

With Redis, pages rendered by one worker serve every worker and host (pagecache's
SharedPageStore). Without it each of the three workers rendered each page once per
version on its own: every member's first visit after a write cost up to three renders,
which was most of what the members' pages cost under load (docs/performance.md). The
single-machine default (SQLite) now shares them through a second SQLite file beside the
database file, `<database>.pages`: a disposable cache, never the database itself.

- A page is found by a hash of its key (which holds a member's CSRF token, so it is never
  written out) and the markup's version; a new content version makes new keys, so nothing
  is ever stale, as in Redis.
- Bounded by bytes as the Redis store is: each window of TTL seconds may write half of
  `max_bytes`, counted in the file beside the pages; a page is read only in its window or
  the next, and the first write of a window deletes older ones. So what the file holds is
  at most `max_bytes` (and the space of deleted pages is reused), whatever the number of
  workers or distinct URLs.
- Nothing waits for it: the file is in WAL mode (readers never wait for the writer) with
  no fsync (a crash only loses cached pages), and a write that would wait more than a few
  milliseconds for another worker's write is dropped, as is any error: a page not shared
  costs a render, never the request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("ideaboard.cache")

#: How long a writer waits for another worker's write before it drops its page.
BUSY_MS = 5

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pages ("
    " name BLOB PRIMARY KEY, win INTEGER NOT NULL, value BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS budget (win INTEGER PRIMARY KEY, used INTEGER NOT NULL)",
)


def encode(item) -> bytes:
    """A stored page (status, body, headers, final headers, endpoint) as bytes."""
    status, body, headers, final, endpoint = item
    head = json.dumps([status, headers, final, endpoint], separators=(",", ":")).encode()
    return head + b"\n" + body


def decode(raw: bytes):
    """encode()'s item again."""
    head, _, body = raw.partition(b"\n")
    status, headers, final, endpoint = json.loads(head)
    final = final and tuple(map(tuple, final))
    return status, body, tuple(map(tuple, headers)), final, endpoint


class FilePageStore:
    """Pages in `path`, shared by every process of this machine that opens it."""

    TTL = 15 * 60
    # Bytes a row costs beyond its name and value, near enough (SQLite's cell and page).
    OVERHEAD = 32

    def __init__(self, path: Path, max_bytes: int, markup_version: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._salt = f"m{markup_version}:".encode()
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=True
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            for statement in _SCHEMA:
                conn.execute(statement)
            self._local.conn = conn
        return conn

    def _name(self, key: tuple) -> bytes:
        return hashlib.sha256(self._salt + repr(key).encode()).digest()

    def _window(self) -> int:
        return int(time.time()) // self.TTL

    def get(self, key: tuple):
        try:
            row = (
                self._conn()
                .execute("SELECT win, value FROM pages WHERE name = ?", (self._name(key),))
                .fetchone()
            )
        except sqlite3.Error:
            log.warning("page file unavailable; rendering", exc_info=True)
            self._drop()
            return None
        if row is None or row[0] < self._window() - 1:
            return None
        return decode(row[1])

    def put(self, key: tuple, item) -> None:
        name, value = self._name(key), encode(item)
        size = len(name) + len(value) + self.OVERHEAD
        window = self._window()
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                used = conn.execute("SELECT used FROM budget WHERE win = ?", (window,)).fetchone()
                if used is None:
                    # A new window: what two windows ago wrote is past reading; its space
                    # is reused by this window's pages.
                    conn.execute("DELETE FROM pages WHERE win < ?", (window - 1,))
                    conn.execute("DELETE FROM budget WHERE win < ?", (window - 1,))
                    used = (0,)
                if used[0] + size > self.max_bytes // 2:
                    conn.execute("ROLLBACK")
                    return
                conn.execute(
                    "INSERT INTO budget (win, used) VALUES (?, ?)"
                    " ON CONFLICT (win) DO UPDATE SET used = used + excluded.used",
                    (window, size),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO pages (name, win, value) VALUES (?, ?, ?)",
                    (name, window, value),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                log.warning("page file unavailable; page kept locally", exc_info=True)
                self._drop()
        except sqlite3.Error:
            log.warning("page file unavailable; page kept locally", exc_info=True)
            self._drop()

    def used(self) -> int:
        """The bytes this window and the last have written (what the file may hold)."""
        window = self._window()
        row = (
            self._conn()
            .execute("SELECT coalesce(sum(used), 0) FROM budget WHERE win >= ?", (window - 1,))
            .fetchone()
        )
        return row[0]

    def _drop(self) -> None:
        """Forget this thread's connection (the file may have been deleted or replaced)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass
