"""Mail: an outbox written with the change, delivered by a real SMTP server after the response.

Every test talks to a real SMTP server on 127.0.0.1 (tests/smtp_sink.py) or to a closed
loopback port (the outage). Requests that send mail use `buffered=True`, so the test
client closes the response as a server does once it is sent; that is when delivery runs.
"""

from __future__ import annotations

import logging
import os
import re
import stat

import pytest
from sqlalchemy import func, select, update

from ideaboard import mail, outbox
from ideaboard.extensions import db
from ideaboard.models import OutboxMessage, User

from .conftest import _reset
from .factories import PASSWORD, login_as, make_user, reload
from .oracle import assert_inert, assert_no_foreign_scripts, parse, text_of
from .smtp_sink import SmtpSink, closed_port_url

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def sink():
    """A real SMTP server on a free loopback port, for one test."""
    with SmtpSink() as server:
        yield server


@pytest.fixture
def mail_app(make_app, sink, tmp_path):
    """An app whose MAIL_URL is the sink, over empty tables."""
    app = make_app(MAIL_URL=sink.url, MAIL_DIR=str(tmp_path / "mail"))
    _reset(app)
    with app.app_context():
        yield app
        db.session.remove()


def _change_password(client, current=PASSWORD, new=NEW_PASSWORD):
    return client.post(
        "/account/password",
        data={"current_password": current, "new_password": new},
        buffered=True,
    )


def _outbox() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_mail_has_text_and_html_parts_and_names_stay_text(mail_app, sink):
    """The HTML part is autoescaped and inert, the name is never a link, text has no HTML."""
    name = "<img src=x onerror=alert(1)> http://127.0.0.1/x"
    user = make_user(name="Plain Name", email="parts@example.com")
    db.session.execute(update(User).where(User.id == user.id).values(display_name=name))
    db.session.commit()
    client = mail_app.test_client()
    login_as(client, reload(user))
    assert _change_password(client).status_code == 303
    [got] = sink.to("parts@example.com")
    assert got.message["From"] == "Ideaboard <noreply@localhost>"
    assert got.message["Subject"] == "Your Ideaboard password was changed"
    html, text = got.part("html"), got.part("plain")
    assert_no_foreign_scripts(html, "password-changed mail")
    assert_inert(html, context="password-changed mail")
    assert name in text_of(html, "p[data-user-content]")
    hrefs = [n.get("href") or "" for n in parse(html).descendants() if n.tag == "a"]
    assert hrefs and not any("127.0.0.1/x" in h for h in hrefs)
    assert "http://127.0.0.1:5000/reset" in hrefs  # from BASE_URL
    # The text part is the same words without markup (the name is shown as typed).
    assert "was just changed" in text and name in text
    assert not re.search(r"<[a-zA-Z/!]", text.replace(name, ""))


def test_crlf_in_a_name_or_subject_never_makes_a_header(mail_app, sink):
    """A name "x\\r\\nBcc: a@b" gives one recipient and no Bcc header (ASVS 5.2.3)."""
    user = make_user(email="victim@example.com")
    client = mail_app.test_client()
    login_as(client, user)
    resp = client.post(
        "/account", data={"display_name": "x\r\nBcc: a@b", "email": "victim@example.com"}
    )
    assert resp.status_code == 303
    # Also a name stored by an older version or another path, with raw CR/LF in it.
    db.session.execute(
        update(User).where(User.id == user.id).values(display_name="x\r\nBcc: a@b\u2028Cc: c@d")
    )
    db.session.commit()
    login_as(client, reload(user))
    assert _change_password(client).status_code == 303
    [got] = sink.received
    assert got.rcpt_to == ["victim@example.com"]
    assert got.message["Bcc"] is None and got.message["Cc"] is None
    assert len(got.message.get_all("To")) == 1
    headers = got.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^(Bcc|Cc):", headers, re.MULTILINE | re.IGNORECASE)
    # A subject with CR/LF is one header line too, whoever builds the message.
    row = outbox.queue_mail(
        "victim@example.com",
        "Hello\r\nBcc: evil@example.com",
        "password_changed",
        to_name="y\nBcc: evil@example.com",
        reset_url="http://127.0.0.1:5000/reset",
    )
    db.session.commit()
    assert mail.deliver_queued(ids=[row.id]).sent == 1
    last = sink.received[-1]
    assert last.rcpt_to == ["victim@example.com"] and last.message["Bcc"] is None
    assert last.message["Subject"] == "Hello Bcc: evil@example.com"


def test_smtp_outage_keeps_the_action_and_queues_the_mail(make_app, sink, tmp_path):
    """SMTP down: the change succeeds, the mail waits, and `flask mail send` delivers it."""
    app = make_app(MAIL_URL=closed_port_url(), MAIL_DIR=str(tmp_path))
    _reset(app)
    with app.app_context():
        user = make_user(email="down@example.com")
        client = app.test_client()
        login_as(client, user)
        resp = _change_password(client)
        assert resp.status_code == 303 and resp.headers["Location"] == "/account"
        assert b"Your password was changed" in client.get("/account").data
        # The reset page keeps its neutral answer while mail is down.
        other = app.test_client()
        resp = other.post("/reset", data={"email": "down@example.com"}, buffered=True)
        assert resp.status_code == 200 and b"If an account uses that address" in resp.data
        rows = _outbox()
        assert [(r.kind, r.status, r.attempts) for r in rows] == [
            ("password_changed", "queued", 1),
            ("password_reset", "queued", 1),
        ]
        assert rows[0].last_error == "ConnectionRefusedError" and rows[1].text_body
        assert sink.received == []
        # SMTP is back: the command delivers what waited, once.
        app.config["MAIL_URL"] = sink.url
        result = app.test_cli_runner().invoke(args=["mail", "send"])
        assert result.exit_code == 0, result.output
        assert "Sent 2, failed 0" in result.output and "0 still queued" in result.output
        assert sorted(m.message["Subject"] for m in sink.to("down@example.com")) == [
            "Reset your Ideaboard password",
            "Your Ideaboard password was changed",
        ]
        again = app.test_cli_runner().invoke(args=["mail", "send"])
        assert "Sent 0" in again.output and len(sink.received) == 2
        rows = _outbox()
        assert {r.status for r in rows} == {"sent"}
        assert all(r.text_body == r.html_body == "" for r in rows)  # no link kept after


def test_mail_send_exits_non_zero_while_smtp_is_down(make_app, tmp_path):
    """`flask mail send` says how many failed and exits 1, so cron can alert."""
    app = make_app(MAIL_URL=closed_port_url(), MAIL_DIR=str(tmp_path))
    _reset(app)
    with app.app_context():
        user = make_user(email="cron@example.com")
        outbox.queue_mail(
            user.email, "Hi", "password_changed", reset_url="http://127.0.0.1:5000/reset"
        )
        db.session.commit()
        result = app.test_cli_runner().invoke(args=["mail", "send"])
        assert result.exit_code == 1
        assert "Sent 0, failed 1" in result.output and "1 still queued" in result.output


def test_rolled_back_mail_is_never_sent(mail_app, sink):
    """A message belongs to its transaction: rolled back, it never leaves."""
    outbox.queue_mail(
        "nobody@example.com", "Hi", "password_changed", reset_url="http://127.0.0.1:5000/r"
    )
    db.session.rollback()
    assert mail.deliver_queued().sent == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert sink.received == []


def test_without_mail_url_mail_is_a_private_file_and_the_log_has_no_link(
    make_app, tmp_path, caplog
):
    """No MAIL_URL: the log names recipient and subject; the link is only in a 0600 file."""
    folder = tmp_path / "mail"
    app = make_app(MAIL_URL=None, MAIL_DIR=str(folder))
    _reset(app)
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        make_user(email="nosmtp@example.com")
        resp = app.test_client().post("/reset", data={"email": "nosmtp@example.com"}, buffered=True)
        assert resp.status_code == 200
        [path] = folder.iterdir()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        content = path.read_text()
        link = re.search(r"http://127\.0\.0\.1:5000/reset/([\w-]+)", content)
        assert link and len(link[1]) >= 43
        assert link[1] not in caplog.text
        saved = [r.getMessage() for r in caplog.records if "mail saved" in r.getMessage()]
        assert len(saved) == 1
        assert "nosmtp@example.com" in saved[0] and "Reset your Ideaboard password" in saved[0]
        # The command reports where the files are.
        assert str(folder) in saved[0]


def test_reset_mail_that_could_not_leave_in_time_is_never_sent(make_app, sink, tmp_path):
    """A reset mail stuck behind an outage for over 60 minutes expires instead of leaving."""
    from datetime import timedelta

    from ideaboard.models import utcnow

    clock = {"now": utcnow()}
    app = make_app(MAIL_URL=closed_port_url(), MAIL_DIR=str(tmp_path), CLOCK=lambda: clock["now"])
    _reset(app)
    with app.app_context():
        make_user(email="late@example.com")
        app.test_client().post("/reset", data={"email": "late@example.com"}, buffered=True)
        clock["now"] += timedelta(minutes=61)
        app.config["MAIL_URL"] = sink.url
        result = app.test_cli_runner().invoke(args=["mail", "send"])
        assert "expired 1" in result.output, result.output
        assert sink.received == []
        assert [r.status for r in _outbox()] == ["expired"]
