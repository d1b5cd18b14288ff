"""Similar ideas while typing a new idea's title (GET /ideas/similar).

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from __future__ import annotations

import re

from ideaboard.extensions import db
from ideaboard.services import ideas as idea_service

from .conftest import _reset
from .factories import (
    general_board,
    login_as,
    make_board,
    make_idea,
    make_user,
    reload,
    vote_for,
)


def _similar(client, title, board=None, **headers):
    query = {"title": title}
    if board is not None:
        query["board"] = str(board.id)
    return client.get("/ideas/similar", query_string=query, headers=headers)


def _titles(html: str) -> list[str]:
    return re.findall(r'<a href="/ideas/\d+[^"]*">([^<]*)</a>', html)


def test_finds_similar_live_ideas_most_voted_first(app, htmx):
    """Ideas matching every word come first (most voted first), then any word; a
    deleted idea is never among them; each shows its status and votes."""
    popular = make_idea(title="Dark mode for the dashboard")
    plain = make_idea(title="Dark mode everywhere")
    make_idea(title="Mode of payment")  # one word only
    make_idea(title="Export to CSV")  # none
    gone = make_idea(title="Dark mode please")
    staff = make_user("staff")
    idea_service.delete_idea(staff, gone)
    db.session.commit()
    for _ in range(2):
        vote_for(popular, make_user())
    login_as(htmx, make_user())
    resp = _similar(htmx, "dark mode")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" not in html
    assert _titles(html) == [popular.title, plain.title, "Mode of payment"]
    assert "Dark mode please" not in html
    for idea in (popular, plain):
        n = reload(idea).vote_count
        assert f"{n} vote{'' if n == 1 else 's'}" in html
    assert 'id="similar-heading"' in html
    assert html.count('name="intent" value="vote"') == 3
    assert f'formaction="/ideas/{plain.id}/vote"' in html
    # The buttons belong to #similar-vote, never to the new-idea form around them.
    assert html.count('form="similar-vote"') == 3


def test_short_titles_and_short_words_find_nothing(app, htmx):
    make_idea(title="An idea about ab testing")
    login_as(htmx, make_user())
    for title in ("", "a", "ab", "  ab  ", "a b", "an ab", "<>!"):
        resp = _similar(htmx, title)
        assert resp.status_code == 200, title
        assert _titles(resp.get_data(as_text=True)) == [], title
    assert _similar(htmx, "ab\x00testing").status_code == 400  # as every input with NUL


def test_at_most_five_and_limited_to_the_chosen_board(app, htmx):
    other = make_board()
    for n in range(7):
        make_idea(title=f"Keyboard shortcut number {n}")
    make_idea(title="Keyboard shortcut elsewhere", board=other)
    login_as(htmx, make_user())
    html = _similar(htmx, "keyboard shortcut").get_data(as_text=True)
    assert len(_titles(html)) == 5
    html = _similar(htmx, "keyboard shortcut", board=other).get_data(as_text=True)
    assert _titles(html) == ["Keyboard shortcut elsewhere"]
    html = _similar(htmx, "keyboard shortcut", board=general_board()).get_data(as_text=True)
    assert "elsewhere" not in html and len(_titles(html)) == 5


def test_a_voted_idea_says_so_instead_of_a_button(app, htmx):
    idea = make_idea(title="Offline sync")
    member = make_user()
    vote_for(idea, member)
    login_as(htmx, member)
    html = _similar(htmx, "offline").get_data(as_text=True)
    assert "You have already voted for it." in html and 'value="vote"' not in html


def test_vote_for_this_instead_posts_intent_vote(app, client):
    """The button posts the small #similar-vote form (its CSRF token) to the idea's vote
    URL with intent=vote: the member votes and lands on the idea; no idea is posted."""
    idea = make_idea(title="Calendar export")
    member = make_user()
    login_as(client, member)
    page = client.get("/ideas/new").get_data(as_text=True)
    assert re.search(r'<form id="similar-vote" method="post" action="/ideas/new" hidden>', page)
    resp = client.post(f"/ideas/{idea.id}/vote", data={"intent": "vote"})
    assert resp.status_code == 303 and f"/ideas/{idea.id}" in resp.headers["Location"]
    db.session.expire_all()
    assert idea_service.get_idea(idea.id).vote_count == 2  # its author's and the member's


def test_the_new_idea_form_asks_while_typing_and_posts_without_js(app, client):
    """The title field asks for suggestions (debounced htmx) into a polite live region;
    the form itself is a plain post that works without JavaScript."""
    login_as(client, make_user())
    html = client.get("/ideas/new").get_data(as_text=True)
    assert 'hx-get="/ideas/similar"' in html and 'hx-trigger="keyup changed delay:300ms"' in html
    assert 'hx-target="#similar"' in html and 'hx-include="#board"' in html
    assert re.search(r'<section id="similar" class="similar" aria-live="polite"', html)
    data = {"title": "A brand new thing", "body": "", "board": str(general_board().id)}
    resp = client.post("/ideas/new", data={**data, "kind": "idea"})
    assert resp.status_code == 303


def test_without_htmx_the_suggestions_are_a_page(app, client):
    """Opened directly (history, no JS), the URL answers a whole page with working buttons."""
    make_idea(title="Two factor sign in")
    login_as(client, make_user())
    resp = _similar(client, "two factor")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "<html" in html
    assert "Two factor sign in" in html and 'name="csrf_token"' in html
    assert "no-store" in resp.headers["Cache-Control"]


def test_visitors_are_sent_to_sign_in(app, client, htmx):
    make_idea(title="Secret roadmap")
    resp = _similar(client, "secret")
    assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]
    assert _similar(htmx, "secret").status_code == 401


def test_suggestions_are_rate_limited(make_app):
    app = make_app(RATELIMIT_ENABLED=True, SIMILAR_LIMIT="3 per minute")
    with app.app_context():
        _reset(app)
        client = app.test_client()
        login_as(client, make_user())
        codes = [_similar(client, "anything").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
