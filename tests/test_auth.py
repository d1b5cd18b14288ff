"""Accounts: registration, sign-in, sign-out, throttling and safe redirects."""

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import User

from .conftest import fresh_app
from .factories import PASSWORD, confirm_sign_up, login_as, make_user, reload


def test_register_signs_in_and_goes_to_next(client):
    """Registering creates a member, signs them in and follows a local next (the contract,
    REGISTER_CONFIRM_FIRST off); the address waits for its emailed link."""
    resp = client.post(
        "/register",
        data={
            "email": "New@example.com",
            "display_name": "New Person",
            "password": PASSWORD,
            "next": "/roadmap",
        },
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/roadmap"
    user = db.session.scalar(select(User))
    assert (user.email, user.display_name, user.role) == ("New@example.com", "New Person", "member")
    assert user.email_verified_at is None and user.activated_at is not None
    assert b"New Person" in client.get("/").data


def test_register_with_confirm_first_signs_in_only_by_the_link(make_app):
    """With REGISTER_CONFIRM_FIRST on, registering creates a member but signs nobody in:
    "check your inbox"; the emailed link signs them in (more in test_verification.py)."""
    with fresh_app(make_app, REGISTER_CONFIRM_FIRST=True) as app:
        client = app.test_client()
        resp = client.post(
            "/register",
            data={
                "email": "New@example.com",
                "display_name": "New Person",
                "password": PASSWORD,
                "next": "/roadmap",
            },
        )
        assert resp.status_code == 303 and resp.headers["Location"] == "/register/sent"
        user = db.session.scalar(select(User))
        assert user.email_verified_at is None and user.activated_at is None
        assert b"New Person" not in client.get("/").data
        confirm_sign_up(client, "new@example.com")
        assert b"New Person" in client.get("/").data


def test_register_errors_are_shown_by_the_fields(client):
    """A weak password, bad email or short name each get a message beside the field."""
    resp = client.post(
        "/register", data={"email": "nope", "display_name": "A", "password": "short"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Enter a valid email address." in html
    assert "Name must be at least 2 characters." in html
    assert "Use at least 10 characters." in html
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_duplicate_email_any_case_makes_no_second_account(client):
    """An email already used, in any case, makes no new account (the answer is the same as
    for a new address: test_verification.py compares them)."""
    make_user(email="taken@example.com")
    resp = client.post(
        "/register",
        data={"email": "TAKEN@example.com", "display_name": "Dup", "password": PASSWORD},
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert b"Dup" not in client.get("/").data  # not signed in
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_login_and_logout(client):
    """Sign in with email and password, then sign out with a POST."""
    user = make_user(email="me@example.com", name="Me Myself")
    resp = client.post(
        "/login", data={"email": "ME@example.com", "password": PASSWORD, "next": "/ideas"}
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/ideas"
    assert b"Me Myself" in client.get("/").data
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 303
    assert b"Me Myself" not in client.get("/").data
    assert user.id


def test_failed_login_same_answer_for_unknown_and_wrong_password(client):
    """A wrong password and an unknown email get the same 422 message."""
    make_user(email="real@example.com")
    a = client.post("/login", data={"email": "real@example.com", "password": "wrong one!!"})
    b = client.post("/login", data={"email": "ghost@example.com", "password": "wrong one!!"})
    assert a.status_code == b.status_code == 422
    assert (
        b"Email or password is incorrect." in a.data
        and b"Email or password is incorrect." in b.data
    )


def test_remember_me_sets_a_persistent_cookie(client):
    """Ticking "keep me signed in" sets the remember cookie; without it, none."""
    make_user(email="r@example.com")
    resp = client.post("/login", data={"email": "r@example.com", "password": PASSWORD})
    assert "remember_token" not in resp.headers.get("Set-Cookie", "")
    client.post("/logout")
    resp = client.post(
        "/login", data={"email": "r@example.com", "password": PASSWORD, "remember": "y"}
    )
    cookies = " ".join(resp.headers.getlist("Set-Cookie"))
    assert "remember_token=" in cookies and "HttpOnly" in cookies


def test_session_is_renewed_on_sign_in(client):
    """Sign-in starts a fresh session: values planted before it are gone."""
    make_user(email="s@example.com")
    with client.session_transaction() as sess:
        sess["planted"] = "by attacker"
    client.post("/login", data={"email": "s@example.com", "password": PASSWORD})
    with client.session_transaction() as sess:
        assert "planted" not in sess and "_user_id" in sess


def test_role_change_ends_existing_sessions(client, app):
    """After an admin demotes a staff member, their open session is signed out."""
    from ideaboard.services import accounts

    admin, staff = make_user("admin"), make_user("staff", name="Sam Staff")
    login_as(client, staff)
    assert b"Sam Staff" in client.get("/").data
    accounts.change_role(admin, reload(staff), "member")
    db.session.commit()
    assert b"Sam Staff" not in client.get("/").data


BAD_NEXT = [
    "//evil.test",
    "/\\evil.test",
    "\\\\evil.test",
    "https://evil.test",
    "https:evil.test",
    "javascript:alert(1)",
    "/%09/evil.test",
    "/\t/evil.test",
    " //evil.test",
    "http://127.0.0.1:5000@evil.test",
    "%2F%2Fevil.test",
]


def test_signed_in_member_opening_sign_in_is_sent_on(client, auth):
    """A signed-in member who opens /login goes to `next` (a local path), not the form."""
    auth(make_user())
    resp = client.get("/login?next=/ideas%3Fsort%3Dtop")
    assert resp.status_code == 302 and resp.headers["Location"] == "/ideas?sort=top"
    assert client.get("/login").headers["Location"] == "/"


@pytest.mark.parametrize("target", BAD_NEXT)
def test_signed_in_member_opening_sign_in_never_leaves_the_site(client, auth, target):
    """The same redirect takes only local paths; anything else goes home."""
    auth(make_user())
    resp = client.get("/login", query_string={"next": target})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


@pytest.mark.parametrize("target", BAD_NEXT)
def test_next_never_leaves_the_site(client, target):
    """Sign-in only redirects to local paths; anything else goes home."""
    make_user(email="n@example.com")
    resp = client.post(
        "/login", data={"email": "n@example.com", "password": PASSWORD, "next": target}
    )
    location = resp.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "evil" not in location and "javascript" not in location


def test_login_is_throttled_per_account_and_ip(make_app):
    """Repeated failures answer 429 with Retry-After, per IP and per account."""
    from .conftest import _reset

    app = make_app(
        RATELIMIT_ENABLED=True, LOGIN_LIMIT_IP="3 per minute", LOGIN_LIMIT_ACCOUNT="2 per minute"
    )
    _reset(app)
    client = app.test_client()
    bad = {"email": "x@example.com", "password": "wrong password"}
    assert [client.post("/login", data=bad).status_code for _ in range(3)] == [422, 422, 429]
    resp = client.post("/login", data=bad)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert b"Too many attempts" in resp.data
    # Another address, other account: the IP limit is separate from the account limit.
    other_ip = app.test_client()
    other_ip.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    ok = other_ip.post("/login", data={"email": "y@example.com", "password": "wrong"})
    assert ok.status_code == 422
    third_ip = app.test_client()
    third_ip.environ_base["REMOTE_ADDR"] = "10.0.0.10"
    assert third_ip.post("/login", data=bad).status_code == 429  # same account, new IP


@pytest.mark.parametrize("target", ["/ideas?q=dark%20mode&sort=top", "/ideas/3-x#comment-2"])
def test_local_next_with_query_is_kept(client, target):
    """A local page with a query string (spaces encoded) is a fine place to go back to."""
    make_user(email="k@example.com")
    resp = client.post(
        "/login", data={"email": "k@example.com", "password": PASSWORD, "next": target}
    )
    assert resp.headers["Location"] == target
