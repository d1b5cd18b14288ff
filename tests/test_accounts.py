"""Accounts to the bar: password policy and hashing, password and email change, password
reset, and the sessions each of them ends (security.md items 17, 18, 20, 21, 23, 25, 27).

Mail goes to a real SMTP server on 127.0.0.1 (tests/smtp_sink.py); requests that send
mail use `buffered=True` so the response is closed, as a server closes it once sent.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import AccountToken, OutboxMessage, User, utcnow
from ideaboard.services import accounts
from ideaboard.services.errors import ValidationError

from .conftest import PASSWORD_METHOD, TIMING_PASSWORD_METHOD, _reset
from .factories import PASSWORD, login_as, make_user, reload
from .smtp_sink import SmtpSink

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"(http://[^/\s]+)/reset/([A-Za-z0-9_-]+)")


class Clock:
    """The app's clock (CLOCK config value), moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


@pytest.fixture
def sink():
    with SmtpSink() as server:
        yield server


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def mail_app(make_app, sink, clock, tmp_path):
    """An app that mails the sink and reads time from `clock`, over empty tables."""
    app = make_app(MAIL_URL=sink.url, MAIL_DIR=str(tmp_path), CLOCK=clock)
    _reset(app)
    with app.app_context():
        yield app
        db.session.remove()


def _signed_in_as(client) -> str | None:
    """The name in the header when signed in, else None."""
    html = client.get("/").get_data(as_text=True)
    found = re.search(r'class="who"[^>]*>([^<]+)<', html)
    return found[1] if found else None


def _password_works(email: str, password: str) -> bool:
    db.session.expire_all()  # read the stored hash as it is now
    return accounts.authenticate(email, password) is not None


def _request_reset(client, email: str, **kw):
    return client.post("/reset", data={"email": email}, buffered=True, **kw)


def _reset_link(sink, email: str) -> tuple[str, str]:
    """(origin, token) from the newest reset mail to `email`."""
    mails = [m for m in sink.to(email) if m.message["Subject"] == "Reset your Ideaboard password"]
    assert mails, f"no reset mail to {email}"
    found = LINK.search(mails[-1].part("plain"))
    assert found and found[0] in mails[-1].part("html")
    return found[1], found[2]


# --- item 18: password policy ----------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["qwertyuiop", "1q2w3e4r5t", "Password123", "QWERTY123456", "manchester", "1qaz2wsx3edc"],
)
def test_passwords_from_the_top_list_are_refused_in_any_case(app, password):
    """Passwords on the shipped top-30,000 list are refused, however capitalised."""
    with pytest.raises(ValidationError) as err:
        accounts.register_user("p@example.com", "Pat", password)
    assert err.value.errors == {"password": "This password is too easy to guess; choose another."}


def test_password_length_bounds_and_no_truncation(client):
    """9 characters are too few, 10 enough; 256 are allowed and every one of them counts."""
    for password, ok in (("abcdefgh9", False), ("kettle-bus", True), ("x" * 257, False)):
        errors: dict[str, str] = {}
        accounts.check_password_rules(errors, password)
        assert (not errors) is ok, (password, errors)
    long = "".join(chr(0x41 + (i * 7) % 26) for i in range(255)) + "!"
    assert len(long) == 256
    resp = client.post(
        "/register", data={"email": "long@example.com", "display_name": "Lo", "password": long}
    )
    assert resp.status_code == 303
    client.post("/logout")
    near = long[:-1] + "?"  # differs only in the 256th character
    assert (
        client.post("/login", data={"email": "long@example.com", "password": near}).status_code
        == 422
    )
    assert (
        client.post("/login", data={"email": "long@example.com", "password": long}).status_code
        == 303
    )
    resp = client.post(
        "/account/password", data={"current_password": long, "new_password": "x" * 257}
    )
    assert resp.status_code == 422 and b"Use at most 256 characters." in resp.data


def test_top_password_list_is_real_and_read_once():
    """The list is the shipped 30,000-entry file, loaded on first use and kept."""
    first = accounts.common_passwords()
    assert len(first) == 30_000 and "password" in first and "qwertyuiop" in first
    assert accounts.common_passwords() is first
    header = (accounts.resources.files("ideaboard") / accounts.COMMON_PASSWORDS_FILE).read_text()
    assert "Licence: MIT" in header and "zxcvbn" in header


# --- item 17: hashing ------------------------------------------------------------------


def test_production_hashes_are_owasp_scrypt_and_upgrade_on_login(app, client):
    """Without the test override, hashes are scrypt N=2^17 r=8 p=1; older ones upgrade."""
    cheap = make_user(email="old@example.com")  # hashed with the tests' cheaper parameters
    assert cheap.password_hash.startswith(f"{PASSWORD_METHOD}$")
    app.config.pop("PASSWORD_HASH_METHOD")
    a = accounts.register_user("a@example.com", "Ann", PASSWORD)
    b = accounts.register_user("b@example.com", "Bob", PASSWORD)
    db.session.commit()
    assert a.password_hash.startswith("scrypt:131072:8:1$")
    assert a.password_hash != b.password_hash  # salted
    assert (
        client.post("/login", data={"email": "old@example.com", "password": PASSWORD}).status_code
        == 303
    )
    assert reload(cheap).password_hash.startswith("scrypt:131072:8:1$")


# --- password change (items 18, 23) ----------------------------------------------------


def test_password_change_needs_the_current_password(mail_app, sink):
    """A wrong current password or a weak new one changes nothing and sends nothing."""
    user = make_user(email="pc@example.com")
    client = mail_app.test_client()
    login_as(client, user)
    assert b'name="current_password"' in client.get("/account/password").data
    wrong = client.post(
        "/account/password",
        data={"current_password": "not my password", "new_password": NEW_PASSWORD},
        buffered=True,
    )
    assert wrong.status_code == 422 and b"That is not your current password." in wrong.data
    weak = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "iloveyou123"},
        buffered=True,
    )
    assert weak.status_code == 422 and b"too easy to guess" in weak.data
    assert reload(user).session_token == user.session_token
    assert _password_works("pc@example.com", PASSWORD)
    assert sink.received == []


def test_password_change_signs_out_every_other_session_and_notifies(mail_app, sink):
    """Other browsers and remember-me cookies are signed out; this one stays, afresh."""
    user = make_user(email="two@example.com", name="Twin")
    here, there, kept = (mail_app.test_client() for _ in range(3))
    for c in (here, there):
        login_as(c, user)
    kept.post("/login", data={"email": "two@example.com", "password": PASSWORD, "remember": "y"})
    kept.delete_cookie("session")  # a browser restart: only the remember-me cookie is left
    assert _signed_in_as(kept) == "Twin" and _signed_in_as(there) == "Twin"
    resp = here.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        buffered=True,
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert b"Every other device was signed out." in here.get("/account").data
    assert _signed_in_as(here) == "Twin"
    kept.delete_cookie("session")
    assert _signed_in_as(there) is None and _signed_in_as(kept) is None
    [note] = sink.to("two@example.com")
    assert note.message["Subject"] == "Your Ideaboard password was changed"
    assert _password_works("two@example.com", NEW_PASSWORD)


def test_sign_out_everywhere_else(mail_app):
    """The account page's button signs out other browsers and keeps this one."""
    user = make_user(name="Solo")
    here, there = mail_app.test_client(), mail_app.test_client()
    login_as(here, user)
    login_as(there, user)
    assert b"Sign out everywhere else" in here.get("/account").data
    assert here.post("/account/sign-out-others").status_code == 303
    assert _signed_in_as(here) == "Solo" and _signed_in_as(there) is None


# --- item 27: email change -------------------------------------------------------------


def test_email_change_needs_the_password_and_tells_the_old_address(mail_app, sink):
    """Changing the email asks for the current password and mails the old address."""
    user = make_user(email="old@example.com", name="Olga")
    client = mail_app.test_client()
    login_as(client, user)
    page = client.get("/account").get_data(as_text=True)
    assert 'value="old@example.com"' in page and 'value="Olga"' in page
    for password, message in (
        ("", b"Enter your current password to change your email."),
        ("wrong password", b"That is not your current password."),
    ):
        resp = client.post(
            "/account",
            data={"display_name": "Olga", "email": "new@example.com", "current_password": password},
            buffered=True,
        )
        assert resp.status_code == 422 and message in resp.data
    assert reload(user).email == "old@example.com" and sink.received == []
    resp = client.post(
        "/account",
        data={"display_name": "Olga", "email": "new@example.com", "current_password": PASSWORD},
        buffered=True,
    )
    assert resp.status_code == 303
    assert b"Your account was saved." in client.get("/account").data
    assert reload(user).email == "new@example.com"
    [told] = sink.to("old@example.com")
    assert told.rcpt_to == ["old@example.com"]
    [confirm] = sink.to("new@example.com")  # the new address must be confirmed
    assert "/verify/" in confirm.part("plain") and reload(user).email_verified_at is None
    assert told.message["Subject"] == "Your Ideaboard email address was changed"
    assert "new@example.com" in told.part("plain")
    assert _password_works("new@example.com", PASSWORD)


def test_name_change_needs_no_password_and_sends_no_mail(mail_app, sink):
    """The display name alone changes without the password; taken emails are refused."""
    make_user(email="taken@example.com")
    user = make_user(email="me@example.com", name="Before")
    client = mail_app.test_client()
    login_as(client, user)
    resp = client.post(
        "/account", data={"display_name": "After", "email": "me@example.com"}, buffered=True
    )
    assert resp.status_code == 303 and reload(user).display_name == "After"
    resp = client.post(
        "/account",
        data={"display_name": "After", "email": "TAKEN@example.com", "current_password": PASSWORD},
    )
    assert resp.status_code == 422 and b"already exists" in resp.data
    assert sink.received == []


# --- password reset (items 20, 23, 25) -------------------------------------------------


def test_reset_answers_the_same_for_known_and_unknown_addresses(mail_app, sink):
    """Same status and body, one outbox row each; only the real account gets mail."""
    make_user(email="known@example.com")
    client = mail_app.test_client()
    page = client.get("/reset")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    known = _request_reset(client, "known@example.com")
    unknown = _request_reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert b"If an account uses that address" in known.data
    assert [m.rcpt_to for m in sink.received] == [["known@example.com"]]
    statuses = db.session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id))
    assert list(statuses) == ["sent", "dropped"]


def _same_time(first, second, samples: int = 20, rounds: int = 3) -> tuple[float, float]:
    """Medians of interleaved calls agree within 25 %; a round spoilt by another process
    hogging the CPU is measured again, while a real difference fails every round."""
    for _ in range(rounds):
        for _ in range(3):
            first(), second()
        a_times, b_times = [], []
        for _ in range(samples):
            for fn, times in ((first, a_times), (second, b_times)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
        a, b = statistics.median(a_times), statistics.median(b_times)
        if abs(a - b) <= 0.25 * max(a, b):
            return a, b
    raise AssertionError(f"medians differ by more than 25 %: {a:.4f}s vs {b:.4f}s")


@pytest.mark.serial
def test_reset_takes_the_same_time_for_known_and_unknown_addresses(mail_app):
    """Medians of 20 requests each agree within 25 %: mail and token come after the response."""
    make_user(email="known@example.com")
    client = mail_app.test_client()

    def ask(email: str):
        def call() -> None:
            # Not closed, like a response still being sent: delivery would run after it.
            assert client.post("/reset", data={"email": email}).status_code == 200

        return call

    _same_time(ask("known@example.com"), ask("ghost@example.com"))


@pytest.mark.serial
def test_login_failure_takes_the_same_time_for_known_and_unknown_emails(client):
    """A wrong password and an unknown email both verify one scrypt hash."""
    client.application.config["PASSWORD_HASH_METHOD"] = TIMING_PASSWORD_METHOD
    make_user(email="real@example.com")

    def fail(email: str):
        def call() -> None:
            data = {"email": email, "password": "wrong pass 1"}
            assert client.post("/login", data=data).status_code == 422

        return call

    _same_time(fail("real@example.com"), fail("ghost@example.com"), samples=10)


def test_reset_requests_are_rate_limited_per_account_and_per_ip(make_app):
    """3 per hour for one address, 10 per hour from one IP: then 429 with Retry-After."""
    app = make_app(RATELIMIT_ENABLED=True, MAIL_URL=None)
    _reset(app)
    with app.app_context():
        codes = []
        for n in range(4):  # one address, from four IPs
            c = app.test_client()
            c.environ_base["REMOTE_ADDR"] = f"10.1.0.{n}"
            codes.append(c.post("/reset", data={"email": "target@example.com"}).status_code)
        assert codes == [200, 200, 200, 429]
        one_ip = app.test_client()
        one_ip.environ_base["REMOTE_ADDR"] = "10.2.0.1"
        codes = [
            one_ip.post("/reset", data={"email": f"n{n}@example.com"}).status_code
            for n in range(11)
        ]
        assert codes == [200] * 10 + [429]
        resp = one_ip.post("/reset", data={"email": "else@example.com"})
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0


def test_reset_link_works_once_ends_every_session_and_never_signs_in(mail_app, sink):
    """The full path: mail from BASE_URL, private page, one use, all sessions end, no login."""
    user = make_user(email="reset@example.com", name="Rita")
    elsewhere = mail_app.test_client()
    login_as(elsewhere, user)
    client = mail_app.test_client()
    resp = _request_reset(client, "reset@example.com", headers={"Host": "evil.test"})
    assert resp.status_code == 200
    origin, token = _reset_link(sink, "reset@example.com")
    assert origin == "http://127.0.0.1:5000"  # BASE_URL, whatever Host the request named
    assert len(token) >= 43  # secrets.token_urlsafe(32): 256 bits
    stored = db.session.scalar(select(AccountToken.token_hash))
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored

    page = client.get(f"/reset/{token}")
    assert page.status_code == 200 and b'name="password"' in page.data
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    weak = client.post(f"/reset/{token}", data={"password": "qwertyuiop"})
    assert weak.status_code == 422 and b"too easy to guess" in weak.data
    done = client.post(f"/reset/{token}", data={"password": NEW_PASSWORD}, buffered=True)
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert done.headers["Referrer-Policy"] == "no-referrer"
    login_page = client.get("/login").get_data(as_text=True)
    assert "Your password was changed. Sign in with the new one." in login_page
    assert _signed_in_as(client) is None and _signed_in_as(elsewhere) is None
    again = client.post(f"/reset/{token}", data={"password": "another new passphrase"})
    assert again.status_code == 400 and b"This link does not work any more" in again.data
    assert client.get(f"/reset/{token}").status_code == 400
    assert _password_works("reset@example.com", NEW_PASSWORD)
    assert not _password_works("reset@example.com", PASSWORD)
    notices = [m.message["Subject"] for m in sink.to("reset@example.com")]
    assert notices[-1] == "Your Ideaboard password was changed"
    assert b"Forgot your password?" in client.get("/login").data


@pytest.mark.parametrize(("age", "valid"), [((59, 59), True), ((60, 1), False)])
def test_reset_link_expires_after_60_minutes(mail_app, sink, clock, age, valid):
    """Valid at 59:59, refused at 60:01."""
    make_user(email="clock@example.com")
    client = mail_app.test_client()
    _request_reset(client, "clock@example.com")
    _, token = _reset_link(sink, "clock@example.com")
    clock.now += timedelta(minutes=age[0], seconds=age[1])
    assert client.get(f"/reset/{token}").status_code == (200 if valid else 400)
    resp = client.post(f"/reset/{token}", data={"password": NEW_PASSWORD})
    assert resp.status_code == (303 if valid else 400)
    assert _password_works("clock@example.com", NEW_PASSWORD) is valid


def test_a_newer_link_or_a_password_change_kills_older_links(mail_app, sink):
    """Only the newest reset link works, and none after the password changes."""
    user = make_user(email="many@example.com")
    client = mail_app.test_client()
    _request_reset(client, "many@example.com")
    _, first = _reset_link(sink, "many@example.com")
    _request_reset(client, "many@example.com")
    _, second = _reset_link(sink, "many@example.com")
    assert first != second
    assert client.get(f"/reset/{first}").status_code == 400
    assert client.get(f"/reset/{second}").status_code == 200
    member = mail_app.test_client()
    login_as(member, user)
    member.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        buffered=True,
    )
    assert client.get(f"/reset/{second}").status_code == 400


def test_a_token_for_another_purpose_cannot_reset(mail_app):
    """A token made for email verification is refused on the reset page."""
    user = make_user(email="purpose@example.com")
    raw = "v" * 43
    db.session.add(
        AccountToken(
            user_id=user.id,
            purpose="verify_email",
            token_hash=accounts.token_digest(raw),
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    db.session.commit()
    client = mail_app.test_client()
    assert client.get(f"/reset/{raw}").status_code == 400
    resp = client.post(f"/reset/{raw}", data={"password": NEW_PASSWORD})
    assert resp.status_code == 400 and b"Ask for a new link" in resp.data
    assert _password_works("purpose@example.com", PASSWORD)
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


# --- item 21: session fixation and sign-out ------------------------------------------


def test_sign_in_replaces_the_session_cookie_and_sign_out_clears_remember_me(client):
    """The pre-login cookie is worthless after sign-in; sign-out deletes remember-me."""
    make_user(email="fix@example.com", name="Fixie")
    with client.session_transaction() as sess:
        sess["planted"] = "1"
    before = client.get_cookie("session").value
    client.post("/login", data={"email": "fix@example.com", "password": PASSWORD, "remember": "y"})
    after = client.get_cookie("session").value
    assert after != before and client.get_cookie("remember_token") is not None
    replay = type(client)(client.application)
    replay.set_cookie("session", before)
    assert _signed_in_as(replay) is None and _signed_in_as(client) == "Fixie"
    resp = client.post("/logout")
    cookies = " ".join(resp.headers.getlist("Set-Cookie"))
    assert "remember_token=;" in cookies  # deleted
    assert client.get_cookie("remember_token") is None and _signed_in_as(client) is None


def test_a_reset_link_used_twice_at_once_works_once(mail_app, sink):
    """Two submissions of one link at the same moment: one succeeds, the other is refused."""
    import threading

    make_user(email="race@example.com")
    _request_reset(mail_app.test_client(), "race@example.com")
    _, token = _reset_link(sink, "race@example.com")
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def submit(password: str) -> None:
        client = mail_app.test_client()
        barrier.wait()
        codes.append(client.post(f"/reset/{token}", data={"password": password}).status_code)

    threads = [
        threading.Thread(target=submit, args=(p,))
        for p in ("first racer passphrase", "second racer passphrase")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [303, 400]
    works = [
        _password_works("race@example.com", p)
        for p in ("first racer passphrase", "second racer passphrase")
    ]
    assert sorted(works) == [False, True]


def test_reset_page_stays_private_even_when_its_form_is_refused(make_app):
    """A CSRF refusal at /reset/<token> still sends no-referrer and no-store."""
    app = make_app(WTF_CSRF_ENABLED=True)
    _reset(app)
    with app.app_context():
        resp = app.test_client().post("/reset/some-token", data={"password": NEW_PASSWORD})
        assert resp.status_code == 400
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["Cache-Control"] == "no-store"


def test_guessing_the_current_password_is_throttled(make_app):
    """Wrong current passwords on the account pages hit a per-user limit (429)."""
    app = make_app(RATELIMIT_ENABLED=True, PASSWORD_CHECK_LIMIT="2 per hour")
    _reset(app)
    with app.app_context():
        user = make_user()
        client = app.test_client()
        login_as(client, user)
        guess = {"current_password": "guess number one", "new_password": NEW_PASSWORD}
        codes = [client.post("/account/password", data=guess).status_code for _ in range(3)]
        assert codes == [422, 422, 429]
        right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        assert client.post("/account/password", data=right).status_code == 429
        assert _password_works(user.email, PASSWORD)
