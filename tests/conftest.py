"""Fixtures: a migrated database per run, a fresh app per test, clients and factories.

The schema is made by the migrations (as in production), once per run; each test then
starts from empty tables plus the `general` board the migration seeds.
"""

from __future__ import annotations

import contextvars
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

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
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# Tables in delete order (children first).
TABLES = (
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


def _config(url: str) -> dict:
    cfg = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    cfg["SQLALCHEMY_DATABASE_URI"] = url
    cfg["PASSWORD_HASH_METHOD"] = "scrypt:16384:8:1"
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


def _reset(app) -> None:
    """Empty every table and re-seed the `general` board."""
    if has_app_context():
        db.session.remove()  # the test's session must forget rows that are about to go
    with app.app_context():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE")
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


#: The Redis database the tests use (and flush); another one for a second run at once.
TEST_REDIS = os.environ.get("IDEABOARD_TEST_REDIS", "redis://127.0.0.1:6379/15")


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
