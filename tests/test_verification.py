"""Email verification (issue 13, item 4): a single-use, expiring link confirms an address;
registration answers alike whether or not the address already has an account.

Two registration modes (REGISTER_CONFIRM_FIRST): `mail_app` runs confirm-first (nobody
signed in until the link), `open_app` the default (a new address is signed in at once).

Mail goes to a real SMTP server on 127.0.0.1 (tests/smtp_sink.py); requests that queue
mail use `buffered=True`, so the test client closes the response as a server does, which
is when the outbox delivers.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from ideaboard.extensions import db
from ideaboard.models import AccountToken, User, Vote, utcnow
from ideaboard.services import accounts

from .conftest import BACKEND, TIMING_PASSWORD_METHOD, _reset
from .factories import PASSWORD, login_as, make_idea, make_user, reload
from .oracle import assert_inert, assert_no_foreign_scripts, parse
from .smtp_sink import SmtpSink

LINK = re.compile(r"(http://[^/\s]+)/verify/([A-Za-z0-9_-]+)(\?next=\S+)?")
NONCE = re.compile(r"nonce-[A-Za-z0-9_-]+")
CSRF = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+|(value=")[^"]+("[^>]*name="csrf_token")')


class Clock:
    """The app's clock (CLOCK config value), moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


@pytest.fixture
def sink():
    """A real SMTP server on a free loopback port, for one test."""
    with SmtpSink() as server:
        yield server


@pytest.fixture
def clock():
    """A clock the test moves."""
    return Clock()


@pytest.fixture
def open_app(make_app, sink, clock, tmp_path):
    """As `mail_app`, in the default mode: REGISTER_CONFIRM_FIRST off."""
    app = make_app(MAIL_URL=sink.url, MAIL_DIR=str(tmp_path), CLOCK=clock)
    assert app.config["REGISTER_CONFIRM_FIRST"] is False  # the default keeps the contract
    _reset(app)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def mail_app(make_app, sink, clock, tmp_path):
    """An app that mails the sink and reads time from `clock`, over empty tables, with
    REGISTER_CONFIRM_FIRST on."""
    app = make_app(
        MAIL_URL=sink.url, MAIL_DIR=str(tmp_path), CLOCK=clock, REGISTER_CONFIRM_FIRST=True
    )
    _reset(app)
    with app.app_context():
        yield app
        db.session.remove()


def _sign_up(client, email, name="Nadia", password=PASSWORD, **extra):
    return client.post(
        "/register",
        data={"email": email, "display_name": name, "password": password, **extra},
        buffered=True,
    )


def _link(sink, address) -> tuple[str, str]:
    """The path and token of the newest confirmation link mailed to `address`."""
    mails = [m for m in sink.to(address) if "/verify/" in m.part("plain")]
    assert mails, f"no confirmation link went to {address}"
    found = LINK.search(mails[-1].part("plain"))
    return found[0].removeprefix(found[1]), found[2]


def _user(email) -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email_key == accounts.email_key(email)))


def _signed_in_name(client) -> str | None:
    html = client.get("/ideas").get_data(as_text=True)
    found = re.search(r'<a class="who"[^>]*>([^<]*)</a>', html)
    return found[1] if found else None


# --- the link ----------------------------------------------------------------------------


def test_a_sign_up_is_confirmed_by_its_link_which_signs_in_and_follows_next(mail_app, sink):
    """A sign-up signs nobody in; its mail (text and HTML) holds a link from BASE_URL;
    opening it (GET) only shows a button, privately; the POST confirms, signs in and
    follows the sign-up's local `next`."""
    client = mail_app.test_client()
    resp = _sign_up(client, "New@Example.com", next="/roadmap")
    assert resp.status_code == 303 and resp.headers["Location"] == "/register/sent"
    page = client.get("/register/sent").get_data(as_text=True)
    assert "Check your inbox to confirm your address" in page
    assert _signed_in_name(client) is None
    user = _user("new@example.com")
    assert user.email_verified_at is None and user.activated_at is None

    [mail] = sink.to("New@example.com")
    assert mail.message["Subject"] == "Confirm your email address for Ideaboard"
    text, html = mail.part("plain"), mail.part("html")
    found = LINK.search(text)
    assert found[1] == "http://127.0.0.1:5000" and found[3] == "?next=/roadmap"
    path = found[0].removeprefix(found[1])
    hrefs = [n.get("href") for n in parse(html).descendants() if n.tag == "a"]
    assert found[0] in hrefs
    assert "for 48 hours" in text and not re.search(r"<[a-zA-Z/!]", text)
    assert_no_foreign_scripts(html, "confirmation mail")
    assert_inert(html, context="confirmation mail")

    for _ in range(2):  # a mail scanner's look uses nothing up
        page = client.get(path)
        assert page.status_code == 200 and b"Confirm my address" in page.data
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in page.headers["Cache-Control"]
    assert _user("new@example.com").email_verified_at is None

    resp = client.post(path)
    assert resp.status_code == 303 and resp.headers["Location"] == "/roadmap"
    assert "Your address is confirmed. Welcome, Nadia!" in client.get("/roadmap").get_data(
        as_text=True
    )
    assert _signed_in_name(client) == "Nadia"
    user = _user("new@example.com")
    assert user.email_verified_at is not None and user.activated_at is not None
    assert accounts.mail_allowed(user)


def test_a_link_to_another_site_is_never_followed(mail_app, sink):
    """`next` rides on the link only as a local path."""
    client = mail_app.test_client()
    _sign_up(client, "far@example.com", next="https://evil.example/")
    path, _token = _link(sink, "far@example.com")
    assert "next=" not in path
    assert client.post(path).headers["Location"] == "/"


def test_expired_reused_and_tampered_links_are_refused_with_a_clear_message(mail_app, sink, clock):
    """Each refused link answers 400 saying why, on GET and POST, and changes nothing."""
    client = mail_app.test_client()
    _sign_up(client, "once@example.com")
    path, token = _link(sink, "once@example.com")

    tampered = path[:-1] + ("A" if path[-1] != "A" else "B")
    for method in (client.get, client.post):
        resp = method(tampered)
        assert resp.status_code == 400
        assert b"This confirmation link is not valid" in resp.data
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/verify/" + "x" * 500).status_code == 400  # oversized: unknown

    assert client.post(path).status_code == 303  # the real one works, once
    client.post("/logout")
    for method in (client.get, client.post):
        resp = method(path)
        assert resp.status_code == 400 and b"This confirmation link was already used" in resp.data
    assert _signed_in_name(client) is None  # a reused link signs nobody in

    # Expiry: 48 hours, judged by the app's clock (valid a second before, not after).
    user = make_user(email="late@example.com")
    db.session.execute(update(User).where(User.id == user.id).values(email_verified_at=None))
    late, _ = accounts.issue_verify_token(reload(user))
    db.session.commit()
    start = clock.now
    clock.now = start + timedelta(hours=48) - timedelta(seconds=1)
    assert client.get(f"/verify/{late}").status_code == 200
    clock.now = start + timedelta(hours=48, seconds=1)
    for method in (client.get, client.post):
        resp = method(f"/verify/{late}")
        assert resp.status_code == 400 and b"This confirmation link has expired" in resp.data
    assert reload(user).email_verified_at is None


def test_a_reset_token_is_no_confirmation_link(mail_app):
    """Tokens are bound to their purpose: a password-reset token confirms nothing."""
    user = make_user(email="purpose@example.com")
    db.session.execute(update(User).where(User.id == user.id).values(email_verified_at=None))
    raw, _ = accounts.issue_reset_token(reload(user))
    db.session.commit()
    client = mail_app.test_client()
    assert client.post(f"/verify/{raw}").status_code == 400
    assert reload(user).email_verified_at is None


# --- registration reveals nothing ---------------------------------------------------------


def _answer(resp) -> tuple:
    """What an outside observer sees of an answer, minus what differs on every request."""
    headers = sorted(
        (k, NONCE.sub("nonce-N", v)) for k, v in resp.headers.items() if k not in ("Date",)
    )
    return resp.status_code, headers, CSRF.sub(r"\1\2TOKEN\3", resp.get_data(as_text=True))


def test_registration_answers_alike_for_new_and_taken_addresses(make_app, sink, tmp_path):
    """Status, headers (Set-Cookie included), the page it leads to and its text: the same
    for a new and a taken address, with CSRF on; the owner of the taken one is mailed."""
    app = make_app(
        MAIL_URL=sink.url,
        MAIL_DIR=str(tmp_path),
        WTF_CSRF_ENABLED=True,
        REGISTER_CONFIRM_FIRST=True,
    )
    _reset(app)
    with app.app_context():
        owner = make_user(email="owner@example.com", name="Olive Owner")
        before = (owner.password_hash, owner.display_name, owner.session_token)
        answers = []
        for email in ("fresh@example.com", "OWNER@example.com"):
            client = app.test_client()
            form = client.get("/register").get_data(as_text=True)
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)[1]
            resp = client.post(
                "/register",
                data={
                    "csrf_token": token,
                    "email": email,
                    "display_name": "Someone New",
                    "password": "another long passphrase",
                },
                buffered=True,
            )
            page = client.get(resp.headers["Location"])
            answers.append((_answer(resp), _answer(page)))
        assert answers[0] == answers[1]
        (status, headers, _), (page_status, _, body) = answers[0]
        assert status == 303 and dict(headers)["Location"] == "/register/sent"
        assert page_status == 200 and "Check your inbox to confirm your address" in body
        assert db.session.scalar(select(func.count()).select_from(User)) == 2

        [warned] = sink.to("owner@example.com")
        subject = "Someone tried to sign up to Ideaboard with your address"
        assert warned.message["Subject"] == subject
        text, html = warned.part("plain"), warned.part("html")
        assert "http://127.0.0.1:5000/login" in text and "http://127.0.0.1:5000/reset" in text
        hrefs = [n.get("href") for n in parse(html).descendants() if n.tag == "a"]
        assert "http://127.0.0.1:5000/reset" in hrefs and "http://127.0.0.1:5000/login" in hrefs
        assert "/verify/" not in text  # nothing that would let the stranger in
        owner = reload(owner)
        assert (owner.password_hash, owner.display_name, owner.session_token) == before
        assert len(sink.to("fresh@example.com")) == 1


def _same_time(app, rounds: int = 11) -> None:
    """Median times of sign-ups with new and with taken addresses, interleaved, within a
    factor of 1.6 (11 rounds: the machine is shared, single requests are noisy)."""
    times: dict[str, list[float]] = {"new": [], "taken": []}
    for i in range(rounds):
        for kind, email in (("new", f"free{i}@example.com"), ("taken", "taken@example.com")):
            client = app.test_client()
            start = time.perf_counter()
            client.post(
                "/register", data={"email": email, "display_name": "Tim", "password": PASSWORD}
            )
            times[kind].append(time.perf_counter() - start)
    new, taken = (sorted(v)[rounds // 2] for v in times.values())
    assert 1 / 1.6 < new / taken < 1.6, times


@pytest.mark.serial
def test_both_branches_hash_the_password(mail_app, monkeypatch):
    """The taken branch does the same expensive work (one password hash) as the new one,
    and neither takes obviously longer: median times within a factor of 1.6."""
    mail_app.config["PASSWORD_HASH_METHOD"] = TIMING_PASSWORD_METHOD
    make_user(email="taken@example.com")
    hashes = []
    real = accounts.hash_password
    monkeypatch.setattr(accounts, "hash_password", lambda p: hashes.append(p) or real(p))
    client = mail_app.test_client()
    _sign_up(client, "free@example.com")
    _sign_up(client, "taken@example.com")
    assert len(hashes) == 2
    monkeypatch.setattr(accounts, "hash_password", real)

    _same_time(mail_app)


def test_signing_up_again_before_confirming_sends_a_new_link(mail_app, sink):
    """An address whose account was never confirmed gets a fresh link (the old one dies),
    not the "someone tried" mail, and the first sign-up's password and name stay."""
    client = mail_app.test_client()
    _sign_up(client, "again@example.com", name="First Name")
    first, _ = _link(sink, "again@example.com")
    _sign_up(client, "again@example.com", name="Second Name", password="a different passphrase")
    second, _ = _link(sink, "again@example.com")
    assert first != second and len(sink.to("again@example.com")) == 2
    assert client.post(first).status_code == 400
    assert client.post(second).status_code == 303
    assert _signed_in_name(client) == "First Name"
    assert accounts.authenticate("again@example.com", PASSWORD) is not None


def test_an_unconfirmed_sign_up_cannot_sign_in_and_looks_like_a_wrong_password(mail_app):
    """Until its link is opened, the right password answers as a wrong one would: whoever
    signed up chose it, so a different answer would tell whether the address was free."""
    client = mail_app.test_client()
    _sign_up(client, "quiet@example.com")
    right = client.post("/login", data={"email": "quiet@example.com", "password": PASSWORD})
    wrong = client.post("/login", data={"email": "quiet@example.com", "password": "not it x1"})
    assert right.status_code == wrong.status_code == 422
    assert _answer(right)[2] == _answer(wrong)[2]
    assert b"Just signed up? Open the link" in right.data
    assert _signed_in_name(client) is None


def test_a_password_reset_confirms_the_address(mail_app, sink):
    """A reset link reaches the current address: using it confirms and activates the
    account (the way back for a sign-up whose link was lost)."""
    client = mail_app.test_client()
    _sign_up(client, "lost@example.com")
    client.post("/reset", data={"email": "lost@example.com"}, buffered=True)
    [reset] = [m for m in sink.to("lost@example.com") if "/reset/" in m.part("plain")]
    token = re.search(r"/reset/([\w-]+)", reset.part("plain"))[1]
    resp = client.post(f"/reset/{token}", data={"password": "a brand new passphrase"})
    assert resp.status_code == 303
    user = _user("lost@example.com")
    assert user.email_verified_at is not None and user.activated_at is not None
    assert accounts.authenticate("lost@example.com", "a brand new passphrase") is not None


# --- an email change, the banner and "Resend the link" ------------------------------------


def _change_email(client, email):
    return client.post(
        "/account",
        data={"display_name": "Ema", "email": email, "current_password": PASSWORD},
        buffered=True,
    )


def test_a_new_address_shows_the_banner_until_its_link_is_opened(mail_app, sink):
    """After an email change the member keeps using the board with a banner and a
    "Resend the link" button; no notification mail may go there until it is confirmed."""
    user = make_user(email="ema@example.com", name="Ema")
    client = mail_app.test_client()
    login_as(client, user)
    assert b"verify-banner" not in client.get("/ideas").data
    assert _change_email(client, "ema2@example.com").status_code == 303
    assert not accounts.mail_allowed(reload(user))
    page = client.get("/ideas").get_data(as_text=True)
    assert "verify-banner" in page and "Resend the link" in page
    assert 'action="/account/verify"' in page
    assert "verify-banner" in client.get("/roadmap").get_data(as_text=True)
    login_as(client, reload(user))  # a fresh sign-in still works with the password
    assert client.post("/logout").status_code == 303
    assert (
        client.post("/login", data={"email": "ema2@example.com", "password": PASSWORD}).status_code
        == 303
    )

    path, _ = _link(sink, "ema2@example.com")
    resp = client.post(path)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert "Your address ema2@example.com is confirmed." in client.get("/account").get_data(
        as_text=True
    )
    assert b"verify-banner" not in client.get("/ideas").data
    assert accounts.mail_allowed(reload(user))


def test_a_link_sent_to_an_earlier_address_confirms_nothing(mail_app, sink):
    """A → B → C: B's link dies with the change to C, so it cannot confirm C."""
    user = make_user(email="a@example.com", name="Ema")
    client = mail_app.test_client()
    login_as(client, user)
    _change_email(client, "b@example.com")
    to_b, _ = _link(sink, "b@example.com")
    login_as(client, reload(user))
    _change_email(client, "c@example.com")
    resp = client.post(to_b)
    assert resp.status_code == 400 and b"not valid" in resp.data
    assert reload(user).email_verified_at is None


def test_resend_mails_a_new_link_and_is_limited_per_member(make_app, sink, tmp_path):
    """ "Resend the link" mails a fresh link (earlier ones die); a member's third request
    within the limit answers 429 and sends nothing; a confirmed member is told so."""
    app = make_app(
        MAIL_URL=sink.url,
        MAIL_DIR=str(tmp_path),
        REGISTER_CONFIRM_FIRST=True,
        RATELIMIT_ENABLED=True,
        VERIFY_RESEND_LIMIT="2 per hour",
    )
    _reset(app)
    with app.app_context():
        user = make_user(email="re@example.com", name="Ema")
        db.session.execute(update(User).where(User.id == user.id).values(email_verified_at=None))
        db.session.commit()
        client = app.test_client()
        login_as(client, reload(user))
        first = None
        for _ in range(2):
            resp = client.post("/account/verify", data={"next": "/roadmap"}, buffered=True)
            assert resp.status_code == 303 and resp.headers["Location"] == "/roadmap"
            path, _ = _link(sink, "re@example.com")
            first = first or path
        assert "We have sent a new link to re@example.com" in client.get("/roadmap").get_data(
            as_text=True
        )
        assert len(sink.to("re@example.com")) == 2
        resp = client.post("/account/verify", buffered=True)
        assert resp.status_code == 429 and len(sink.to("re@example.com")) == 2
        other = make_user(email="other@example.com")  # the limit is per member
        db.session.execute(update(User).where(User.id == other.id).values(email_verified_at=None))
        db.session.commit()
        client2 = app.test_client()
        login_as(client2, reload(other))
        assert client2.post("/account/verify", buffered=True).status_code == 303
        assert client.post(first).status_code == 400  # superseded
        assert client.post(path).status_code == 303

        confirmed = make_user(email="done@example.com")
        login_as(client2, confirmed)
        resp = client2.post("/account/verify", buffered=True)
        assert resp.status_code == 303 and sink.to("done@example.com") == []
        assert "already confirmed" in client2.get("/").get_data(as_text=True)


def test_resend_needs_a_member(mail_app):
    """A visitor is sent to sign in; nothing is mailed."""
    resp = mail_app.test_client().post("/account/verify")
    assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]


# --- the rule for mail, its SQL twin, Russian ------------------------------------------


def test_notification_mail_rule_and_its_sql_twin_agree(mail_app):
    """Only confirmed, enabled accounts may get notification mail; the SQL says the same."""
    now = utcnow()
    cases = {}
    for verified in (None, now):
        for disabled in (None, now):
            user = make_user()
            db.session.execute(
                update(User)
                .where(User.id == user.id)
                .values(email_verified_at=verified, disabled_at=disabled)
            )
            cases[user.id] = verified is not None and disabled is None
    db.session.commit()
    db.session.expire_all()
    for uid, expected in cases.items():
        assert accounts.mail_allowed(db.session.get(User, uid)) is expected
    wanted = {uid for uid, ok in cases.items() if ok}
    chosen = set(db.session.scalars(select(User.id).where(accounts.mail_allowed_sql())))
    assert chosen == wanted
    other = User.__table__.alias("recipient")  # a fan-out names its own alias
    chosen = set(db.session.scalars(select(other.c.id).where(accounts.mail_allowed_sql(other))))
    assert chosen == wanted


def test_the_pages_and_mail_speak_russian(mail_app, sink):
    """The sent page, the confirm page and the mail in Russian."""
    client = mail_app.test_client()
    ru = {"Accept-Language": "ru"}
    client.post(
        "/register",
        data={"email": "ru@example.com", "display_name": "Нина", "password": PASSWORD},
        headers=ru,
        buffered=True,
    )
    assert "Проверьте почту" in client.get("/register/sent", headers=ru).get_data(as_text=True)
    [mail] = sink.to("ru@example.com")
    assert mail.message["Subject"] == "Подтвердите адрес электронной почты для Ideaboard"
    assert "Ссылка действует один раз, 48 часов." in mail.part("plain")
    path, _ = _link(sink, "ru@example.com")
    assert "Подтвердить адрес" in client.get(path, headers=ru).get_data(as_text=True)


def test_tokens_keep_only_a_digest(mail_app, sink):
    """The database holds the SHA-256 of a link, never the link."""
    _sign_up(mail_app.test_client(), "digest@example.com")
    _, token = _link(sink, "digest@example.com")
    row = db.session.scalar(select(AccountToken).where(AccountToken.purpose == "email_verify"))
    assert row.token_hash == accounts.token_digest(token) and token not in row.token_hash


# --- cost -----------------------------------------------------------------------------


def test_the_confirm_page_and_the_banner_cost_at_most_one_statement(mail_app, sink, count_queries):
    """The confirm page reads one token row; the banner reads nothing more than the
    signed-in user the page loads anyway; the sent page reads nothing."""
    client = mail_app.test_client()
    _sign_up(client, "cost@example.com")
    path, _ = _link(sink, "cost@example.com")
    for url, budget in ((path, 1), ("/register/sent", 0)):
        client.get(url)
        with count_queries() as counter:
            assert client.get(url).status_code == 200
        assert counter.count <= budget, (url, counter.count)
    mail_app.extensions["ideaboard_cache"].enabled = False
    user = make_user(email="banner@example.com")
    member = mail_app.test_client()
    login_as(member, user)
    member.get("/roadmap")
    with count_queries() as counter:
        member.get("/roadmap")
    confirmed = counter.count
    db.session.execute(update(User).where(User.id == user.id).values(email_verified_at=None))
    db.session.commit()
    member.get("/roadmap")
    with count_queries() as counter:
        assert b"verify-banner" in member.get("/roadmap").data
    assert counter.count == confirmed


@pytest.mark.skipif(BACKEND != "postgres", reason="EXPLAIN checks run in the PostgreSQL pass")
def test_sign_up_and_confirmation_read_through_indexes(mail_app, sink, capsys):
    """At 20,000 accounts and 20,000 tokens, every statement of a sign-up (new and taken
    address), the confirm page and the confirmation reads users and tokens through an
    index, never a sequential scan. (The outbox holds a handful of rows here, where a
    scan is the planner's right choice.)"""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (email, email_key, display_name, search_name, password_hash, role,"
            " session_token, created_at, email_verified_at, activated_at)"
            " SELECT 'u' || n || '@example.com', 'u' || n || '@example.com', 'U ' || n,"
            " 'u ' || n, 'x', 'member', md5(n::text), now(), now(), now()"
            " FROM generate_series(1, 20000) AS n"
        )
        conn.exec_driver_sql(
            "INSERT INTO account_tokens (user_id, purpose, token_hash, expires_at, created_at)"
            " SELECT id, 'email_verify', md5(id::text) || md5(email), now(), now() FROM users"
        )
        conn.exec_driver_sql("ANALYZE users; ANALYZE account_tokens; ANALYZE mail_outbox")
    seen = []

    def _on(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            seen.append((statement, parameters))

    client = mail_app.test_client()
    event.listen(db.engine, "before_cursor_execute", _on)
    try:
        _sign_up(client, "u77@example.com")  # taken
        _sign_up(client, "brand-new@example.com")
        path, _ = _link(sink, "brand-new@example.com")
        client.get(path)
        client.post(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", _on)
    problems = []
    with db.engine.connect() as conn:
        for statement, params in seen:
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, params).scalars())
            if "users.role IN" in statement:
                continue  # services/names.py's staff names (not this feature's): see report
            if re.search(r"Seq Scan on (users|account_tokens)\b", plan):
                problems.append(f"{statement[:200]}\n{plan}")
    assert seen and not problems, "\n\n".join(problems)
    with capsys.disabled():
        print(f"\nsign-up and confirmation: {len(seen)} SELECT/UPDATE statements, no scans")


def test_the_migration_counts_existing_accounts_as_confirmed(tmp_path):
    """Accounts that exist when e5a19c3b7f42 runs are confirmed and active (nobody is cut
    off from sign-in or mail); the downgrade drops both columns."""
    import sqlalchemy as sa
    from flask_migrate import downgrade, upgrade

    from ideaboard import create_app

    from .conftest import _config

    app = create_app(_config(f"sqlite:///{tmp_path / 'old.db'}"))
    with app.app_context():
        upgrade(revision="a1e7c0d3b9f4")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users (email, email_key, display_name, search_name, password_hash,"
                " role, session_token, created_at) VALUES ('old@example.com', 'old@example.com',"
                " 'Old', 'old', 'x', 'member', 't', '2025-01-02 03:04:05')"
            )
        upgrade()
        with db.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT email_verified_at, activated_at FROM users"
                " WHERE email_key = 'old@example.com'"
            ).one()
        assert [str(v)[:19] for v in row] == ["2025-01-02 03:04:05"] * 2
        downgrade(revision="a1e7c0d3b9f4")
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("users")}
        assert not {"email_verified_at", "activated_at"} & columns
        db.engine.dispose()


# --- the default mode (REGISTER_CONFIRM_FIRST off): signed in at once, as the contract says


def _flash(client, path) -> str:
    html = client.get(path).get_data(as_text=True)
    found = re.search(
        r'<div id="flash"[^>]*>(.*?)</div>\s*(?:<div class="wrap">|<main)', html, re.S
    )
    return re.sub(r"<[^>]+>|\s+", " ", found[1]).strip() if found else ""


def test_by_default_a_sign_up_is_signed_in_at_once_and_its_address_waits(open_app, sink):
    """A new address: signed in at once, sent to `next`, told where the link went; the
    banner shows and no notification mail may go until the link confirms the address."""
    client = open_app.test_client()
    resp = _sign_up(client, "New@Example.com", next="/roadmap")
    assert resp.status_code == 303 and resp.headers["Location"] == "/roadmap"
    assert "We sent a link to New@Example.com to confirm the address." in _flash(client, "/roadmap")
    assert _signed_in_name(client) == "Nadia"
    user = _user("new@example.com")
    assert user.email_verified_at is None and user.activated_at is not None
    assert not accounts.mail_allowed(user)
    assert "verify-banner" in client.get("/ideas").get_data(as_text=True)

    path, _ = _link(sink, "New@example.com")
    assert "next=" not in path  # the sign-up already went there
    resp = client.post(path)
    assert resp.status_code == 303 and resp.headers["Location"] == "/account"
    assert "Your address New@example.com is confirmed." in _flash(client, "/account")
    assert "verify-banner" not in client.get("/ideas").get_data(as_text=True)
    assert accounts.mail_allowed(_user("new@example.com"))
    # Signing in with the password worked all along (the account is active).
    assert accounts.authenticate("new@example.com", PASSWORD) is not None


def test_by_default_a_taken_address_gets_the_same_answer_but_no_sign_in(make_app, sink, tmp_path):
    """Status, redirect target and the words on the next page are the same for a new and a
    taken address (CSRF on); only the new one is signed in. Nothing about the owner's
    account changes; the owner is mailed "someone tried"; the stranger gets no link."""
    app = make_app(MAIL_URL=sink.url, MAIL_DIR=str(tmp_path), WTF_CSRF_ENABLED=True)
    _reset(app)
    with app.app_context():
        owner = make_user(email="owner@example.com", name="Olive Owner")
        idea = make_idea(title="Dark mode please")
        before = (owner.password_hash, owner.display_name, owner.session_token)
        seen = []
        for email in ("fresh@example.com", "owner@example.com"):
            client = app.test_client()
            form = client.get(f"/register?vote={idea.id}").get_data(as_text=True)
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)[1]
            resp = client.post(
                "/register",
                data={
                    "csrf_token": token,
                    "email": email,
                    "display_name": "Someone New",
                    "password": "another long passphrase",
                    "next": f"/ideas/{idea.id}",
                    "vote": str(idea.id),
                },
                buffered=True,
            )
            flash = _flash(client, resp.headers["Location"])
            seen.append(
                (resp.status_code, resp.headers["Location"], flash, _signed_in_name(client))
            )
        (status, where, flash, name), (status2, where2, flash2, name2) = seen
        assert status == status2 == 303
        assert where == where2 == f"/ideas/{idea.id}#vote-{idea.id}"
        assert flash.replace("fresh@", "X@") == flash2.replace("owner@", "X@")
        assert "We sent a link to" in flash and "to confirm the address" in flash
        assert (name, name2) == ("Someone New", None)  # the one difference (docs/security.md)

        assert _user("fresh@example.com") is not None
        assert db.session.scalar(select(func.count()).select_from(User)) == 3  # + the author
        db.session.expire_all()
        voters = set(db.session.scalars(select(Vote.user_id).where(Vote.idea_id == idea.id)))
        assert _user("fresh@example.com").id in voters
        assert owner.id not in voters  # nothing about the owner's account changes
        owner = reload(owner)
        assert (owner.password_hash, owner.display_name, owner.session_token) == before
        assert owner.email_verified_at is not None and owner.activated_at is not None
        [warned] = sink.to("owner@example.com")
        assert (
            warned.message["Subject"] == "Someone tried to sign up to Ideaboard with your address"
        )
        assert "/verify/" not in warned.part("plain")
        [confirm] = sink.to("fresh@example.com")
        assert "/verify/" in confirm.part("plain")


@pytest.mark.serial
def test_by_default_both_branches_hash_the_password(open_app, monkeypatch):
    """The default mode does the same expensive work in both branches; median times are
    within a factor of 1.6."""
    make_user(email="taken@example.com")
    hashes = []
    real = accounts.hash_password
    monkeypatch.setattr(accounts, "hash_password", lambda p: hashes.append(p) or real(p))
    _sign_up(open_app.test_client(), "free@example.com")
    _sign_up(open_app.test_client(), "taken@example.com")
    assert len(hashes) == 2
    monkeypatch.setattr(accounts, "hash_password", real)
    _same_time(open_app)


# --- confirm-first carries the pending vote through the link ------------------------------


def test_confirm_first_casts_the_pending_vote_when_the_link_is_opened(mail_app, sink):
    """The vote clicked before registering rides on the link (`vote=`) and is cast in the
    transaction that confirms and signs in; the answer lands on its row. Nothing is cast
    before the link is opened; a taken address's sign-up casts nothing."""
    idea = make_idea(title="Offline mode")
    client = mail_app.test_client()
    resp = _sign_up(client, "voter@example.com", next=f"/ideas/{idea.id}", vote=str(idea.id))
    assert resp.headers["Location"] == "/register/sent"
    db.session.expire_all()
    voter = _user("voter@example.com")
    before = reload(idea).vote_count
    assert voter.id not in set(db.session.scalars(select(Vote.user_id)))
    [mail] = sink.to("voter@example.com")
    assert f"vote={idea.id}" in mail.part("plain")
    path = re.search(r"http://[^/\s]+(/verify/\S+)", mail.part("plain"))[1]
    page = client.get(path).get_data(as_text=True)
    assert f"vote={idea.id}" in page  # the button's form keeps it
    assert "Your vote for “Offline mode” will be counted once you are in." in page
    resp = client.post(path)
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/ideas/{idea.id}#vote-{idea.id}"
    db.session.expire_all()
    assert voter.id in set(db.session.scalars(select(Vote.user_id)))
    assert reload(idea).vote_count == before + 1

    owner = make_user(email="held@example.com")
    _sign_up(mail_app.test_client(), "held@example.com", vote=str(idea.id))
    db.session.expire_all()
    assert owner.id not in set(db.session.scalars(select(Vote.user_id)))
