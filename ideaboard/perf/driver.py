"""A few fixed Core statements run straight on the DB-API cursor (the vote fast path).

See docs/performance.md ("A vote click skips Flask") for why and what it measured.
"""

from __future__ import annotations

from .freshness import NOTHING, content_changed, judge_sql
from .writergate import _become_writer, _reads_only


class _Rows:
    """What a Result gives the hot paths: .all(), .first(), .one() and .scalar_one()."""

    __slots__ = ("rows",)

    def __init__(self, rows: list) -> None:
        self.rows = rows

    def all(self) -> list:
        return self.rows

    def first(self):
        return self.rows[0] if self.rows else None

    def one(self):
        (row,) = self.rows
        return row

    def scalar_one(self):
        return self.one()[0]


class _Compiled:
    """A Core statement compiled once for a dialect: its SQL, parameters and converters."""

    __slots__ = ("sql", "names", "positional", "fixed", "convert", "results", "writes", "content")

    def __init__(self, stmt, dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = compiled.positional  # SQLite's "?"; psycopg's are named
        self.names = list(compiled.positiontup if self.positional else compiled.binds)
        binds = compiled.binds
        # Values the statement carries itself (the 1 in "1 + vote_count").
        self.fixed = {name: binds[name].effective_value for name in self.names}
        self.convert = {
            name: proc
            for name in self.names
            if (proc := binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        }
        # The columns it returns (a SELECT's or a RETURNING's), as SQLAlchemy converts
        # them; a text() statement declares none, and its rows come as the driver gives them.
        procs = [
            col.type.dialect_impl(dialect).result_processor(dialect, None)
            for col in getattr(stmt, "exported_columns", ())
        ]
        self.results = procs if any(procs) else None
        self.writes = not _reads_only(self.sql)
        # Whether it writes page content, judged as freshness judges what SQLAlchemy runs.
        table = getattr(stmt, "table", None) if getattr(stmt, "is_dml", False) else None
        self.content = judge_sql(self.sql, table) != NOTHING

    def values(self, params: dict):
        """The parameters as the driver takes them: in order for "?" (a name used twice is
        passed twice), by name otherwise."""
        convert, fixed = self.convert, self.fixed
        values = []
        for name in self.names:
            value = params[name] if name in params else fixed[name]
            values.append(convert[name](value) if name in convert else value)
        return values if self.positional else dict(zip(self.names, values, strict=True))

    def rows(self, raw: list) -> list:
        if self.results is None:
            return raw
        procs = self.results
        return [tuple(p(v) if p else v for p, v in zip(procs, row, strict=True)) for row in raw]


def driver_runner(conn):
    """A Run (statement, params) -> rows for a few fixed Core statements on `conn`, a
    Connection, straight on its DB-API cursor.

    For the hottest path only (the vote toggle): SQLAlchemy's execute has a fixed CPU cost
    per statement (docs/performance.md). On SQLite a vote's writes run one at a time, at the
    writer gate, so every microsecond there is a microsecond every other voter waits; on
    PostgreSQL the vote is one statement, and the execute overhead is a visible share of
    the fast path's CPU. The same statements
    and the same transaction rules: `conn`'s transaction is begun as SQLAlchemy would, on
    SQLite the first write commits the reads and queues at the gate (_become_writer), and
    the caller commits or rolls back through `conn`. SQLAlchemy's execute events do not see
    these statements, so each write of page content is reported to perf.freshness, which
    counts it with `conn`'s transaction as it counts what SQLAlchemy runs.
    """
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's autobegin would (on SQLite: BEGIN, as a reader)
    cursor = conn.connection.dbapi_connection.cursor()
    dialect = conn.dialect
    sqlite = dialect.name == "sqlite"
    cache = _COMPILED.setdefault((type(dialect), dialect.paramstyle), {})

    def run(stmt, params: dict) -> _Rows:
        compiled = cache.get(id(stmt))
        if compiled is None:
            compiled = cache[id(stmt)] = _Compiled(stmt, dialect)
        if sqlite and compiled.writes and not conn.info.get("sqlite_writer", True):
            _become_writer(conn, cursor)
        cursor.execute(compiled.sql, compiled.values(params))
        if compiled.content:
            content_changed(conn)
        return _Rows(compiled.rows(cursor.fetchall()))

    return run


#: Compiled statements by the kind of dialect (a dialect object's id could be reused by
#: another engine's), then by statement (module-level constants, so their ids are stable).
_COMPILED: dict[tuple, dict[int, _Compiled]] = {}
