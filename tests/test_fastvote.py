"""The vote click's fast path (perf/fastvote.py): the same answer as the Flask route, or
no answer at all (Flask's then), and never a write it should not make.

Members here sign in through the real form, with CSRF on, as a browser does; the helpers
in factories.login_as leave Flask-Login's session-protection id out, which makes every
request of theirs go through Flask (so the rest of the suite tests the Flask route).
"""

from __future__ import annotations

import gzip
import re
from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import pytest
from flask import request_started
from flask_login.utils import _create_identifier
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from ideaboard.extensions import db
from ideaboard.models import Idea, User, Vote, utcnow
from ideaboard.perf.fastvote import VoteFastPath, _identifier
from ideaboard.services import follows
from ideaboard.services.ideas import trending_score

from .conftest import TEST_REDIS, _reset, redis_or_skip
from .factories import PASSWORD, at_once, make_board, make_idea, make_user, reload


@pytest.fixture
def make_fast_app(make_app):
    def _make(**overrides):
        app = make_app(WTF_CSRF_ENABLED=True, **overrides)
        _reset(app)
        app.flask_requests = []
        request_started.connect(lambda sender, **_: app.flask_requests.append(1), app, weak=False)
        return app

    return _make


@pytest.fixture
def fast_app(make_fast_app):
    app = make_fast_app()
    with app.app_context():
        yield app


def _field(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
    return re.search(r'value="([^"]*)"', tag).group(1)


def sign_in(app, user, **environ):
    """A browser that signed in through the form: (client, csrf token for its pages)."""
    client = app.test_client()
    client.environ_base.update(environ)
    token = _field(client.get("/login").get_data(as_text=True), "csrf_token")
    resp = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    page = client.get("/ideas").get_data(as_text=True)
    return client, _field(page, "csrf_token")


def vote(client, idea_id, token, **form):
    return client.post(
        f"/ideas/{idea_id}/vote",
        data={"csrf_token": token, "next": "", **form},
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/ideas"},
    )


def handled_by_flask(app, call) -> tuple[bool, object]:
    before = len(app.flask_requests)
    resp = call()
    return len(app.flask_requests) > before, resp


def _state(idea_id):
    db.session.expire_all()
    idea = db.session.get(Idea, idea_id)
    rows = db.session.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea_id))
    return idea.vote_count, rows, idea.trending_score, idea.created_at


def forged(token: str) -> str:
    """The token with one signature character changed. Not its last: base64 ignores the
    last character's two spare bits, so a changed last character can decode to the same
    signature (the old `token[:-2] + "xx"` did, about one run in a thousand)."""
    i = len(token) - 5
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def _without_token(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', html)


def test_a_members_htmx_vote_is_answered_without_flask_and_matches_it(make_fast_app):
    """The fast answer has the Flask route's fragment and headers, and writes the same."""
    answers = {}
    for fast in (True, False):
        app = make_fast_app(VOTE_FAST_PATH=fast)
        with app.app_context():
            idea = make_idea()
            member = make_user()
            client, token = sign_in(app, member)
            for step in ("on", "off"):
                via_flask, resp = handled_by_flask(app, partial(vote, client, idea.id, token))
                assert resp.status_code == 200
                assert via_flask is not fast, (fast, step)
                count, rows, score, created = _state(idea.id)
                assert count == rows == (2 if step == "on" else 1)  # and the author's
                assert score == trending_score(count, created)  # the same number Python gets
                html = resp.get_data(as_text=True)
                # The fragment carries a usable token: voting again with it works.
                token = _field(html, "csrf_token")
                headers = {k: v for k, v in resp.headers.items() if k != "Content-Security-Policy"}
                answers[(fast, step)] = (_without_token(html), headers)
            assert "nonce-" in resp.headers["Content-Security-Policy"]
    for step in ("on", "off"):
        fast_html, fast_headers = answers[(True, step)]
        flask_html, flask_headers = answers[(False, step)]
        assert fast_html.strip() == flask_html.strip()
        assert fast_headers == flask_headers
    assert 'aria-pressed="true"' in answers[(True, "on")][0]
    assert 'aria-pressed="false"' in answers[(True, "off")][0]


def test_a_fast_vote_is_on_the_next_page_anyone_loads(fast_app):
    """The page cache moves on: a visitor's cached board shows the new count at once."""
    idea = make_idea(title="Fresh counts please")
    visitor = fast_app.test_client()
    before = visitor.get("/ideas").get_data(as_text=True)
    assert re.search(r'<span class="vote-count">1</span>', before)  # the author's
    client, token = sign_in(fast_app, make_user())
    via_flask, resp = handled_by_flask(fast_app, lambda: vote(client, idea.id, token))
    assert resp.status_code == 200 and not via_flask
    after = visitor.get("/ideas").get_data(as_text=True)
    assert re.search(r'<span class="vote-count">2</span>', after)


def test_a_russian_member_gets_the_russian_fragment(fast_app):
    idea = make_idea()
    client, token = sign_in(fast_app, make_user())
    client.set_cookie("lang", "ru")
    via_flask, resp = handled_by_flask(fast_app, lambda: vote(client, idea.id, token))
    assert not via_flask and "Голос учтён" in resp.get_data(as_text=True)


def _cases(fast_app):
    """(name, request) pairs the fast path must leave to Flask, with what Flask answers."""
    member = make_user()
    staff = make_user(role="staff")
    live = make_idea()
    deleted = make_idea()
    deleted.deleted_at = utcnow()
    db.session.commit()
    client, token = sign_in(fast_app, member)
    staff_client, staff_token = sign_in(fast_app, staff)
    visitor = fast_app.test_client()
    return (
        member,
        live,
        [
            ("no token", lambda: vote(client, live.id, ""), 400),
            ("forged token", lambda: vote(client, live.id, forged(token)), 400),
            ("another session's token", lambda: vote(client, live.id, staff_token), 400),
            ("a visitor", lambda: vote(visitor, live.id, token), 400),  # no session, no token
            ("a deleted idea", lambda: vote(client, deleted.id, token), 404),
            ("a missing idea", lambda: vote(client, 987654, token), 404),
            ("staff (exempt from limits)", lambda: vote(staff_client, live.id, staff_token), 200),
            (
                "the idea page's variant",
                lambda: vote(client, live.id, token, on_idea_page="1"),
                200,
            ),
            (
                "a plain form post",
                lambda: client.post(f"/ideas/{live.id}/vote", data={"csrf_token": token}),
                303,
            ),
        ],
    )


def test_what_the_fast_path_does_not_accept_goes_to_flask(fast_app):
    member, live, cases = _cases(fast_app)
    for name, call, status in cases:
        via_flask, resp = handled_by_flask(fast_app, call)
        assert via_flask, name
        assert resp.status_code == status, (name, resp.status_code)
    count, rows, *_ = _state(live.id)
    assert count == rows  # exact, whoever answered


def test_another_browser_with_the_cookie_goes_to_flask(fast_app):
    """Flask-Login's session protection: a different user agent is Flask's to judge."""
    idea = make_idea()
    client, token = sign_in(fast_app, make_user(), HTTP_USER_AGENT="Browser A")
    client.environ_base["HTTP_USER_AGENT"] = "Browser B"
    via_flask, resp = handled_by_flask(fast_app, lambda: vote(client, idea.id, token))
    assert via_flask and resp.status_code == 200


def test_an_expired_or_due_sign_in_goes_to_flask(make_fast_app):
    """Past the idle timeout Flask signs the member out; a due activity stamp is Flask's
    to write (a new cookie)."""
    now = [utcnow()]
    app = make_fast_app(CLOCK=lambda: now[0])
    with app.app_context():
        idea = make_idea()
        client, token = sign_in(app, make_user())
        via_flask, _resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert not via_flask
        now[0] += app.config["SESSION_IDLE_TIMEOUT"] / 12  # stamp due
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert via_flask and resp.status_code == 200 and "Set-Cookie" in resp.headers
        now[0] += app.config["SESSION_IDLE_TIMEOUT"] + timedelta(minutes=1)  # idle too long
        before = _state(idea.id)[:2]
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert via_flask and resp.status_code != 200 and _state(idea.id)[:2] == before


def test_a_token_it_checked_before_still_expires(make_fast_app, monkeypatch):
    """The fast path remembers the tokens it has checked, but not past their age: a CSRF
    token older than WTF_CSRF_TIME_LIMIT goes to Flask, which refuses it, even right after
    the same token voted."""
    import time

    app = make_fast_app(WTF_CSRF_TIME_LIMIT=60)
    with app.app_context():
        idea = make_idea()
        client, token = sign_in(app, make_user())
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert not via_flask and resp.status_code == 200
        later = time.time() + 120
        monkeypatch.setattr(time, "time", lambda: later)
        before = _state(idea.id)[:2]
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert via_flask and resp.status_code == 400 and _state(idea.id)[:2] == before


def test_https_needs_a_same_origin_referer_as_flask_wtf_does(make_fast_app):
    app = make_fast_app(BASE_URL="https://board.example")
    with app.app_context():
        idea = make_idea()
        good = {"wsgi.url_scheme": "https", "HTTP_REFERER": "https://localhost/ideas"}
        client, token = sign_in(app, make_user(), **good)
        del client.environ_base["HTTP_REFERER"]
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert via_flask and resp.status_code == 400  # no Referer: Flask-WTF refuses
        client.environ_base["HTTP_REFERER"] = "https://evil.example/ideas"
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert via_flask and resp.status_code == 400  # another origin: refused too
        client.environ_base["HTTP_REFERER"] = good["HTTP_REFERER"]
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        assert not via_flask and resp.status_code == 200
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


def test_both_paths_spend_one_write_limit(make_fast_app):
    """Votes answered fast count in Flask-Limiter's bucket: the limit's next vote is a 429
    from Flask, and staff are still exempt."""
    app = make_fast_app(RATELIMIT_ENABLED=True, VOTE_LIMIT="3 per minute")
    with app.app_context():
        ideas = [make_idea() for _ in range(5)]
        client, token = sign_in(app, make_user())
        via = []
        for idea in ideas[:3]:
            via_flask, resp = handled_by_flask(app, lambda i=idea: vote(client, i.id, token))
            via.append(via_flask)
            assert resp.status_code == 200
        assert via == [False, False, False]
        assert resp.headers["X-RateLimit-Limit"] == "3"
        assert resp.headers["X-RateLimit-Remaining"] == "0"
        via_flask, resp = handled_by_flask(app, lambda: vote(client, ideas[3].id, token))
        assert via_flask and resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
        assert _state(ideas[3].id)[:2] == (1, 1)  # its author's vote only


def test_flask_votes_count_against_the_fast_paths_limit_too(make_fast_app):
    app = make_fast_app(RATELIMIT_ENABLED=True, VOTE_LIMIT="2 per minute")
    with app.app_context():
        ideas = [make_idea() for _ in range(3)]
        client, token = sign_in(app, make_user())
        for idea in ideas[:2]:  # plain posts: Flask
            assert client.post(f"/ideas/{idea.id}/vote", data={"csrf_token": token}).status_code
        via_flask, resp = handled_by_flask(app, lambda: vote(client, ideas[2].id, token))
        assert via_flask and resp.status_code == 429


@pytest.mark.parametrize(
    "headers",
    [
        {"User-Agent": "Mozilla/5.0 (X11)"},
        {},
        {"User-Agent": "Ünïcode agent", "X-Forwarded-For": "203.0.113.9, 10.0.0.1"},
    ],
)
def test_session_protection_id_is_flask_logins(app, headers):
    environ = {"REMOTE_ADDR": "192.0.2.7"}
    with app.test_request_context("/", headers=headers, environ_base=environ) as ctx:
        assert _identifier(ctx.request.environ) == _create_identifier()


def test_with_redis_the_vote_moves_every_workers_pages_and_shares_the_limit(make_fast_app):
    """The production setup (REDIS_URL): the version, the pages and the write limit all live
    in Redis; on PostgreSQL the toggle then runs as its own one-statement transaction."""
    redis_or_skip()
    settings = {
        "REDIS_URL": TEST_REDIS,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": TEST_REDIS,
        "VOTE_LIMIT": "2 per minute",
    }
    app, other = make_fast_app(**settings), make_fast_app(**settings)  # two workers
    with app.app_context():
        redis_or_skip().flushdb()
        ideas = [make_idea(title=f"Shared idea {n}") for n in range(3)]
        visitor = other.test_client()
        assert '<span class="vote-count">1</span>' in visitor.get("/ideas").get_data(as_text=True)
        client, token = sign_in(app, make_user())
        for idea in ideas[:2]:
            via_flask, resp = handled_by_flask(app, lambda i=idea: vote(client, i.id, token))
            assert not via_flask and resp.status_code == 200
        assert _state(ideas[0].id)[:2] == (2, 2)  # and the author's
        page = visitor.get("/ideas").get_data(as_text=True)
        assert page.count('<span class="vote-count">2</span>') == 2  # the other worker sees it
        # The third vote, on the other worker: the limit is shared, Flask answers 429.
        other_client = other.test_client()
        other_client.set_cookie("session", client.get_cookie("session").value)
        via_flask, resp = handled_by_flask(other, lambda: vote(other_client, ideas[2].id, token))
        assert via_flask and resp.status_code == 429


def test_many_members_voting_at_once_on_the_fast_path_keep_counts_exact(fast_app):
    """Twelve members toggle two ideas at once, three rounds: every answer is the fast
    path's 200, and each idea's count equals its rows after every round."""
    ideas = [make_idea(), make_idea()]
    signed_in = [sign_in(fast_app, make_user()) for _ in range(12)]
    calls = [
        partial(handled_by_flask, fast_app, partial(vote, client, idea.id, token))
        for client, token in signed_in
        for idea in ideas
    ]
    for round_ in range(3):
        answers = at_once(calls)
        assert [(via_flask, r.status_code) for via_flask, r in answers] == [(False, 200)] * 24
        db.session.commit()  # a fresh snapshot (SQLite): the threads' writes are in
        for idea in ideas:
            count, rows, score, created = _state(idea.id)
            assert count == rows == (13 if round_ % 2 == 0 else 1)  # and the author's
            assert score == trending_score(count, created)
            # Every voter follows (and keeps following after taking the vote back).
            assert reload(idea).follower_count == 13  # the author and the 12 voters
        assert follows.follower_mismatches() == []


def test_one_member_clicking_in_many_tabs_at_once_makes_one_vote(fast_app):
    """Simultaneous fast toggles by one member: one row at most, and every fragment shows
    the idea's real count."""
    idea = make_idea()
    client, token = sign_in(fast_app, make_user())
    answers = at_once([partial(vote, client, idea.id, token) for _ in range(8)])
    assert {r.status_code for r in answers} == {200}
    db.session.commit()  # a fresh snapshot (SQLite): the threads' writes are in
    count, rows, _score, _created = _state(idea.id)
    assert count == rows and rows in (1, 2)  # the author's, and the member's at most once
    shown = {re.search(r'vote-count">(\d+)<', r.get_data(as_text=True)).group(1) for r in answers}
    assert shown <= {"1", "2"}


# --- parity: the same answer whether the fast path is on or off ---------------------


def _fast_layer(app) -> VoteFastPath:
    layer = app.wsgi_app
    while not isinstance(layer, VoteFastPath):
        layer = getattr(layer, "wsgi_app", None) or layer.app
    return layer


_TOKENS = re.compile(r'((?:name="csrf_token"|"X-CSRFToken":) (?:value=)?")[^"]*(")')


def _comparable(resp, idea_id: int) -> tuple:
    """What must not differ between the two paths: the status, the body (decoded, with
    CSRF token values blanked, as each answer may sign its token afresh, and the case's
    idea id as ID) and the headers that say what the body is."""
    body = resp.get_data()
    if resp.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    text = _TOKENS.sub(r"\1\2", body.decode("utf-8", "replace"))
    # Not the count, which can equal the id now that an idea starts with a vote.
    text = re.sub(rf'(?<!vote-count">)\b{idea_id}\b', "ID", text)
    # Nor the voters' profile links: each run of a case has its own accounts.
    text = re.sub(r'href="/u/\d+"', 'href="/u/N"', text)
    headers = {h: resp.headers.get(h) for h in ("Content-Type", "Content-Encoding", "Vary")}
    headers["Cache-Control"] = resp.headers.get("Cache-Control")
    headers["Retry-After?"] = "Retry-After" in resp.headers
    return resp.status_code, text.strip(), headers


def _rows(case) -> list:
    """The case's ideas as stored: count, vote rows, and whether the member's vote is one;
    the follower count, the active follows and whether the member follows (a vote makes
    the voter follow the idea, on both paths)."""
    db.session.expire_all()
    found = []
    for idea in (case.idea, *case.spare):
        stored = db.session.get(Idea, idea.id)
        voters = list(db.session.scalars(select(Vote.user_id).where(Vote.idea_id == idea.id)))
        followers = list(db.session.scalars(follows.followers_query(idea.id)))
        found.append(
            (
                stored.vote_count,
                len(voters),
                case.member.id in voters,
                stored.follower_count,
                len(followers),
                case.member.id in followers,
            )
        )
    return found


HX = {"HX-Request": "true"}
PAD = "x" * 5000  # past the fast path's 4 KB: Flask reads it


def _odd_votes():
    """(name, call(case) -> response): odd vote requests, each sent with the fast path on
    and with it off. `case` holds a fresh member's client and token, a fresh live idea,
    and the rest of the world."""

    def post(c, path=None, **kw):
        return c.client.post(path or f"/ideas/{c.idea.id}/vote", **kw)

    def form(c, **extra):
        return {"csrf_token": c.token, "next": "", **extra}

    def raw(c, body, **kw):
        return post(c, data=body.encode(), **kw)

    def over_limit(c):
        for spent in c.spare[:2]:  # VOTE_LIMIT is 2 a minute here
            c.client.post(f"/ideas/{spent.id}/vote", data=form(c))
        return post(c, data=form(c), headers=HX)

    def expired(c):
        c.now[0] += c.app.config["SESSION_IDLE_TIMEOUT"] + timedelta(minutes=1)
        try:
            return post(c, data=form(c), headers=HX)
        finally:
            c.now[0] = c.start

    return [
        ("an ordinary vote", lambda c: post(c, data=form(c), headers=HX)),
        (
            "no Content-Type, token only in the body",
            lambda c: raw(c, f"csrf_token={c.token}", headers=HX),
        ),
        (
            "no Content-Type, token in the header",
            lambda c: raw(c, "next=", headers={**HX, "X-CSRFToken": c.token}),
        ),
        ("?x=%00", lambda c: post(c, f"/ideas/{c.idea.id}/vote?x=%00", data=form(c), headers=HX)),
        (
            "a NUL in the path",
            lambda c: post(c, f"/ideas/{c.idea.id}/vote%00", data=form(c), headers=HX),
        ),
        (
            "a harmless query",
            lambda c: post(c, f"/ideas/{c.idea.id}/vote?x=1", data=form(c), headers=HX),
        ),
        (
            "multipart",
            lambda c: post(c, data=form(c), headers=HX, content_type="multipart/form-data"),
        ),
        (
            "JSON, token in the header",
            lambda c: post(c, json={"next": ""}, headers={**HX, "X-CSRFToken": c.token}),
        ),
        ("JSON, token only in the JSON", lambda c: post(c, json=form(c), headers=HX)),
        (
            "text/plain that looks like a form",
            lambda c: raw(c, f"csrf_token={c.token}", headers=HX, content_type="text/plain"),
        ),
        (
            "the form type in capitals, with a charset",
            lambda c: raw(
                c,
                f"csrf_token={c.token}&next=",
                headers=HX,
                content_type="Application/X-WWW-Form-Urlencoded; charset=latin-1",
            ),
        ),
        (
            "two tokens, the first forged",
            lambda c: post(
                c,
                data=MultiDict([("csrf_token", forged(c.token)), ("csrf_token", c.token)]),
                headers=HX,
            ),
        ),
        (
            "two tokens, the first good",
            lambda c: post(
                c, data=MultiDict([("csrf_token", c.token), ("csrf_token", "forged")]), headers=HX
            ),
        ),
        (
            "on_idea_page twice, 0 first",
            lambda c: post(
                c,
                data=MultiDict(
                    [("csrf_token", c.token), ("on_idea_page", "0"), ("on_idea_page", "1")]
                ),
                headers=HX,
            ),
        ),
        ("from the idea page", lambda c: post(c, data=form(c, on_idea_page="1"), headers=HX)),
        (
            "an empty token field, the token under a prefixed name",
            lambda c: post(c, data={"csrf_token": "", "vote-csrf_token": c.token}, headers=HX),
        ),
        (
            "a token in a header and a forged one in the form",
            lambda c: post(
                c, data={"csrf_token": "forged"}, headers={**HX, "X-CSRFToken": c.token}
            ),
        ),
        (
            "a token in the second header",
            lambda c: post(c, data={}, headers={**HX, "X-CSRF-Token": c.token}),
        ),
        ("a body over 4 KB", lambda c: post(c, data=form(c, pad=PAD), headers=HX)),
        (
            "a body over MAX_CONTENT_LENGTH",
            lambda c: post(c, data=form(c, pad="x" * (2 << 20)), headers=HX),
        ),
        (
            "invalid UTF-8, token in the header",
            lambda c: post(
                c,
                data=b"next=\xff\xfe",
                headers={**HX, "X-CSRFToken": c.token},
                content_type="application/x-www-form-urlencoded",
            ),
        ),
        ("a forged token", lambda c: post(c, data={"csrf_token": forged(c.token)}, headers=HX)),
        (
            "another session's token",
            lambda c: post(c, data={"csrf_token": c.other_token}, headers=HX),
        ),
        ("no token", lambda c: post(c, data={"next": ""}, headers=HX)),
        ("an expired session", expired),
        (
            "a deleted idea",
            lambda c: post(c, f"/ideas/{c.deleted.id}/vote", data=form(c), headers=HX),
        ),
        ("a missing idea", lambda c: post(c, "/ideas/987654/vote", data=form(c), headers=HX)),
        (
            "an id past the largest integer",
            lambda c: post(c, "/ideas/2147483648/vote", data=form(c), headers=HX),
        ),
        (
            "a leading zero",
            lambda c: post(c, f"/ideas/0{c.idea.id}/vote", data=form(c), headers=HX),
        ),
        (
            "a trailing slash",
            lambda c: post(c, f"/ideas/{c.idea.id}/vote/", data=form(c), headers=HX),
        ),
        ("GET", lambda c: c.client.get(f"/ideas/{c.idea.id}/vote", headers=HX)),
        (
            "staff",
            lambda c: c.staff_client.post(
                f"/ideas/{c.idea.id}/vote", data={"csrf_token": c.staff_token}, headers=HX
            ),
        ),
        (
            "a visitor",
            lambda c: c.app.test_client().post(
                f"/ideas/{c.idea.id}/vote", data=form(c), headers=HX
            ),
        ),
        ("over the limit", over_limit),
        (
            "a history restore",
            lambda c: post(c, data=form(c), headers={**HX, "HX-History-Restore-Request": "true"}),
        ),
        ("HX-Request: True", lambda c: post(c, data=form(c), headers={"HX-Request": "True"})),
        ("a plain form post", lambda c: post(c, data=form(c))),
        (
            "Accept-Encoding: GZIP",
            lambda c: post(c, data=form(c), headers={**HX, "Accept-Encoding": "GZIP"}),
        ),
        (
            "Accept-Encoding: *",
            lambda c: post(c, data=form(c), headers={**HX, "Accept-Encoding": "*"}),
        ),
        (
            "gzip refused (q=0)",
            lambda c: post(
                c, data=form(c), headers={**HX, "Accept-Encoding": "gzip;q=0, identity"}
            ),
        ),
        ("gzip", lambda c: post(c, data=form(c), headers={**HX, "Accept-Encoding": "gzip"})),
        ("Russian", lambda c: post(c, data=form(c), headers={**HX, "Accept-Language": "ru"})),
    ]


ODD_VOTES = _odd_votes()
#: Cases the fast path must answer itself when on (so the table exercises it).
ANSWERED_FAST = {
    "an ordinary vote",
    "no Content-Type, token in the header",
    "a harmless query",
    "multipart",
    "JSON, token in the header",
    "the form type in capitals, with a charset",
    "two tokens, the first good",
    "on_idea_page twice, 0 first",
    "an empty token field, the token under a prefixed name",
    "a token in the second header",
    "invalid UTF-8, token in the header",
    "Accept-Encoding: GZIP",
    "Accept-Encoding: *",
    "gzip refused (q=0)",
    "gzip",
    "Russian",
}


def test_odd_votes_get_the_same_answer_and_rows_with_the_fast_path_on_or_off(make_fast_app):
    """Each odd vote request gets the same status, fragment (tokens aside) and vote rows
    whether the fast path is on or off; and the fast path really answers the ordinary
    ones (it must not pass parity by passing everything on)."""
    now = [utcnow()]
    app = make_fast_app(
        CLOCK=lambda: now[0],
        RATELIMIT_ENABLED=True,
        VOTE_LIMIT="2 per minute",
        PASSWORD_HASH_METHOD="scrypt:1024:8:1",
    )
    layer = _fast_layer(app)
    with app.app_context():
        staff = make_user(role="staff")
        answers, fast = {}, set()
        for name, call in ODD_VOTES:
            for on in (True, False):
                layer.enabled = on
                member = make_user(name="A voter")
                client, token = sign_in(app, member)
                staff_client, staff_token = sign_in(app, staff)
                deleted = make_idea()
                deleted.deleted_at = utcnow()
                db.session.commit()
                case = SimpleNamespace(
                    app=app,
                    member=member,
                    client=client,
                    token=token,
                    other_token=staff_token,
                    staff_client=staff_client,
                    staff_token=staff_token,
                    # Its own board (one live idea per title on a board) and its author
                    # (a voter now), named alike in both runs.
                    idea=make_idea(
                        make_user(name="The author"), title="The case at hand", board=make_board()
                    ),
                    deleted=deleted,
                    spare=[make_idea(), make_idea()],
                    now=now,
                    start=now[0],
                )
                via_flask, resp = handled_by_flask(app, lambda c=case, f=call: f(c))
                if on and not via_flask:
                    fast.add(name)
                answers[name, on] = (_comparable(resp, case.idea.id), _rows(case))
        layer.enabled = True
    differ = [name for name, _ in ODD_VOTES if answers[name, True] != answers[name, False]]
    assert not differ, "\n".join(f"{n}: {answers[n, True]} != {answers[n, False]}" for n in differ)
    assert fast >= ANSWERED_FAST, sorted(ANSWERED_FAST - fast)
    assert answers["?x=%00", False][0][0] == 400
    assert answers["no Content-Type, token only in the body", False][0][0] == 400


def test_a_vote_can_vote_refuses_is_refused_by_both_paths(make_fast_app, monkeypatch):
    """Make permissions.can_vote refuse everyone: the Flask route answers 403 and stores
    nothing, and so does the fast path where it asks the predicate (SQLite); where its one
    statement runs the SQL twin instead (PostgreSQL), the truth table names the case."""
    from ideaboard import permissions

    from . import test_permission_twins as twins

    app = make_fast_app()
    with app.app_context():
        idea = make_idea()
        client, token = sign_in(app, make_user())
        monkeypatch.setattr(permissions, "can_vote", lambda user, idea: False)
        plain = client.post(f"/ideas/{idea.id}/vote", data={"csrf_token": token})
        assert plain.status_code == 403 and _state(idea.id)[:2] == (1, 1)  # the author's
        via_flask, resp = handled_by_flask(app, lambda: vote(client, idea.id, token))
        if db.engine.dialect.name == "sqlite":
            assert via_flask and resp.status_code == 403
            assert _state(idea.id)[:2] == (1, 1)
        else:
            users, ideas = twins._world()
            found = twins.mismatches(
                "can_vote",
                permissions.can_vote,
                permissions.can_vote_sql,
                (User, Idea),
                users,
                ideas,
            )
            assert found and all("predicate False" in line for line in found)
