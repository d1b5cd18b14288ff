"""Visitors' pages are cached, and every write is visible on anyone's next page load."""

import re
import uuid

import pytest

from ideaboard.extensions import db
from ideaboard.services import comments, roadmap, votes

from .conftest import BACKEND, TEST_REDIS, _reset, redis_or_skip
from .factories import login_as, make_comment, make_idea, make_user

REDIS = TEST_REDIS


def _statements(client, count_queries, url, **kw):
    with count_queries() as counter:
        resp = client.get(url, **kw)
    return resp, counter.count


def test_second_visit_is_served_from_cache(app, client, count_queries):
    """A repeated visitor page costs one statement (the version) and the same bytes."""
    make_idea(title="Cached idea")
    first, n_first = _statements(client, count_queries, "/ideas")
    second, n_second = _statements(client, count_queries, "/ideas")
    assert first.status_code == second.status_code == 200
    assert second.data == first.data and b"Cached idea" in second.data
    assert n_first > 1 and n_second <= 1  # at most the version (none with a file)


def test_visitor_pages_carry_no_token_and_set_no_cookie(make_app):
    """A visitor's page holds no CSRF token and sets no cookie, so it can be shared (with
    CSRF protection on, as in production: a form made for a visitor would set one)."""
    app = make_app(WTF_CSRF_ENABLED=True)
    _reset(app)
    client = app.test_client()
    with app.app_context():
        idea = make_idea()
        make_comment(idea)
    for url in ("/", "/ideas", f"/ideas/{idea.id}", "/roadmap", "/b/general"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert b"csrf_token" not in resp.data and b"X-CSRFToken" not in resp.data, url
        assert "Set-Cookie" not in resp.headers, url


@pytest.mark.parametrize("change", ["vote", "comment", "status", "edit"])
def test_every_write_shows_on_the_next_visitor_load(app, client, change):
    """After a vote, comment, status change or edit, a visitor's next load shows it."""
    author, staff = make_user(), make_user("staff")
    idea = make_idea(author, title="Fresh idea")
    urls = ["/", "/ideas", f"/ideas/{idea.id}", "/roadmap", f"/api/v1/ideas/{idea.id}"]
    for url in urls:
        client.get(url)  # fill the cache
    if change == "vote":
        votes.toggle_vote(staff, idea)  # the second vote: the author's is the first
        expected = {f"/ideas/{idea.id}": b'<span class="vote-count">2</span>'}
    elif change == "comment":
        comments.add_comment(staff, idea, "A brand new comment")
        expected = {f"/ideas/{idea.id}": b"A brand new comment", "/ideas": b"1 comment"}
    elif change == "status":
        roadmap.change_status(staff, idea, "planned", "Soon")
        expected = {f"/ideas/{idea.id}": b"Soon", f"/api/v1/ideas/{idea.id}": b'"planned"'}
    else:
        from ideaboard.services import ideas

        from .factories import general_board

        ideas.update_idea(
            author,
            idea,
            title="Renamed idea",
            body="",
            kind="idea",
            board=general_board(),
            version=1,
        )
        expected = {url: b"Renamed idea" for url in ("/", "/ideas", "/roadmap")}
    db.session.commit()
    for url, needle in expected.items():
        assert needle in client.get(url).data, (change, url)


def test_write_through_a_request_invalidates_too(app, client):
    """A member's vote through the site is visible to the next visitor immediately."""
    idea = make_idea()
    member_client = app.test_client()
    login_as(member_client, make_user())
    assert b'<span class="vote-count">1</span>' in client.get(f"/ideas/{idea.id}").data
    assert member_client.post(f"/ideas/{idea.id}/vote").status_code == 303
    assert b'<span class="vote-count">2</span>' in client.get(f"/ideas/{idea.id}").data


def _token_in(html: bytes) -> str:
    import re

    return re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()


def test_member_pages_are_cached_per_session_and_fresh_after_writes(app, client, count_queries):
    """A member's repeat visit is a cache hit; their own vote shows at once afterwards."""
    idea, member = make_idea(), make_user(name="Mia Member")
    login_as(client, member)
    client.get("/ideas")  # the first page creates the session's CSRF token
    first, _ = _statements(client, count_queries, "/ideas")
    again, n = _statements(client, count_queries, "/ideas")
    assert again.data == first.data and n <= 1 and b"Mia Member" in again.data
    assert again.headers["Cache-Control"] == "no-store"
    votes.toggle_vote(member, idea)
    db.session.commit()
    resp, n = _statements(client, count_queries, "/ideas")
    assert n > 1 and b'aria-pressed="true"' in resp.data


def test_cached_member_pages_never_cross_sessions_or_people(app):
    """Two sessions of one member, and another member, each get their own page and token."""
    make_idea()
    mia, max_ = make_user(name="Mia Member"), make_user(name="Max Other")
    tab_a, tab_b, other = app.test_client(), app.test_client(), app.test_client()
    for client, user in ((tab_a, mia), (tab_b, mia), (other, max_)):
        login_as(client, user)
        client.get("/ideas")
    pages = {
        name: c.get("/ideas").data for name, c in (("a", tab_a), ("b", tab_b), ("other", other))
    }
    assert _token_in(pages["a"]) != _token_in(pages["b"])
    assert b"Max Other" in pages["other"] and b"Max Other" not in pages["a"]
    assert b"Mia Member" in pages["b"] and b"Mia Member" not in pages["other"]


def test_demoted_staff_never_gets_a_cached_staff_page(app, client):
    """A role change is a write: the next page renders anew, and the old session ends."""
    from ideaboard.services import accounts

    from .factories import reload

    idea = make_idea()
    admin, staff = make_user("admin"), make_user("staff", name="Sam Staff")
    login_as(client, staff)
    client.get(f"/ideas/{idea.id}")
    assert b"Move on the roadmap" in client.get(f"/ideas/{idea.id}").data
    accounts.change_role(admin, reload(staff), "member")
    db.session.commit()
    page = client.get(f"/ideas/{idea.id}").data
    assert b"Move on the roadmap" not in page and b"Sam Staff" not in page


def test_locales_and_htmx_are_cached_apart(app, client):
    """English, Russian and htmx fragments of one URL are separate cache entries."""
    make_idea()
    en = client.get("/roadmap", headers={"Accept-Language": "en"}).data
    ru = client.get("/roadmap", headers={"Accept-Language": "ru"}).data
    assert b"Roadmap" in en and "Дорожная карта".encode() in ru
    frag = client.get("/ideas", headers={"HX-Request": "true"}).data
    full = client.get("/ideas").data
    assert b"<html" not in frag and b"<html" in full


def test_two_workers_sharing_redis_see_each_others_writes(make_app):
    """Two app instances (two workers) with one REDIS_URL: a write in one refreshes both."""
    redis_or_skip()
    worker_a = make_app(REDIS_URL=REDIS, RATELIMIT_KEY_PREFIX=uuid.uuid4().hex)
    worker_b = make_app(REDIS_URL=REDIS, RATELIMIT_KEY_PREFIX=uuid.uuid4().hex)
    _reset(worker_a)
    with worker_a.app_context():
        idea = make_idea(title="Shared idea")
        voter = make_user()
    a, b = worker_a.test_client(), worker_b.test_client()
    for client in (a, b):  # the author's vote
        assert b'<span class="vote-count">1</span>' in client.get(f"/ideas/{idea.id}").data
    member = worker_a.test_client()
    login_as(member, voter)
    assert member.post(f"/ideas/{idea.id}/vote").status_code == 303
    for client in (a, b):
        assert b'<span class="vote-count">2</span>' in client.get(f"/ideas/{idea.id}").data


def test_redis_restart_never_replays_old_versions(make_app):
    """If Redis loses the counter, it restarts above every version handed out before."""
    client = redis_or_skip()
    app = make_app(REDIS_URL=REDIS)
    store = app.extensions["ideaboard_cache"].versions
    with app.app_context():
        before = store.read()
        store.bump()
        assert store.read() == before + 1
        client.delete(store.KEY)  # what a restart of a diskless Redis looks like
        store.bump()
        assert store.read() > before + 1


def test_a_community_page_reads_version_and_generation_together_even_after_a_restart(make_app):
    """With Redis, a community page reads the content version and the community generation
    in one round trip; after a restart of a diskless Redis both start again above every
    value handed out before (never a replay of a kept stamp's generation)."""
    client = redis_or_skip()
    app = make_app(REDIS_URL=REDIS)
    cache = app.extensions["ideaboard_cache"]
    with app.app_context():
        version, generation = cache.read_versions(True)
        cache.generations.bump()
        assert cache.read_versions(True) == (version, generation + 1)
        assert cache.read_versions(False) == (version, None)
        client.delete(cache.versions.key, cache.generations.key)
        again = cache.read_versions(True)
        assert again[0] > version and again[1] > generation + 1


def test_version_file_is_shared_between_processes_and_survives_replacement(tmp_path):
    """Two workers (two stores on one file) see each other's bumps, also after the file is
    deleted or replaced under them, and never see a value twice."""
    from ideaboard.perf.pagecache import FileVersionStore

    path = tmp_path / "ideaboard.db.version"
    one, two = FileVersionStore(path), FileVersionStore(path)
    seen = {one.read()}
    assert two.read() in seen
    one.bump()
    assert two.read() not in seen
    seen.add(two.read())
    path.unlink()  # an admin cleans up; the next read makes a fresh value
    fresh = two.read()
    assert fresh not in seen and one.read() == fresh
    seen.add(fresh)
    replacement = tmp_path / "other"
    replacement.write_text("restored-elsewhere")
    replacement.replace(path)
    assert one.read() == two.read() == "restored-elsewhere"
    two.bump()
    assert one.read() not in seen | {"restored-elsewhere"}


def test_visitor_hit_skips_flask_but_keeps_every_header(app, client):
    """A repeated visitor page is answered before Flask runs a single hook, with the same
    body and headers as the rendered one and a fresh CSP nonce; a request that carries a
    session cookie, and the first request after a write, go through Flask."""
    idea = make_idea(title="Fast path idea")
    calls = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: calls.append(1))
    url = f"/ideas/{idea.id}"
    rendered = client.get(url, headers={"Accept-Encoding": "gzip"})
    served = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert len(calls) == 1, "the second visit ran Flask's request hooks"
    assert served.status_code == 200 and served.data == rendered.data
    skip = {"Content-Security-Policy", "Date"}
    assert {k: v for k, v in served.headers if k not in skip} == {
        k: v for k, v in rendered.headers if k not in skip
    }
    nonce = re.compile(r"'nonce-[^']+'")
    csp = [r.headers["Content-Security-Policy"] for r in (rendered, served)]
    assert nonce.sub("N", csp[0]) == nonce.sub("N", csp[1]) and csp[0] != csp[1]

    member = make_user()
    login_as(client, member)
    client.get(url)
    assert len(calls) == 2, "a signed-in member's page skipped Flask"
    client.delete_cookie("session")
    votes.toggle_vote(make_user(), idea)
    db.session.commit()
    fresh = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert len(calls) == 3 and fresh.data != rendered.data  # the vote shows at once


@pytest.mark.parametrize("shared", ["redis", "page file"])
def test_workers_render_a_page_once(make_app, count_queries, shared):
    """With REDIS_URL, a page one worker rendered is served by another from Redis; with
    SQLite and no Redis, from the page file beside the database (perf/pagefile.py). A
    write still refreshes it for both."""
    if shared == "redis":
        redis_or_skip()
        settings = {"REDIS_URL": REDIS}
    elif BACKEND != "sqlite":
        pytest.skip("the page file is SQLite's; PostgreSQL's workers share through Redis")
    else:
        settings = {}
    worker_a = make_app(RATELIMIT_KEY_PREFIX=uuid.uuid4().hex, **settings)
    worker_b = make_app(RATELIMIT_KEY_PREFIX=uuid.uuid4().hex, **settings)
    _reset(worker_a)
    with worker_a.app_context():
        idea = make_idea(title="Rendered once")
        member = make_user()
    a, b = worker_a.test_client(), worker_b.test_client()
    login_as(a, member)
    a.get("/")  # the session gets its CSRF token (part of a member's page key)
    b.set_cookie("session", a.get_cookie("session").value)  # one member, two workers
    url = f"/ideas/{idea.id}"
    first = a.get(url)
    with worker_b.app_context(), count_queries() as queries:
        second = b.get(url)
    assert second.status_code == 200 and second.data == first.data
    assert queries.count == 0, queries.statements  # no user, no idea: the shared copy
    assert b"Sign out" in second.data or b"logout" in second.data  # the member's own page
    with worker_a.app_context():
        votes.toggle_vote(make_user(), idea)
        db.session.commit()
    assert b'<span class="vote-count">2</span>' in b.get(url).data  # and the author's


def test_comment_lists_are_shared_only_by_people_who_see_the_same(app, client):
    """One rendering of a page of comments serves every visitor and every member who wrote
    none of them; their author sees an edit link on their own, staff see their forms, and a
    new comment shows for everyone at once."""
    author, reader, other = make_user(), make_user(), make_user()
    staff = make_user(role="staff")
    idea = make_idea()
    mine = make_comment(idea, author=author, body="*Mine*")
    url = f"/ideas/{idea.id}"
    edit_link = f"/comments/{mine.id}/edit".encode()

    def page(user):
        c = app.test_client()
        if user:
            login_as(c, user)
        return c.get(url).data

    for user in (None, reader, other):
        body = page(user)
        assert b"<em>Mine</em>" in body and edit_link not in body
    assert edit_link in page(author)
    staff_page = page(staff)
    assert b"<em>Mine</em>" in staff_page and b"&lt;em&gt;" not in staff_page
    make_comment(idea, author=other, body="Second thoughts")
    assert b"Second thoughts" in page(reader)
    assert f"/comments/{mine.id + 1}/edit".encode() in page(other)  # now theirs too


def test_a_lists_count_is_read_once_per_version_and_is_right_after_a_write(app, count_queries):
    """A list's count is the same for every member: the first member's board page counts,
    the next member's reads only its own rows; a new idea moves the version, and the next
    page counts again and shows it."""
    for n in range(3):
        make_idea(title=f"Counted idea {n}")
    one, two = app.test_client(), app.test_client()
    for client in (one, two):
        login_as(client, make_user())
        client.get("/")  # the session gets its CSRF token (part of a member's page key)
    first, n_first = _statements(one, count_queries, "/ideas")
    assert "3 ideas" in first.get_data(as_text=True)
    with count_queries() as counted:
        second = two.get("/ideas")
    assert "3 ideas" in second.get_data(as_text=True)
    assert not [s for s in counted.statements if "count(" in s.lower()], counted.statements
    make_idea(title="One more")
    again = two.get("/ideas").get_data(as_text=True)
    assert "4 ideas" in again and "One more" in again
