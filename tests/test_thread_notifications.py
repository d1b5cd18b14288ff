"""Thread notifications (issue 14): a new reply in a community thread reaches the thread's
active followers once, through the notification centre and the mail they chose.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from ideaboard import mail
from ideaboard.extensions import db
from ideaboard.models import (
    Delivery,
    Event,
    EventKind,
    MailSettings,
    Notification,
    OutboxMessage,
    Reply,
    User,
    utcnow,
)
from ideaboard.services import notification_mail as nm
from ideaboard.services import notifications, threads

from . import test_notification_mail as _mail_tests
from .factories import login_as, make_community, make_reply, make_thread, make_user, reload
from .oracle import assert_inert, assert_no_foreign_scripts, parse

# The notification mail tests' fixtures: a real SMTP sink, a movable clock, an app using both.
sink, clock, mail_app = _mail_tests.sink, _mail_tests.clock, _mail_tests.mail_app


def _reply_events(thread) -> list[Event]:
    db.session.commit()
    return list(
        db.session.scalars(select(Event).where(Event.thread_id == thread.id).order_by(Event.id))
    )


def _told(event_id: int) -> set[int]:
    db.session.commit()
    return set(
        db.session.scalars(select(Notification.user_id).where(Notification.event_id == event_id))
    )


def _fan(event_id: int) -> int:
    written = notifications.fan_out(event_id)
    db.session.commit()
    return written


@pytest.fixture
def crowd(app):
    """A thread with its author, an earlier replier, an explicit follower, someone who
    replied and then unfollowed, a disabled follower, and an outsider who never followed."""
    community = make_community("fans", "Fan Club")
    author, replier, follower, quitter, gone, outsider, actor = (make_user() for _ in range(7))
    thread = make_thread(community, author, title="Tour dates")
    make_reply(thread, replier, "Count me in")
    threads.follow_thread(follower, thread)
    make_reply(thread, quitter, "Maybe")
    threads.unfollow_thread(quitter, thread)
    threads.follow_thread(gone, thread)
    db.session.execute(update(User).where(User.id == gone.id).values(disabled_at=utcnow()))
    db.session.commit()
    notifications.fan_out_pending()  # the earlier replies' events are not under test
    return community, thread, author, replier, follower, quitter, gone, outsider, actor


def test_a_reply_reaches_active_followers_once_never_the_actor(app, crowd):
    """The thread's active followers hear, once; the replier, an unfollower, a disabled
    account and a non-follower do not; a second fan-out writes nothing."""
    community, thread, author, replier, follower, quitter, gone, outsider, actor = crowd
    reply = make_reply(thread, actor, "See you there")
    event = _reply_events(thread)[-1]
    assert (event.kind, event.idea_id, event.actor_id) == ("reply", None, actor.id)
    assert event.data == f'{{"reply_id": {reply.id}}}'
    assert _fan(event.id) == 3
    assert _told(event.id) == {author.id, replier.id, follower.id}
    assert _fan(event.id) == 0  # claimed: exactly once
    # The actor follows now (replying follows): the next reply tells them, not its writer.
    later = make_reply(thread, follower, "Great")
    event = _reply_events(thread)[-1]
    assert event.data == f'{{"reply_id": {later.id}}}'
    _fan(event.id)
    assert _told(event.id) == {author.id, replier.id, actor.id}


def test_an_event_names_an_idea_or_a_thread_never_both(app, crowd):
    """The CHECK constraint refuses an event naming neither (or both)."""
    from sqlalchemy.exc import IntegrityError

    db.session.add(Event(kind=EventKind.REPLY, data="{}", created_at=utcnow()))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_a_held_reply_is_announced_when_approved_and_only_once(app, crowd):
    """A held reply records nothing; the approval hook records it once, however often it
    is called (a reply hidden and shown again is not announced twice)."""
    community, thread, author, *_ = crowd
    community.require_approval = True
    db.session.commit()
    newcomer = make_user()
    before = len(_reply_events(thread))
    reply = make_reply(thread, newcomer, "First post")
    assert reply.is_held and len(_reply_events(thread)) == before
    reply = reload(reply)
    assert threads.reply_became_visible(author, reply) is None  # still held
    reply.held_at = None
    event = threads.reply_became_visible(author, reply)
    assert event is not None and event.actor_id == newcomer.id
    assert threads.reply_became_visible(author, reply) is None
    assert len(_reply_events(thread)) == before + 1
    assert _fan(event.id) == 3


def test_a_moderator_approving_a_held_reply_tells_the_followers(app, client, crowd):
    """Through the queue's approve button: the held reply is announced once, to the same
    followers a visible reply reaches; rejecting another announces nothing."""
    from .factories import make_moderator

    community, thread, author, replier, follower, *_ = crowd
    mod = make_moderator(community)
    community.require_approval = True
    db.session.commit()
    newcomer, other = make_user(), make_user()
    held = make_reply(thread, newcomer, "First post, held")
    rejected = make_reply(thread, other, "Another first post")
    before = len(_reply_events(thread))
    login_as(client, mod)
    for reply, decision in ((held, "approve"), (rejected, "reject")):
        resp = client.post(f"/mod/held/reply/{reply.id}", data={"decision": decision})
        assert resp.status_code == 303, resp.status_code
    notifications.fan_out_pending()  # whether or not the request's own pass ran
    events = _reply_events(thread)
    assert len(events) == before + 1
    assert json.loads(events[-1].data)["reply_id"] == held.id
    # As for any reply: the thread's followers (the other newcomer follows since posting,
    # held or not), never its author; not the moderator, who does not follow.
    assert _told(events[-1].id) == {author.id, replier.id, follower.id, other.id}


def test_a_reply_or_thread_hidden_before_the_fan_out_tells_nobody(app, crowd):
    community, thread, *_rest, actor = crowd
    reply = make_reply(thread, actor, "Spam spam")
    event = _reply_events(thread)[-1]
    db.session.execute(update(Reply).where(Reply.id == reply.id).values(deleted_at=utcnow()))
    db.session.commit()
    assert _fan(event.id) == 0
    second = make_reply(thread, actor, "Again")
    event = _reply_events(thread)[-1]
    thread = reload(thread)
    thread.deleted_at = utcnow()
    db.session.commit()
    assert second.id and _fan(event.id) == 0


def test_the_reply_post_fans_out_after_its_response_and_the_centre_links_it(app, client, crowd):
    """A member replies through the page; the followers' centre says who replied where and
    links to the reply's anchor on its page; in Russian too."""
    community, thread, author, replier, *_rest, actor = crowd
    actor.display_name = "Robin Lee"
    db.session.commit()
    login_as(client, actor)
    resp = client.post(
        f"/c/fans/t/{thread.id}/replies",
        data={"body": "I will bring the banner for the whole front row of the venue, okay?"},
    )
    assert resp.status_code == 303
    resp.close()
    event = _reply_events(thread)[-1]
    assert db.session.get(Event, event.id).fanned_out_at is not None
    assert author.id in _told(event.id) and actor.id not in _told(event.id)
    reply_id = event.data.split(": ")[1].rstrip("}")
    login_as(client, author)
    html = client.get("/notifications").get_data(as_text=True)
    assert "Robin Lee replied in Tour dates (Fan Club)" in html
    assert f'href="/c/fans/t/{thread.id}#reply-{reply_id}"' in html
    assert "I will bring the banner for the whole front row of the…" in html
    client.set_cookie("lang", "ru")
    html = client.get("/notifications").get_data(as_text=True)
    assert "Robin Lee: новый ответ в теме «Tour dates» (Fan Club)" in html


def test_the_centre_links_a_reply_on_a_later_page(app, client, crowd, monkeypatch):
    community, thread, author, *_rest, actor = crowd
    monkeypatch.setattr(threads, "REPLIES_PER_PAGE", 2)
    reply = make_reply(thread, actor, "Third reply")  # visible replies: 2 before it
    _fan(_reply_events(thread)[-1].id)
    login_as(client, author)
    html = client.get("/notifications").get_data(as_text=True)
    assert f'href="/c/fans/t/{thread.id}?page=2#reply-{reply.id}"' in html


def test_the_centre_reads_thread_items_in_constant_statements(app, client, crowd, count_queries):
    """Ten reply notifications cost what one does (the page; the replies in one)."""
    community, thread, author, *_rest, actor = crowd
    login_as(client, author)

    def statements() -> int:
        with count_queries() as counted:
            assert client.get("/notifications").status_code == 200
        return counted.count

    make_reply(thread, actor, "one")
    notifications.fan_out_pending()
    one = statements()
    for n in range(9):
        make_reply(thread, actor, f"more {n}")
    notifications.fan_out_pending()
    assert statements() == one


def test_reply_mail_follows_the_members_choice(mail_app, sink, clock):
    """Instant: one mail now, with the reply and a link to its anchor; daily (the default
    for replies): in the digest; off: nothing; the replier: nothing."""
    community = make_community("fans", "Fan Club")
    author = make_user(name="Ann", email="ann@example.com")
    instant = make_user(email="ivan@example.com")
    off = make_user(email="olga@example.com")
    actor = make_user(name="Robin", email="robin@example.com")
    thread = make_thread(community, author, title="Tour <b>dates</b>")
    for member in (instant, off):
        threads.follow_thread(member, thread)
    nm._set_deliveries(instant.id, {"communities": Delivery.INSTANT})
    nm._set_deliveries(off.id, {"communities": Delivery.OFF})
    db.session.commit()
    notifications.fan_out_pending()
    reply = make_reply(thread, actor, "Front row, <script>alert(1)</script>")
    report = notifications.fan_out_pending()
    assert report.notifications == 3
    assert mail.deliver_queued().sent == 1
    [got] = sink.received
    assert got.rcpt_to == ["ivan@example.com"]
    assert got.message["Subject"] == "New reply in “Tour <b>dates</b>”"
    text, html = got.part("plain"), got.part("html")
    assert "Robin replied in “Tour <b>dates</b>” (Fan Club)." in text
    assert "Front row, <script>alert(1)</script>" in text
    url = f"http://127.0.0.1:5000/c/fans/t/{thread.id}#reply-{reply.id}"
    assert url in text
    assert_no_foreign_scripts(html, "reply mail")
    assert_inert(html, context="reply mail")
    assert url in [n.get("href") for n in parse(html).descendants() if n.tag == "a"]
    assert "See the reply" in html
    # The author (daily by default) gets it in tomorrow's digest; nobody else gets more.
    clock["now"] += timedelta(hours=25)
    assert nm.run_digests() == 1
    assert mail.deliver_queued().sent == 1
    digest = sink.received[-1]
    assert digest.rcpt_to == ["ann@example.com"]
    assert digest.message["Subject"] == "1 update on what you follow"
    assert "Front row" in digest.part("plain") and url in digest.part("plain")
    assert_inert(digest.part("html"), context="reply digest")
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 2


def test_reply_mail_is_in_the_members_language(mail_app, sink):
    community = make_community("fans", "Fan Club")
    reader = make_user(email="ru@example.com")
    db.session.add(MailSettings(user_id=reader.id, locale="ru"))
    thread = make_thread(community, make_user(), title="Tour dates")
    threads.follow_thread(reader, thread)
    nm._set_deliveries(reader.id, {"communities": Delivery.INSTANT})
    db.session.commit()
    notifications.fan_out_pending()
    make_reply(thread, make_user(name="Robin"), "Да!")
    notifications.fan_out_pending()
    assert mail.deliver_queued().sent == 1
    got = sink.received[-1]
    assert got.message["Subject"] == "Новый ответ в теме «Tour dates»"
    assert "Robin: новый ответ в теме «Tour dates» (Fan Club)." in got.part("plain")


def test_a_reply_hidden_before_delivery_is_not_mailed(mail_app, sink):
    community = make_community("fans", "Fan Club")
    reader = make_user(email="r@example.com")
    thread = make_thread(community, make_user(), title="Tour dates")
    threads.follow_thread(reader, thread)
    nm._set_deliveries(reader.id, {"communities": Delivery.INSTANT})
    db.session.commit()
    notifications.fan_out_pending()
    make_reply(thread, make_user(), "Soon gone")
    notifications.fan_out_pending()
    thread = reload(thread)
    thread.held_at = utcnow()  # the thread went back to the queue before the mail left
    db.session.commit()
    assert mail.deliver_queued().sent == 0 and sink.received == []


def test_the_settings_page_offers_the_communities_group(mail_app):
    member = make_user()
    db.session.commit()
    client = mail_app.test_client()
    login_as(client, member)
    html = client.get("/account/notifications").get_data(as_text=True)
    assert "Replies in community threads" in html
    from .test_notification_mail import _checked

    assert _checked(html)["communities"] == "daily"
