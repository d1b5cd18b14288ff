"""When the database fails: a clear 503, nothing half-written, and the next request works."""

from flask import has_request_context
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from ideaboard import create_app
from ideaboard.extensions import db
from ideaboard.models import Vote

from .conftest import _config
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
    assert db.session.scalar(select(func.count()).select_from(Vote)) == 0
    assert reload(idea).vote_count == 0
    assert client.post(f"/ideas/{idea.id}/vote").status_code == 303
    assert reload(idea).vote_count == 1


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
