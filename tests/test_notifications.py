"""Notifications: the fan-out reaches exactly the right people once, the centre shows what
happened in words, marking read is the member's own and never empties a cached page, the
header's unread count.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second (the
50,000-follower test runs on PostgreSQL only).
"""

from __future__ import annotations

import re
import time

import pytest
from flask import template_rendered
from sqlalchemy import func, insert, literal, select, text, update

from ideaboard.extensions import db
from ideaboard.models import Board, Event, EventKind, Notification, User, utcnow
from ideaboard.services import comments as comment_service
from ideaboard.services import events, notifications, roadmap
from ideaboard.services import ideas as idea_service

from .conftest import BACKEND, fresh_app
from .factories import at_once, login_as, make_comment, make_idea, make_user, reload, vote_for

HX = {"HX-Request": "true"}


def _told(event_id: int) -> set[int]:
    db.session.commit()
    stmt = select(Notification.user_id).where(Notification.event_id == event_id)
    return set(db.session.scalars(stmt))


def _rows(event_id: int) -> int:
    db.session.commit()
    return db.session.scalar(
        select(func.count()).select_from(Notification).where(Notification.event_id == event_id)
    )


def _last_event(idea) -> int:
    db.session.commit()
    return db.session.scalar(select(func.max(Event.id)).where(Event.idea_id == idea.id))


def _fan(event_id: int) -> int:
    written = notifications.fan_out(event_id)
    db.session.commit()
    return written


@pytest.fixture
def cast(app):
    """An idea with its author, a voter, a commenter, an explicit follower, someone who
    voted and then unfollowed, a staff member who commented (a follower, and the actor
    below), and an outsider."""
    author, voter, commenter, follower, quitter, outsider = (make_user() for _ in range(6))
    staff = make_user("staff")
    idea = make_idea(author, title="Dark mode")
    vote_for(idea, voter)
    make_comment(idea, commenter, "I would use it every night, in the terminal too")
    make_comment(idea, staff, "Looking into it")
    from ideaboard.services import follows

    follows.follow_idea(follower, idea)
    vote_for(idea, quitter)
    follows.unfollow_idea(quitter, idea)
    db.session.commit()
    make_comment(idea, quitter, "Still want it")  # commenting does not re-subscribe
    # The events so far (the comments) are not what these tests look at.
    notifications.fan_out_pending()
    return {
        "idea": idea,
        "author": author,
        "voter": voter,
        "commenter": commenter,
        "follower": follower,
        "quitter": quitter,
        "outsider": outsider,
        "staff": staff,
    }


def test_each_kind_reaches_exactly_the_right_people_once(app, cast):
    """Status change, official response, comment and merge reach the author, voters,
    commenters and followers, never the actor or someone who unfollowed; staff edits and
    hides reach the author only. A second fan-out of the same event writes nothing."""
    c = cast
    idea, staff = c["idea"], c["staff"]
    everyone = {c[k].id for k in ("author", "voter", "commenter", "follower", "staff")}

    roadmap.change_status(staff, idea, "planned", "Next sprint")
    status_event = _last_event(idea)
    assert _fan(status_event) == len(everyone - {staff.id})
    assert _told(status_event) == everyone - {staff.id}

    comment_service.add_comment(staff, idea, "We started", official=True)
    official = _last_event(idea)
    assert _fan(official) == 4 and _told(official) == everyone - {staff.id}

    comment_service.add_comment(c["commenter"], idea, "Great news")
    comment = _last_event(idea)
    assert _told(comment) == set() and _fan(comment) == 4
    assert _told(comment) == everyone - {c["commenter"].id}

    other = make_idea(title="Night theme")
    events.record(EventKind.MERGED, idea, staff, into=other.id)
    merged = _last_event(idea)
    assert _fan(merged) == 4 and _told(merged) == everyone - {staff.id}

    board = db.session.get(Board, idea.board_id)
    current = reload(idea)
    idea_service.update_idea(
        staff,
        current,
        title="Dark mode, please",
        body="Edited",
        kind="idea",
        board=board,
        version=current.version,
    )
    edited = _last_event(idea)
    assert _fan(edited) == 1 and _told(edited) == {c["author"].id}

    idea_service.delete_idea(staff, reload(idea), "Duplicate of Night theme")
    hidden = _last_event(idea)
    # The author is told although they can no longer open it (they hear why).
    assert _fan(hidden) == 1 and _told(hidden) == {c["author"].id}

    for event_id in (status_event, official, comment, merged, edited, hidden):
        assert _fan(event_id) == 0, "an event is fanned out once"
        assert db.session.get(Event, event_id).fanned_out_at is not None
    assert _rows(status_event) == 4 and _rows(hidden) == 1
    for who in ("quitter", "outsider"):
        mine = select(func.count()).where(Notification.user_id == c[who].id)
        assert db.session.scalar(mine) == 0, who


def test_only_members_who_may_still_see_the_idea_hear(app):
    """A deleted idea's news reaches staff who follow it and its author while they may
    restore it, not other followers; a disabled account hears nothing."""
    author, member, gone = make_user(), make_user(), make_user()
    staff, actor = make_user("staff"), make_user("staff")
    idea = make_idea(author)
    for user in (member, gone, staff):
        vote_for(idea, user)
    db.session.execute(update(User).where(User.id == gone.id).values(disabled_at=utcnow()))
    db.session.commit()
    roadmap.change_status(actor, idea, "planned", "")
    live = _last_event(idea)
    assert _fan(live) == 3 and _told(live) == {author.id, member.id, staff.id}
    idea_service.delete_idea(author, reload(idea))  # the author deleted it: may restore
    db.session.commit()
    events.record(EventKind.STATUS_CHANGED, reload(idea), actor, to="declined")
    deleted = _last_event(idea)
    assert _fan(deleted) == 2 and _told(deleted) == {author.id, staff.id}


def test_an_event_without_an_actor_reaches_every_follower(app):
    author, voter = make_user(), make_user()
    idea = make_idea(author)
    vote_for(idea, voter)
    events.record(EventKind.STATUS_CHANGED, idea, None, to="planned")
    event_id = _last_event(idea)
    assert _fan(event_id) == 2 and _told(event_id) == {author.id, voter.id}


def test_two_processes_fan_out_the_same_event_once(app):
    """Two fan-outs of one event at the same moment: one writes every row, the other none."""
    idea = make_idea()
    for _ in range(6):
        vote_for(idea, make_user())
    roadmap.change_status(make_user("staff"), idea, "planned", "")
    event_id = _last_event(idea)
    db.session.remove()

    def run():
        with app.app_context():
            try:
                return notifications.fan_out(event_id), db.session.commit()
            finally:
                db.session.remove()

    results = sorted(r[0] for r in at_once([run, run]))
    assert results == [0, 7]
    assert _rows(event_id) == 7


def test_a_request_fans_out_after_its_response(app, client):
    """Staff move an idea: the response comes first, then the same process fans out the
    event it recorded; the voter has a notification, the staff member none."""
    staff, voter = make_user("staff"), make_user()
    idea = make_idea(title="Offline mode")
    vote_for(idea, voter)
    notifications.fan_out_pending()
    login_as(client, staff)
    resp = client.post(f"/ideas/{idea.id}/status", data={"status": "planned", "note": "Soon"})
    assert resp.status_code == 303
    resp.close()
    event_id = _last_event(idea)
    assert db.session.get(Event, event_id).fanned_out_at is not None
    assert _told(event_id) == {idea.author_id, voter.id}


def test_the_worker_catches_events_left_pending(make_app):
    """An event whose fan-out never ran (a crash after the commit) is fanned out by `flask
    mail send` (the production worker) and by `flask notifications fan-out`, once."""
    app = make_app(NOTIFY_AFTER_RESPONSE=False)
    with app.app_context():
        voter = make_user()
        idea = make_idea()
        vote_for(idea, voter)
        notifications.fan_out_pending()
        staff = make_user("staff")
        client = app.test_client()
        login_as(client, staff)
        client.post(f"/ideas/{idea.id}/status", data={"status": "planned", "note": ""}).close()
        event_id = _last_event(idea)
        assert db.session.get(Event, event_id).fanned_out_at is None
        runner = app.test_cli_runner()
        result = runner.invoke(args=["mail", "send"])
        assert "Fanned out 1 events into 2 notifications" in result.output, result.output
        db.session.expire_all()
        assert _told(event_id) == {idea.author_id, voter.id}
        result = runner.invoke(args=["notifications", "fan-out"])
        assert result.exit_code == 0, result.output
        assert "Fanned out 0 events into 0 notifications" in result.output
        assert "0 still pending" in result.output
        assert _rows(event_id) == 2


def test_a_rolled_back_write_fans_out_nothing(app, client):
    """An event recorded in a transaction that rolled back leaves no trace to fan out."""
    idea = make_idea()
    staff = make_user("staff")
    roadmap.change_status(staff, idea, "planned", "")
    db.session.rollback()
    assert db.session.info.get(events.RECORDED_KEY) is None
    assert notifications.pending_ids() == []


# --- the notification centre -----------------------------------------------------------


def _centre_cast():
    author, voter = make_user(), make_user(name="Vera Voter")
    staff = make_user("staff", name="Robin Lee")
    idea = make_idea(author, title="Dark mode")
    vote_for(idea, voter)
    roadmap.change_status(staff, idea, "planned", "Next sprint")
    db.session.commit()
    comment = make_comment(
        idea, staff, "We started on the **colours** today and it looks good so far, more soon"
    )
    notifications.fan_out_pending()
    return idea, voter, staff, comment


def test_the_centre_says_what_happened_newest_first(app, client):
    idea, voter, staff, comment = _centre_cast()
    login_as(client, voter)
    resp = client.get("/notifications")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    items = re.findall(r'<li class="notification[^"]*" id="notification-(\d+)">', html)
    assert len(items) == 2 and int(items[0]) > int(items[1])  # newest first
    assert "Robin Lee commented on Dark mode" in html
    assert "We started on the colours today and it looks good so far,…" in html
    assert f"#comment-{comment.id}" in html
    assert 'Dark mode moved to Planned</a>: <q class="notification-detail">Next sprint</q>' in html
    assert html.count("<time") >= 2
    assert html.count('<span class="visually-hidden">Unread: </span>') == 2
    assert "2 unread" in html


def test_the_centre_speaks_russian(app, client):
    _, voter, _, _ = _centre_cast()
    login_as(client, voter)
    client.set_cookie("lang", "ru")
    html = client.get("/notifications").get_data(as_text=True)
    assert "Идея «Dark mode» перешла в статус «Запланировано»" in html
    assert "2 непрочитанных" in html
    assert "Отметить все прочитанными" in html


def test_marking_one_read_inline_with_htmx(app, htmx):
    idea, voter, _, _ = _centre_cast()
    login_as(htmx, voter)
    mine = db.session.scalars(
        select(Notification.id).where(Notification.user_id == voter.id).order_by(Notification.id)
    ).all()
    resp = htmx.post("/notifications/read", data={"id": mine[0], "next": "/notifications"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<html" not in html and 'id="notification-list"' in html
    assert resp.headers["HX-Trigger"] == "notifications-changed"
    assert f'<li class="notification" id="notification-{mine[0]}">' in html
    assert f'<li class="notification is-unread" id="notification-{mine[1]}">' in html
    assert "1 unread" in html


def test_marking_read_without_javascript_redirects_back(app, client):
    _, voter, _, _ = _centre_cast()
    login_as(client, voter)
    resp = client.post("/notifications/read", data={"next": "/notifications?page=1"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/notifications?page=1")
    resp = client.post("/notifications/read", data={"next": "https://evil.example/"})
    assert resp.headers["Location"].endswith("/notifications")
    html = client.get("/notifications").get_data(as_text=True)
    assert "All read" in html and "is-unread" not in html


def test_a_member_never_marks_another_members_notifications(app, client):
    """Someone else's id answers 404 and changes nothing; a malformed id is 400."""
    _, voter, _, _ = _centre_cast()
    theirs = db.session.scalar(select(Notification.id).where(Notification.user_id == voter.id))
    intruder = make_user()
    login_as(client, intruder)
    assert client.post("/notifications/read", data={"id": theirs}).status_code == 404
    assert client.post("/notifications/read", data={"id": "12abc"}).status_code == 400
    assert client.post("/notifications/read", data={"id": "99999999"}).status_code == 404
    assert client.post("/notifications/read", data={}).status_code == 303  # all of their own
    db.session.expire_all()
    assert db.session.get(Notification, theirs).read_at is None
    html = client.get("/notifications").get_data(as_text=True)
    assert "Dark mode" not in html  # and never reads them


def test_a_post_without_a_csrf_token_marks_nothing(make_app):
    with fresh_app(make_app, WTF_CSRF_ENABLED=True) as app:
        _, voter, _, _ = _centre_cast()
        client = app.test_client()
        login_as(client, voter)
        assert client.post("/notifications/read", data={}).status_code == 400
        unread = select(func.count()).where(
            Notification.user_id == voter.id, Notification.read_at.is_(None)
        )
        assert db.session.scalar(unread) == 2


def test_marking_read_and_fanning_out_keep_every_cached_page(app, client):
    """Read state and notification rows are not page content: across a fan-out and
    "mark all read", the content version stays and the member's cached page is served
    from the cache (no template rendered)."""
    idea, voter, staff, _ = _centre_cast()
    cache = app.extensions["ideaboard_cache"]
    login_as(client, voter)
    client.get("/ideas")
    first = client.get("/ideas").get_data()
    with app.app_context():
        before = cache.versions.read()
    events.record(EventKind.STATUS_CHANGED, idea, staff, to="in_progress")
    db.session.commit()
    with app.app_context():
        moved = cache.versions.read()
    assert notifications.fan_out_pending().notifications == 2
    assert client.post("/notifications/read", data={}).status_code == 303
    with app.app_context():
        assert cache.versions.read() == moved == before
    rendered = []

    def _on(_sender, template, **_extra):
        rendered.append(template.name)

    template_rendered.connect(_on, app)
    try:
        again = client.get("/ideas").get_data()
    finally:
        template_rendered.disconnect(_on, app)
    assert rendered == [], f"the member's cached list page was rendered again: {rendered}"
    assert again == first


def test_the_header_shows_the_unread_count_in_words(app, client):
    _, voter, _, _ = _centre_cast()
    login_as(client, voter)
    page = client.get("/ideas").get_data(as_text=True)
    # The page itself carries the link without a count (it is cached page content) and
    # loads the count with htmx.
    assert 'id="nav-notifications"' in page and 'hx-get="/notifications/unread"' in page
    link = page.split('id="nav-notifications"')[1].split("</a>")[0]
    assert "unread-badge" not in link and "Notifications," not in link
    frag = client.get("/notifications/unread", headers={"HX-Request": "true"})
    html = frag.get_data(as_text=True)
    assert frag.status_code == 200 and "<html" not in html
    assert "Notifications, 2 unread" in html and ">2</span>" in html
    assert "load," not in html  # a swapped-in link must not load itself again
    plain = client.get("/notifications/unread")  # without JavaScript: the centre
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/notifications")
    client.set_cookie("lang", "ru")
    html = client.get("/notifications/unread", headers=HX).get_data(as_text=True)
    assert "Уведомления, 2 непрочитанных" in html
    client.post("/notifications/read", data={})
    client.set_cookie("lang", "en")
    html = client.get("/notifications/unread", headers=HX).get_data(as_text=True)
    assert "unread-badge" not in html and "Notifications," not in html
    assert "Notifications" in html


def test_the_header_count_is_capped(app, client):
    member = make_user()
    idea = make_idea()
    staff = make_user("staff")
    for n in range(105):
        events.record(EventKind.STATUS_CHANGED, idea, staff, to="planned", n=n)
    db.session.flush()
    db.session.execute(
        insert(Notification).from_select(
            ["user_id", "event_id", "created_at"],
            select(literal(member.id), Event.id, Event.created_at).where(Event.idea_id == idea.id),
        )
    )
    db.session.commit()
    login_as(client, member)
    html = client.get("/notifications/unread", headers=HX).get_data(as_text=True)
    assert ">99+</span>" in html and "Notifications, more than 99 unread" in html
    page = client.get("/notifications").get_data(as_text=True)
    assert "More than 99 unread" in page and 'rel="next"' in page
    page2 = client.get("/notifications?page=6").get_data(as_text=True)
    assert 'rel="prev"' in page2 and 'rel="next"' not in page2
    assert page2.count('class="notification ') == 5


def test_visitors_are_sent_to_sign_in(app, client):
    assert client.get("/notifications").status_code in (302, 401)
    assert client.post("/notifications/read").status_code in (302, 400, 401)


# --- at scale --------------------------------------------------------------------------

FOLLOWERS = 50_000


@pytest.mark.serial
@pytest.mark.skipif(BACKEND != "postgres", reason="50,000 followers: the PostgreSQL pass")
def test_a_status_change_with_50000_followers(app, client):
    """The request writes one event and answers fast; the fan-out writes exactly 50,000
    rows (the actor, a follower too, excluded) in one statement, once."""
    idea = make_idea()
    staff = make_user("staff")
    started = time.perf_counter()
    db.session.execute(
        text(
            "INSERT INTO users (email, email_key, display_name, search_name, password_hash,"
            " role, created_at, session_token)"
            " SELECT 'f' || n || '@scale.test', 'f' || n || '@scale.test', 'F ' || n,"
            " 'f ' || n, 'x', 'member', now(), md5(n::text)"
            " FROM generate_series(1, :n) AS n"
        ),
        {"n": FOLLOWERS},
    )
    db.session.execute(
        text(
            "INSERT INTO follows (user_id, idea_id, active, created_at)"
            " SELECT id, :idea, true, now() FROM users WHERE email LIKE '%@scale.test'"
        ),
        {"idea": idea.id},
    )
    db.session.execute(
        text(
            "INSERT INTO follows (user_id, idea_id, active, created_at)"
            " VALUES (:u, :i, true, now())"
        ),
        {"u": staff.id, "i": idea.id},
    )
    db.session.commit()
    seeded = time.perf_counter() - started
    notifications.fan_out_pending()
    app.config["NOTIFY_AFTER_RESPONSE"] = False  # time the request alone, then the fan-out
    login_as(client, staff)
    t0 = time.perf_counter()
    resp = client.post(f"/ideas/{idea.id}/status", data={"status": "planned", "note": "Big"})
    request_s = time.perf_counter() - t0
    assert resp.status_code == 303
    event_id = _last_event(idea)
    assert (
        db.session.scalar(select(func.count()).select_from(Event).where(Event.idea_id == idea.id))
        == 1
    )
    t0 = time.perf_counter()
    written = _fan(event_id)
    fan_s = time.perf_counter() - t0
    assert written == FOLLOWERS + 1  # the followers and the author; not the staff actor
    assert _rows(event_id) == FOLLOWERS + 1
    assert _fan(event_id) == 0
    staff_rows = select(func.count()).where(Notification.user_id == staff.id)
    assert db.session.scalar(staff_rows) == 0
    print(f"seed {seeded:.2f}s, request {request_s * 1000:.1f} ms, fan-out {fan_s:.2f}s")
    assert request_s < 0.5, request_s
    assert reload(idea).status == "planned"


def test_merge_edit_and_hide_read_as_words(app, client):
    """The author reads "merged into #N" (a link there), "Staff edited your idea" and
    "Staff hid your idea …: reason" (no link: they can no longer open it)."""
    author, staff = make_user(), make_user("staff")
    idea = make_idea(author, title="Dark mode")
    other = make_idea(title="Night theme")
    events.record(EventKind.MERGED, idea, staff, into=other.id)
    events.record(EventKind.IDEA_EDITED, idea, staff)
    db.session.commit()
    notifications.fan_out_pending()  # before the hide: then the author may still see it
    idea_service.delete_idea(staff, reload(idea), "Off topic")
    db.session.commit()
    notifications.fan_out_pending()
    login_as(client, author)
    html = client.get("/notifications").get_data(as_text=True)
    assert f'<a href="/ideas/{other.id}">Dark mode was merged into #{other.id}</a>' in html
    assert "Staff edited your idea Dark mode" in html  # not a link now: the idea is hidden
    hidden = re.search(r'<p class="notification-what">(.*?)</p>', html, re.S).group(1)
    assert "Staff hid your idea Dark mode" in hidden and "Off topic" in hidden
    assert "<a " not in hidden
