"""Notification mail against a real SMTP server on 127.0.0.1: instant mail, digests,
one-click unsubscribe, the settings page, and the worker across an SMTP outage.

The fan-out (services/notifications.py) is another helper's; these tests make the
notification rows it would make, set-based, for an event recorded by the real service.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, literal, select, text, update

from ideaboard import mail
from ideaboard.extensions import db
from ideaboard.models import (
    Comment,
    Delivery,
    Event,
    EventKind,
    Idea,
    MailSettings,
    Notification,
    NotificationPreference,
    OutboxMessage,
    User,
    utcnow,
)
from ideaboard.services import notification_mail as nm
from ideaboard.services import roadmap
from ideaboard.services.comments import add_comment

from .conftest import ROOT, _reset
from .factories import login_as, make_idea, make_user
from .oracle import assert_inert, assert_no_foreign_scripts, load_payloads, parse
from .smtp_sink import SmtpSink, closed_port_url


@pytest.fixture
def sink():
    """A real SMTP server on a free loopback port, for one test."""
    with SmtpSink() as server:
        yield server


@pytest.fixture
def clock():
    """A movable clock for the app (CLOCK config)."""
    return {"now": utcnow()}


@pytest.fixture
def mail_app(make_app, sink, tmp_path, clock):
    """An app whose MAIL_URL is the sink, over empty tables."""
    app = make_app(MAIL_URL=sink.url, MAIL_DIR=str(tmp_path / "mail"), CLOCK=lambda: clock["now"])
    _reset(app)
    with app.app_context():
        yield app
        db.session.remove()


def _notify(event_id: int, user_ids: list[int]) -> None:
    """What the fan-out does: one notification row per recipient, set-based (created_at
    from the app's clock, so digests can be tested by moving it)."""
    source = select(User.id, literal(event_id), literal(nm.now())).where(User.id.in_(user_ids))
    db.session.execute(
        insert(Notification).from_select(["user_id", "event_id", "created_at"], source)
    )


def _last_event() -> int:
    return db.session.scalar(select(func.max(Event.id)))


def _prefer(user: User, group: str, delivery: str) -> None:
    nm._set_deliveries(user.id, {group: delivery})


def _status_change(staff, idea, recipients, note="Starting next sprint") -> int:
    roadmap.change_status(staff, idea, "planned", note)
    event_id = _last_event()
    _notify(event_id, [u.id for u in recipients])
    queued = nm.queue_for_event(event_id)
    db.session.commit()
    return queued


def _one_click(app, url: str, **kw):
    path = url.removeprefix(app.config["BASE_URL"])
    return app.test_client().post(path, data={"List-Unsubscribe": "One-Click"}, buffered=True, **kw)


def test_instant_mail_reaches_exactly_the_instant_recipients(mail_app, sink):
    """A status change mails the instant members once each, both parts, RFC 8058 headers;
    daily and off members and the actor get nothing now."""
    staff = make_user("staff", name="Stan Staff", email="staff@example.com")
    author = make_user(name="Ann Author", email="ann@example.com")
    instant = make_user(name="Ivan Instant", email="ivan@example.com")
    daily = make_user(name="Dana Daily", email="dana@example.com")
    off = make_user(name="Olga Off", email="olga@example.com")
    idea = make_idea(author=author, title="Dark mode <b>please</b>")
    _prefer(daily, "status", Delivery.DAILY)
    _prefer(off, "status", Delivery.OFF)
    db.session.commit()
    queued = _status_change(staff, idea, [author, instant, daily, off])
    assert queued == 2
    # Nothing rendered in the request: rows are references.
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.to_addr)).all()
    assert [(r.kind, r.to_addr, r.text_body) for r in rows] == [
        ("notification", "ann@example.com", ""),
        ("notification", "ivan@example.com", ""),
    ]
    report = mail.deliver_queued()
    assert report.sent == 2
    assert sorted(a for m in sink.received for a in m.rcpt_to) == [
        "ann@example.com",
        "ivan@example.com",
    ]
    [got] = sink.to("ivan@example.com")
    msg = got.message
    assert msg["Subject"] == "“Dark mode <b>please</b>” is now Planned"
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith("<http://127.0.0.1:5000/unsubscribe/") and unsub.endswith(">")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = got.part("plain"), got.part("html")
    assert "Starting next sprint" in text and "Dark mode <b>please</b>" in text
    assert "<" not in text.replace("<b>please</b>", "")
    assert_no_foreign_scripts(html, "notification mail")
    assert_inert(html, context="notification mail")
    hrefs = [n.get("href") for n in parse(html).descendants() if n.tag == "a"]
    assert f"http://127.0.0.1:5000/ideas/{idea.id}-dark-mode-b-please-b" in hrefs
    assert unsub[1:-1] in hrefs
    # Marked mailed exactly for those two; a second run sends nothing more.
    mailed = db.session.scalars(
        select(Notification.user_id).where(Notification.mailed_at.is_not(None))
    ).all()
    assert sorted(mailed) == sorted([author.id, instant.id])
    assert nm.queue_for_event(_last_event()) == 0
    assert mail.deliver_queued().sent == 0 and len(sink.received) == 2


def test_one_click_unsubscribe_turns_that_kind_off_for_that_member_only(mail_app, sink):
    """The header's URL, POSTed with no session and no CSRF token, stops that group for
    that member; the next status change mails only the others."""
    mail_app.config["WTF_CSRF_ENABLED"] = True
    staff = make_user("staff", email="staff@example.com")
    a = make_user(email="a@example.com")
    b = make_user(email="b@example.com")
    idea = make_idea(author=staff)
    db.session.commit()
    _status_change(staff, idea, [a, b])
    mail.deliver_queued()
    [got] = sink.to("a@example.com")
    url = got.message["List-Unsubscribe"][1:-1]
    # GET shows a confirmation and changes nothing.
    page = mail_app.test_client().get(url.removeprefix(mail_app.config["BASE_URL"]))
    assert page.status_code == 200 and "Stop these emails" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert db.session.scalar(select(func.count()).select_from(NotificationPreference)) == 0
    resp = _one_click(mail_app, url)
    assert resp.status_code == 200 and "Status changes and official responses" in resp.text
    db.session.expire_all()
    assert nm.preferences_of(a)["status"] == Delivery.OFF
    assert nm.preferences_of(a)["comments"] == Delivery.DAILY  # the other groups stay
    assert nm.preferences_of(b)["status"] == Delivery.INSTANT
    # Twice is harmless.
    assert _one_click(mail_app, url).status_code == 200
    roadmap.change_status(staff, idea, "in_progress", "Started")
    event_id = _last_event()
    _notify(event_id, [a.id, b.id])
    assert nm.queue_for_event(event_id) == 1
    db.session.commit()
    mail.deliver_queued()
    assert len(sink.to("a@example.com")) == 1 and len(sink.to("b@example.com")) == 2


@pytest.mark.parametrize("how", ["tampered", "foreign-key", "foreign-salt", "garbage"])
def test_a_tampered_or_foreign_unsubscribe_token_is_refused(mail_app, how):
    """Only a token this site signed for unsubscribing works: anything else is a 400 and
    changes nothing."""
    from itsdangerous import URLSafeSerializer

    member = make_user(email="m@example.com")
    db.session.commit()
    good = nm.unsubscribe_token(member.id, "status")
    token = {
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "foreign-key": URLSafeSerializer("another site", salt=nm._SALT).dumps(
            [member.id, "status"]
        ),
        "foreign-salt": URLSafeSerializer(
            mail_app.config["SECRET_KEY"], salt="ideaboard.reset"
        ).dumps([member.id, "status"]),
        "garbage": "not-a-token",
    }[how]
    client = mail_app.test_client()
    assert client.get(f"/unsubscribe/{token}").status_code == 400
    resp = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 400 and "does not work" in resp.text
    assert db.session.scalar(select(func.count()).select_from(NotificationPreference)) == 0


def test_daily_notifications_become_one_digest_exactly_once(mail_app, sink, clock):
    """Comments (daily by default) wait; after a day they go as ONE digest with a plural
    headline; a second run, or a second worker, sends nothing more; off gets nothing."""
    author = make_user(email="author@example.com")
    fan = make_user(name="Fan", email="fan@example.com")
    quiet = make_user(email="quiet@example.com")
    _prefer(quiet, "comments", Delivery.OFF)
    _prefer(fan, "status", Delivery.OFF)  # a kind that is off never joins the digest
    idea = make_idea(author=author, title="Export to CSV")
    db.session.commit()
    _status_change(make_user("staff"), idea, [fan])
    for body in ("First thought", "Second thought", "Third thought"):
        add_comment(author, idea, body)
        event_id = _last_event()
        _notify(event_id, [fan.id, quiet.id])
        assert nm.queue_for_event(event_id) == 0  # daily/off: nothing instant
        db.session.commit()
    assert nm.run_digests() == 0  # not a day old yet
    clock["now"] += timedelta(hours=25)
    # Two workers at once: the claim lets exactly one digest through.
    assert nm.send_digest(fan.id) is not None
    assert nm.send_digest(fan.id) is None
    db.session.commit()
    assert nm.run_digests() == 0
    assert mail.deliver_queued().sent == 1
    [got] = sink.received
    assert got.rcpt_to == ["fan@example.com"]
    assert got.message["Subject"] == "3 updates on ideas you follow"
    assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = got.part("plain")
    for body in ("First thought", "Second thought", "Third thought"):
        assert body in text
    assert "is now Planned" not in text
    assert_inert(got.part("html"), context="digest")
    # The digest's link stops the daily digest: comments become off.
    _one_click(mail_app, got.message["List-Unsubscribe"][1:-1])
    db.session.expire_all()
    assert nm.preferences_of(fan)["comments"] == Delivery.OFF
    assert nm.preferences_of(fan)["merges"] == Delivery.INSTANT  # not a daily one


def test_digest_is_in_the_members_language_with_russian_plurals(mail_app, sink, clock):
    """A member who chose Russian gets «2 обновления…», then «5 обновлений…»."""
    author = make_user(email="author@example.com")
    reader = make_user(email="ru@example.com")
    db.session.add(MailSettings(user_id=reader.id, locale="ru"))
    idea = make_idea(author=author)
    db.session.commit()

    def comments(count):
        for i in range(count):
            add_comment(author, idea, f"Комментарий {i}")
            _notify(_last_event(), [reader.id])
            db.session.commit()
        clock["now"] += timedelta(hours=25)
        assert nm.run_digests() == 1
        mail.deliver_queued()
        return sink.received[-1].message["Subject"]

    assert comments(2) == "2 обновления идей, за которыми вы следите"
    assert comments(5) == "5 обновлений идей, за которыми вы следите"


def test_smtp_down_rows_wait_then_the_worker_delivers_them_once(make_app, tmp_path, clock):
    """SMTP down: the worker's passes keep every row queued (no attempt limit burned);
    SMTP back: the running --loop worker delivers each exactly once."""
    down = closed_port_url()
    app = make_app(MAIL_URL=down, MAIL_DIR=str(tmp_path), CLOCK=lambda: clock["now"])
    _reset(app)
    with app.app_context():
        staff = make_user("staff", email="staff@example.com")
        people = [make_user(email=f"p{i}@example.com") for i in range(3)]
        idea = make_idea(author=staff)
        db.session.commit()
        _status_change(staff, idea, people)
        for _ in range(mail.MAX_ATTEMPTS + 2):
            report = mail.deliver_queued()
            assert report.unavailable and report.sent == 0
        db.session.expire_all()
        rows = db.session.scalars(select(OutboxMessage)).all()
        assert {r.status for r in rows} == {"queued"} and len(rows) == 3
        # The run stops at the first refusal: the other rows were not even tried.
        assert sorted(r.attempts for r in rows) == [0, 0, mail.MAX_ATTEMPTS + 2]
        with SmtpSink() as sink:
            app.config["MAIL_URL"] = sink.url
            stop = threading.Event()
            worker = threading.Thread(
                target=lambda: _run_in_context(app, stop), daemon=True, name="mail-worker"
            )
            worker.start()
            for _ in range(100):
                if len(sink.received) >= 3:
                    break
                stop.wait(0.1)
            stop.wait(0.5)  # a few more passes: nothing is sent twice
            stop.set()
            worker.join(timeout=10)
            assert not worker.is_alive()
            assert sorted(a for m in sink.received for a in m.rcpt_to) == [
                "p0@example.com",
                "p1@example.com",
                "p2@example.com",
            ]
        db.session.rollback()  # end the test's read transaction: see the worker's commits
        assert {r.status for r in db.session.scalars(select(OutboxMessage))} == {"sent"}


def test_the_loop_command_waits_out_an_outage_and_stops_on_sigterm(
    make_app, database_url, tmp_path
):
    """`flask --app wsgi mail send --loop` as production runs it: started while SMTP is
    down, it keeps the rows; once a server listens on that port it delivers each once;
    SIGTERM ends it cleanly (exit 0, no traceback)."""
    url = closed_port_url()
    port = int(url.rsplit(":", 1)[1])
    app = make_app(MAIL_URL=url, MAIL_DIR=str(tmp_path))
    _reset(app)
    with app.app_context():
        staff = make_user("staff", email="staff@example.com")
        people = [make_user(email=f"loop{i}@example.com") for i in range(3)]
        idea = make_idea(author=staff)
        db.session.commit()
        _status_change(staff, idea, people)
        db.session.remove()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "IDEABOARD_INSTANCE": str(tmp_path),
        "MAIL_URL": url,
        "RATELIMIT_ENABLED": "false",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "send", "--loop"]
            + ["--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("SMTP server unreachable") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with SmtpSink(port) as sink:
            while len(sink.received) < 3:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            time.sleep(1.0)  # more passes: nothing goes twice
            assert sorted(a for m in sink.received for a in m.rcpt_to) == [
                "loop0@example.com",
                "loop1@example.com",
                "loop2@example.com",
            ]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    text = log.read_text()
    assert code == 0 and "Traceback" not in text, text


def _run_in_context(app, stop):
    with app.app_context():
        mail.run_worker(stop, interval=0.05, digest_interval=3600)


def test_a_temporary_refusal_backs_off_exponentially(mail_app, clock, monkeypatch):
    """A 4xx for one message: it waits 1, then 2 minutes before the next tries."""
    import smtplib

    member = make_user(email="later@example.com")
    staff = make_user("staff")
    idea = make_idea(author=staff)
    db.session.commit()
    _status_change(staff, idea, [member])

    def busy(*_a, **_k):
        raise smtplib.SMTPDataError(451, b"try later")

    monkeypatch.setattr(mail, "_smtp_send", busy)
    assert mail.deliver_queued().failed == 1
    assert mail.deliver_queued().failed == 0  # waiting out its backoff
    clock["now"] += timedelta(seconds=61)
    assert mail.deliver_queued().failed == 1
    clock["now"] += timedelta(seconds=61)
    assert mail.deliver_queued().failed == 0  # now 2 minutes
    clock["now"] += timedelta(seconds=61)
    assert mail.deliver_queued().failed == 1
    assert mail.backoff(20) == mail.MAX_BACKOFF


def test_settings_page_saves_choices_and_refuses_bad_values_beside_the_field(mail_app):
    """A plain form: saved choices show again; a bad value is a 422 beside its field and
    nothing is written."""
    member = make_user(email="s@example.com")
    db.session.commit()
    client = mail_app.test_client()
    login_as(client, member)
    page = client.get("/account/notifications")
    assert page.status_code == 200 and "New comments" in page.text
    assert _checked(page.text) == {
        "status": "instant",
        "comments": "daily",
        "merges": "instant",
        "my_ideas": "instant",
        "communities": "daily",
        "locale": "en",
    }
    assert "/account/notifications" in client.get("/account").text
    form = {
        "status": "daily",
        "comments": "off",
        "merges": "instant",
        "my_ideas": "instant",
        "communities": "off",
        "locale": "ru",
    }
    resp = client.post("/account/notifications", data=form)
    assert resp.status_code == 303
    db.session.expire_all()
    assert nm.preferences_of(member) == {
        "status": "daily",
        "comments": "off",
        "merges": "instant",
        "my_ideas": "instant",
        "communities": "off",
    }
    assert nm.mail_locale_of(member) == "ru"
    assert _checked(client.get("/account/notifications").text) == form
    bad = client.post(
        "/account/notifications", data={**form, "comments": "hourly", "status": "off"}
    )
    assert bad.status_code == 422
    doc = parse(bad.text)
    errors = [n for n in doc.descendants() if (n.get("class") or "") == "field-error"]
    assert [n.get("id") for n in errors] == ["comments-error"]
    db.session.expire_all()
    assert nm.preferences_of(member)["status"] == "daily"  # nothing half-written


def _checked(html: str) -> dict[str, str]:
    """The checked radio button of each group, as a browser would submit it."""
    found = {}
    for tag in re.findall(r"<input [^>]*>", html):
        if re.search(r"\bchecked\b", tag) and 'type="radio"' in tag:
            found[re.search(r'name="([^"]+)"', tag)[1]] = re.search(r'value="([^"]+)"', tag)[1]
    return found


def test_delivery_sql_twin_agrees_with_the_rule(mail_app):
    """delivery_sql() and delivery_for() agree for every kind, with and without a choice."""
    member = make_user()
    db.session.commit()
    for kind in EventKind.ALL:
        for chosen in (None, *Delivery.ALL):
            db.session.execute(
                NotificationPreference.__table__.delete().where(
                    NotificationPreference.user_id == member.id
                )
            )
            prefs = {}
            if chosen:
                db.session.add(
                    NotificationPreference(user_id=member.id, kind=kind, delivery=chosen)
                )
                prefs[kind] = chosen
            db.session.flush()
            got = db.session.scalar(select(nm.delivery_sql(literal(member.id), literal(kind))))
            assert got == nm.delivery_for(prefs, kind), (kind, chosen)
    db.session.rollback()


#: Recipients for the scale test; IDEABOARD_MAIL_SCALE=50000 runs issue 13's size.
SCALE = int(os.environ.get("IDEABOARD_MAIL_SCALE", "3000"))


def test_instant_mail_for_a_big_audience_is_two_statements(mail_app, count_queries):
    """Queueing mail for SCALE instant recipients is one INSERT ... SELECT and one UPDATE:
    nothing is rendered, each recipient gets exactly one row, the actor none."""
    staff = make_user("staff", email="boss@example.com")
    idea = make_idea(author=staff)
    db.session.execute(
        text(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :n) "
            "INSERT INTO users (email, email_key, display_name, password_hash, role, "
            "session_token, search_name, created_at, email_verified_at) "
            "SELECT 'bulk' || n || '@example.com', 'bulk' || n || '@example.com', "
            "'Bulk ' || n, 'x', 'member', 'tok' || n, 'bulk ' || n, CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP FROM seq"
        ),
        {"n": SCALE},
    )
    roadmap.change_status(staff, idea, "planned", "Soon")
    event_id = _last_event()
    source = select(User.id, literal(event_id), literal(nm.now())).where(User.email.like("bulk%"))
    db.session.execute(
        insert(Notification).from_select(["user_id", "event_id", "created_at"], source)
    )
    db.session.commit()
    started = time.perf_counter()
    with count_queries() as counter:
        queued = nm.queue_for_event(event_id)
    elapsed = time.perf_counter() - started
    db.session.commit()
    print(f"queue_for_event: {SCALE} recipients in {elapsed * 1000:.0f} ms")
    assert queued == SCALE and counter.count == 2, counter.statements
    counts = db.session.execute(
        select(func.count(), func.count(func.distinct(OutboxMessage.user_id)))
        .select_from(OutboxMessage)
        .where(OutboxMessage.text_body == "")
    ).one()
    assert tuple(counts) == (SCALE, SCALE)
    unmailed = select(func.count()).where(
        Notification.event_id == event_id, Notification.mailed_at.is_(None)
    )
    assert db.session.scalar(unmailed) == 0


def test_shared_xss_payloads_are_inert_in_notification_mail_and_digests(mail_app, clock):
    """Every payload of the shared corpus, as an idea title, a staff note, a comment and a
    display name, stays text in the HTML part of instant mail and of a digest: the oracle
    finds no element or attribute from it, and no name becomes a link."""
    from ideaboard.services import events

    payloads = [p for p in load_payloads() if "\0" not in p.text]
    reader = make_user(email="reader@example.com")
    staff = make_user("staff", email="staff@example.com")
    board_idea = make_idea(author=reader)
    _prefer(reader, "comments", Delivery.INSTANT)
    made = []
    for p in payloads:
        db.session.execute(update(User).where(User.id == staff.id).values(display_name=p.text[:60]))
        db.session.execute(update(Idea).where(Idea.id == board_idea.id).values(title=p.text[:150]))
        db.session.expire_all()
        idea = db.session.get(Idea, board_idea.id)
        actor = db.session.get(User, staff.id)
        comment = Comment(idea_id=idea.id, author_id=actor.id, body=p.text, created_at=nm.now())
        db.session.add(comment)
        db.session.flush()
        for kind, data in (
            (EventKind.STATUS_CHANGED, {"to": "planned", "note": p.text}),
            (EventKind.COMMENT, {"comment_id": comment.id}),
            (EventKind.IDEA_HIDDEN, {"reason": p.text}),
        ):
            event = events.record(kind, idea, actor, **data)
            _notify(event.id, [reader.id])
            note = db.session.scalar(select(Notification).where(Notification.event_id == event.id))
            row = OutboxMessage(kind=nm.NOTIFICATION, notification_id=note.id, locale="en")
            assert nm.prepare_notification_message(row), p.line
            where = f"line {p.line} {kind}"
            assert_no_foreign_scripts(row.html_body, where)
            assert_inert(row.html_body, context=where)
            hrefs = [
                n.get("href") or "" for n in parse(row.html_body).descendants() if n.tag == "a"
            ]
            assert all(h.startswith("http://127.0.0.1:5000/") for h in hrefs), (where, hrefs)
            made.append(event.id)
        db.session.commit()
    for group in ("status", "comments", "my_ideas"):
        _prefer(reader, group, Delivery.DAILY)
    db.session.commit()
    clock["now"] += timedelta(hours=25)
    digest = nm.send_digest(reader.id)
    assert digest is not None and len(made) == 3 * len(payloads)
    assert_no_foreign_scripts(digest.html_body, "digest")
    assert_inert(digest.html_body, context="digest")
    db.session.rollback()


def test_instant_mail_is_in_the_members_language(mail_app, sink):
    """The row is rendered at delivery in the member's mail language: Russian words,
    Russian status label, the same unsubscribe headers."""
    staff = make_user("staff")
    reader = make_user(email="ru@example.com")
    english = make_user(email="en@example.com")
    db.session.add(MailSettings(user_id=reader.id, locale="ru"))
    idea = make_idea(author=staff, title="Тёмная тема")
    db.session.commit()
    _status_change(staff, idea, [reader, english], note="Скоро")
    mail.deliver_queued()  # one pass, one context: each row in its own language
    [en] = sink.to("en@example.com")
    assert en.message["Subject"] == "“Тёмная тема” is now Planned"
    [got] = sink.to("ru@example.com")
    assert got.message["Subject"] == "Статус идеи «Тёмная тема»: Запланировано"
    assert "Отписаться от таких писем" in got.part("plain")
    assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_member_who_signs_up_in_russian_gets_russian_mail(app, client):
    """The language of the sign-up page becomes the member's mail language."""
    client.set_cookie("lang", "ru")
    resp = client.post(
        "/register",
        data={
            "email": "olga@example.com",
            "display_name": "Ольга",
            "password": "a long passphrase 7",
        },
    )
    assert resp.status_code in (302, 303), resp.status_code
    user = db.session.scalar(select(User).where(User.email == "olga@example.com"))
    assert nm.mail_locale_of(user) == "ru"
