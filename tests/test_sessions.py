"""Session cookies and lifetimes (security.md #22, #24), with an injected clock.

- #22 In a production configuration (an https BASE_URL) the session, remember-me and
  language cookies are Secure, HttpOnly and SameSite=Lax on Path=/, and the signed (not
  encrypted) session holds ids and flags only, never an email, name or password.
- #24 A sign-in ends SESSION_IDLE_TIMEOUT after the last request, and in any case
  PERMANENT_SESSION_LIFETIME after the password was typed; "keep me signed in" lasts
  REMEMBER_COOKIE_DURATION from sign-in, enforced by the server even if the browser
  keeps the cookie. The clock is the CLOCK config value (a function returning naive UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from http.cookies import SimpleCookie

import pytest

from ideaboard.models import utcnow

from .conftest import _reset
from .factories import PASSWORD, make_user


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(make_app, clock):
    """An app whose sense of time is `clock`."""
    app = make_app(CLOCK=clock)
    _reset(app)
    with app.app_context():
        yield app


def _sign_in(app, email: str, remember: bool = False):
    client = app.test_client()
    data = {"email": email, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    resp = client.post("/login", data=data)
    assert resp.status_code == 303
    return client, resp


def _signed_in(client, name: str) -> bool:
    return name.encode() in client.get("/ideas").data


def _cookies(resp) -> dict[str, dict]:
    """Set-Cookie headers by name: {"value": ..., flag or attribute: value}."""
    found = {}
    for header in resp.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            attrs = {k.lower(): v for k, v in morsel.items() if v}
            # SimpleCookie drops flags it does not know as set; read them from the text.
            lowered = header.lower()
            attrs["secure"] = "; secure" in lowered
            attrs["httponly"] = "; httponly" in lowered
            found[name] = {"value": morsel.value, **attrs}
    return found


# --- #22 cookie flags ---------------------------------------------------------------


def test_production_cookies_are_secure_httponly_and_lax(make_app):
    """With an https BASE_URL every cookie we set is Secure, HttpOnly, SameSite=Lax, Path=/."""
    app = make_app(BASE_URL="https://ideas.example.com")
    _reset(app)
    with app.app_context():
        user = make_user(email="prod@example.com", name="Prod Person")
        client = app.test_client()
        resp = client.post(
            "/login",
            data={"email": user.email, "password": PASSWORD, "remember": "y"},
            base_url="https://localhost",
        )
        assert resp.status_code == 303
        lang = client.post("/lang", data={"lang": "ru"}, base_url="https://localhost")
        cookies = {**_cookies(resp), **_cookies(lang)}
        assert {"session", "remember_token", "lang"} <= set(cookies)
        for name in ("session", "remember_token", "lang"):
            c = cookies[name]
            assert c["secure"] and c["httponly"], name
            assert c["samesite"].lower() == "lax" and c["path"] == "/", name
            assert "domain" not in c, name  # host-only
        assert "expires" in cookies["remember_token"]


def test_plain_http_development_cookies_are_not_secure(make_app):
    """With an http BASE_URL (a laptop) cookies are not marked Secure, or none would be sent."""
    app = make_app(BASE_URL="http://127.0.0.1:5000")
    _reset(app)
    with app.app_context():
        user = make_user(email="dev@example.com")
        _, resp = _sign_in(app, user.email, remember=True)
        cookies = _cookies(resp)
        assert not cookies["session"]["secure"] and cookies["session"]["httponly"]
        assert cookies["remember_token"]["httponly"]


def test_the_session_cookie_holds_ids_not_personal_data(timed):
    """The session is signed, not encrypted: it carries ids and flags, nothing personal."""
    user = make_user(email="private@example.com", name="Secret Name")
    client, _ = _sign_in(timed, user.email, remember=True)
    raw = client.get_cookie("session").value
    data = timed.session_interface.get_signing_serializer(timed).loads(raw)
    assert set(data) <= {"_user_id", "_fresh", "_id", "_seen_at", "csrf_token", "lang"}
    text = repr(data) + client.get_cookie("remember_token").value
    for secret in ("private@example.com", "Secret Name", PASSWORD, user.password_hash):
        assert secret not in text


# --- #24 lifetimes ------------------------------------------------------------------


def test_lifetimes_are_configured():
    """Idle and absolute lifetimes have production values, idle shorter than absolute."""
    from ideaboard.config import Config

    assert timedelta(0) < Config.SESSION_IDLE_TIMEOUT < Config.PERMANENT_SESSION_LIFETIME
    assert Config.PERMANENT_SESSION_LIFETIME <= Config.REMEMBER_COOKIE_DURATION
    assert Config.REMEMBER_COOKIE_DURATION <= timedelta(days=30)


def test_an_idle_sign_in_ends(timed, clock):
    """Without a request for longer than the idle timeout, the member is signed out."""
    user = make_user(email="idle@example.com", name="Idle Ida")
    client, _ = _sign_in(timed, user.email)
    idle = timed.config["SESSION_IDLE_TIMEOUT"]
    clock.advance(seconds=idle.total_seconds() - 60)
    assert _signed_in(client, "Idle Ida")
    clock.advance(seconds=idle.total_seconds() - 60)  # active a moment ago: still in
    assert _signed_in(client, "Idle Ida")
    clock.advance(seconds=idle.total_seconds() + 1)
    assert not _signed_in(client, "Idle Ida")
    assert client.post("/ideas/new", data={}).status_code == 302  # sent to sign in


def test_an_active_sign_in_still_ends_at_its_absolute_lifetime(timed, clock):
    """A member active every few hours is still signed out once the absolute lifetime passes."""
    user = make_user(email="busy@example.com", name="Busy Bo")
    client, _ = _sign_in(timed, user.email)
    absolute = timed.config["PERMANENT_SESSION_LIFETIME"]
    step = timed.config["SESSION_IDLE_TIMEOUT"] / 2
    elapsed = timedelta(0)
    while elapsed + step < absolute:
        clock.advance(seconds=step.total_seconds())
        elapsed += step
        assert _signed_in(client, "Busy Bo"), elapsed
    clock.advance(seconds=step.total_seconds())
    assert not _signed_in(client, "Busy Bo")


def test_remember_me_survives_idleness_but_not_its_duration(timed, clock):
    """ "Keep me signed in" outlives the idle timeout and a closed browser, then ends."""
    user = make_user(email="keep@example.com", name="Keeper Kim")
    client, resp = _sign_in(timed, user.email, remember=True)
    clock.advance(days=3)  # far beyond the idle timeout
    assert _signed_in(client, "Keeper Kim")
    client.delete_cookie("session")  # the browser was closed: only the cookie is left
    assert _signed_in(client, "Keeper Kim")
    clock.advance(seconds=timed.config["REMEMBER_COOKIE_DURATION"].total_seconds())
    assert not _signed_in(client, "Keeper Kim")
    # The copied cookie alone, in a fresh browser, is refused too: the server judges its age.
    thief = timed.test_client()
    thief.set_cookie("remember_token", _cookies(resp)["remember_token"]["value"])
    assert not _signed_in(thief, "Keeper Kim")


def test_a_stale_login_id_is_refused(timed):
    """A session from before lifetimes were recorded (no sign-in time) is signed out."""
    user = make_user(email="old@example.com", name="Old Olga")
    client = timed.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()  # the old format: id and token only
    assert not _signed_in(client, "Old Olga")
