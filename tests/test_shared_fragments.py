"""Shared fragments show each viewer exactly what an uncached render would (perf/shared.py).

A fragment rendered once and served to many (a page of comments, a list row) is keyed by
the viewer's answers to the permission questions its template asks, and rendered from
those answers alone. These tests hold every such fragment, for every role, to a plain
render of the same template for that person, and show that a template change which would
make a fragment depend on anything else (a moderator-only form with a token, a look at the
session) fails loudly instead of reaching another role.
"""

from __future__ import annotations

import contextvars
import re
import secrets
import threading

import pytest
from flask import render_template
from flask.globals import _cv_app, _cv_request
from flask_login import AnonymousUserMixin, login_user
from itsdangerous import URLSafeTimedSerializer
from jinja2 import ChoiceLoader, DictLoader

from ideaboard.extensions import db
from ideaboard.models import Comment, User
from ideaboard.perf import shared
from ideaboard.services import comments, votes
from ideaboard.services.ideas import get_idea

from .factories import login_as, make_comment, make_idea, make_user
from .test_rows import _macro_rows, _rows_of

ROLES = ("visitor", "author", "member", "moderator", "staff", "admin")
_TOKEN_VALUE = re.compile(r'name="csrf_token" value="([^"]*)"')
_COMMENTS = re.compile(r'<div id="comments">(.*?)</div>\s*<nav class="pager"', re.S)


def _people() -> dict:
    return {
        "visitor": None,
        "author": make_user(name="Ann Author"),
        "member": make_user(name="Mel Member"),
        "moderator": make_user(role="moderator", name="Mo Moderator"),
        "staff": make_user(role="staff", name="Sue Staff"),
        "admin": make_user(role="admin", name="Ada Admin"),
    }


def _discussion(people) -> tuple:
    """An idea by the author with comments by the author, a member, staff (one of them the
    official response) and an admin; and a second, deleted idea with comments too."""
    idea = make_idea(author=people["author"], title="Shared fragments")
    make_comment(idea, author=people["author"], body="From the *author*")
    make_comment(idea, author=people["member"], body="From a member")
    make_comment(idea, author=people["staff"], body="We are on it", official=True)
    make_comment(idea, author=people["staff"], body="A staff aside")
    make_comment(idea, author=people["admin"], body="An admin's note")
    gone = make_idea(author=people["author"], title="Deleted, with comments")
    make_comment(gone, author=people["member"], body="Said before it went")
    make_comment(gone, author=people["staff"], body="Staff, before it went")
    gone.deleted_at = gone.created_at
    db.session.commit()
    return idea, gone


def _client(app, user):
    """A browser signed in as `user` (None: a visitor) whose session already holds a CSRF
    token, as after any page with a form: so its pages, and their fragments, are cached."""
    client = app.test_client()
    if user is not None:
        login_as(client, user)
        with client.session_transaction() as sess:
            sess["csrf_token"] = secrets.token_hex(20)
    return client


def _as(app, user, render):
    """`render()` in a request of `user`'s, as a plain (unshared) render sees them: in
    contexts of its own, so nothing of it stays in the test's `g`."""

    def run():
        _cv_app.set(None)
        _cv_request.set(None)
        with app.test_request_context("/"):
            if user is not None:
                login_user(db.session.get(User, user.id))
            return render()

    return contextvars.copy_context().run(run)


def _blank_tokens(html: str) -> str:
    return re.sub(r"\s+", " ", _TOKEN_VALUE.sub('name="csrf_token" value=""', html)).strip()


def _own_tokens(app, client, html: str) -> bool:
    """Every CSRF token on the page is the client's own session's."""
    raw = None
    with client.session_transaction() as sess:
        raw = sess.get("csrf_token")
    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
    return all(signer.loads(value) == raw for value in _TOKEN_VALUE.findall(html))


def _oracle_comments(app, user, idea_id: int) -> str:
    def render():
        idea = get_idea(idea_id, user)
        listed, _more = comments.list_comments(idea)
        return render_template("ideas/_comments.html", idea=idea, comments=listed)

    return _as(app, user, render)


@pytest.mark.parametrize("order", ["leaders first", "leaders last"])
def test_every_shared_fragment_is_what_an_uncached_render_shows_each_role(app, order):
    """Comments (live and deleted ideas) and list rows, as served from the shared caches to
    each role in turn, equal a plain render of the template for that person, carry only
    their own token, and never the shared render's placeholder."""
    people = _people()
    idea, gone = _discussion(people)
    votes.toggle_vote(people["member"], idea)
    db.session.commit()
    roles = ROLES if order == "leaders first" else tuple(reversed(ROLES))
    for role in roles * 2:  # the second round is served from what the first kept
        user = people[role]
        client = _client(app, user)
        for shown in (idea, gone):
            resp = client.get(f"/ideas/{shown.id}")
            if resp.status_code == 404:
                assert shown is gone and role not in ("staff", "admin")
                continue
            html = resp.get_data(as_text=True)
            served = _COMMENTS.search(html).group(1)
            assert _blank_tokens(served) == _blank_tokens(_oracle_comments(app, user, shown.id))
            assert _own_tokens(app, client, html) and shared.TOKEN not in html, role
        html = client.get("/ideas?sort=new").get_data(as_text=True)
        token = (_TOKEN_VALUE.findall(html) or [None])[0]
        listed = [get_idea(i.id) for i in (idea,)]
        # The member voted; the author's vote came with the idea.
        voted = {idea.id} if role in ("member", "author") else set()
        expected = _macro_rows(app, listed, voted, user, token, "/ideas?sort=new")
        assert _rows_of(html) == _rows_of(expected), role
        assert _own_tokens(app, client, html) and shared.TOKEN not in html, role


#: Controls a contributor might add to ideas/_comment.html (inside the comment), each
#: with a form carrying the viewer's token.
PROBE = '<form class="probe"><input name="csrf_token" value="{{ csrf_token() }}"></form>'
ADDED = {
    "moderators only, by role": '{% if current_user.role == "moderator" %}' + PROBE + "{% endif %}",
    "staff only, by a predicate not asked": "{% if is_staff(current_user) %}"
    + PROBE
    + "{% endif %}",
    "staff only, another unasked predicate": (
        "{% if can_change_status(current_user, idea) %}" + PROBE + "{% endif %}"
    ),
    "by the session": '{% if session.get("_user_id") %}' + PROBE + "{% endif %}",
    "by a cookie": "{% if request.cookies %}" + PROBE + "{% endif %}",
    "by g": "{% if g.get('_login_user') %}" + PROBE + "{% endif %}",
    "signed in, by current_user": "{% if current_user.is_authenticated %}" + PROBE + "{% endif %}",
    "staff only, by an asked predicate": (
        "{% if can_mark_official(current_user, comment, idea) %}" + PROBE + "{% endif %}"
    ),
    "for everyone": PROBE,
}


@pytest.mark.parametrize("added", list(ADDED), ids=list(ADDED))
def test_a_role_only_control_added_to_the_comment_template_reaches_no_other_role(app, added):
    """Add a control with a token to ideas/_comment.html that only some see, and serve the
    page to the role it is for first, then to every other: each role gets exactly what an
    uncached render shows it (and only its own token), or the render fails loudly."""
    people = _people()
    idea, _gone = _discussion(people)
    source = app.jinja_env.loader.get_source(app.jinja_env, "ideas/_comment.html")[0]
    marker = '  <div class="prose" data-user-content>'
    assert marker in source
    changed = source.replace(marker, ADDED[added] + "\n" + marker)
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"ideas/_comment.html": changed}), app.jinja_env.loader]
    )
    app.jinja_env.cache.clear()
    outcomes = set()
    for role in ("moderator", "staff", "admin", "author", "member", "visitor"):
        user = people[role]
        client = _client(app, user)
        try:
            html = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
        except shared.SharedRenderError:
            outcomes.add("loud")
            continue
        outcomes.add("served")
        served = _COMMENTS.search(html).group(1)
        expected = _oracle_comments(app, user, idea.id)
        assert ('class="probe"' in served) == ('class="probe"' in expected), role
        assert _blank_tokens(served) == _blank_tokens(expected), role
        assert _own_tokens(app, client, html), role
    if added.startswith(("staff only, by an asked", "for everyone")):
        assert outcomes == {"served"}  # asked questions and the token are safe to share
    else:
        assert outcomes == {"loud"}  # every role, not only the one it would have leaked to


def test_a_comment_page_is_kept_only_under_a_version_read_before_its_comments(app, monkeypatch):
    """A comment page rendered without a version read before its comments were loaded (a
    form sent back with an error) is served, not kept: a comment edited meanwhile shows its
    new words on the next load by anyone who would have shared that copy."""
    author, poster, reader = make_user(), make_user(), make_user()
    idea = make_idea(author=author)
    first = make_comment(idea, author=author, body="The first word")
    real = comments.list_comments
    raced = []

    def list_then_race(idea_, page=1):
        rows = real(idea_, page)
        if not raced:  # once: another request commits an edit after these rows were read
            raced.append(1)

            def edit():
                with app.app_context():
                    comment = db.session.get(Comment, first.id)
                    writer = db.session.get(User, comment.author_id)
                    comments.edit_comment(writer, comment, "A second thought")
                    db.session.commit()

            thread = threading.Thread(target=edit)
            thread.start()
            thread.join(30)
        return rows

    monkeypatch.setattr(comments, "list_comments", list_then_race)
    refused = _client(app, poster).post(f"/ideas/{idea.id}/comments", data={"body": ""})
    assert refused.status_code == 422 and raced
    assert "The first word" in refused.get_data(as_text=True)  # what it had read: fine
    html = _client(app, reader).get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert "A second thought" in html and "The first word" not in html


def test_a_viewer_answers_only_what_it_was_asked(app):
    """Inside a shared render, the viewer stand-in answers its questions and refuses the
    rest, and the request's own state is out of reach."""
    idea = make_idea()
    viewer = shared.ask(AnonymousUserMixin(), [(shared.permissions.can_vote, idea)])
    assert viewer.answer("can_vote", (idea,)) is False
    with pytest.raises(shared.SharedRenderError, match="can_comment"):
        viewer.answer("can_comment", (idea,))
    with pytest.raises(shared.SharedRenderError, match="current_user.id"):
        viewer.id  # noqa: B018
    with app.test_request_context("/"):
        with shared.rendering(), pytest.raises(shared.SharedRenderError):
            app.jinja_env.from_string("{{ request.path }}").render()
        with shared.rendering():
            assert app.jinja_env.from_string("{{ csrf_token() }}").render() == shared.TOKEN
        assert app.jinja_env.from_string("{{ csrf_token() }}").render() != shared.TOKEN
