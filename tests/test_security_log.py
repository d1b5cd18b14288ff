"""Security events are logged, one line each, with who, when, where from, and no secrets
(security.md item 44)."""

from __future__ import annotations

import logging
import re

import pytest

from ideaboard.extensions import db
from ideaboard.seclog import escape_value, security_event
from ideaboard.services import accounts

from .conftest import _reset
from .factories import PASSWORD, login_as, make_idea, make_user, reload
from .smtp_sink import SmtpSink

NEW_PASSWORD = "lantern orbit 77 meadow"
AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _events(caplog, name: str) -> list[dict]:
    return [
        r.security
        for r in caplog.records
        if r.name == "ideaboard.security" and getattr(r, "security", {}).get("event") == name
    ]


def _one(caplog, name: str, **expected) -> dict:
    """The single event called `name`; it has a UTC time, an IP and a route."""
    found = _events(caplog, name)
    assert len(found) == 1, (name, [r.getMessage() for r in caplog.records])
    event = found[0]
    assert AT.match(event["at"]) and event["route"]
    for key, value in expected.items():
        assert event[key] == value, (name, key, event)
    return event


@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


def test_every_account_event_is_logged_and_no_secret_ever_is(make_app, sink, tmp_path, caplog):
    """Registration, sign-in, password change, reset request and use, email change, role
    change and sign-out each leave one record; the password and token never appear."""
    caplog.set_level(logging.DEBUG)  # everything any logger says, SQL included
    app = make_app(MAIL_URL=sink.url, MAIL_DIR=str(tmp_path))
    _reset(app)
    with app.app_context():
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "10.9.8.7"
        resp = client.post(
            "/register",
            data={"email": "log@example.com", "display_name": "Logan", "password": PASSWORD},
            buffered=True,
        )
        assert resp.status_code == 303
        [confirm] = sink.to("log@example.com")
        verify_token = re.search(r"/verify/([\w-]+)", confirm.part("plain"))[1]
        assert client.post(f"/verify/{verify_token}").status_code == 303  # signs in
        user = accounts.authenticate("log@example.com", PASSWORD)
        _one(caplog, "account.registered", user_id=user.id, ip="10.9.8.7", route="POST /register")
        _one(caplog, "email.verified", user_id=user.id, route="POST /verify/<token>")
        client.post("/logout")
        _one(caplog, "logout", user_id=user.id, route="POST /logout")
        caplog.clear()

        client.post("/login", data={"email": "log@example.com", "password": "not it at all"})
        client.post("/login", data={"email": "ghost@example.com", "password": "not it at all"})
        failed = _events(caplog, "login.failed")
        assert [e["user_id"] for e in failed] == [user.id, None]
        assert all(e["ip"] == "10.9.8.7" and e["route"] == "POST /login" for e in failed)
        client.post("/login", data={"email": "log@example.com", "password": PASSWORD})
        _one(caplog, "login.success", user_id=user.id, ip="10.9.8.7")

        resp = client.post(
            "/account/password",
            data={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            buffered=True,
        )
        assert resp.status_code == 303
        _one(caplog, "password.changed", user_id=user.id, route="POST /account/password")
        resp = client.post(
            "/account",
            data={
                "display_name": "Logan",
                "email": "log2@example.com",
                "current_password": NEW_PASSWORD,
            },
            buffered=True,
        )
        assert resp.status_code == 303
        _one(caplog, "email.changed", user_id=user.id, route="POST /account")

        anon = app.test_client()
        anon.post("/reset", data={"email": "log2@example.com"}, buffered=True)
        anon.post("/reset", data={"email": "nobody@example.com"}, buffered=True)
        requested = _events(caplog, "password_reset.requested")
        assert [e["user_id"] for e in requested] == [user.id, None]
        assert requested[0]["route"] == "POST /reset"
        mails = [m for m in sink.received if m.message["Subject"].startswith("Reset")]
        token = re.search(r"/reset/([\w-]+)", mails[-1].part("plain"))[1]
        anon.post("/reset/not-a-real-token", data={"password": "whatever it is now"})
        _one(caplog, "password_reset.invalid_token", route="POST /reset/<token>")
        resp = anon.post(f"/reset/{token}", data={"password": "third password here"})
        assert resp.status_code == 303
        _one(caplog, "password_reset.used", user_id=user.id, route="POST /reset/<token>")

        admin = make_user("admin")
        accounts.change_role(admin, reload(user), "staff")
        db.session.commit()
        _one(caplog, "role.changed", user_id=user.id, role="staff", by=admin.id)

        everything = caplog.text + "\n".join(str(r.args) + r.getMessage() for r in caplog.records)
        for secret in (PASSWORD, NEW_PASSWORD, "third password here", token, verify_token):
            assert secret not in everything
        assert "/reset/" + token[:8] not in everything
        assert "/verify/" + verify_token[:8] not in everything


def test_throttled_sign_in_csrf_failure_and_denials_are_logged(make_app, caplog):
    """A 429 on sign-in, a forged form and a forbidden action each leave a warning."""
    caplog.set_level(logging.INFO, logger="ideaboard.security")
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_LIMIT_IP="1 per minute")
    _reset(app)
    with app.app_context():
        client = app.test_client()
        bad = {"email": "x@example.com", "password": "wrong password"}
        assert [client.post("/login", data=bad).status_code for _ in range(2)] == [422, 429]
        event = _one(caplog, "rate_limited", route="POST /login", ip="127.0.0.1")
        assert "1 per 1 minute" in event["limit"]
        assert [r.levelname for r in caplog.records if "rate_limited" in r.getMessage()] == [
            "WARNING"
        ]

    strict = make_app(WTF_CSRF_ENABLED=True)
    with strict.app_context():
        member = make_user(name="Mallory")
        client = strict.test_client()
        login_as(client, member)
        assert client.post("/logout").status_code == 400
        _one(caplog, "csrf.failed", user_id=member.id, route="POST /logout")

    app = make_app()
    with app.app_context():
        idea = make_idea()
        other = make_user()
        client = app.test_client()
        login_as(client, other)
        assert client.get(f"/ideas/{idea.id}/edit").status_code == 403
        assert (
            client.post(f"/ideas/{idea.id}/status", data={"status": "planned"}).status_code == 403
        )
        denied = _events(caplog, "authz.denied")
        assert [(e["user_id"], e["route"]) for e in denied] == [
            (other.id, "GET /ideas/<int:idea_id>/edit"),
            (other.id, "POST /ideas/<int:idea_id>/status"),
        ]


@pytest.mark.parametrize(
    "name",
    [
        "bob\nINFO fake",
        "bob\rINFO fake",
        "bob\u2028INFO fake",
        "bob\x85INFO fake",
        "bob\u202eINFO fake",
    ],
)
def test_typed_text_never_starts_a_second_log_line(app, caplog, name):
    """A display name with a line break of any kind gives one record on one line."""
    caplog.set_level(logging.INFO, logger="ideaboard.security")
    security_event("test.event", user_id=1, name=name)
    [record] = caplog.records
    line = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert len(line.splitlines()) == 1
    assert line.startswith("INFO event=test.event ") and "INFO fake" in line
    assert not any(ch in line for ch in "\n\r\x85\u2028\u202e")


def test_registration_with_a_line_breaking_name_forges_no_log_line(client, caplog):
    """Through the form, a name with U+2028 or NEL is refused (names cannot hold line
    breaks), and nothing logged about it spans two lines."""
    caplog.set_level(logging.INFO, logger="ideaboard.security")
    resp = client.post(
        "/register",
        data={
            "email": "bob@example.com",
            "display_name": "bob\u2028INFO fake\x85x",
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 422
    assert not [r for r in caplog.records if "account.registered" in r.getMessage()]
    assert all(len(r.getMessage().splitlines()) == 1 for r in caplog.records)


def test_escape_value_quotes_only_what_needs_it():
    """Plain ids stay bare; anything else is one quoted token with escapes."""
    assert escape_value(7) == "7" and escape_value(None) == "-"
    assert escape_value("POST /login") == '"POST /login"'
    assert escape_value('a"b\\c\td') == '"a\\"b\\\\c\\td"'
    assert escape_value("x\u2028y") == '"x\\u2028y"'


def test_events_reach_stderr_when_nobody_configured_logging(tmp_path):
    """Under gunicorn or `flask run` (no logging setup) an INFO event is still printed."""
    import os
    import subprocess
    import sys

    code = (
        "from ideaboard import create_app\n"
        "from ideaboard.seclog import security_event\n"
        "app = create_app({'SECRET_KEY': 'k'})\n"
        "with app.app_context():\n"
        "    security_event('probe.event', user_id=3)\n"
    )
    env = {**os.environ, "IDEABOARD_INSTANCE": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "probe.event" in ln]
    assert "INFO [ideaboard.security] event=probe.event" in line and "user_id=3" in line
