"""Votes are never lost or undone by accident (issue 12, items 1, 2, 4 and 7).

- The vote request's `intent` (vote / unvote, ../shared/contract.md) sets the vote, so a
  doubled or retried POST leaves exactly one vote (or none), through the Flask route and
  the fast path alike; without an intent the request toggles; any other value is a 400.
- A visitor who clicks vote, signs in or registers, comes back having voted.
- A new idea starts with its author's vote; votes freeze once an idea is shipped or declined.
- Without JavaScript a vote brings you back to the row; the control is labelled by the
  idea's title and says "Vote" / "Voted" in words.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from __future__ import annotations

import re
from functools import partial

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Idea, Vote
from ideaboard.permissions import can_vote, voting_closed
from ideaboard.services import roadmap, votes

from .factories import PASSWORD, at_once, login_as, make_idea, make_user, reload
from .test_fastvote import _field, handled_by_flask, sign_in
from .test_fastvote import make_fast_app as _make_fast_app
from .test_fastvote import vote as htmx_vote

make_fast_app = pytest.fixture(_make_fast_app.__wrapped__, name="make_fast_app")


def _state(idea) -> tuple[int, int]:
    """(stored count, vote rows) of the idea, as the database has them."""
    db.session.commit()
    rows = db.session.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea.id))
    return reload(idea).vote_count, rows


def _has(idea, user) -> bool:
    db.session.commit()
    return (
        db.session.scalar(select(Vote.id).where(Vote.idea_id == idea.id, Vote.user_id == user.id))
        is not None
    )


# --- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "intent"), [(None, None), ("", None), ("vote", "vote"), ("unvote", "unvote")]
)
def test_parse_intent_accepts_the_contract(value, intent):
    assert votes.parse_intent(value) == intent


@pytest.mark.parametrize("value", ["toggle", "VOTE", "1", "vote ", "unvote\x00", "yes"])
def test_parse_intent_refuses_anything_else(value):
    with pytest.raises(votes.BadIntent):
        votes.parse_intent(value)


def test_set_vote_repeated_changes_nothing(app):
    idea = make_idea()
    member = make_user()
    for _ in range(3):
        assert votes.set_vote(member, idea, "vote").voted is True
        db.session.commit()
    assert _state(idea) == (2, 2)  # the author's and the member's
    for _ in range(3):
        assert votes.set_vote(member, idea, "unvote").voted is False
        db.session.commit()
    assert _state(idea) == (1, 1)
    assert votes.toggle_vote(member, idea).voted is True
    db.session.commit()
    assert _state(idea) == (2, 2)
    assert votes.count_mismatches() == []


# --- Flask's route -----------------------------------------------------------------------


def _post(client, idea, **form):
    return client.post(f"/ideas/{idea.id}/vote", data=form)


def test_flask_route_intent_is_idempotent_and_toggle_stays(app, client):
    idea = make_idea()
    member = make_user()
    login_as(client, member)  # no session-protection id: every request goes through Flask
    for _ in range(2):  # a doubled post
        assert _post(client, idea, intent="vote").status_code == 303
    assert _state(idea) == (2, 2) and _has(idea, member)
    for _ in range(2):
        assert _post(client, idea, intent="unvote").status_code == 303
    assert _state(idea) == (1, 1) and not _has(idea, member)
    assert _post(client, idea).status_code == 303  # no intent: toggle, as before
    assert _has(idea, member)
    assert _post(client, idea).status_code == 303
    assert not _has(idea, member)


@pytest.mark.parametrize("bad", ["toggle", "Vote", "x" * 200])
def test_flask_route_refuses_an_unknown_intent(app, client, bad):
    idea = make_idea()
    login_as(client, make_user())
    assert _post(client, idea, intent=bad).status_code == 400
    assert _state(idea) == (1, 1)


def test_retry_after_a_lost_answer_keeps_the_vote(app, client):
    """The answer to a vote is lost; the browser sends it again: the vote stands."""
    idea = make_idea()
    member = make_user()
    login_as(client, member)
    _post(client, idea, intent="vote")  # committed; pretend the answer never came
    resp = client.post(
        f"/ideas/{idea.id}/vote", data={"intent": "vote"}, headers={"HX-Request": "true"}
    )
    assert resp.status_code == 200
    assert 'aria-pressed="true"' in resp.get_data(as_text=True)
    assert _state(idea) == (2, 2) and _has(idea, member)


def test_doubled_concurrent_posts_leave_one_vote_through_flask(app):
    idea = make_idea()
    member = make_user()
    clients = []
    for _ in range(8):
        c = app.test_client()
        login_as(c, member)
        clients.append(c)
    answers = at_once([partial(_post, c, idea, intent="vote") for c in clients])
    assert {r.status_code for r in answers} == {303}
    assert _state(idea) == (2, 2)
    answers = at_once([partial(_post, c, idea, intent="unvote") for c in clients])
    assert {r.status_code for r in answers} == {303}
    assert _state(idea) == (1, 1)
    assert votes.count_mismatches() == []


# --- the fast path ----------------------------------------------------------------------


def test_fast_path_intent_is_idempotent(make_fast_app):
    app = make_fast_app()
    with app.app_context():
        idea = make_idea()
        member = make_user()
        client, token = sign_in(app, member)
        for expected in ("true", "true"):
            via_flask, resp = handled_by_flask(
                app, partial(htmx_vote, client, idea.id, token, intent="vote")
            )
            assert not via_flask and resp.status_code == 200
            html = resp.get_data(as_text=True)
            assert f'aria-pressed="{expected}"' in html
            assert _field(html, "intent") == "unvote"  # the next click takes it back
            token = _field(html, "csrf_token")
        assert _state(idea) == (2, 2)
        for _ in range(2):
            via_flask, resp = handled_by_flask(
                app, partial(htmx_vote, client, idea.id, token, intent="unvote")
            )
            assert not via_flask and resp.status_code == 200
            assert 'aria-pressed="false"' in resp.get_data(as_text=True)
        assert _state(idea) == (1, 1)
        # No intent: the toggle, still answered fast.
        via_flask, resp = handled_by_flask(app, partial(htmx_vote, client, idea.id, token))
        assert not via_flask and 'aria-pressed="true"' in resp.get_data(as_text=True)
        assert _state(idea) == (2, 2)


def test_fast_path_passes_an_unknown_intent_to_flask_which_refuses_it(make_fast_app):
    app = make_fast_app()
    with app.app_context():
        idea = make_idea()
        client, token = sign_in(app, make_user())
        via_flask, resp = handled_by_flask(
            app, partial(htmx_vote, client, idea.id, token, intent="toggle")
        )
        assert via_flask and resp.status_code == 400
        assert _state(idea) == (1, 1)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("intent", ["vote", "unvote"])
@pytest.mark.parametrize("voted_before", [True, False])
def test_fast_path_and_flask_answer_every_intent_alike(make_fast_app, fast, intent, voted_before):
    app = make_fast_app(VOTE_FAST_PATH=fast)
    with app.app_context():
        idea = make_idea()
        member = make_user()
        if voted_before:
            votes.set_vote(member, idea, "vote")
            db.session.commit()
        client, token = sign_in(app, member)
        via_flask, resp = handled_by_flask(
            app, partial(htmx_vote, client, idea.id, token, intent=intent)
        )
        assert via_flask is not fast
        assert resp.status_code == 200
        expected = intent == "vote"
        assert f'aria-pressed="{str(expected).lower()}"' in resp.get_data(as_text=True)
        assert _has(idea, member) is expected
        assert _state(idea) == (1 + expected,) * 2


def test_doubled_concurrent_posts_leave_one_vote_through_the_fast_path(make_fast_app):
    app = make_fast_app()
    with app.app_context():
        idea = make_idea()
        member = make_user()
        tabs = [sign_in(app, member) for _ in range(6)]
        for intent, expected in (("vote", 2), ("unvote", 1), ("vote", 2)):
            answers = at_once([partial(htmx_vote, c, idea.id, t, intent=intent) for c, t in tabs])
            assert {r.status_code for r in answers} == {200}
            assert _state(idea) == (expected, expected)
        assert votes.count_mismatches() == []


# --- votes freeze once an idea is decided -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("shipped", "Voting is closed: this idea has shipped."),
        ("declined", "Voting is closed: this idea was declined."),
    ],
)
def test_voting_is_closed_on_decided_ideas(make_fast_app, status, message):
    app = make_fast_app()
    with app.app_context():
        idea = make_idea()
        voter = make_user()
        votes.set_vote(voter, idea, "vote")
        roadmap.change_status(make_user("staff"), idea, status, "")
        db.session.commit()
        assert voting_closed(reload(idea)) and not can_vote(voter, reload(idea))
        client, token = sign_in(app, voter)
        for intent in ("vote", "unvote", None):
            form = {} if intent is None else {"intent": intent}
            via_flask, resp = handled_by_flask(
                app, partial(htmx_vote, client, idea.id, token, **form)
            )
            assert via_flask and resp.status_code == 403  # the fast path leaves it to Flask
            assert message in resp.get_data(as_text=True)
        assert _state(idea) == (2, 2) and _has(idea, voter)
        # The idea page says why, for members and visitors, with a disabled button.
        for who in (client, app.test_client()):
            page = who.get(f"/ideas/{idea.id}").get_data(as_text=True)
            control = re.search(r'<div id="vote-\d+" class="vote is-closed">.*?</div>', page, re.S)
            assert control, page[:2000]
            assert "disabled" in control.group(0)
            assert f"Closed: {status.capitalize()}" in control.group(0)
            assert "<form" not in control.group(0)


# --- a new idea starts with its author's vote -----------------------------------------------


def test_a_new_idea_starts_with_its_authors_vote(app, client):
    author = make_user()
    idea = make_idea(author)
    assert idea.vote_count == 1 and _state(idea) == (1, 1) and _has(idea, author)
    assert votes.count_mismatches() == []
    login_as(client, author)
    page = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert 'aria-pressed="true"' in page


# --- a visitor's vote survives signing in ------------------------------------------------


def test_visitor_vote_link_carries_the_vote_and_the_page(app, client):
    idea = make_idea()
    for path in (f"/ideas/{idea.id}", "/ideas?sort=new"):
        page = client.get(path).get_data(as_text=True)
        link = re.search(rf'<a class="vote-button" id="vote-button-{idea.id}" href="([^"]+)"', page)
        assert link, path
        href = link.group(1).replace("&amp;", "&")
        assert href.startswith("/login?next=") and href.endswith(f"&vote={idea.id}")
        assert ">Vote<" in page


def _login_form(client, query: str) -> dict:
    page = client.get(f"/login?{query}").get_data(as_text=True)
    return {
        "csrf_token": _field(page, "csrf_token") if 'name="csrf_token"' in page else "",
        "next": _field(page, "next"),
        "vote": _field(page, "vote"),
    }


def test_sign_in_casts_the_visitors_vote_and_returns_to_the_row(app, client):
    idea = make_idea()
    member = make_user()
    form = _login_form(client, f"next=/ideas%3Fsort%3Dnew&vote={idea.id}")
    assert form["vote"] == str(idea.id) and form["next"] == "/ideas?sort=new"
    resp = client.post("/login", data={**form, "email": member.email, "password": PASSWORD})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/ideas?sort=new#vote-{idea.id}")
    assert _has(idea, member) and _state(idea) == (2, 2)


def test_sign_in_never_takes_back_a_vote_already_there(app, client):
    idea = make_idea()
    member = make_user()
    votes.set_vote(member, idea, "vote")
    db.session.commit()
    client.post(
        "/login",
        data={"email": member.email, "password": PASSWORD, "vote": str(idea.id), "next": "/"},
    )
    assert _has(idea, member) and _state(idea) == (2, 2)


def test_register_casts_the_visitors_vote(app, client):
    idea = make_idea()
    page = client.get(f"/register?next=/ideas/{idea.id}&vote={idea.id}").get_data(as_text=True)
    assert _field(page, "vote") == str(idea.id)
    resp = client.post(
        "/register",
        data={
            "email": "newcomer@example.com",
            "display_name": "Newcomer",
            "password": "a long enough passphrase",
            "next": f"/ideas/{idea.id}",
            "vote": str(idea.id),
        },
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    assert resp.headers["Location"].endswith(f"/ideas/{idea.id}#vote-{idea.id}")
    assert _state(idea) == (2, 2)


@pytest.mark.parametrize("vote", ["", "abc", "0", "-1", "99999999999", "424242"])
def test_sign_in_ignores_a_bad_or_missing_vote(app, client, vote):
    idea = make_idea()
    member = make_user()
    resp = client.post(
        "/login", data={"email": member.email, "password": PASSWORD, "vote": vote, "next": "/"}
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/")
    assert _state(idea) == (1, 1)


def test_sign_in_with_a_vote_on_a_closed_idea_signs_in_without_voting(app, client):
    idea = make_idea()
    roadmap.change_status(make_user("staff"), idea, "shipped", "")
    db.session.commit()
    member = make_user()
    resp = client.post(
        "/login",
        data={"email": member.email, "password": PASSWORD, "vote": str(idea.id), "next": "/"},
    )
    assert resp.status_code == 303 and "#vote" not in resp.headers["Location"]
    assert _state(idea) == (1, 1) and not _has(idea, member)


def test_failed_sign_in_keeps_the_vote_in_the_form(app, client):
    idea = make_idea()
    resp = client.post(
        "/login", data={"email": "nobody@example.com", "password": "wrong", "vote": str(idea.id)}
    )
    assert resp.status_code == 422
    assert _field(resp.get_data(as_text=True), "vote") == str(idea.id)
    assert _state(idea) == (1, 1)


# --- keyboard, screen reader, no JavaScript ----------------------------------------------


def test_the_control_is_named_by_the_title_and_says_its_state_in_words(app, client):
    idea = make_idea(title="Dark mode for the dashboard")
    member = make_user()
    login_as(client, member)
    for path in (f"/ideas/{idea.id}", "/ideas"):
        page = client.get(path).get_data(as_text=True)
        button = re.search(rf'<button[^>]*id="vote-button-{idea.id}"[^>]*>', page).group(0)
        assert f'aria-labelledby="vote-button-{idea.id} idea-title-{idea.id}"' in button
        assert f'id="idea-title-{idea.id}"' in page
        assert 'aria-pressed="false"' in button and ">Vote<" in page
    resp = client.post(
        f"/ideas/{idea.id}/vote", data={"intent": "vote"}, headers={"HX-Request": "true"}
    )
    html = resp.get_data(as_text=True)
    assert 'aria-pressed="true"' in html and "Voted" in html
    assert 'data-vote-status="Your vote is counted."' in html
    assert f'id="vote-button-{idea.id}"' in html


def test_without_javascript_a_vote_comes_back_to_its_row(app, client):
    idea = make_idea()
    login_as(client, make_user())
    back = "/ideas?sort=new&after=abc"
    resp = _post(client, idea, intent="vote", next=back)
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"{back}#vote-{idea.id}")
    resp = _post(client, idea, intent="unvote")  # no next: the idea page, at the control
    assert resp.headers["Location"].endswith(f"#vote-{idea.id}")
    assert reload(idea).vote_count == 1


def test_the_list_vote_form_carries_the_lists_page(app, client):
    idea = make_idea()
    login_as(client, make_user())
    page = client.get("/ideas?sort=new&page=1").get_data(as_text=True)
    form = re.search(rf'<form id="vote-{idea.id}".*?</form>', page, re.S).group(0)
    assert 'name="next" value="/ideas?sort=new&amp;page=1"' in form
    assert 'name="intent" value="vote"' in form


def test_idea_is_reloaded_in_the_session_after_votes(app):
    """The ORM object the route holds shows the committed count (no stale 1)."""
    idea = make_idea()
    member = make_user()
    result = votes.set_vote(member, idea, "vote")
    assert result.count == 2 == idea.vote_count
    db.session.commit()
    assert db.session.get(Idea, idea.id).vote_count == 2


def test_sign_in_and_registration_pages_say_which_vote_they_will_cast(app, client):
    idea = make_idea(title='Tags <b onmouseover="x()">bold</b>')
    for page in ("login", "register"):
        html = client.get(f"/{page}?next=/ideas&vote={idea.id}").get_data(as_text=True)
        notice = re.search(r'<p class="alert" id="pending-vote">(.*?)</p>', html).group(1)
        assert "Your vote for" in notice and "&lt;b onmouseover" in notice
        assert "<b " not in notice
    roadmap.change_status(make_user("staff"), idea, "declined", "")
    db.session.commit()
    for query in (f"vote={idea.id}", "vote=nope", ""):
        assert 'id="pending-vote"' not in client.get(f"/login?{query}").get_data(as_text=True)
