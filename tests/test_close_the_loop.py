"""Issue 13's "done when", end to end through the app's own URLs and a real SMTP server:
a member signs up and confirms the address, votes; staff ship the idea with a note; the
member finds a notification and an email, and sees on their influence page that they
helped ship it; a visitor reads the changelog and its Atom feed. Runs on both databases.
"""

from __future__ import annotations

import re

import feedparser
import pytest

from ideaboard import mail
from ideaboard.extensions import db
from ideaboard.notifications import wiring

from .conftest import _reset
from .factories import PASSWORD, login_as, make_idea, make_user
from .smtp_sink import SmtpSink


@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


@pytest.fixture
def loop_app(make_app, sink, tmp_path):
    # Fan-out by the worker's pass (`mail send --loop` runs it), not after the response:
    # the test client has no "after the response" to wait for.
    app = make_app(MAIL_URL=sink.url, MAIL_DIR=str(tmp_path), NOTIFY_AFTER_RESPONSE=False)
    _reset(app)
    with app.app_context():
        yield app
        db.session.remove()


HTMX = {"HX-Request": "true"}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _worker_pass() -> None:
    """One pass of `flask mail send --loop`: fan out pending events, then deliver."""
    wiring.run_pending()
    mail.deliver_queued()


def test_a_voter_hears_that_their_idea_shipped_and_a_visitor_reads_it(loop_app, sink):
    author = make_user(name="Ada Author")
    staff = make_user("staff", name="Stan Staff")
    idea = make_idea(author, title="Offline mode")
    db.session.commit()

    # A customer signs up and opens the link in the mail that confirms the address.
    member = loop_app.test_client()
    resp = member.post(
        "/register",
        data={"email": "vera@example.com", "display_name": "Vera Voter", "password": PASSWORD},
    )
    assert resp.status_code == 303
    mail.deliver_queued()
    [confirm] = [m for m in sink.to("vera@example.com") if "/verify/" in m.part("plain")]
    path = re.search(r"http://[^/\s]+(/verify/\S+)", confirm.part("plain"))[1]
    assert member.post(path).status_code == 303
    assert "verify-banner" not in member.get("/ideas").get_data(as_text=True)

    # She votes; the unread count is empty.
    resp = member.post(f"/ideas/{idea.id}/vote", data={"intent": "vote", "next": "/ideas"})
    assert resp.status_code == 303
    assert "has-unread" not in member.get("/notifications/unread", headers=HTMX).get_data(
        as_text=True
    )

    # Staff ship it with a note.
    staff_client = loop_app.test_client()
    login_as(staff_client, staff)
    resp = staff_client.post(
        f"/ideas/{idea.id}/status", data={"status": "shipped", "note": "Out in 4.2 today"}
    )
    assert resp.status_code == 303
    _worker_pass()

    # In the app: one unread notification that says what happened, with the note.
    badge = member.get("/notifications/unread", headers=HTMX).get_data(as_text=True)
    assert "has-unread" in badge and "Notifications, 1 unread" in _text(badge)
    page = _text(member.get("/notifications").get_data(as_text=True))
    assert "Offline mode" in page and "Shipped" in page and "Out in 4.2 today" in page

    # By mail, once, to her confirmed address; the actor gets nothing.
    shipped = [m for m in sink.to("vera@example.com") if "Offline mode" in m.message["Subject"]]
    assert len(shipped) == 1
    assert "Out in 4.2 today" in shipped[0].part("plain")
    assert shipped[0].message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    staff_mail = [m for m in sink.received if staff.email in m.rcpt_to]
    assert staff_mail == []
    _worker_pass()
    assert (
        len([m for m in sink.to("vera@example.com") if "Offline mode" in m.message["Subject"]]) == 1
    )

    # Her influence page: she backed one idea, and it shipped.
    influence = _text(member.get("/account/influence").get_data(as_text=True))
    assert "Offline mode" in influence
    assert re.search(r"\b1\b[^.]*shipped", influence), influence

    # A visitor reads the changelog and subscribes to its feed.
    visitor = loop_app.test_client()
    changelog = visitor.get("/changelog").get_data(as_text=True)
    assert "Offline mode" in _text(changelog) and "Out in 4.2 today" in _text(changelog)
    assert 'rel="alternate"' in changelog and "/feeds/changelog.atom" in changelog
    feed = feedparser.parse(visitor.get("/feeds/changelog.atom").get_data())
    assert not feed.bozo
    assert [e.title for e in feed.entries] == ["Shipped: Offline mode"]
    assert "Out in 4.2 today" in feed.entries[0].summary
