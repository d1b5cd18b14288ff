"""Rate limits hold under bursts: counted before the request, given back after it.

N requests released together behind a barrier let through exactly the limit: wrong
passwords per address and per account, votes (the fast path's and Flask's), new ideas;
with the in-memory storage and with Redis (the production setting), on the suite's
database. A request that should not count (a sign-in that worked, a form sent back with an
error, a vote the fast path passed on to Flask) gives its count back, once. Members' and
visitors' limits live apart, so a forwarded address can never spend a member's budget.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import pytest
from flask import request_started
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Idea, Vote
from ideaboard.services import votes

from .conftest import TEST_REDIS, _reset, redis_or_skip
from .factories import PASSWORD, at_once, general_board, make_idea, make_user
from .test_fastvote import handled_by_flask, sign_in, vote

BURST = 16
CHEAP = "scrypt:1024:8:1"


@pytest.fixture(params=["memory", "redis"])
def limited_app(request, make_app):
    """make(**settings): an app with rate limits on, counting in memory or in Redis."""
    storage = {}
    if request.param == "redis":
        redis_or_skip().flushdb()  # ids start again in every test: so would their counts
        # No key prefix of its own: Flask-Limiter keeps the first app's for the process.
        storage = {"RATELIMIT_STORAGE_URI": TEST_REDIS}

    def make(**settings):
        app = make_app(RATELIMIT_ENABLED=True, PASSWORD_HASH_METHOD=CHEAP, **storage, **settings)
        _reset(app)
        app.flask_requests = []  # for handled_by_flask
        request_started.connect(lambda sender, **_: app.flask_requests.append(1), app, weak=False)
        return app

    return make


def _burst(app, request, n: int = BURST) -> Counter:
    """n requests at once, each from its own browser: request(client, i) -> response."""
    clients = [app.test_client() for _ in range(n)]
    answers = at_once([partial(request, c, i) for i, c in enumerate(clients)])
    return Counter(r.status_code for r in answers)


def test_a_burst_of_wrong_passwords_from_one_address_stops_at_the_limit(limited_app):
    """16 wrong passwords at once from one address, 6 allowed a minute: 6 are checked
    (422), 10 refused (429)."""
    app = limited_app(LOGIN_LIMIT_IP="6 per minute", LOGIN_LIMIT_ACCOUNT="1000 per minute")
    bad = {"email": "someone@example.com", "password": "not the password"}
    codes = _burst(app, lambda c, i: c.post("/login", data=bad))
    assert codes == Counter({422: 6, 429: BURST - 6})


def test_a_burst_of_wrong_passwords_for_one_account_stops_at_the_limit(limited_app):
    """16 wrong passwords at once for one account from 16 addresses, 5 allowed: 5 checked."""
    app = limited_app(LOGIN_LIMIT_IP="1000 per minute", LOGIN_LIMIT_ACCOUNT="5 per 15 minutes")
    with app.app_context():
        user = make_user()

    def attempt(client, i):
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i + 1}"
        return client.post("/login", data={"email": user.email, "password": "wrong one"})

    assert _burst(app, attempt) == Counter({422: 5, 429: BURST - 5})


def test_a_sign_in_that_works_does_not_count_against_the_limit(limited_app):
    """Only failed sign-ins count: each one that works gives its count back."""
    app = limited_app(LOGIN_LIMIT_IP="3 per minute", LOGIN_LIMIT_ACCOUNT="3 per minute")
    with app.app_context():
        user = make_user()
    good = {"email": user.email, "password": PASSWORD}
    bad = {**good, "password": "not it"}
    client = app.test_client()
    assert [client.post("/login", data=good).status_code for _ in range(5)] == [303] * 5
    assert [client.post("/login", data=bad).status_code for _ in range(4)] == [422] * 3 + [429]


def _voting_member(app, n_ideas: int):
    with app.app_context():
        ideas = [make_idea(title=f"Burst idea {i}") for i in range(n_ideas)]
        client, token = sign_in(app, make_user())
    return [i.id for i in ideas], client, token


def _stored_votes() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Vote))


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "flask"])
def test_a_burst_of_votes_stops_at_the_limit(limited_app, fast):
    """16 htmx votes at once by one member on 16 ideas, 5 allowed a minute: 5 are stored
    and answered 200, 11 are refused with 429, whichever path answers."""
    app = limited_app(WTF_CSRF_ENABLED=True, VOTE_LIMIT="5 per minute", VOTE_FAST_PATH=fast)
    ids, signed_in, token = _voting_member(app, BURST)
    cookie = signed_in.get_cookie("session").value

    def click(client, i):
        client.set_cookie("session", cookie)
        return vote(client, ids[i], token)

    assert _burst(app, click) == Counter({200: 5, 429: BURST - 5})
    with app.app_context():  # beyond the ideas' authors' own votes, one each
        assert _stored_votes() == 5 + BURST
        assert db.session.scalar(select(func.sum(Idea.vote_count))) == 5 + BURST


def test_a_burst_of_new_ideas_stops_at_the_limit(limited_app):
    """12 different ideas posted at once by one member, one allowed per 15 s: one is
    posted, 11 are refused with 429."""
    app = limited_app(IDEA_LIMIT="1 per 15 seconds; 20 per day")
    with app.app_context():
        member, board = make_user(), general_board().id
    from .routes import sign_in as session_sign_in

    def post(client, i):
        session_sign_in(client, member)
        form = {"title": f"A new idea {i}", "body": "Details", "board": board, "kind": "idea"}
        return client.post("/ideas/new", data=form)

    assert _burst(app, post, n=12) == Counter({303: 1, 429: 11})
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Idea)) == 1


def test_a_vote_the_fast_path_passes_on_is_counted_once(limited_app, monkeypatch):
    """When the fast path counts a vote and then leaves it to Flask, it gives the count back
    first: Flask counts it, once, so a member still gets every vote of the limit."""
    app = limited_app(WTF_CSRF_ENABLED=True, VOTE_LIMIT="3 per minute")
    ids, client, token = _voting_member(app, 4)
    monkeypatch.setattr(votes, "toggle_for_session", lambda *args, **kwargs: None)
    answers = [handled_by_flask(app, partial(vote, client, i, token)) for i in ids]
    assert [(via_flask, r.status_code) for via_flask, r in answers] == [(True, 200)] * 3 + [
        (True, 429)
    ]


def test_a_forwarded_address_never_spends_a_members_budget(make_app):
    """Behind one proxy (PROXY_HOPS=1), a visitor whose X-Forwarded-For is a member's id
    posts votes; the member still has the whole vote limit (visitors and members are
    counted apart)."""
    app = make_app(RATELIMIT_ENABLED=True, PROXY_HOPS=1, VOTE_LIMIT="2 per minute")
    _reset(app)
    with app.app_context():
        member = make_user()
        ideas = [make_idea() for _ in range(3)]
    from .routes import sign_in as session_sign_in

    visitor = app.test_client()
    spoof = {"X-Forwarded-For": str(member.id)}
    tries = [visitor.post(f"/ideas/{i.id}/vote", headers=spoof).status_code for i in ideas]
    assert tries == [302, 302, 429]  # sent to sign in, then out of their own budget
    client = app.test_client()
    session_sign_in(client, member)
    real = {"X-Forwarded-For": "203.0.113.7"}
    codes = [client.post(f"/ideas/{i.id}/vote", headers=real).status_code for i in ideas]
    assert codes == [303, 303, 429]
