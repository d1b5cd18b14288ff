"""From fan talk to roadmap (issue 14, item 5): staff or a community's moderator promote
a thread to an idea that keeps the thread's author, and the two link both ways; the
community page and the directory show what the club changed."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import AuditEntry, Idea, Thread, Vote
from ideaboard.services import moderation, promotion, roadmap

from .factories import (
    general_board,
    login_as,
    make_board,
    make_community,
    make_idea,
    make_moderator,
    make_thread,
    make_user,
)


def _text(html: str) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
    return text.replace(" :", ":")


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _promote(client, thread, community, **data):
    form = {"title": thread.title, "body": thread.body, "board": general_board().id, "kind": "idea"}
    form.update(data)
    return client.post(f"/c/{community.slug}/t/{thread.id}/promote", data=form)


def test_promotion_keeps_the_author_and_links_both_ways(client, app):
    """The moderator's promote page offers the thread's title and text; the idea is the
    thread's author's, with their vote; the thread shows "Became idea #N" with the idea's
    live status and votes, and the idea page links to the thread (GET /t/<id>, 404 once
    hidden)."""
    club = make_community(name="Niva owners")
    author = make_user(name="Olga Author")
    thread = make_thread(club, author, "Heated seats for winter", "Please, for -30.")
    mod = make_moderator(club)
    login_as(client, mod)
    page = client.get(f"/c/{club.slug}/t/{thread.id}")
    assert "Promote to an idea" in page.get_data(as_text=True)
    form = client.get(f"/c/{club.slug}/t/{thread.id}/promote").get_data(as_text=True)
    assert 'value="Heated seats for winter"' in form and "Please, for -30." in form

    resp = _promote(client, thread, club)
    assert resp.status_code == 303
    idea = db.session.scalar(select(Idea).where(Idea.title == "Heated seats for winter"))
    assert (
        resp.headers["Location"].endswith(f"/ideas/{idea.id}")
        or f"/ideas/{idea.id}" in (resp.headers["Location"])
    )
    assert idea.author_id == author.id and idea.status == "heard" and idea.vote_count == 1
    assert db.session.scalars(select(Vote.user_id).where(Vote.idea_id == idea.id)).all() == [
        author.id
    ]
    db.session.refresh(thread)
    assert thread.idea_id == idea.id
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "thread.promote"))
    entries = entries.all()
    assert [(e.actor_id, e.target_id, e.community_id) for e in entries] == [
        (mod.id, thread.id, club.id)
    ]

    # Thread → idea, with the idea's live status, seen by a visitor too.
    client.post("/logout")
    with client.session_transaction() as sess:
        sess.clear()
    text = _text(client.get(f"/c/{club.slug}/t/{thread.id}").get_data(as_text=True))
    assert f"Became idea #{idea.id}: Heated seats for winter Heard 1 vote" in text
    staff = make_user("staff")
    roadmap.change_status(staff, idea, "shipped")
    db.session.commit()
    text = _text(client.get(f"/c/{club.slug}/t/{thread.id}").get_data(as_text=True))
    assert f"Became idea #{idea.id}: Heated seats for winter Shipped" in text
    # Idea → thread.
    page = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert "From a community thread: read where it began" in _text(page)
    assert f'href="/t/{thread.id}"' in page
    back = client.get(f"/t/{thread.id}")
    assert back.status_code == 302
    assert back.headers["Location"].endswith(f"/c/{club.slug}/t/{thread.id}")
    # Hidden by its moderator, the thread is not found by the idea's link (for visitors).
    moderation.hide_thread(mod, thread, club, "Off topic")
    db.session.commit()
    assert client.get(f"/t/{thread.id}").status_code == 404


def test_the_promoter_may_edit_title_text_and_kind(client, app):
    club = make_community()
    author = make_user()
    thread = make_thread(club, author, "rough title from the club", "rough words")
    board = make_board()
    login_as(client, make_user("staff"))
    resp = _promote(
        client,
        thread,
        club,
        title="Clear title",
        body="Clear words",
        kind="problem",
        board=board.id,
    )
    assert resp.status_code == 303
    idea = db.session.scalar(select(Idea).where(Idea.title == "Clear title"))
    assert (idea.body, idea.kind, idea.board_id, idea.author_id) == (
        "Clear words",
        "problem",
        board.id,
        author.id,
    )


def test_members_and_moderators_of_another_community_are_refused(client, app):
    """A member (even the author) and a moderator of another community get 403 on the
    page and on a direct POST; nothing is written."""
    club, elsewhere = make_community(), make_community()
    author = make_user()
    thread = make_thread(club, author)
    other_mod = make_moderator(elsewhere)
    before = (_count(Idea), _count(AuditEntry))
    for user in (author, make_user(), other_mod):
        login_as(client, user)
        assert client.get(f"/c/{club.slug}/t/{thread.id}/promote").status_code == 403
        assert _promote(client, thread, club).status_code == 403
        page = client.get(f"/c/{club.slug}/t/{thread.id}").get_data(as_text=True)
        assert "/promote" not in page
    assert (_count(Idea), _count(AuditEntry)) == before
    db.session.refresh(thread)
    assert thread.idea_id is None


def test_promoting_twice_is_refused(client, app):
    club = make_community()
    thread = make_thread(club, make_user())
    mod = make_moderator(club)
    login_as(client, mod)
    assert _promote(client, thread, club).status_code == 303
    ideas_then, audit_then = _count(Idea), _count(AuditEntry)
    resp = _promote(client, thread, club, title="Another title")
    assert resp.status_code == 409
    assert "This thread has already become an idea." in resp.get_data(as_text=True)
    assert (_count(Idea), _count(AuditEntry)) == (ideas_then, audit_then)
    page = client.get(f"/c/{club.slug}/t/{thread.id}").get_data(as_text=True)
    assert "Promote to an idea" not in page


def test_a_duplicate_title_offers_linking_to_the_existing_idea(client, app):
    """The board already has an idea of that title: the form says so (422) and a button
    links the thread to that idea instead, in one step with its audit entry."""
    club = make_community()
    existing = make_idea(make_user(), title="Offline maps")
    thread = make_thread(club, make_user(), "offline  MAPS")
    login_as(client, make_moderator(club))
    resp = _promote(client, thread, club)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "An idea with this title is already on this board" in html
    assert f'name="link_to" value="{existing.id}"' in html
    ideas_then = _count(Idea)
    resp = client.post(f"/c/{club.slug}/t/{thread.id}/promote", data={"link_to": str(existing.id)})
    assert resp.status_code == 303
    assert _count(Idea) == ideas_then
    db.session.refresh(thread)
    assert thread.idea_id == existing.id
    assert _count(AuditEntry) >= 1


def test_a_hidden_thread_is_not_promoted(client, app):
    club = make_community()
    thread = make_thread(club, make_user())
    staff = make_user("staff")
    thread.soft_delete(staff.id, "off topic")
    db.session.commit()
    login_as(client, staff)
    assert _promote(client, thread, club).status_code == 403
    assert db.session.get(Thread, thread.id).idea_id is None


def test_what_this_club_changed_lists_shipped_first_with_counts(client, app):
    """The community page lists the club's promoted ideas, shipped first, with counts by
    status, at most a few with a link to all; the directory says how many shipped."""
    club, other = make_community(name="Niva owners"), make_community(name="Other club")
    staff = make_user("staff")
    made = []
    for n in range(promotion.CHANGED_SHOWN + 2):
        thread = make_thread(club, make_user(), f"Club idea {n}")
        made.append(
            promotion.promote_thread(
                staff, thread, club, general_board(), title=thread.title, body="", kind="idea"
            )
        )
    db.session.commit()
    roadmap.change_status(staff, made[3], "shipped")
    roadmap.change_status(staff, made[5], "shipped")
    roadmap.change_status(staff, made[1], "planned")
    db.session.commit()
    text = _text(client.get(f"/c/{club.slug}").get_data(as_text=True))
    assert "What this club changed" in text
    assert "Shipped: 2 ideas Planned: 1 idea Heard: 4 ideas" in text
    assert text.index("Club idea 5") < text.index("Club idea 1")
    assert text.index("Club idea 3") < text.index("Club idea 1")
    assert "All 7 ideas" in text
    full = _text(client.get(f"/c/{club.slug}/changed").get_data(as_text=True))
    assert all(f"Club idea {n}" in full for n in range(7))
    directory = _text(client.get("/c").get_data(as_text=True))
    assert "2 ideas shipped" in directory
    assert "What this club changed" not in _text(
        client.get(f"/c/{other.slug}").get_data(as_text=True)
    )


def test_the_changed_list_pages(client, app):
    club = make_community()
    staff = make_user("staff")
    for n in range(promotion.CHANGED_PER_PAGE + 1):
        thread = make_thread(club, make_user(), f"Paged idea {n:02d}")
        promotion.promote_thread(
            staff, thread, club, general_board(), title=thread.title, body="", kind="idea"
        )
    db.session.commit()
    first = client.get(f"/c/{club.slug}/changed").get_data(as_text=True)
    assert f"/c/{club.slug}/changed?page=2" in first
    second = _text(client.get(f"/c/{club.slug}/changed?page=2").get_data(as_text=True))
    assert "Paged idea 00" in second and "Paged idea 30" not in second
