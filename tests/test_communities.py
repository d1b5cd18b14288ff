"""Communities (issue 14): the directory, a community's threads pinned first, starting a
thread, replying with quotes and pages, joining, following a thread, bans and locks as the
poster meets them, exact counts, and the command line."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import Community, CommunityBan, Reply, Thread, utcnow
from ideaboard.services import communities, threads
from ideaboard.services.errors import NotAllowed, ValidationError

from .factories import (
    login_as,
    make_community,
    make_moderator,
    make_reply,
    make_thread,
    make_user,
)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _ban(community: Community, user, expires=None) -> None:
    db.session.add(
        CommunityBan(community_id=community.id, user_id=user.id, reason="Spam", expires_at=expires)
    )
    db.session.commit()
    permissions.forget_standing(user)


def test_the_directory_lists_communities_with_counts_newest_activity_first(client, app):
    """Each community shows its members, threads and replies; the busiest one last active
    is first; an archived one is not listed."""
    quiet = make_community(name="Quiet club")
    busy = make_community(name="Niva owners")
    gone = make_community(name="Old club")
    gone.archived_at = utcnow()
    db.session.commit()
    member = make_user()
    communities.join(member, busy)
    thread = make_thread(busy, member)
    make_reply(thread)
    html = client.get("/c").get_data(as_text=True)
    text = _text(html)
    assert text.index("Niva owners") < text.index("Quiet club")
    assert "Old club" not in text
    assert "1 member · 1 thread · 1 reply" in text
    assert "0 members · 0 threads · 0 replies" in text
    assert quiet.slug in html


def test_threads_are_listed_pinned_first_then_by_latest_activity(client):
    """A pinned thread heads the list; then the thread replied to last."""
    club = make_community()
    first = make_thread(club, title="First thread")
    second = make_thread(club, title="Second thread")
    pinned = make_thread(club, title="Pinned rules")
    pinned.pinned = 1
    db.session.commit()
    make_reply(first)  # first is now the most recently active
    html = client.get(f"/c/{club.slug}").get_data(as_text=True)
    titles = re.findall(r'class="thread-title" href="[^"]+">([^<]+)<', html)
    assert titles == ["Pinned rules", "First thread", "Second thread"]
    assert second.reply_count == 0


def test_a_member_starts_a_thread_and_is_taken_to_it(client):
    """The form posts, redirects to the thread, which shows the sanitised Markdown body,
    and the author follows it."""
    club = make_community()
    member = make_user(name="Vera")
    login_as(client, member)
    resp = client.post(
        f"/c/{club.slug}/new",
        data={"title": "Winter tyres", "body": "**Which** ones? <script>alert(1)</script>"},
    )
    assert resp.status_code == 303
    thread = db.session.scalar(select(Thread).where(Thread.title == "Winter tyres"))
    assert resp.headers["Location"] == f"/c/{club.slug}/t/{thread.id}"
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "<strong>Which</strong>" in html and "<script>alert" not in html
    assert "1 follower" in _text(html)
    db.session.refresh(club)
    assert club.thread_count == 1


def test_bad_thread_input_is_refused_beside_the_field_and_nothing_is_written(client):
    club = make_community()
    login_as(client, make_user())
    resp = client.post(f"/c/{club.slug}/new", data={"title": "ab", "body": "x"})
    assert resp.status_code == 422
    assert "Title must be at least 3 characters." in resp.get_data(as_text=True)
    assert db.session.scalar(select(Thread.id)) is None


def test_visitors_are_sent_to_sign_in(client):
    club = make_community()
    thread = make_thread(club)
    assert client.get(f"/c/{club.slug}/new").status_code in (302, 303)
    resp = client.post(f"/c/{club.slug}/t/{thread.id}/replies", data={"body": "hi"})
    assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]
    assert thread.reply_count == 0


def test_replies_page_and_a_quote_shows_what_it_quotes(client):
    """51 replies make two pages; a reply quoting another shows the quoted text with a
    link to it; the new reply's redirect names its page and anchor."""
    club = make_community()
    thread = make_thread(club, title="Long talk")
    author = make_user(name="Quoted Person")
    first = make_reply(thread, author, body="The original point")
    for n in range(49):
        make_reply(thread, body=f"reply {n}")
    member = make_user()
    login_as(client, member)
    resp = client.post(
        f"/c/{club.slug}/t/{thread.id}/replies",
        data={"body": "I agree with this", "quote_of": str(first.id)},
    )
    assert resp.status_code == 303
    newest = db.session.scalar(select(Reply).order_by(Reply.id.desc()))
    assert resp.headers["Location"] == f"/c/{club.slug}/t/{thread.id}?page=2#reply-{newest.id}"
    page2 = client.get(f"/c/{club.slug}/t/{thread.id}?page=2").get_data(as_text=True)
    assert "Quoted Person wrote:" in page2 and "The original point" in page2
    assert f'href="/c/{club.slug}/t/{thread.id}#reply-{first.id}"' in page2
    assert "Page 2 of 2" in page2
    db.session.refresh(thread)
    assert thread.reply_count == 51


def test_a_quote_of_a_reply_in_another_thread_is_refused(client):
    club = make_community()
    thread, other = make_thread(club), make_thread(club)
    elsewhere = make_reply(other)
    login_as(client, make_user())
    resp = client.post(
        f"/c/{club.slug}/t/{thread.id}/replies",
        data={"body": "sneaky", "quote_of": str(elsewhere.id)},
    )
    assert resp.status_code == 422
    assert "The quoted reply is not in this thread." in resp.get_data(as_text=True)
    assert db.session.scalar(select(Reply.id).where(Reply.thread_id == thread.id)) is None


def test_joining_and_leaving_keeps_the_member_count_exact(client, htmx):
    club = make_community()
    member = make_user()
    login_as(htmx, member)
    for _ in range(2):  # a doubled post changes nothing more
        resp = htmx.post(f"/c/{club.slug}/join", data={"intent": "join"})
        assert resp.status_code == 200
    assert 'aria-pressed="true"' in resp.get_data(as_text=True)
    db.session.refresh(club)
    assert club.member_count == 1
    htmx.post(f"/c/{club.slug}/join", data={"intent": "leave"})
    htmx.post(f"/c/{club.slug}/join", data={"intent": "leave"})
    db.session.refresh(club)
    assert club.member_count == 0
    assert communities.member_mismatches() == []
    assert htmx.post(f"/c/{club.slug}/join", data={"intent": "toggle"}).status_code == 400


def test_following_a_thread_by_intent_and_replying_never_refollows(htmx):
    club = make_community()
    thread = make_thread(club)
    member = make_user()
    login_as(htmx, member)
    htmx.post(f"/c/{club.slug}/t/{thread.id}/follow", data={"intent": "follow"})
    db.session.refresh(thread)
    assert thread.follower_count == 2  # the author and the member
    htmx.post(f"/c/{club.slug}/t/{thread.id}/follow", data={"intent": "unfollow"})
    make_reply(thread, member)
    db.session.refresh(thread)
    assert thread.follower_count == 1
    assert not threads.is_following(member, thread)


def test_a_banned_member_reads_but_cannot_post_there_and_can_elsewhere(client):
    club, other = make_community(), make_community()
    thread = make_thread(club)
    member = make_user()
    _ban(club, member)
    login_as(client, member)
    page = client.get(f"/c/{club.slug}/t/{thread.id}")
    assert page.status_code == 200
    assert "You are banned from posting in this community." in page.get_data(as_text=True)
    assert 'name="body"' not in page.get_data(as_text=True)
    resp = client.post(f"/c/{club.slug}/t/{thread.id}/replies", data={"body": "let me"})
    assert resp.status_code == 403
    assert client.post(f"/c/{club.slug}/new", data={"title": "Mine", "body": ""}).status_code == 403
    assert (
        client.post(f"/c/{other.slug}/new", data={"title": "Elsewhere", "body": ""}).status_code
        == 303
    )


def test_a_ban_with_an_expiry_ends_by_itself(client, app):
    club = make_community()
    member = make_user()
    _ban(club, member, expires=utcnow() + timedelta(hours=1))
    with pytest.raises(NotAllowed, match="until"):
        threads.start_thread(member, club, "Too soon", "")
    db.session.rollback()
    ban = db.session.scalar(select(CommunityBan))
    ban.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    permissions.forget_standing(member)
    assert threads.start_thread(member, club, "Back again", "").id


def test_a_locked_thread_takes_replies_only_from_its_moderators(client):
    club = make_community()
    thread = make_thread(club)
    thread.locked_at = utcnow()
    db.session.commit()
    member, moderator = make_user(), make_moderator(club)
    login_as(client, member)
    page = client.get(f"/c/{club.slug}/t/{thread.id}").get_data(as_text=True)
    assert "This thread is locked" in page
    assert (
        client.post(f"/c/{club.slug}/t/{thread.id}/replies", data={"body": "x"}).status_code == 403
    )
    login_as(client, moderator)
    assert (
        client.post(f"/c/{club.slug}/t/{thread.id}/replies", data={"body": "y"}).status_code == 303
    )


def test_a_first_post_waits_for_approval_where_the_community_asks(client):
    """Held: only its author sees it, marked; counts do not move; others do not see it."""
    club = make_community(require_approval=True)
    author = make_user()
    login_as(client, author)
    resp = client.post(f"/c/{club.slug}/new", data={"title": "Hello all", "body": ""})
    assert resp.status_code == 303
    mine = client.get(resp.headers["Location"])
    assert mine.status_code == 200 and "Waiting for a moderator" in mine.get_data(as_text=True)
    db.session.refresh(club)
    assert club.thread_count == 0
    assert "Hello all" not in client.get(f"/c/{club.slug}").get_data(as_text=True)
    other = club and make_user()
    login_as(client, other)
    assert client.get(resp.headers["Location"]).status_code == 404


def test_moderation_scope_is_the_communities_one_moderates(app):
    """A moderator moderates their community only; staff every one; an owner theirs."""
    mine, theirs = make_community(), make_community()
    moderator = make_moderator(mine)
    staff, owner = make_user("staff"), make_user()
    owned = make_community(owner=owner)
    assert permissions.can_moderate(moderator, mine)
    assert not permissions.can_moderate(moderator, theirs)
    assert permissions.can_moderate(staff, theirs)
    assert permissions.can_moderate(owner, owned) and not permissions.can_moderate(owner, mine)
    assert permissions.can_manage_community(owner, owned)
    assert not permissions.can_manage_community(moderator, mine)
    moderator.disabled_at = utcnow()
    assert not permissions.can_moderate(moderator, mine)


def test_create_refuses_a_taken_or_bad_slug_and_a_bad_colour(app):
    make_community(slug="niva")
    with pytest.raises(ValidationError) as err:
        communities.create_community(None, "niva", "Niva again")
    assert "slug" in err.value.errors
    with pytest.raises(ValidationError) as err:
        communities.create_community(None, "Bad Slug!", "X", accent="red")
    assert set(err.value.errors) == {"slug", "name", "accent"}


def test_the_command_line_creates_a_community_and_appoints_a_moderator(app):
    owner = make_user(email="owner@example.com")
    mod = make_user(email="mod@example.com")
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "communities",
            "create",
            "--slug",
            "lada",
            "--name",
            "Lada Niva",
            "--owner",
            owner.email,
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created community lada" in result.output
    again = runner.invoke(args=["communities", "create", "--slug", "lada", "--name", "Other"])
    assert again.exit_code == 1 and "already exists" in again.output
    result = runner.invoke(
        args=["communities", "moderator", "--slug", "lada", "--email", mod.email]
    )
    assert result.exit_code == 0, result.output
    club = communities.get_by_slug("lada")
    permissions.forget_standing(mod)
    assert club.owner_id == owner.id and permissions.can_moderate(mod, club)


HOSTILE = ["-1", "0", "99999999999999999999", "2147483648", "abc", "\u00b2", "1e9", "'; --"]


def test_page_and_quote_parameters_take_hostile_values(client):
    """Never a 5xx, never a write: out-of-range and odd values fall back to page one."""
    club = make_community()
    thread = make_thread(club)
    for path, params in (
        (f"/c/{club.slug}", ("page",)),
        (f"/c/{club.slug}/t/{thread.id}", ("page", "quote")),
    ):
        for param in params:
            for value in HOSTILE:
                resp = client.get(path, query_string={param: value})
                assert resp.status_code == 200, (path, param, value, resp.status_code)


@pytest.mark.parametrize(
    "path",
    ["/c/{slug}/t/99999999999999999999", "/c/{slug}/t/2147483648", "/c/nope", "/c/NO%20PE"],
)
def test_unknown_or_oversized_addresses_are_404(client, path):
    club = make_community()
    assert client.get(path.format(slug=club.slug)).status_code == 404
