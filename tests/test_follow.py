"""Following ideas: auto-follow, a sticky unfollow, the intent contract, exact counts.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from __future__ import annotations

import re
from functools import partial

from sqlalchemy import func, select, update

from ideaboard.extensions import db
from ideaboard.models import Follow, Idea
from ideaboard.services import follows
from ideaboard.services import ideas as idea_service
from ideaboard.urls import slugify

from .factories import (
    at_once,
    login_as,
    make_comment,
    make_idea,
    make_user,
    reload,
    vote_for,
)


def _followers(idea) -> set[int]:
    db.session.commit()
    return set(db.session.scalars(follows.followers_query(idea.id)))


def _rows(idea) -> int:
    db.session.commit()
    return db.session.scalar(
        select(func.count()).select_from(Follow).where(Follow.idea_id == idea.id, Follow.active)
    )


def _post(client, idea, intent, **headers):
    return client.post(f"/ideas/{idea.id}/follow", data={"intent": intent}, headers=headers)


def test_author_voter_and_commenter_follow_automatically(app):
    """Posting, voting and commenting each make a follower, once, with the count exact."""
    author, voter, commenter = make_user(), make_user(), make_user()
    idea = make_idea(author)
    assert _followers(idea) == {author.id}
    vote_for(idea, voter)
    make_comment(idea, commenter)
    make_comment(idea, commenter)  # a second comment makes no second follow
    vote_for(idea, author)  # the author voting changes nothing either
    assert _followers(idea) == {author.id, voter.id, commenter.id}
    assert reload(idea).follower_count == 3 == _rows(idea)
    vote_for(idea, voter)  # taking the vote back keeps the follow
    assert voter.id in _followers(idea)
    assert follows.follower_mismatches() == []


def test_an_explicit_unfollow_sticks_through_votes_and_comments(app, client):
    """Someone who unfollowed is never subscribed again by voting or commenting; only an
    explicit follow brings them back."""
    idea = make_idea()
    member = make_user()
    login_as(client, member)
    assert _post(client, idea, "unfollow").status_code == 303  # never followed: opts out
    vote_for(idea, member)
    make_comment(idea, member)
    assert member.id not in _followers(idea)
    assert reload(idea).follower_count == 1  # the author
    assert _post(client, idea, "follow").status_code == 303
    assert member.id in _followers(idea)
    assert _post(client, idea, "unfollow").status_code == 303
    vote_for(idea, member)
    vote_for(idea, member)
    make_comment(idea, member)
    assert member.id not in _followers(idea)
    row = db.session.scalar(select(Follow).where(Follow.user_id == member.id))
    assert row.active is False and row.unfollowed_at is not None
    assert reload(idea).follower_count == 1 == _rows(idea)


def test_the_author_can_unfollow_their_own_idea(app, client):
    author = make_user()
    idea = make_idea(author)
    login_as(client, author)
    assert _post(client, idea, "unfollow").status_code == 303
    assert _followers(idea) == set() and reload(idea).follower_count == 0


def test_intent_is_exact_and_idempotent(app, client):
    """follow twice is one follow, unfollow twice one unfollow; any other intent is 400
    and writes nothing."""
    idea = make_idea()
    member = make_user()
    login_as(client, member)
    for _ in range(2):
        resp = _post(client, idea, "follow")
        assert resp.status_code == 303
        assert resp.headers["Location"].endswith(f"/ideas/{idea.id}-{_slug(idea)}#followers")
        assert reload(idea).follower_count == 2 == _rows(idea)
    for _ in range(2):
        assert _post(client, idea, "unfollow").status_code == 303
        assert reload(idea).follower_count == 1 == _rows(idea)
    for bad in ("", "FOLLOW", "toggle", "follow ", "vote", "unfollow\x00"):
        assert _post(client, idea, bad).status_code == 400, bad
    assert client.post(f"/ideas/{idea.id}/follow").status_code == 400
    assert reload(idea).follower_count == 1 == _rows(idea)


def _slug(idea) -> str:
    return slugify(idea.title)


def test_the_idea_page_shows_the_count_and_the_members_button(app, client):
    """Visitors see the count and a sign-in link; a member sees their own state."""
    idea = make_idea()
    voter = make_user()
    vote_for(idea, voter)
    page = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert "2 people follow this idea" in page
    assert "Sign in to follow this idea" in page and "follow-button" not in page
    login_as(client, voter)
    page = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert 'name="intent" value="unfollow"' in page and 'aria-pressed="true"' in page
    _post(client, idea, "unfollow")
    page = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert "1 person follows this idea" in page
    assert 'name="intent" value="follow"' in page


def test_the_count_is_grouped_and_translated(app, client):
    """A large count is grouped per language, with the Russian plural."""
    idea = make_idea()
    db.session.execute(update(Idea).where(Idea.id == idea.id).values(follower_count=12345))
    db.session.commit()
    page = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert "12,345 people follow this idea" in page
    ru = {"Accept-Language": "ru-RU,ru;q=0.9"}
    page = client.get(f"/ideas/{idea.id}", headers=ru).get_data(as_text=True)
    assert re.search("12[\xa0\u202f ]345 человек следят за идеей", page), "grouped, plural"
    db.session.execute(update(Idea).where(Idea.id == idea.id).values(follower_count=21))
    db.session.commit()
    page = client.get(f"/ideas/{idea.id}", headers=ru).get_data(as_text=True)
    assert "21 человек следит за идеей" in page


def test_htmx_follow_answers_the_button_count_and_announcement(app, htmx):
    """An htmx follow gets the form back (same ids: focus stays), the count out of band
    and a status message for screen readers."""
    idea = make_idea()
    member = make_user()
    login_as(htmx, member)
    resp = _post(htmx, idea, "follow")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert f'id="follow-{idea.id}"' in html and f'id="follow-button-{idea.id}"' in html
    assert 'name="intent" value="unfollow"' in html and 'aria-pressed="true"' in html
    assert f'id="follower-count-{idea.id}" hx-swap-oob="true"' in html
    assert "2 people follow this idea" in html
    assert f'id="follow-status-{idea.id}" hx-swap-oob="innerHTML"' in html
    assert "You now follow this idea." in html
    html = _post(htmx, idea, "unfollow").get_data(as_text=True)
    assert "You no longer follow this idea." in html and "1 person follows this idea" in html
    assert "<html" not in html


def test_permissions_visitors_sign_in_deleted_ideas_are_hidden(app, client, htmx):
    """A visitor is sent to sign in (htmx: 401 with HX-Redirect); a deleted idea is 404
    to members; staff may not follow a deleted idea."""
    idea = make_idea()
    resp = _post(client, idea, "follow")
    assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]
    resp = _post(htmx, idea, "follow")
    assert resp.status_code == 401 and "HX-Redirect" in resp.headers
    staff = make_user("staff")
    idea_service.delete_idea(staff, idea)
    db.session.commit()
    login_as(client, make_user())
    assert _post(client, idea, "follow").status_code == 404
    login_as(client, staff)
    assert _post(client, idea, "follow").status_code == 403
    assert reload(idea).follower_count == 1 == _rows(idea)


def test_many_concurrent_follows_and_unfollows_keep_count_equal_to_rows(app):
    """Twelve members, each in two tabs, follow and unfollow at once, for several rounds:
    the count always equals the active rows, and never a server error."""
    idea = make_idea()
    members = [make_user() for _ in range(12)]
    clients = []
    for member in members:
        for _tab in range(2):
            c = app.test_client()
            login_as(c, member)
            clients.append(c)
    for round_ in range(4):
        calls = [
            partial(_post, c, idea, "follow" if (i + round_) % 2 else "unfollow")
            for i, c in enumerate(clients)
        ]
        statuses = {r.status_code for r in at_once(calls)}
        assert statuses == {303}, statuses
        db.session.commit()  # a fresh snapshot (SQLite): the threads' writes are in
        assert reload(idea).follower_count == _rows(idea)
        assert follows.follower_mismatches() == []
        db.session.commit()
    # All follow at once: exactly everyone, once.
    statuses = {
        r.status_code for r in at_once([partial(_post, c, idea, "follow") for c in clients])
    }
    assert statuses == {303}
    db.session.commit()
    assert reload(idea).follower_count == _rows(idea) == 13


def test_concurrent_votes_and_unfollows_never_break_the_count(app):
    """Votes (which auto-follow) racing explicit unfollows keep the count exact."""
    idea = make_idea()
    members = [make_user() for _ in range(10)]
    calls = []
    for member in members:
        voter, unfollower = app.test_client(), app.test_client()
        login_as(voter, member)
        login_as(unfollower, member)
        calls += [
            partial(voter.post, f"/ideas/{idea.id}/vote"),
            partial(_post, unfollower, idea, "unfollow"),
        ]
    assert {r.status_code for r in at_once(calls)} == {303}
    db.session.commit()
    assert reload(idea).follower_count == _rows(idea)
    assert follows.follower_mismatches() == []


def test_viewer_state_is_one_statement(app, count_queries):
    """The idea page learns the member's vote and follow in one statement."""
    idea = make_idea()
    member = make_user()
    vote_for(idea, member)
    with count_queries() as counted:
        assert follows.viewer_state(member, idea) == (True, True)
    assert counted.count == 1
