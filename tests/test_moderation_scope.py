"""Moderation (issue 14 items 1, 3 and 6): a moderator acts only in the communities they
moderate, as a direct POST as well as through the page; bans stop posting in one
community only, until they end; every action leaves exactly one audit entry with before
and after; counts stay exact; a member's or visitor's page carries no moderator control."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import AuditEntry, Community, CommunityBan, Reply, Thread, utcnow
from ideaboard.services import moderation, threads

from .factories import login_as, make_community, make_moderator, make_reply, make_thread, make_user
from .routes import (
    FORMS,
    MODERATOR,
    ROUTES,
    Target,
    World,
    db_snapshot,
    sign_in,
    snapshot_diff,
    url,
)

MODERATION_ROUTES = sorted(e for e, r in ROUTES.items() if r.who == MODERATOR)


def _audit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


def _elsewhere_target(world: World, kind: str) -> Target:
    """What `kind` names, in the community "mod" does not moderate."""
    club = world.elsewhere
    author = world.users["a"]
    if kind == "community":
        return Target(community=club)
    if kind == "community-ban":
        member = make_user()
        ban = CommunityBan(community_id=club.id, user_id=member.id, reason="Spam")
        db.session.add(ban)
        db.session.commit()
        return Target(community=club, member=member, ban_id=ban.id)
    if kind in ("reported-reply", "held-reply"):
        # As World.target makes them in "mod"'s community: a fresh member's reply, held
        # for approval or reported by another member.
        from ideaboard.services import reports

        newcomer = make_user()
        thread = threads.start_thread(newcomer, club, "Elsewhere thread", "Words")
        club.require_approval = kind == "held-reply"
        reply = threads.add_reply(newcomer, thread, club, "A reply")
        club.require_approval = False
        if kind == "reported-reply":
            reports.file_report(
                make_user(), reports.load_item("reply", reply.id), "spam", "Selling things"
            )
        db.session.commit()
        return Target(community=club, thread=thread, reply=reply)
    thread = threads.start_thread(author, club, "Elsewhere thread", "Words")
    reply = threads.add_reply(author, thread, club, "A reply") if kind == "reply" else None
    db.session.commit()
    # movable-thread: "mod" moderates the world's community: moving a thread he does not
    # moderate into it is refused as well.
    return Target(community=club, thread=thread, reply=reply, destination=world.community)


@pytest.mark.parametrize("endpoint", MODERATION_ROUTES)
def test_a_moderator_of_one_community_is_refused_in_another(app, endpoint):
    """For every moderation route: "mod" moderates World.community; on World.elsewhere
    each GET and direct POST (plain and htmx) is 403 and writes nothing."""
    assert len(MODERATION_ROUTES) >= 8
    route = ROUTES[endpoint]
    world = World.build()
    client = app.test_client()
    sign_in(client, world.users["mod"])
    target = _elsewhere_target(world, route.target)
    path = url(app, endpoint, target)
    before = db_snapshot()
    for method in route.methods:
        for headers in ({}, {"HX-Request": "true"}):
            if method == "GET":
                resp = client.get(path, headers=headers)
            else:
                data = FORMS[endpoint](world, target, world.users["mod"])
                resp = client.post(path, data=data, headers=headers)
            assert resp.status_code == 403, (method, headers, resp.status_code)
            assert snapshot_diff(before, db_snapshot()) == []
    # ...while in his own community the same action is allowed.
    own = world.target(route)
    resp = (
        client.post(url(app, endpoint, own), data=FORMS[endpoint](world, own, world.users["mod"]))
        if "POST" in route.methods
        else client.get(url(app, endpoint, own))
    )
    assert resp.status_code in (200, 303)


def test_moving_into_a_community_one_does_not_moderate_is_refused(app, client):
    club, other = make_community(), make_community()
    mod = make_moderator(club)
    thread = make_thread(club)
    login_as(client, mod)
    n = _audit_count()
    resp = client.post(f"/c/{club.slug}/t/{thread.id}/move", data={"to": other.slug})
    assert resp.status_code == 403
    db.session.expire_all()
    assert db.session.get(Thread, thread.id).community_id == club.id
    assert _audit_count() == n


def test_a_banned_member_cannot_post_there_but_can_elsewhere_and_again_after_expiry(make_app):
    from .conftest import fresh_app

    clock = {"now": utcnow()}
    # Signed in for the whole test: only the ban ends.
    settings = {"CLOCK": lambda: clock["now"], "SESSION_IDLE_TIMEOUT": timedelta(days=30)}
    with fresh_app(make_app, **settings) as app:
        club, other = make_community(), make_community()
        mod = make_moderator(club)
        member = make_user(name="Bob Banned")
        here, there = make_thread(club), make_thread(other)
        modc, memc = app.test_client(), app.test_client()
        login_as(modc, mod)
        login_as(memc, member)
        resp = modc.post(
            f"/c/{club.slug}/bans",
            data={"member": member.email, "reason": "Spam links", "days": "1"},
        )
        assert resp.status_code == 303, resp.headers.get("Location")
        page = modc.get(f"/c/{club.slug}/bans").get_data(as_text=True)
        assert "Bob Banned" in page and "Spam links" in page
        # Banned here: reads, cannot post (no form; a direct post is refused).
        html = memc.get(f"/c/{club.slug}/t/{here.id}").get_data(as_text=True)
        assert "You are banned from posting in this community." in html
        assert 'name="body"' not in html
        resp = memc.post(f"/c/{club.slug}/t/{here.id}/replies", data={"body": "Hello"})
        assert resp.status_code == 403
        assert (
            memc.post(f"/c/{club.slug}/new", data={"title": "Hi all", "body": ""}).status_code
            == 403
        )
        # Elsewhere: posts.
        resp = memc.post(f"/c/{other.slug}/t/{there.id}/replies", data={"body": "Hello"})
        assert resp.status_code == 303
        # A day later the ban has ended: posts again.
        clock["now"] = utcnow() + timedelta(days=1, minutes=1)
        resp = memc.post(f"/c/{club.slug}/t/{here.id}/replies", data={"body": "Back"})
        assert resp.status_code == 303
        db.session.remove()


def test_lifting_a_ban_lets_the_member_post_again(client):
    club = make_community()
    mod = make_moderator(club)
    member = make_user()
    thread = make_thread(club)
    ban = moderation.ban_member(mod, club, member, "Rude", None)
    db.session.commit()
    login_as(client, mod)
    assert client.post(f"/c/{club.slug}/bans/{ban.id}/lift", data={}).status_code == 303
    login_as(client, member)
    resp = client.post(f"/c/{club.slug}/t/{thread.id}/replies", data={"body": "Sorry"})
    assert resp.status_code == 303


def _entries_since(n: int) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id).offset(n)))


def test_each_action_leaves_exactly_one_audit_entry_with_before_and_after(client):
    """Pin, lock, title, hide a reply, hide a thread, ban, lift, move: one entry each, by
    the moderator, in the thread's community, saying what changed and why."""
    club, annex = make_community(), make_community()
    mod = make_moderator(club)
    make_moderator(annex, mod)
    author = make_user()
    thread = make_thread(club, author, title="Old title")
    reply = make_reply(thread)
    victim = make_user()
    login_as(client, mod)
    base = f"/c/{club.slug}/t/{thread.id}"
    steps = [
        (f"{base}/pin", {"intent": "pin"}, "thread.pin", {"pinned": False}, {"pinned": True}),
        (f"{base}/lock", {"intent": "lock"}, "thread.lock", {"locked": False}, {"locked": True}),
        (
            f"{base}/title",
            {"title": "New title"},
            "thread.title",
            {"title": "Old title"},
            {"title": "New title"},
        ),
        (
            f"{base}/r/{reply.id}/hide",
            {"intent": "hide", "reason": "Off topic"},
            "reply.hide",
            {"hidden": False},
            {"hidden": True},
        ),
        (
            f"{base}/hide",
            {"intent": "hide", "reason": "Duplicate"},
            "thread.hide",
            {"hidden": False},
            {"hidden": True},
        ),
        (
            f"{base}/hide",
            {"intent": "unhide"},
            "thread.unhide",
            {"hidden": True, "reason": "Duplicate"},
            {"hidden": False},
        ),
        (
            f"/c/{club.slug}/bans",
            {"member": victim.email, "reason": "Spam", "days": ""},
            "member.ban",
            {"banned": False},
            None,
        ),
        (
            f"{base}/move",
            {"to": annex.slug, "reason": "Fits there"},
            "thread.move",
            {"community": club.slug},
            {"community": annex.slug},
        ),
    ]
    for path, data, action, before, after in steps:
        n = _audit_count()
        resp = client.post(path, data=data)
        assert resp.status_code == 303, (path, resp.status_code)
        new = _entries_since(n)
        assert [e.action for e in new] == [action]
        entry = new[0]
        assert entry.actor_id == mod.id and entry.community_id == club.id
        assert json.loads(entry.before) == before
        if after is not None:
            assert json.loads(entry.after) == after
    assert "Duplicate" in [e.reason for e in _entries_since(0)]
    # Doing it again changes nothing and records nothing.
    n = _audit_count()
    assert (
        client.post(f"/c/{annex.slug}/t/{thread.id}/pin", data={"intent": "pin"}).status_code == 303
    )
    assert _audit_count() == n
    ban = db.session.scalar(select(CommunityBan).where(CommunityBan.user_id == victim.id))
    resp = client.post(f"/c/{club.slug}/bans/{ban.id}/lift", data={})
    assert [e.action for e in _entries_since(n)] == ["member.unban"]


def test_counts_stay_exact_through_hiding_showing_and_moving(app):
    club, annex = make_community(), make_community()
    mod = make_moderator(club)
    make_moderator(annex, mod)
    thread = make_thread(club)
    other = make_thread(club)
    replies = [make_reply(thread) for _ in range(3)]
    make_reply(other)
    assert (club.thread_count, club.reply_count, thread.reply_count) == (2, 4, 3)
    moderation.hide_reply(mod, thread, replies[0], club, "Spam")
    db.session.commit()
    assert (club.reply_count, thread.reply_count) == (3, 2)
    moderation.hide_thread(mod, thread, club, "Off topic")
    db.session.commit()
    assert (club.thread_count, club.reply_count) == (1, 1)
    # A reply hidden in a hidden thread moves only the thread's count.
    moderation.hide_reply(mod, thread, replies[1], club, "Spam")
    moderation.unhide_thread(mod, thread, club)
    db.session.commit()
    assert (club.thread_count, club.reply_count, thread.reply_count) == (2, 2, 1)
    moderation.unhide_reply(mod, thread, replies[0], club)
    moderation.move_thread(mod, thread, club, annex)
    db.session.commit()
    db.session.expire_all()
    club, annex = db.session.get(Community, club.id), db.session.get(Community, annex.id)
    assert (club.thread_count, club.reply_count) == (1, 1)
    assert (annex.thread_count, annex.reply_count) == (1, 2)
    assert {
        r.community_id
        for r in db.session.scalars(select(Reply).where(Reply.thread_id == thread.id))
    } == {annex.id}
    assert moderation.count_mismatches() == []


def test_the_author_sees_a_hidden_reply_with_the_reason_and_others_do_not(client):
    club = make_community()
    mod = make_moderator(club)
    author = make_user()
    thread = make_thread(club)
    reply = make_reply(thread, author, body="Buy cheap watches")
    moderation.hide_reply(mod, thread, reply, club, "Advertising")
    db.session.commit()
    page = f"/c/{club.slug}/t/{thread.id}"
    assert "Buy cheap watches" not in client.get(page).get_data(as_text=True)
    login_as(client, author)
    html = client.get(page).get_data(as_text=True)
    assert "Buy cheap watches" in html and "Hidden by a moderator: Advertising" in html


def test_a_moved_thread_s_old_address_redirects(client):
    club, annex = make_community(), make_community()
    mod = make_moderator(club)
    make_moderator(annex, mod)
    thread = make_thread(club)
    login_as(client, mod)
    resp = client.post(f"/c/{club.slug}/t/{thread.id}/move", data={"to": annex.slug})
    assert resp.headers["Location"].endswith(f"/c/{annex.slug}/t/{thread.id}")
    resp = client.get(f"/c/{club.slug}/t/{thread.id}")
    assert resp.status_code == 301 and resp.headers["Location"].endswith(
        f"/c/{annex.slug}/t/{thread.id}"
    )


MOD_MARKS = ("mod-tools", '/pin"', '/lock"', '/hide"', '/move"', '/title"', '/bans"', '/mod/log"')


def test_members_and_visitors_pages_carry_no_moderator_form_url_or_token(make_app):
    """A visitor's and a member's (even the author's) thread and community pages, twice
    (the second may come from the page cache), carry no moderator control, action URL or
    token; the moderator's own page has them."""
    from .conftest import fresh_app

    with fresh_app(make_app, WTF_CSRF_ENABLED=True) as app:
        club = make_community()
        mod = make_moderator(club)
        author = make_user()
        thread = make_thread(club, author)
        make_reply(thread, author)
        pages = (f"/c/{club.slug}", f"/c/{club.slug}/t/{thread.id}")
        visitor, member, moderator = app.test_client(), app.test_client(), app.test_client()
        login_as(member, author)
        login_as(moderator, mod)
        for path in pages:
            for _ in range(2):
                html = visitor.get(path).get_data(as_text=True)
                assert not [m for m in MOD_MARKS if m in html], path
                assert "csrf" not in html.lower()
                html = member.get(path).get_data(as_text=True)
                assert not [m for m in MOD_MARKS if m in html], path
        html = moderator.get(pages[1]).get_data(as_text=True)
        assert all(m in html for m in ("mod-tools", '/pin"', '/hide"', '/move"'))
        html = moderator.get(pages[0]).get_data(as_text=True)
        assert '/bans"' in html and '/mod/log"' in html
        db.session.remove()


def test_a_page_of_replies_is_shared_only_by_viewers_who_see_the_same(make_app):
    """The replies fragment is rendered once per group of alike viewers: two members who
    wrote none of the replies share one render; the moderator who looked first gets his
    own (tools, token placeholder personalised), and none of it reaches the members."""
    from .conftest import fresh_app

    with fresh_app(make_app, WTF_CSRF_ENABLED=True) as app:
        club = make_community()
        mod = make_moderator(club)
        author = make_user()
        thread = make_thread(club, author)
        for n in range(3):
            make_reply(thread, author, body=f"Reply number {n}")
        path = f"/c/{club.slug}/t/{thread.id}"
        clients = {name: app.test_client() for name in ("mod", "one", "two")}
        login_as(clients["mod"], mod)
        login_as(clients["one"], make_user())
        login_as(clients["two"], make_user())
        fragments = app.extensions["ideaboard_cache"].fragments
        # Twice each: a session's first page gives it its token; then its pages are kept.
        for _ in range(2):
            html = clients["mod"].get(path).get_data(as_text=True)
        assert html.count("mod-reply-hide-") >= 3 and "<csrftoken" not in html
        after_mod = len(fragments._items)
        assert after_mod >= 1
        for name in ("one", "two", "one", "two"):
            html = clients[name].get(path).get_data(as_text=True)
            assert "Reply number 2" in html and "Report this reply" in html
            assert not [m for m in MOD_MARKS if m in html] and "<csrftoken" not in html
        assert len(fragments._items) == after_mod + 1  # one render for both members
        db.session.remove()


def test_a_page_of_threads_is_one_render_for_every_viewer(make_app):
    """The thread list shows nothing of its viewer: a visitor, two members and the
    moderator are served one render of it (each page keeps its own tools around it), and
    a new reply shows in it at once."""
    from .conftest import fresh_app

    with fresh_app(make_app, WTF_CSRF_ENABLED=True) as app:
        club = make_community()
        mod = make_moderator(club)
        thread = make_thread(club, make_user(), title="Shared list talk")
        path = f"/c/{club.slug}"
        clients = {name: app.test_client() for name in ("visitor", "mod", "one", "two")}
        login_as(clients["mod"], mod)
        login_as(clients["one"], make_user())
        login_as(clients["two"], make_user())
        fragments = app.extensions["ideaboard_cache"].fragments

        def renders() -> int:
            return sum(1 for key in fragments._items if key[3] == "threads")

        for name in ("visitor", "mod", "one", "two") * 2:
            html = clients[name].get(path).get_data(as_text=True)
            assert "Shared list talk" in html and "0 replies" in html
            assert ('/mod/log"' in html) == (name == "mod"), name
        assert renders() == 1
        make_reply(thread, make_user(), body="A new reply")
        html = clients["one"].get(path).get_data(as_text=True)
        assert "1 reply" in html and renders() == 2
        db.session.remove()


def test_the_log_shows_a_moderator_only_his_communities(client):
    club, other = make_community(name="Niva club"), make_community(name="Lada club")
    mod = make_moderator(club)
    staff = make_user("staff")
    mine, theirs = make_thread(club, title="Tyre pressure"), make_thread(other, title="Oil")
    moderation.set_pinned(mod, mine, club, True)
    moderation.set_pinned(staff, theirs, other, True)
    moderation.hide_reply(mod, mine, make_reply(mine), club, "Advertising")
    db.session.commit()
    login_as(client, mod)
    resp = client.get(f"/c/{club.slug}/mod/log")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "no-store" in resp.headers["Cache-Control"]
    assert "Tyre pressure" in html and "pinned a thread" in html and "Oil" not in html
    assert "hid a reply" in html and "Reason: Advertising" in html
    assert client.get(f"/c/{other.slug}/mod/log").status_code == 403
    assert client.get("/mod/log").status_code == 403
    login_as(client, staff)
    html = client.get("/mod/log").get_data(as_text=True)
    assert "Tyre pressure" in html and "Oil" in html
    html = client.get(f"/mod/log?community={other.slug}").get_data(as_text=True)
    assert "Oil" in html and "Tyre pressure" not in html
    html = client.get(f"/mod/log?actor={mod.email}").get_data(as_text=True)
    assert "Tyre pressure" in html and "Oil" not in html
    html = client.get("/mod/log?action=thread.lock").get_data(as_text=True)
    assert "No entries." in html
    assert client.get("/mod/log?before=x").status_code == 400


def test_the_owner_edits_settings_and_appoints_a_moderator_by_email(client):
    owner = make_user()
    club = make_community(owner=owner)
    helper = make_user(name="Helen Helper")
    login_as(client, owner)
    resp = client.post(
        f"/c/{club.slug}/settings",
        data={"name": "Niva owners", "description": "4x4", "rules": "Be kind", "accent": "#aa3300"},
    )
    assert resp.status_code == 303
    resp = client.post(f"/c/{club.slug}/settings", data={"name": "x", "accent": "red"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Use a colour like #2f6fde." in html
    resp = client.post(
        f"/c/{club.slug}/moderators", data={"intent": "appoint", "member": helper.email}
    )
    assert resp.status_code == 303
    html = client.get(f"/c/{club.slug}").get_data(as_text=True)
    assert "Niva owners" in html and "Helen Helper" in html
    resp = client.post(f"/c/{club.slug}/moderators", data={"intent": "appoint", "member": "nobody"})
    assert resp.status_code == 422
    assert "No member has this exact name or email." in resp.get_data(as_text=True)


def test_an_admin_creates_and_archives_a_community_from_the_admin_area(client):
    admin = make_user("admin")
    owner = make_user(name="Olga Owner")
    login_as(client, admin)
    html = client.get("/admin").get_data(as_text=True)
    assert "New community" in html
    resp = client.post(
        "/admin/communities",
        data={"slug": "niva", "name": "Niva club", "description": "", "owner": owner.email},
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/c/niva/settings")
    club = db.session.scalar(select(Community).where(Community.slug == "niva"))
    assert club.owner_id == owner.id
    assert "Niva club" in client.get("/admin").get_data(as_text=True)
    resp = client.post("/admin/communities", data={"slug": "niva", "name": "Again"})
    assert resp.status_code == 422
    assert (
        client.post("/admin/communities/niva/archive", data={"intent": "archive"}).status_code
        == 303
    )
    db.session.expire_all()
    assert db.session.get(Community, club.id).is_archived


def test_htmx_pin_answers_the_thread_header_with_the_badge(client):
    club = make_community()
    mod = make_moderator(club)
    thread = make_thread(club)
    login_as(client, mod)
    resp = client.post(
        f"/c/{club.slug}/t/{thread.id}/pin", data={"intent": "pin"}, headers={"HX-Request": "true"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and html.lstrip().startswith(
        '<article class="thread" id="thread">'
    )
    assert "Pinned" in html and 'value="unpin"' in html
    resp = client.post(
        f"/c/{club.slug}/t/{thread.id}/hide",
        data={"intent": "hide", "reason": ""},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 422
    assert re.search(r'class="field-error"[^>]*>[^<]+', resp.get_data(as_text=True))
