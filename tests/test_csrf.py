"""CSRF details: the friendly refusal page, the htmx header, the one exemption.

That every state-changing route refuses a missing, forged or foreign token is proven over
the whole route inventory in test_route_security.py.
"""

import re

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Comment, Idea, StatusChange, User, Vote

from .conftest import fresh_app
from .factories import login_as, make_idea, make_user


@pytest.fixture
def csrf_app(make_app):
    """An app with CSRF protection on, as in production."""
    with fresh_app(make_app, WTF_CSRF_ENABLED=True) as app:
        yield app


def _snapshot():
    return tuple(
        db.session.scalar(select(func.count()).select_from(m))
        for m in (User, Idea, Vote, Comment, StatusChange)
    )


def _token(client, url="/"):
    html = client.get(url).get_data(as_text=True)
    field = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html).group(0)
    return re.search(r'value="([^"]+)"', field).group(1)


def test_only_the_language_switch_is_exempt(csrf_app):
    """The language switch is the one POST without CSRF, and it changes no data."""
    client = csrf_app.test_client()
    before = _snapshot()
    resp = client.post("/lang", data={"lang": "ru", "next": "/"})
    assert resp.status_code == 303 and _snapshot() == before


def test_csrf_page_keeps_what_was_typed(csrf_app):
    """A refused form shows a friendly page with the typed text, never the password."""
    client = csrf_app.test_client()
    resp = client.post(
        "/register",
        data={"email": "me@example.com", "display_name": "Me", "password": "secret secret 1"},
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "This form expired" in html
    assert "me@example.com" in html and "secret secret 1" not in html


def test_form_token_and_htmx_header_work(csrf_app):
    """The page's token works as a form field and as htmx's X-CSRFToken header."""
    member = make_user()
    idea = make_idea()
    client = csrf_app.test_client()
    login_as(client, member)
    token = _token(client, f"/ideas/{idea.id}")
    page = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
    resp = client.post(f"/ideas/{idea.id}/vote", data={"csrf_token": token})
    assert resp.status_code == 303
    resp = client.post(
        f"/ideas/{idea.id}/vote", headers={"HX-Request": "true", "X-CSRFToken": token}
    )
    assert resp.status_code == 200 and b'aria-pressed="false"' in resp.data
    resp = client.post(f"/ideas/{idea.id}/vote", headers={"HX-Request": "true"})
    assert resp.status_code == 400 and resp.headers.get("HX-Refresh") == "true"
    assert _snapshot()[2] == 1  # the author's own vote; the member's is taken back
