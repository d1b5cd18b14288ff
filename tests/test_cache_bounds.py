"""Every cache is bounded by bytes, junk URLs are not cached, and with Redis the shared
pages keep within their budget, so rate-limit counters beside them survive a flood."""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from flask import request_started
from itsdangerous import URLSafeTimedSerializer

from ideaboard.config import Config
from ideaboard.perf import pagefile, rows
from ideaboard.perf.fastvote import VoteFastPath, _Checked
from ideaboard.perf.pagecache import PageStore
from ideaboard.perf.pagefile import FilePageStore

from .conftest import _reset
from .factories import login_as, make_comment, make_idea, make_user
from .servers import free_port

KIB, MIB = 1024, 1024 * 1024


def _rss() -> int:
    """This process's resident memory, in bytes."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _held(store) -> int:
    """What a store holds, measured apart from its own accounting."""
    return len(pickle.dumps(list(store._items.items()), protocol=pickle.HIGHEST_PROTOCOL))


def _local(store):
    """A worker's own store (the first level, where there is a shared one behind it)."""
    return getattr(store, "local", store)


def _own_page_file(app) -> None:
    """Start `app`'s page file afresh (SQLite): the file beside the test database holds
    the pages, and the budget counts, of every earlier test's app in this worker."""
    shared = getattr(app.extensions["ideaboard_cache"].pages, "shared", None)
    if isinstance(shared, FilePageStore):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{shared.path}{suffix}").unlink(missing_ok=True)


def _counting_flask(app) -> list:
    seen: list = []
    request_started.connect(lambda sender, **_: seen.append(1), app, weak=False)
    return seen


def test_a_flood_of_junk_urls_keeps_the_page_store_within_its_byte_budget(make_app):
    """Junk URLs are not cached; a flood keeps the page store and RSS within the budget."""
    app = make_app(PAGE_CACHE_MAX_BYTES=MIB, PAGE_CACHE_SHARED_MAX_BYTES=MIB)
    _reset(app)
    _own_page_file(app)
    with app.app_context():
        ideas = [make_idea(title=f"Flooded idea {n}") for n in range(20)]
    client = app.test_client()
    flask = _counting_flask(app)
    junk = "x" * 1500

    def flood(count: int) -> None:
        for n in range(count):
            client.get(f"/ideas?utm_{n}={junk}")  # an undeclared parameter
            client.get(f"/ideas?sort={junk}{n}")  # a declared one, with junk values
            client.get(f"/ideas?sort=top&sort={n}")  # a declared one, twice
            client.get(f"/ideas/{'0' * (n + 1)}{ideas[0].id}")  # the same idea, another path
            client.get(f"/ideas/{ideas[0].id}-{junk[:100]}{n}")  # not the idea's own slug

    flood(5)  # templates, rows and the allocator's first arenas
    rss_before = _rss()
    flood(300)
    grown = _rss() - rss_before
    pages = app.extensions["ideaboard_cache"].pages
    store = _local(pages)
    assert _held(store) <= MIB
    assert store.bytes <= store.max_bytes == MIB
    shared = getattr(pages, "shared", None)
    if isinstance(shared, FilePageStore):  # SQLite: the page file the workers share
        assert shared.used() <= MIB and _file_bytes(shared) <= 2 * MIB
    own = f"/ideas/{ideas[0].id}-flooded-idea-0"  # the idea's own address: cached
    for url, cached in (
        (f"/ideas?utm_1={junk}", False),
        ("/ideas?sort=top&sort=1", False),
        (f"/ideas/00{ideas[0].id}", False),
        (f"/ideas/{ideas[0].id}-{junk[:100]}1", False),
        (own, True),
        ("/ideas?sort=top&q=x", True),
    ):
        client.get(url)
        before = len(flask)
        assert client.get(url).status_code == 200
        assert len(flask) == before + (not cached), (url, cached)
    # What the flood made (1,500 pages of 10-60 KB, 25 MB kept before the budget) was
    # dropped again: the process grew by no more than what the store may hold, and slack.
    assert grown < 8 * MIB, grown


def test_list_rows_fragments_and_pages_are_bounded_by_bytes(make_app, monkeypatch):
    """Page, fragment and row stores keep within their byte budgets, evicting the LRU first."""
    store = PageStore(max_bytes=64 * KIB)
    for n in range(400):
        store.put(("page", n), (200, os.urandom(1024), [], None, "x"))
        assert store.get(("page", 0)) is not None  # kept: used more recently than others
    assert _held(store) <= store.bytes <= 64 * KIB and store.get(("page", 1)) is None
    assert rows._rows.max_bytes == Config.ROW_CACHE_MAX_BYTES
    monkeypatch.setattr(rows, "_rows", PageStore(max_bytes=32 * KIB))
    # A page of 15 comments weighs about 25 KB (each with its Report link): room for some
    # of the 16 pages, not all (an item may take an eighth of the store).
    app = make_app(FRAGMENT_CACHE_MAX_BYTES=256 * KIB, PAGE_CACHE_MAX_BYTES=MIB)
    _reset(app)
    with app.app_context():
        for n in range(100):
            make_idea(title=f"Row {n} " + "t" * 100)
        commented = [make_idea() for _ in range(4)]
        for idea in commented:
            for n in range(15):
                make_comment(idea, body=f"Comment {n} on {idea.id}")
        member = make_user()
    visitor, signed_in = app.test_client(), app.test_client()
    login_as(signed_in, member)
    for client in (visitor, signed_in):
        for lang in ("en", "ru"):
            for page in range(1, 6):
                client.get(f"/ideas?page={page}", headers={"Accept-Language": lang})
            for idea in commented:
                client.get(f"/ideas/{idea.id}", headers={"Accept-Language": lang})
    cache = app.extensions["ideaboard_cache"]
    pages = _local(cache.pages)
    assert pages.max_bytes == MIB and _held(pages) <= pages.bytes <= MIB
    fragments = cache.fragments
    assert 0 < len(fragments._items) < 2 * 2 * len(commented)  # some were pushed out
    assert _held(fragments) <= fragments.bytes <= fragments.max_bytes == 256 * KIB
    assert 0 < len(rows._rows._items) < 2 * 2 * 100
    assert _held(rows._rows) <= rows._rows.bytes <= 32 * KIB


def _file_bytes(store: FilePageStore) -> int:
    """What the page file holds of pages (their names and values), read from the file."""
    conn = sqlite3.connect(store.path)
    try:
        sql = "SELECT coalesce(sum(length(name) + length(value)), 0) FROM pages"
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_the_page_file_is_bounded_by_bytes_in_each_window(tmp_path, monkeypatch):
    """The workers' shared page file: each window of TTL seconds writes at most half the
    budget (more pages are kept only in each worker), a page is read in its window and the
    next only, and a new window's first write deletes what is older: the file never holds
    more than the budget, whatever is rendered."""
    now = [1_000_000 * FilePageStore.TTL]
    monkeypatch.setattr(pagefile.time, "time", lambda: now[0])
    store = FilePageStore(tmp_path / "ideaboard.db.pages", max_bytes=256 * KIB, markup_version=1)
    other = FilePageStore(tmp_path / "ideaboard.db.pages", max_bytes=256 * KIB, markup_version=1)
    body = os.urandom(1024)
    for n in range(400):
        store.put(("page", n), (200, body, (), None, "x"))
    kept = [n for n in range(400) if other.get(("page", n)) is not None]
    assert 100 < len(kept) < 128 and kept == list(range(len(kept)))  # the first, in order
    assert store.used() <= 128 * KIB and _file_bytes(store) <= 128 * KIB
    assert other.get(("page", 0)) == (200, body, (), None, "x")  # as it was put

    now[0] += FilePageStore.TTL  # the next window: the last one's pages still read
    store.put(("page", "next"), (200, body, (), None, "x"))
    assert other.get(("page", 0)) is not None and other.get(("page", "next")) is not None
    for n in range(400):
        store.put(("later", n), (200, body, (), None, "x"))
    assert _file_bytes(store) <= 256 * KIB

    now[0] += FilePageStore.TTL  # two windows on: the first window's pages are gone
    assert other.get(("page", 0)) is None
    store.put(("page", "again"), (200, body, (), None, "x"))
    assert _file_bytes(store) <= 128 * KIB + 2 * KIB
    assert other.get(("page", "again")) is not None


def test_a_page_file_that_cannot_be_written_costs_only_a_render(tmp_path):
    """A page file in a folder that is gone: nothing raises, nothing is found."""
    store = FilePageStore(tmp_path / "gone" / "ideaboard.db.pages", 1024 * KIB, markup_version=1)
    store.put(("page", 1), (200, b"x", [], None, "x"))
    assert store.get(("page", 1)) is None


def test_the_vote_fast_paths_memos_are_bounded(app):
    """The vote fast path's signature and fragment memos stay bounded whatever arrives."""
    serializer = URLSafeTimedSerializer("k", salt="s")
    checked = _Checked(serializer)
    for _ in range(3000):
        checked.loads(serializer.dumps(os.urandom(1500).hex()), None)  # incompressible
    assert sum(len(value) for value in checked._seen) <= MIB
    fast = VoteFastPath(app, app.wsgi_app)
    for n in range(300):
        fast._fragment("en", n % 2 == 0, f"/root{n}")
    assert len(fast._fragments) <= 64


# -- Redis -----------------------------------------------------------------------------


@pytest.fixture
def small_redis(tmp_path):
    """A private redis-server with 8 MB of memory and the documented policy (noeviction)."""
    redis = pytest.importorskip("redis")
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
            "--maxmemory",
            "8mb",
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        yield url, client
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_shared_pages_keep_their_budget_and_rate_limit_counters_survive(make_app, small_redis):
    """A page flood keeps Redis within the shared budget, and a sign-in limit still hits 429."""
    url, redis = small_redis
    app = make_app(
        REDIS_URL=url,
        RATELIMIT_ENABLED=True,
        LOGIN_LIMIT_IP="3 per minute",
        PAGE_CACHE_SHARED_MAX_BYTES=MIB,
    )
    _reset(app)
    with app.app_context():
        for n in range(20):
            make_idea(title=f"Shared flood {n}")
        make_user(email="someone@example.com")
    client = app.test_client()
    wrong = {"email": "someone@example.com", "password": "not the password"}
    assert client.post("/login", data=wrong).status_code == 422
    junk = "y" * 1500
    for n in range(400):  # about 16 MB of distinct pages: twice what this Redis may hold
        resp = client.get(f"/ideas?sort={junk}{n}", headers={"Accept-Encoding": "identity"})
        assert resp.status_code == 200
    pages = sum(redis.strlen(key) for key in redis.scan_iter("ideaboard:page:*"))
    assert 0 < pages <= MIB, pages
    assert [client.post("/login", data=wrong).status_code for _ in range(3)] == [422, 422, 429]
