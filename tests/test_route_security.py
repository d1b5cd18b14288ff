"""What every route inherits, proven over the whole route inventory (tests/routes.py).

CSRF on every state-changing route (security.md #12), no state change on GET (#14),
CORS off and no cookie-authenticated API writes (#15), request size (#11), exact
security headers on every GET route and error page with a fresh CSP nonce (#16, #42),
rate limits where configured (#40), and absolute URLs from BASE_URL whatever the Host
header says (#45).
"""

from __future__ import annotations

import re

import pytest

from ideaboard.extensions import db

from .conftest import _reset
from .routes import (
    AUTHOR,
    CHEAP_HASH,
    FORMS,
    REFUSED,
    ROUTES,
    STATE_CHANGING,
    Route,
    Target,
    World,
    csrf_token,
    db_snapshot,
    expected,
    form,
    refused_form,
    sign_in,
    snapshot_diff,
    url,
)

WRITES = sorted(e for e, r in ROUTES.items() if r.writes)
CSRF_ROUTES = sorted(e for e, r in ROUTES.items() if r.writes and r.csrf)
GETS = sorted(e for e, r in ROUTES.items() if "GET" in r.methods)
LIMITED = sorted((e, key) for e, r in ROUTES.items() for key in r.limits)
WRITE_LIMITED = sorted((e, key) for e, r in ROUTES.items() for key in r.write_limits)

#: Realistic query strings for the GET routes that take one.
QUERIES = {
    "ideas.index": {"sort": "top", "q": "idea", "status": "heard", "page": "1"},
    "ideas.board": {"sort": "new"},
    "ideas.show": {"cpage": "1"},
    "roadmap.index": {"board": "general"},
    "api.list_ideas": {"sort": "new", "q": "idea", "board": "general"},
    "ideas.new": {"board": "general"},
    "auth.login": {"next": "/ideas"},
}

CSP = re.compile(
    r"default-src 'self'; script-src 'self' 'nonce-([A-Za-z0-9_-]{22,})'; style-src 'self'; "
    r"img-src 'self' https: data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    r"frame-ancestors 'none'"
)
FIXED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def world(app) -> World:
    """Members a and b, a moderator, staff, an admin; ideas with votes and comments."""
    from ideaboard.extensions import db
    from ideaboard.services import comments, roadmap, votes

    w = World.build()
    t = w.target(ROUTES["ideas.show"], owner="a")
    votes.toggle_vote(w.users["b"], t.idea)
    comments.add_comment(w.users["b"], t.idea, "A reply")
    roadmap.change_status(w.users["staff"], t.idea, "planned", "Soon")
    db.session.commit()
    return w


@pytest.fixture
def csrf_world(make_app):
    """An app with CSRF on, as in production, and a world in it."""
    from ideaboard.extensions import db

    app = make_app(WTF_CSRF_ENABLED=True, PASSWORD_HASH_METHOD=CHEAP_HASH)
    _reset(app)
    with app.app_context():
        yield app, World.build()
        db.session.remove()


def _actor(route: Route) -> str:
    """A role that may use `route` on an object owned by member a."""
    return next(
        r for r in ("a", "b", "staff", "admin", "anon") if expected(route, r, owner="a") == "ok"
    )


# --- #12 CSRF -----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", CSRF_ROUTES)
def test_state_changing_route_refuses_missing_wrong_and_foreign_tokens(csrf_world, endpoint):
    """No token, a forged one, or another session's valid one: 400 and no row changes."""
    app, world = csrf_world
    route = ROUTES[endpoint]
    role = _actor(route)
    stranger = app.test_client()
    foreign = csrf_token(stranger)  # valid, but for someone else's session
    target = world.target(route, owner="a")
    path = url(app, endpoint, target)
    for htmx in (False, True):
        for name, token in (("no token", None), ("forged", "forged-token"), ("foreign", foreign)):
            client = app.test_client()
            sign_in(client, world.user(role))
            csrf_token(client)  # the session has its own token: only the sent one is wrong
            data = form(endpoint, world, target, role)
            headers = {"HX-Request": "true"} if htmx else {}
            if token is not None:
                if htmx:
                    headers["X-CSRFToken"] = token
                else:
                    data["csrf_token"] = token
            before = db_snapshot()
            resp = client.post(path, data=data, headers=headers)
            assert resp.status_code == 400, (endpoint, name, htmx, resp.status_code)
            assert db_snapshot() == before, (endpoint, name, htmx)
    # The control: the same request with the session's own token goes through.
    for htmx in (False, True):
        world.refresh()  # a password change before gave the user a new session token
        target = world.target(route, owner="a")
        client = app.test_client()
        sign_in(client, world.user(role))
        token = csrf_token(client)
        data = form(endpoint, world, target, role)
        headers = {"HX-Request": "true", "X-CSRFToken": token} if htmx else {}
        if not htmx:
            data["csrf_token"] = token
        resp = client.post(url(app, endpoint, target), data=data, headers=headers)
        assert resp.status_code == route.ok[htmx], (endpoint, htmx, resp.status_code)


# --- #11 request size ---------------------------------------------------------------


def test_a_2_mib_post_to_any_route_is_refused_with_413(csrf_world):
    """Every route that takes a POST refuses a 2 MiB body with 413 and writes nothing."""
    app, world = csrf_world
    wrong = []
    for endpoint in WRITES:
        route = ROUTES[endpoint]
        role = _actor(route)
        target = world.target(route, owner="a")
        client = app.test_client()
        sign_in(client, world.user(role))
        data = {**form(endpoint, world, target, role), "body": "x" * (2 * 1024 * 1024)}
        before = db_snapshot()
        resp = client.post(url(app, endpoint, target), data=data)
        if resp.status_code != 413 or db_snapshot() != before:
            wrong.append(f"{endpoint}: {resp.status_code}")
    assert not wrong, wrong


# --- #14 no state change on GET -----------------------------------------------------


def _get_cases(app, world: World):
    """(endpoint, role, path) for every GET route, as a visitor, a member and staff."""
    deleted = world.target(ROUTES["ideas.show"], owner="a", deleted=True)
    for endpoint in GETS:
        route = ROUTES[endpoint]
        target = world.target(route, owner="a") if route.target else Target()
        path = url(app, endpoint, target, **QUERIES.get(endpoint, {}))
        for role in ("anon", "a", "staff"):
            yield endpoint, role, path
        if endpoint == "ideas.show":
            yield endpoint, "staff", url(app, endpoint, deleted)


def test_no_get_route_changes_the_database(app, world):
    """Every GET route, for a visitor, a member and staff, leaves every table as it was."""
    cases = list(_get_cases(app, world))
    before = db_snapshot()
    client = app.test_client()
    seen = set()
    for endpoint, role, path in cases:
        sign_in(client, world.user(role))
        for htmx in (False, True):
            resp = client.get(path, headers={"HX-Request": "true"} if htmx else {})
            resp.close()
            assert resp.status_code < 500, (endpoint, role, path, resp.status_code)
            after = db_snapshot()
            assert after == before, (endpoint, role, snapshot_diff(before, after))
        seen.add(endpoint)
    assert seen == set(GETS)


# --- #16, #42 security headers ------------------------------------------------------


def _check_headers(
    resp, what, *, no_store: bool, content_type: str | None, https=False, referrer=None
):
    """The exact security headers every response must carry."""
    h = resp.headers
    problems = []
    if not CSP.fullmatch(h.get("Content-Security-Policy", "")):
        problems.append(f"CSP {h.get('Content-Security-Policy')!r}")
    fixed = dict(FIXED_HEADERS)
    if referrer:
        fixed["Referrer-Policy"] = referrer
    for name, value in fixed.items():
        if h.get(name) != value:
            problems.append(f"{name} {h.get(name)!r}")
    if h.get("Strict-Transport-Security") != (HSTS if https else None):
        problems.append(f"HSTS {h.get('Strict-Transport-Security')!r}")
    if no_store is not None:
        want = "no-store" if no_store else "no-cache"
        if h.get("Cache-Control") != want:
            problems.append(f"Cache-Control {h.get('Cache-Control')!r}, want {want}")
    if content_type and h.get("Content-Type") != content_type:
        problems.append(f"Content-Type {h.get('Content-Type')!r}")
    if h.get("Content-Type", "").startswith("text/html") and "HX-Request" not in h.get("Vary", ""):
        problems.append("Vary lacks HX-Request")
    assert not problems, (what, resp.status_code, problems)


def test_every_get_route_sends_the_exact_security_headers(app, world):
    """Every GET route, for a visitor and a member: exact CSP, framing, sniffing, caching."""
    client = app.test_client()
    for endpoint, role, path in _get_cases(app, world):
        if role == "staff":
            continue
        route = ROUTES[endpoint]
        sign_in(client, world.user(role))
        resp = client.get(path)
        resp.close()
        if endpoint == "static":
            no_store = None  # assets set their own long-lived caching
        elif route.public_cache and role == "anon":
            no_store = None  # a feed: cacheable by anyone for a while
            assert resp.headers.get("Cache-Control") == route.public_cache, endpoint
        else:
            page = resp.status_code == 200 and (route.auth_page or route.personal)
            no_store = role != "anon" or page
        content_type = route.content_type if resp.status_code == 200 else None
        _check_headers(
            resp,
            (endpoint, role),
            no_store=no_store,
            content_type=content_type,
            referrer=route.referrer,
        )


def _error_responses(app, world: World, monkeypatch):
    """One response of each error kind: 400, 403, 404, 405, 413, 500, on pages and the API."""
    idea = world.target(ROUTES["ideas.edit"], owner="a").idea
    client = app.test_client()
    yield "404 page", client.get("/no/such/page")
    yield "404 idea", client.get("/ideas/424242")
    yield "404 api", client.get("/api/v1/ideas/424242")
    yield "400 NUL", client.get("/ideas?q=a%00b")
    for endpoint in WRITES:
        if "GET" not in ROUTES[endpoint].methods:
            target = world.target(ROUTES[endpoint], owner="a")
            yield f"405 {endpoint}", client.get(url(app, endpoint, target))
    yield "405 api", client.post("/api/v1/ideas")
    sign_in(client, world.users["b"])
    yield "403 edit", client.get(f"/ideas/{idea.id}/edit")
    yield "403 htmx", client.post(f"/ideas/{idea.id}/delete", headers={"HX-Request": "true"})
    yield "413", client.post("/ideas/new", data={"body": "x" * (2 * 1024 * 1024)})
    sign_in(client, None)
    from ideaboard.services import boards

    monkeypatch.setattr(boards, "list_boards", _explode)  # the home page fails, as a bug would
    yield "500 page", client.get("/")
    yield "500 htmx", client.get("/", headers={"HX-Request": "true"})
    monkeypatch.undo()


def _explode():
    raise RuntimeError("a bug")


def test_error_pages_send_the_exact_security_headers(make_app, monkeypatch):
    """400, 403, 404, 405, 413 and 500 answers carry the same headers as pages."""
    app = make_app(PROPAGATE_EXCEPTIONS=False, PASSWORD_HASH_METHOD=CHEAP_HASH)
    _reset(app)
    with app.app_context():
        world = World.build()
        seen = set()
        for what, resp in _error_responses(app, world, monkeypatch):
            seen.add(resp.status_code)
            signed_in = what.startswith(("403", "413"))
            _check_headers(resp, what, no_store=signed_in, content_type=None)
        assert seen == {400, 403, 404, 405, 413, 500}


def test_https_deployments_add_hsts_everywhere(make_app):
    """With an https BASE_URL every GET route and error page sends HSTS."""
    app = make_app(BASE_URL="https://ideas.example.com")
    _reset(app)
    with app.app_context():
        world = World.build()
        client = app.test_client()
        for endpoint, role, path in _get_cases(app, world):
            if role == "anon":
                resp = client.get(path, base_url="https://localhost")
                resp.close()
                _check_headers(
                    resp,
                    endpoint,
                    no_store=None,
                    content_type=None,
                    https=True,
                    referrer=ROUTES[endpoint].referrer,
                )
        resp = client.get("/nothing-here", base_url="https://localhost")
        _check_headers(resp, "404", no_store=None, content_type=None, https=True)


def _nonce(resp) -> str:
    return CSP.fullmatch(resp.headers["Content-Security-Policy"]).group(1)


def test_csp_nonce_is_fresh_per_response_even_from_the_page_cache(app, world):
    """Two loads of one page, the second from the cache, carry different nonces, in no body."""
    client = app.test_client()
    for path in ("/ideas", "/", "/api/v1/ideas", "/login"):
        first, second = client.get(path), client.get(path)
        assert first.data == second.data  # same bytes (served from the cache where cacheable)
        assert _nonce(first) != _nonce(second), path
        assert _nonce(first).encode() not in first.data and b"nonce" not in second.data
    sign_in(client, world.users["a"])
    first, second = client.get("/ideas"), client.get("/ideas")
    assert _nonce(first) != _nonce(second)


# --- #15 CORS and cookie-authenticated API writes -----------------------------------


def test_no_route_answers_a_cross_origin_preflight(app, world):
    """A preflight or request from another origin gets no Access-Control-Allow-* header."""
    client = app.test_client()
    sign_in(client, world.users["a"])
    for endpoint, route in ROUTES.items():
        path = url(app, endpoint, world.target(route) if route.target else Target())
        origin = {"Origin": "http://evil.test"}
        preflight = client.options(
            path,
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-CSRFToken",
            },
        )
        plain = client.get(path, headers=origin) if "GET" in route.methods else preflight
        plain.close()
        for resp in (preflight, plain):
            leaked = [h for h in resp.headers.keys() if h.lower().startswith("access-control-")]
            assert not leaked, (endpoint, leaked)


def test_cookie_only_writes_to_the_api_are_refused(make_app):
    """A signed-in browser's cookie alone cannot write through /api/ (CSRF on, as deployed)."""
    app = make_app(WTF_CSRF_ENABLED=True, PASSWORD_HASH_METHOD=CHEAP_HASH)
    _reset(app)
    with app.app_context():
        world = World.build()
        target = world.target(ROUTES["api.show_idea"], owner="a")
        client = app.test_client()
        sign_in(client, world.users["staff"])
        api_paths = {url(app, e, target) for e, r in ROUTES.items() if r.api}
        assert api_paths
        before = db_snapshot()
        for path in sorted(api_paths):
            for method in sorted(STATE_CHANGING):
                resp = client.open(path, method=method, data={"title": "x", "status": "shipped"})
                assert resp.status_code in (400, 401, 403, 405), (method, path, resp.status_code)
                assert resp.mimetype == "application/json"
        assert db_snapshot() == before


# --- #40 rate limits ----------------------------------------------------------------


@pytest.mark.parametrize("endpoint, key", LIMITED)
def test_configured_rate_limit_answers_429_with_retry_after(make_app, endpoint, key):
    """Each configured limit, set to 2 a minute, refuses the third attempt with Retry-After."""
    others = {k: "1000 per minute" for _, k in LIMITED if k != key}
    app = make_app(RATELIMIT_ENABLED=True, **others, **{key: "2 per minute"})
    _reset(app)
    with app.app_context():
        world = World.build()
        route = ROUTES[endpoint]
        role = _actor(route)
        target = world.target(route, owner="a")
        path = url(app, endpoint, target)
        bad = refused_form(endpoint, world, target, role)
        client = app.test_client()
        sign_in(client, world.user(role))
        codes = [client.post(path, data=bad).status_code for _ in range(2)]
        assert 429 not in codes, (endpoint, key, codes)
        before = db_snapshot()
        resp = client.post(path, data=bad)
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
        assert b"Too many attempts" in resp.data
        resp = client.post(path, data=bad, headers={"HX-Request": "true"})
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
        assert b"<html" not in resp.data and b"Slow down" in resp.data  # an htmx fragment
        assert db_snapshot() == before  # a refused attempt writes nothing


@pytest.mark.parametrize("endpoint, key", WRITE_LIMITED)
def test_write_limit_slows_a_member_and_spares_staff(make_app, endpoint, key):
    """Each per-member write limit, set to 2 a minute, refuses a member's third successful
    write with Retry-After and writes nothing; a failed write does not count; staff are
    exempt."""
    app = make_app(RATELIMIT_ENABLED=True, **{key: "2 per minute"})
    _reset(app)
    with app.app_context():
        world = World.build()
        route = ROUTES[endpoint]
        role = _actor(route)
        target = world.target(route, owner="a")
        path = url(app, endpoint, target)
        client = app.test_client()
        sign_in(client, world.user(role))

        def good():
            db.session.expire_all()  # a fresh version for edit forms
            return FORMS[endpoint](world, target, world.user(role))

        if endpoint in REFUSED:
            for _ in range(3):  # failures are free
                assert (
                    client.post(path, data=refused_form(endpoint, world, target, role)).status_code
                    != 429
                )
        codes = [client.post(path, data=good()).status_code for _ in range(2)]
        assert all(code < 400 for code in codes), (endpoint, codes)
        before = db_snapshot()
        resp = client.post(path, data=good())
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0, endpoint
        assert db_snapshot() == before
        resp = client.post(path, data=good(), headers={"HX-Request": "true"})
        assert resp.status_code == 429 and b"<html" not in resp.data

        if route.who == AUTHOR:
            return  # only the author may write here, and authors are members
        staff = app.test_client()
        sign_in(staff, world.user("staff"))
        staff_target = world.target(route, owner="a")
        staff_path = url(app, endpoint, staff_target)
        for _ in range(3):
            db.session.expire_all()
            form = FORMS[endpoint](world, staff_target, world.user("staff"))
            assert staff.post(staff_path, data=form).status_code < 400, endpoint


# --- #45 Host header ----------------------------------------------------------------

_ABSOLUTE = re.compile(r"""https?://[^\s"'<>)]+""")
#: Absolute addresses that are fixed text of ours, not links to this site.
# The comment form's Markdown hint; the favicon's SVG namespace; the Atom feeds' namespace.
_FIXED_TEXT = {
    "https://example.com",
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/2005/Atom",
}


def _absolute_urls_problems(resp, base: str) -> list[str]:
    text = resp.get_data(as_text=True) + " " + resp.headers.get("Location", "")
    problems = [
        u for u in _ABSOLUTE.findall(text) if not u.startswith(base + "/") and u not in _FIXED_TEXT
    ]
    if "evil.test" in text:
        problems.append("evil.test echoed")
    return problems


@pytest.mark.parametrize("hops", [0, 1])
def test_absolute_urls_come_from_base_url_not_the_host_header(make_app, hops):
    """With Host and X-Forwarded-Host set to evil.test, links still point at BASE_URL."""
    app = make_app(PROXY_HOPS=hops)
    _reset(app)
    with app.app_context():
        world = World.build()
        base = app.config["BASE_URL"]
        client = app.test_client()
        evil = {"base_url": "http://evil.test"}  # the Host header the server sees
        spoof = {"X-Forwarded-Host": "evil.test", "X-Forwarded-For": "203.0.113.9"}
        checked = 0
        for endpoint, role, path in _get_cases(app, world):
            if role == "staff" or endpoint == "static":
                continue
            sign_in(client, world.user(role), **evil)
            resp = client.get(path, headers=spoof, **evil)
            assert resp.status_code < 500
            assert not _absolute_urls_problems(resp, base), (endpoint, role)
            checked += 1
        # Redirects built from a form (sign-in's next, a vote's way back) stay relative.
        sign_in(client, world.users["a"], **evil)
        idea = world.target(ROUTES["ideas.vote"], owner="b").idea
        resp = client.post(f"/ideas/{idea.id}/vote", headers=spoof, **evil)
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/ideas/")
        show = client.get(f"/ideas/{idea.id}", headers=spoof, **evil).get_data(as_text=True)
        assert f'rel="canonical" href="{base}/ideas/{idea.id}-' in show
        assert "Sign out" in show  # the member really was signed in on that host
        api = client.get("/api/v1/ideas?per_page=1", headers=spoof, **evil).get_json()
        assert api["items"][0]["url"].startswith(base + "/")
        assert checked >= len(GETS)
