"""When the database fails: a clear 503, nothing half-written, and the next request works."""

import time

import pytest
from flask import has_request_context
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from ideaboard import create_app
from ideaboard.extensions import db
from ideaboard.models import Vote

from .conftest import BACKEND, _config, fresh_app
from .factories import login_as, make_idea, make_user, reload


def test_failed_commit_answers_503_and_next_request_works(app, client, monkeypatch):
    """A commit that fails mid-request gives a retry message, writes nothing, and heals."""
    idea, member = make_idea(), make_user()
    login_as(client, member)
    real_commit = type(db.session()).commit
    calls = {"n": 0}

    def failing_commit(session):
        if not has_request_context():  # the test's own session commits normally
            return real_commit(session)
        calls["n"] += 1
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(type(db.session()), "commit", failing_commit)
    resp = client.post(f"/ideas/{idea.id}/vote")
    monkeypatch.undo()
    assert calls["n"] == 1
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert b"Nothing was saved" in resp.data and b"Traceback" not in resp.data
    assert db.session.scalar(select(func.count()).select_from(Vote)) == 1  # the author's
    assert reload(idea).vote_count == 1
    assert client.post(f"/ideas/{idea.id}/vote").status_code == 303
    assert reload(idea).vote_count == 2


def test_healthz_reports_unavailable_database():
    """/healthz answers 503 when the database cannot be reached."""
    app = create_app(_config("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503 and resp.get_json()["database"] is False


def test_pages_answer_503_not_500_when_database_is_down():
    """A page whose database is unreachable answers a styled 503."""
    app = create_app(_config("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    resp = app.test_client().get("/ideas")
    assert resp.status_code == 503
    assert b"Temporarily unavailable" in resp.data


def _drop_the_apps_connections() -> int:
    """pg_terminate_backend() on every other connection to the test database (the app's)."""
    import psycopg

    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]


@pytest.mark.skipif(BACKEND != "postgres", reason="kills PostgreSQL connections")
def test_connections_dropped_while_idle_are_replaced_before_a_page_uses_them(make_app):
    """The server dropped every pooled connection (a restart, a failover): once they have
    sat idle, the next page finds that out by a ping and is served on a new connection."""
    with fresh_app(make_app, DB_PING_AFTER_IDLE=0.0) as app:  # as if a second had gone by
        client = app.test_client()
        make_idea(title="Still on the board")
        db.session.commit()
        db.session.remove()
        assert client.get("/ideas").status_code == 200  # the pool holds a used connection
        assert _drop_the_apps_connections() >= 1
        resp = client.get("/ideas")
        assert resp.status_code == 200 and b"Still on the board" in resp.data


@pytest.mark.skipif(BACKEND != "postgres", reason="kills PostgreSQL connections")
def test_connections_dropped_while_busy_cost_one_503_then_pages_work(make_app):
    """Connections used a moment ago are not pinged: if the server dropped them in that
    moment, one request answers the retry page (nothing written), and the pool is renewed
    for the next."""
    with fresh_app(make_app, DB_PING_AFTER_IDLE=3600.0) as app:  # all of them count as warm
        client = app.test_client()
        idea, member = make_idea(), make_user()
        db.session.commit()
        db.session.remove()
        login_as(client, member)
        assert client.get("/ideas").status_code == 200
        assert _drop_the_apps_connections() >= 1
        resp = client.post(f"/ideas/{idea.id}/vote")
        assert resp.status_code == 503 and b"Nothing was saved" in resp.data
        assert client.post(f"/ideas/{idea.id}/vote").status_code == 303
        assert reload(idea).vote_count == 2  # its author's and this one


def test_a_connection_used_a_moment_ago_is_not_pinged(tmp_path):
    """No round trip before each request's statements while connections are busy; one
    ping after a connection has sat idle."""
    import sqlalchemy as sa

    from ideaboard.database import engine_options, ping_when_idle

    url = f"sqlite:///{tmp_path / 'ping.db'}"
    engine = sa.create_engine(url, **engine_options(url, {}))
    ping_when_idle(engine, 0.5)
    sent = []
    with engine.connect() as conn:
        conn.connection.dbapi_connection.set_trace_callback(sent.append)
    for _ in range(3):
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 2")
    assert sent == ["SELECT 2"] * 3
    time.sleep(0.6)  # idle for longer than that
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 2")
    assert sent[3:] == ["SELECT 1", "SELECT 2"]  # the ping, then the work
    engine.dispose()
