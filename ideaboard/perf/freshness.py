"""Freshness by construction: a committed write to page content moves the content version
on, whoever makes it; a write to anything else leaves cached pages alone.

Cached pages (pagecache.py) are keyed by one shared content version, so they are only as
fresh as that version is exact. This module watches the app's Engine, which every write
goes through (the ORM, Core, text(), exec_driver_sql(), db.engine.begin(),
session.connection()), instead of the ORM session, which most of those bypass:

- Every statement the engine's dialect runs is judged (its do_execute hooks), once per
  SQL string (the verdict is kept): does it write, and which tables? A compiled Core or
  ORM INSERT, UPDATE or DELETE names its table; other SQL is read conservatively by
  judge_sql(). A write to a table declared page content (models.page_content()), to a
  table it cannot name, and any DDL, mark the connection's transaction.
- When a marked transaction commits, the version moves on. With the version in the
  database (PostgreSQL without Redis), it is the last statement of that same transaction,
  sent just before COMMIT: version and data become visible together, and the version's row
  stays locked only for the commit itself. With Redis or the version file, the version
  moves right after COMMIT returns; inside a Flask request, when its app context ends,
  which is still before the response is sent (and after the session has handed back its
  connection, so a bump in the database never needs a second one). A rollback forgets the
  marks; a statement on an autocommit connection counts as committed when it returns.
- Writes around SQLAlchemy say so with content_changed(): driver.driver_runner() for the
  raw-cursor vote toggle (counted with its transaction, like any statement), and the
  SQLite backup API and pg_restore in a restore, once committed. tests/test_freshness.py
  fails for any module of the package that reaches the database another way.

Community content (tables declared page_content(True, scope=COMMUNITY)) does not move the
shared version: database triggers move that community's stamp in the writer's transaction
(scopes.py), and a committed write to it (or DDL) moves the community generation instead,
after the commit as above, which tells each process to read stamps afresh (scopes.Stamps;
there is none with the version in the database). Reads are watched too: a request that
read a scoped table is marked, and pagecache keeps its page only if it is keyed by a stamp.

Savepoints: a write inside a savepoint that is rolled back still counts when the outer
transaction commits (one move more than needed, never one fewer).

Not seen: a write made by a server-side function called from a SELECT (the app has none),
and writes through an engine that no app built (the same test refuses create_engine in the
package).
"""

from __future__ import annotations

import re
import weakref
from functools import lru_cache

from flask import Flask, g, has_request_context
from sqlalchemy import Connection, Engine, Table, event
from sqlalchemy.pool import PoolProxiedConnection

from ideaboard.extensions import db
from ideaboard.models import PAGE_CONTENT, SCOPE, TABLES_WITHOUT_MODEL, Base

#: What a statement did to page content: nothing; rows (of content tables, or of tables it
#: cannot name); or something it cannot read (DDL, CALL, DO, ...), which moves the version
#: after the commit even with the version in the database, whose table a migration may
#: be making or dropping in that very transaction.
NOTHING, ROWS, SCHEMA = 0, 1, 2
#: A flag beside those: the statement wrote community content (a scoped table), which
#: moves the community generation, not the version.
COMMUNITY = 4
#: What moves the version, and what moves the community generation.
_MOVES_VERSION = ROWS | SCHEMA
_MOVES_GENERATION = COMMUNITY | SCHEMA

_MARK = "ideaboard_content_written"  # the pool's connection info: what its transaction wrote
_G_STORES = "_ideaboard_versions_to_move"  # version stores to move when the request ends


# --- which tables are page content ------------------------------------------------------


def declared(name: str) -> bool | None:
    """Whether the table called `name` is page content: True, False, or None when nothing
    declares it (then it counts as content)."""
    table = Base.metadata.tables.get(name)
    if table is not None:
        return table.info.get(PAGE_CONTENT)
    return TABLES_WITHOUT_MODEL.get(name)


def scoped(name: str) -> bool:
    """Whether the table called `name` is community content: its writes move that
    community's stamp (database triggers), not the shared version."""
    table = Base.metadata.tables.get(name)
    return table is not None and table.info.get(SCOPE) is not None


def scoped_tables() -> frozenset[str]:
    return frozenset(t.name for t in Base.metadata.sorted_tables if t.info.get(SCOPE))


# --- reading SQL ---------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    \s+ | --[^\n]* | /\*.*?\*/
    | (?P<string> [Ee]'(?:[^'\\]|\\.|'')*' | '(?:[^']|'')*'
                | \$\$.*?\$\$ | \$(?P<tag>[A-Za-z_]\w*)\$.*?\$(?P=tag)\$ )
    | (?P<quoted> "(?:[^"]|"")*" | `(?:[^`]|``)*` | \[[^\]]*\] )
    | (?P<word> [A-Za-z_][\w$]* )
    | (?P<other> [0-9][\w.]* | . )
    """,
    re.S | re.X,
)
# Statements that change no rows unless a data-modifying statement sits inside them (a
# CTE, EXPLAIN ANALYZE, COPY (...) TO): those are searched for one.
_READ_VERBS = frozenset(
    "SELECT WITH VALUES EXPLAIN SHOW SET RESET PRAGMA BEGIN START COMMIT END ROLLBACK "
    "SAVEPOINT RELEASE ANALYZE VACUUM LOCK LISTEN UNLISTEN NOTIFY FETCH MOVE CLOSE DECLARE "
    "DISCARD DEALLOCATE CHECKPOINT".split()
)
_WRITE_VERBS = frozenset("INSERT UPDATE DELETE REPLACE MERGE TRUNCATE COPY".split())
_UNREADABLE = object()


def _tokens(sql: str):
    """(kind, value) pairs: w(ord, upper-cased), q(uoted identifier), s(tring), p(unct);
    _UNREADABLE if a quote is left open."""
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup  # None for space and comments
        if kind == "word":
            out.append(("w", m.group(kind).upper()))
        elif kind == "quoted":
            out.append(("q", m.group(kind)[1:-1]))
        elif kind == "string":
            out.append(("s", ""))
        elif kind == "other":
            value = m.group(kind)
            if value in "'\"`[":
                return _UNREADABLE  # an open quote: the database would refuse it, or read
            out.append(("p", value))  # it otherwise than here; either way, assume a write
    return out


def _name(tokens: list, i: int) -> tuple[str | None, int]:
    """The table named at tokens[i] (schema-qualified or not), and the index after it."""
    name = None
    while i < len(tokens) and tokens[i][0] in "wq":
        kind, value = tokens[i]
        name = value.lower() if kind == "w" else value
        if i + 2 < len(tokens) and tokens[i + 1] == ("p", ".") and tokens[i + 2][0] in "wq":
            i += 2
            continue
        return name, i + 1
    return name, i


def _skip(tokens: list, i: int, *words: str) -> int:
    while i < len(tokens) and tokens[i][0] == "w" and tokens[i][1] in words:
        i += 1
    return i


def _word(tokens: list, i: int) -> str | None:
    return tokens[i][1] if 0 <= i < len(tokens) and tokens[i][0] == "w" else None


def _writes(tokens: list) -> tuple[int, set]:
    """(kind, table names) written by one statement's tokens; None in the names stands for
    a target it cannot name."""
    first = next((value for kind, value in tokens if kind != "p" or value != "("), None)
    if first is None:
        return NOTHING, set()
    if first not in _READ_VERBS and first not in _WRITE_VERBS:
        return SCHEMA, set()  # DDL, CALL, DO, EXECUTE, GRANT, or a word it does not know
    names: set = set()
    into_used: set[int] = set()
    for i, (kind, value) in enumerate(tokens):
        if kind != "w":
            continue
        before = _word(tokens, i - 1)
        if before == "THEN" and value in ("INSERT", "UPDATE", "DELETE"):
            continue  # MERGE ... WHEN ... THEN: on the MERGE's own table
        if value in ("INSERT", "MERGE") or (value == "REPLACE" and _word(tokens, i + 1) == "INTO"):
            j = i + 1
            if _word(tokens, j) == "OR":  # SQLite: INSERT OR REPLACE/IGNORE/... INTO
                j += 2
            if _word(tokens, j) != "INTO":
                names.add(None)
                continue
            into_used.add(j)
            names.add(_name(tokens, j + 1)[0])
        elif value == "UPDATE":
            # ON CONFLICT ... DO UPDATE (the INSERT's table), FOR [NO KEY] UPDATE (a row
            # lock), ON UPDATE (a foreign key's action, in DDL): no table of their own.
            if before in ("DO", "FOR", "KEY", "ON") or _word(tokens, i + 1) == "SET":
                continue
            j = i + 1
            if _word(tokens, j) == "OR":  # SQLite: UPDATE OR IGNORE ...
                j += 2
            names.add(_name(tokens, _skip(tokens, j, "ONLY"))[0])
        elif value == "DELETE":
            if before == "ON":  # ON DELETE CASCADE, in DDL
                continue
            if _word(tokens, i + 1) != "FROM":
                names.add(None)
                continue
            names.add(_name(tokens, _skip(tokens, i + 2, "ONLY"))[0])
        elif value == "TRUNCATE":
            j = _skip(tokens, i + 1, "TABLE", "ONLY")
            while True:
                name, j = _name(tokens, j)
                names.add(name)
                if j < len(tokens) and tokens[j] == ("p", "*"):
                    j += 1
                if j < len(tokens) and tokens[j] == ("p", ","):
                    j = _skip(tokens, j + 1, "ONLY")
                    continue
                break
        elif value == "COPY":
            name, j = _name(tokens, i + 1)
            if name is None:
                continue  # COPY (query) TO: the query is searched like any other
            while j < len(tokens) and _word(tokens, j) not in ("FROM", "TO"):
                j += 1
            if _word(tokens, j) != "TO":
                names.add(name)  # COPY t FROM ...: rows written into t
        elif value == "INTO" and i not in into_used:
            return SCHEMA, set()  # SELECT ... INTO makes a table
    return (ROWS if names else NOTHING), names


@lru_cache(maxsize=4096)
def _sql_writes(sql: str) -> tuple[int, frozenset]:
    tokens = _tokens(sql)
    if tokens is _UNREADABLE:
        return SCHEMA, frozenset()
    kind, names = NOTHING, set()
    start = 0
    for end in [i for i, t in enumerate(tokens) if t == ("p", ";")] + [len(tokens)]:
        k, n = _writes(tokens[start:end])
        kind, names = max(kind, k), names | n
        start = end + 1
    return kind, frozenset(names)


def judge_sql(sql: str, table: Table | None = None) -> int:
    """What `sql` does to page content: NOTHING, ROWS or SCHEMA.

    Conservative: a table that no declaration names, a target it cannot name, DDL and any
    statement it cannot read count as content. `table`, when the statement was compiled
    from Core or the ORM, is its own table object, whose declaration is used for its name
    (it may belong to no metadata this module knows)."""
    kind, names = _sql_writes(sql)
    if kind != ROWS:
        return kind
    for name in names:
        if table is not None and name == table.name:
            shown = table.info.get(PAGE_CONTENT)
            if shown and table.info.get(SCOPE):
                continue  # community content: its triggers move its stamp
        else:
            shown = None if name is None else declared(name)
            if shown and scoped(name):
                continue
        if shown is not False:
            return ROWS
    return NOTHING


_SCOPED_NAME = None


def reads_scoped(sql: str) -> bool:
    """Whether `sql` may read a community-scoped table (by its name as a word anywhere in
    it; a false alarm only keeps a page out of the cache)."""
    global _SCOPED_NAME
    if _SCOPED_NAME is None:
        names = sorted(scoped_tables())
        alternatives = "|".join(map(re.escape, names))
        _SCOPED_NAME = re.compile(rf"\b(?:{alternatives})\b", re.I)
    return _SCOPED_NAME.search(sql) is not None


#: Verdicts by SQL string for reads: does it read community content?
_SCOPED_READS: dict[str, bool] = {}
_G_SCOPED = "_ideaboard_read_scoped"  # g: this request read community content


def read_scoped_content() -> bool:
    """Whether the current request has read a community-scoped table (perf/scopes.py:
    a page that did so is kept only under its community's stamp)."""
    return bool(g.get(_G_SCOPED))


#: Verdicts by SQL string: a statement is judged the first time it runs. SQLAlchemy hands
#: the same string for each run of a compiled statement, so this is one dict lookup.
_KINDS: dict[str, int] = {}
_KINDS_MAX = 20_000


def writes_community(sql: str, table: Table | None = None) -> bool:
    """Whether `sql` writes a community-scoped table (`table` as in judge_sql())."""
    kind, names = _sql_writes(sql)
    if kind != ROWS:
        return False
    if table is not None and table.name in names and table.info.get(SCOPE) is not None:
        return True
    return any(name is not None and scoped(name) for name in names)


def statement_kind(statement: str, context) -> int:
    """judge_sql() for a statement SQLAlchemy is running, with the COMMUNITY flag when it
    writes community content; remembered by its SQL."""
    kind = _KINDS.get(statement)
    if kind is None:
        table = None
        compiled = getattr(context, "compiled", None)
        if (
            getattr(compiled, "isinsert", False)
            or getattr(compiled, "isupdate", False)
            or getattr(compiled, "isdelete", False)
        ):
            table = getattr(compiled.compile_state, "dml_table", None)
        table = table if isinstance(table, Table) else None
        kind = judge_sql(statement, table)
        if writes_community(statement, table):
            kind |= COMMUNITY
        if len(_KINDS) >= _KINDS_MAX:  # SQL built with literals: start over, stay bounded
            _KINDS.clear()
        _KINDS[statement] = kind
    return kind


# --- following transactions ----------------------------------------------------------
#
# At the dialect, not with Connection events: any Connection event listener on an engine
# turns on SQLAlchemy's event dispatch for every statement and transaction of it, which
# cost about 5 us of CPU a statement on PostgreSQL (whose engine has none otherwise); the
# dialect's do_execute hooks and its commit and rollback cost about 1 us. The dialect is
# the engine's own, and every statement and every COMMIT or ROLLBACK goes through it.


class _Watch:
    """One engine's writes, and the version store (and community generation) they move."""

    def __init__(self, engine: Engine, versions, generations=None) -> None:
        self.versions = versions
        self.generations = generations
        self.sqlite = engine.dialect.name == "sqlite"

    def autocommit(self, dbapi_connection) -> bool:
        """Whether a statement on this DB-API connection commits as it runs."""
        if self.sqlite:
            return not dbapi_connection.in_transaction
        return bool(getattr(dbapi_connection, "autocommit", False))

    def wrote(self, conn: Connection, kind: int) -> None:
        """A statement that changed content (`kind`) has run on `conn`."""
        pooled = conn.connection
        if self.autocommit(pooled.dbapi_connection):
            self.committed(kind)
        else:
            _mark(pooled.info, kind)

    def committed(self, kind: int = ROWS) -> None:
        """Content of `kind` is committed: move the version (and the community generation,
        for community content) on now, or when the request ends."""
        moving = []
        if kind & _MOVES_VERSION:
            moving.append(self.versions)
        if kind & _MOVES_GENERATION and self.generations is not None:
            moving.append(self.generations)
        if has_request_context():
            stores = g.setdefault(_G_STORES, [])
            stores.extend(store for store in moving if store not in stores)
        else:
            for store in moving:
                store.bump()


def _mark(info: dict, kind: int) -> None:
    info[_MARK] = info.get(_MARK, NOTHING) | kind


_WATCHES: weakref.WeakKeyDictionary[Engine, _Watch] = weakref.WeakKeyDictionary()


def _info(dbapi_connection) -> dict | None:
    """The pool's info dict of the connection the dialect was handed (its marks)."""
    if isinstance(dbapi_connection, PoolProxiedConnection):
        try:
            return dbapi_connection.info
        except NotImplementedError:  # the bare proxy of the engine's first connect
            return None
    return None


def watch(engine: Engine, versions, generations=None) -> None:
    """Move `versions` on after every committed content write through `engine`, and
    `generations` (when given) after every committed write to community content."""
    if engine in _WATCHES:
        return
    the_watch = _WATCHES[engine] = _Watch(engine, versions, generations)
    dialect = engine.dialect
    kinds = _KINDS
    scoped_reads = _SCOPED_READS

    def hook(run):
        """A do_execute-style hook: judge the statement, then mark its transaction, or
        (autocommit) run it here and count it as committed once it returns."""

        def before(cursor, statement, *args) -> bool | None:
            reads = scoped_reads.get(statement)
            if reads is None:
                reads = reads_scoped(statement)
                if len(scoped_reads) >= _KINDS_MAX:
                    scoped_reads.clear()
                scoped_reads[statement] = reads
            if reads and has_request_context():
                setattr(g, _G_SCOPED, True)
            kind = kinds.get(statement)
            if kind is None:
                kind = statement_kind(statement, args[-1])
            if not kind:
                return None  # SQLAlchemy runs it
            if not the_watch.autocommit(cursor.connection):
                _mark(args[-1].root_connection.info, kind)
                return None
            run(cursor, statement, *args)
            the_watch.committed(kind)
            return True  # it ran

        return before

    event.listen(engine, "do_execute", hook(dialect.do_execute))
    event.listen(engine, "do_executemany", hook(dialect.do_executemany))
    event.listen(engine, "do_execute_no_params", hook(dialect.do_execute_no_params))

    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection) -> None:
        info = _info(dbapi_connection)
        kind = info.pop(_MARK, NOTHING) if info else NOTHING
        if kind & _MOVES_VERSION == ROWS and the_watch.versions.in_transaction:
            # The transaction's last statement: visible with the data; the version's row
            # is locked only for the COMMIT.
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(the_watch.versions.SQL)
            finally:
                cursor.close()
            commit(dbapi_connection)
            if kind & COMMUNITY:
                the_watch.committed(COMMUNITY)
            return
        try:
            commit(dbapi_connection)
        finally:
            if kind:  # moved even if COMMIT failed: its outcome is then unknown
                the_watch.committed(kind)

    def do_rollback(dbapi_connection) -> None:
        info = _info(dbapi_connection)
        if info:
            info.pop(_MARK, None)
        rollback(dbapi_connection)

    dialect.do_commit = do_commit
    dialect.do_rollback = do_rollback


def content_changed(bind: Connection | Engine | None = None, *, community: bool = False) -> None:
    """Say that page content changed in a way SQLAlchemy did not see.

    - `bind` a Connection: the write ran on its DB-API connection, inside its transaction;
      it counts when that transaction commits, as a statement SQLAlchemy ran would (at
      once on an autocommit connection). driver_runner() reports its writes so.
    - `bind` an Engine, or None for the current app's: the write is committed already (the
      SQLite backup API, pg_restore): the version moves on now (at the end of the request,
      inside one).
    - `community`: the write was to community content only (scoped tables, whose triggers
      moved their stamps): the community generation moves instead (scopes.Stamps).
    """
    kind = COMMUNITY if community else ROWS
    if isinstance(bind, Connection):
        the_watch = _WATCHES.get(bind.engine)
        if the_watch is not None:
            the_watch.wrote(bind, kind)
        return
    the_watch = _WATCHES.get(bind if bind is not None else db.engine)
    if the_watch is not None:
        the_watch.committed(kind)


def _move_at_request_end(_exc) -> None:
    stores = g.pop(_G_STORES, None)
    if stores:
        db.session.remove()  # hand the connection back first: a database bump takes one
        for store in stores:
            store.bump()


def init_app(app: Flask, versions, generations=None) -> None:
    """Watch the app's engines; move `versions` (and `generations`) at the end of each
    request that wrote."""
    with app.app_context():
        for engine in db.engines.values():
            watch(engine, versions, generations)
    app.teardown_appcontext(_move_at_request_end)
