"""Fixtures: a migrated database per run, a fresh app per test, clients and factories.

The schema is made by the migrations (as in production), once per run; each test then
starts from empty tables plus the `general` board the migration seeds.

`make test` runs the suite in pytest-xdist workers (`-n 2 --dist loadfile`). Each worker is
a session of its own: its own SQLite file (tmp_path_factory is per worker), its own
PostgreSQL scratch database, its own Redis database (`TEST_REDIS`, below) and mail folder;
servers the tests start listen on free ports. Tests marked `serial` (timing, CPU and load
measurements) run while no other worker runs a test (`_exclusive` below).
"""

from __future__ import annotations

import contextvars
import fcntl
import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import blinker
import pytest
import sqlalchemy as sa
from flask import has_app_context
from flask.globals import _cv_app, _cv_request
from flask.testing import FlaskClient
from flask_migrate import upgrade

from ideaboard import create_app
from ideaboard.config import TestConfig
from ideaboard.extensions import db

from .factories import login_as

BACKEND = os.environ.get("IDEABOARD_TEST_BACKEND", "sqlite")
#: For tests whose subject no database can change (source files, catalogs, Markdown
#: rendering, the wheel, gunicorn serving a stub app): run once, in the SQLite pass.
sqlite_pass_only = pytest.mark.skipif(
    BACKEND == "postgres", reason="uses no database: the SQLite pass covers it"
)
#: The pytest-xdist worker this process is ("gw0", "gw1", ...), or "" without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_INDEX = int(WORKER[2:]) if WORKER.startswith("gw") else 0
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# Tables in delete order (children first).
TABLES = (
    "audit_log",
    "reports",
    "thread_follows",
    "replies",
    "threads",
    "community_bans",
    "community_members",
    "community_moderators",
    "communities",
    "mail_outbox",
    "account_tokens",
    "votes",
    "comments",
    "status_changes",
    "ideas",
    "users",
    "boards",
)


def _pg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_pg_database(base_url: str) -> str:
    """Create a scratch database beside `base_url`'s and return its URL."""
    url = sa.make_url(_pg_url(base_url))
    name = f"ideaboard_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        # Not synchronous_commit = off (18 ms a commit on this disk, 0.4 ms without): it
        # changed the plans test_explain.py checks after bench_seed, so commits stay durable.
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(base_url: str, db_url: str) -> None:
    name = sa.make_url(db_url).database
    admin = sa.create_engine(sa.make_url(_pg_url(base_url)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def migrate_to_head(url: str) -> None:
    """Build the schema the production way: run every migration."""
    app = create_app({**_config(url)})
    with app.app_context():
        upgrade()
        db.engine.dispose()


#: Password hashes in tests: scrypt at a 128th of production's cost (2 ms, not 250), as
#: the suite makes thousands of accounts. Tests that time a hash against no hash (the same
#: time for known and unknown accounts) set TIMING_PASSWORD_METHOD, under which the hash
#: is most of a request, as in production.
PASSWORD_METHOD = "scrypt:1024:8:1"
TIMING_PASSWORD_METHOD = "scrypt:16384:8:1"


def _config(url: str) -> dict:
    cfg = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    cfg["SQLALCHEMY_DATABASE_URI"] = url
    cfg["PASSWORD_HASH_METHOD"] = PASSWORD_METHOD
    cfg["MAIL_DIR"] = os.path.join(tempfile.gettempdir(), f"ideaboard-test-mail{WORKER}")
    return cfg


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """One migrated database for the run: SQLite file, or PostgreSQL scratch database."""
    if BACKEND == "postgres":
        if not PG_URL:
            pytest.exit("IDEABOARD_TEST_BACKEND=postgres needs TEST_DATABASE_URL", 2)
        url = make_pg_database(PG_URL)
        migrate_to_head(url)
        yield url
        drop_pg_database(PG_URL, url)
    else:
        path = tmp_path_factory.mktemp("db") / "test.db"
        url = f"sqlite:///{path}"
        migrate_to_head(url)
        yield url


#: Per PostgreSQL database: the tables `TRUNCATE <TABLES> CASCADE` would empty, children
#: first, and the sequences its RESTART IDENTITY would restart.
_PG_EMPTYING: dict[str, tuple[list[str], list[str]]] = {}


def _pg_emptying(conn) -> tuple[list[str], list[str]]:
    """What `TRUNCATE <TABLES> RESTART IDENTITY CASCADE` empties and restarts, read from the
    catalog once per database, in an order that deletes every referencing row first.

    The reset DELETEs these rows rather than TRUNCATE them: the tables hold a handful of
    rows after a test, and TRUNCATE makes new files for every table and index, which cost
    about 0.2-0.5 s a test (most of the PostgreSQL pass's time), where DELETE takes 10 ms.
    """
    key = conn.engine.url.render_as_string(hide_password=False)
    if key not in _PG_EMPTYING:
        edges = conn.exec_driver_sql(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
        ).all()
        chosen = set(TABLES)
        while extra := {child for child, parent in edges if parent in chosen} - chosen:
            chosen |= extra  # CASCADE: every table that references an emptied one
        order: list[str] = []
        waiting = set(chosen)
        while waiting:  # children first: a table goes once nothing waiting references it
            ready = sorted(
                t for t in waiting if not any(p == t and c in waiting and c != t for c, p in edges)
            )
            if not ready:
                raise RuntimeError(f"foreign keys form a cycle among {sorted(waiting)}")
            order += ready
            waiting -= set(ready)
        sequences = conn.exec_driver_sql(
            "SELECT s.oid::regclass::text FROM pg_class s "
            "JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid "
            "AND d.deptype IN ('a', 'i') "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "WHERE s.relkind = 'S' AND t.relname = ANY(%s)",
            (sorted(chosen),),
        ).scalars()
        _PG_EMPTYING[key] = (order, sorted(sequences))
    return _PG_EMPTYING[key]


def _reset(app, truncate: bool = False) -> None:
    """Empty every table and re-seed the `general` board (`truncate`: on PostgreSQL with
    TRUNCATE, new files without dead rows, for tests that read the planner's statistics)."""
    if has_app_context():
        db.session.remove()  # the test's session must forget rows that are about to go
    with app.app_context():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql" and truncate:
                conn.exec_driver_sql("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE")
            elif conn.dialect.name == "postgresql":
                tables, sequences = _pg_emptying(conn)
                for table in tables:
                    conn.exec_driver_sql(f"DELETE FROM {table}")
                conn.exec_driver_sql(
                    "SELECT setval(seqrelid, seqstart, false) FROM pg_sequence "
                    "WHERE seqrelid = ANY(%s::regclass[])",
                    (list(sequences),),
                )
            else:
                for table in TABLES:
                    conn.exec_driver_sql(f"DELETE FROM {table}")
            conn.execute(
                sa.text(
                    "INSERT INTO boards (slug, name, description, created_at) "
                    "VALUES ('general', 'General', '', CURRENT_TIMESTAMP)"
                )
            )
        # The commit moved the content version on (perf.freshness), so no page cached by
        # an earlier test (in Redis, or under the version file) is served.


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as in production.

    Without this, a request made while the test holds an app context would share that
    context's `g` (the signed-in user) and database session with the test.
    """

    def open(self, *args, **kwargs):
        def _run():
            _cv_app.set(None)
            _cv_request.set(None)
            return FlaskClient.open(self, *args, **kwargs)

        outer = _cv_app.get(None)
        if outer is not None:
            db.session.commit()  # the request must see what the test wrote
        resp = contextvars.copy_context().run(_run)
        if outer is not None:
            db.session.commit()  # and the test must not read through an older snapshot
        return resp


@pytest.fixture
def make_app(database_url):
    """Build an app on the test database with extra settings; cleaned up after the test."""
    apps = []

    def _make(**overrides):
        app = create_app({**_config(database_url), **overrides})
        app.test_client_class = IsolatedClient
        apps.append(app)
        return app

    yield _make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        _disconnect_signals(app)


def _disconnect_signals(app) -> None:
    """Drop the receivers tests connected for `app` (`request_started.connect(fn, app,
    weak=False)`): the signal is global, and a receiver holding its app kept every such app,
    its engine and its caches alive to the end of the run (more memory and slower garbage
    collection in every later test of the worker)."""
    import flask.signals

    from ideaboard.perf import observe

    for module in (flask.signals, observe):
        for signal in vars(module).values():
            if isinstance(signal, blinker.Signal):
                for_anyone = list(signal.receivers_for(object()))  # connected to ANY sender
                for receiver in list(signal.receivers_for(app)):
                    if not any(receiver is other for other in for_anyone):
                        # Fully: blinker's disconnect(receiver, sender) keeps the receiver.
                        signal.disconnect(receiver)


@contextmanager
def fresh_app(make_app, **overrides):
    """An app with `overrides` over empty tables (plus the `general` board), in its context."""
    app = make_app(**overrides)
    _reset(app)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def app(make_app):
    """A fresh app over empty tables (plus the `general` board)."""
    with fresh_app(make_app) as app:
        yield app


@pytest.fixture
def client(app):
    """A browser without JavaScript."""
    return app.test_client()


@pytest.fixture
def htmx(app):
    """A browser with htmx: every request carries HX-Request."""
    c = app.test_client()
    c.environ_base["HTTP_HX_REQUEST"] = "true"
    return c


@pytest.fixture
def auth(client):
    """Sign the plain client in as a given user: auth(user)."""
    return lambda user: login_as(client, user)


@pytest.fixture
def count_queries(app):
    """Count SQL statements run inside a `with count_queries() as n:` block (n.count)."""

    class Counter:
        count = 0
        statements: list[str] = []

    @contextmanager
    def _counting():
        counter = Counter()
        counter.statements = []

        def _on(conn, cursor, statement, *args):
            if statement.startswith("BEGIN"):
                return  # transaction control (SQLite's explicit BEGIN), not a query
            counter.count += 1
            counter.statements.append(statement)

        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", _on)
        try:
            yield counter
        finally:
            sa.event.remove(engine, "before_cursor_execute", _on)

    return _counting


def shared_fixture(name: str) -> Path:
    """A file from ../shared/fixtures, or skip the test with a clear message."""
    path = SHARED / "fixtures" / name
    if not path.exists():
        pytest.skip(f"shared fixture {path} is absent (tests read ../shared/fixtures/)")
    return path


def _worker_redis(url: str) -> str:
    """Worker k of an xdist run uses database N-k (mod 16) of IDEABOARD_TEST_REDIS's N:
    /15 gives gw0 /15 and gw1 /14. Tests flush their database, so no two workers share one."""
    base, _, db_part = url.rpartition("/")
    if not WORKER_INDEX or not db_part.isdigit():
        return url
    return f"{base}/{(int(db_part) - WORKER_INDEX) % 16}"


#: The Redis database the tests use (and flush); another one for a second run at once.
#: Under xdist each worker gets its own (see _worker_redis).
TEST_REDIS = _worker_redis(os.environ.get("IDEABOARD_TEST_REDIS", "redis://127.0.0.1:6379/15"))


def redis_or_skip():
    """A client for the test Redis database, or skip saying Redis is not running."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(TEST_REDIS)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    return client


def postgres_url_or_skip() -> str:
    """TEST_DATABASE_URL for PostgreSQL-only tests, or skip saying how to enable them."""
    if not PG_URL:
        pytest.skip("set TEST_DATABASE_URL=postgresql://... to run PostgreSQL tests")
    return PG_URL


# --- tests that must run alone --------------------------------------------------------------


def _lock_files() -> tuple[int, int] | None:
    """The run's two lock files (a turnstile and the lock itself), shared by its workers."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not WORKER or not run:
        return None
    folder = Path(tempfile.gettempdir())
    turnstile = os.open(folder / f"ideaboard-pytest-{run}.turn", os.O_RDWR | os.O_CREAT, 0o600)
    main = os.open(folder / f"ideaboard-pytest-{run}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    return turnstile, main


_LOCKS: tuple[int, int] | None = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Every test holds the run's lock shared; a `serial` test holds it alone.

    A serial test first takes the turnstile, so workers finishing a test queue behind it
    instead of starving it; it waits only for the tests already running to end.
    """
    global _LOCKS
    if _LOCKS is None:
        _LOCKS = _lock_files() or (-1, -1)
    turnstile, main = _LOCKS
    if main < 0:
        return (yield)
    if item.get_closest_marker("serial"):
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(main, fcntl.LOCK_EX)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
    else:
        fcntl.flock(turnstile, fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(main, fcntl.LOCK_SH)
    try:
        return (yield)
    finally:
        fcntl.flock(main, fcntl.LOCK_UN)
