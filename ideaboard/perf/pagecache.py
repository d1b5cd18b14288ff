"""A page cache for visitors that is invalidated exactly, never by a timer.

Every committed write to page content bumps one shared value, the content version: Redis
`INCR` when REDIS_URL is set; with SQLite (one machine by nature) a small file beside the
database file; otherwise a one-row table in the database. freshness.py sees the writes, at
the engine, whoever makes them. A visitor's page is cached under (version, locale, path
and query, htmx or not, encoding), so the first request after any vote, comment or status
change, by anyone on any worker, misses and renders fresh.

A signed-in member's pages are cached the same way, with their session added to the key
(their login id and the session's CSRF token): such a page can only be served back to
the same session. What else it shows (their votes, name, role) changes only through a
write, which bumps the version like any other.

Why it is correct: a request reads the version before it reads any data. With Redis or the
file, a writer bumps the version only after its commit; in the database, the bump is the
last statement of the writer's own transaction, so version and data become visible together.
Either way a page rendered from data older than a commit was keyed with a version older
than that commit's bump, and is never served once the bump is visible.

Page bodies live in a per-process LRU (only the *version* must be shared for
correctness) and, with REDIS_URL, also in Redis, so a page rendered by one worker serves
every worker and host; with SQLite and no Redis, in a file beside the database that the
machine's workers share (pagefile.py); with PostgreSQL and no Redis each worker renders a
page once per version. All are bounded by bytes (PAGE_CACHE_MAX_BYTES,
PAGE_CACHE_SHARED_MAX_BYTES), and only URLs the app
itself makes are cached (CACHEABLE declares each page's query parameters): a visitor cannot
fill memory, or Redis, with pages of junk URLs.

What a cached page shows depends only on its key (page_key): every input that changes the
text or its links is in it (the session, locale, script root, path and query, htmx, content
coding) or refused (a script root other than BASE_URL's).

A visitor's request (no session or remember-me cookie) is answered from the cache before
Flask builds a request at all (VisitorFastPath): the stored response is the final one, with
every header the app added, and only the CSP nonce is made afresh. Anything else, and any
miss, goes through Flask as usual, which renders and stores the page.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import secrets
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import unquote

from flask import Flask, Response, current_app, g, request, session
from flask import get_flashed_messages as flask_get_flashed_messages
from flask_compress.flask_compress import _choose_algorithm
from markupsafe import Markup
from sqlalchemy import Engine, inspect, make_url, select
from werkzeug.wrappers import Request

from ideaboard.assets import compress
from ideaboard.extensions import db
from ideaboard.markup import MARKUP_VERSION
from ideaboard.models import ContentVersion
from ideaboard.security import configured_root

from . import freshness, observe, pagefile, scopes

log = logging.getLogger("ideaboard.cache")

_LIST_QUERY = frozenset({"sort", "status", "kind", "q", "page", "per_page"})

#: Endpoints whose pages depend only on the URL, the locale, the session and the content,
#: each with the query parameters its page reads. A URL with any other parameter, or one
#: twice, is answered uncached: pages echo their own URL (sign-in and language links, each
#: list row's way back), so junk parameters would each make a new page to keep.
CACHEABLE: dict[str, frozenset[str]] = {
    "main.home": frozenset(),
    "ideas.index": _LIST_QUERY | {"board"},
    "ideas.board": _LIST_QUERY,
    "ideas.show": frozenset({"cpage"}),
    "roadmap.index": frozenset({"board"}),
    "api.list_ideas": _LIST_QUERY | {"board"},
    "api.show_idea": frozenset(),
    "changelog.index": frozenset({"page"}),
    # The Atom feeds: a reader's conditional GET gets its 304 from the kept copy's ETag and
    # Last-Modified, in the fast path as in Flask (answer_conditional).
    "changelog.ideas_feed": frozenset(),
    "changelog.board_feed": frozenset(),
    "changelog.changes_feed": frozenset(),
    "changelog.changelog_feed": frozenset(),
    "people.profile": frozenset({"page"}),
    # Community pages: keyed by their community's stamp (or the directory's), not only by
    # the shared version (scopes.py).
    "community.index": frozenset({"page"}),
    "community.show": frozenset({"page"}),
    "community.thread": frozenset({"page"}),
}
MAX_BODY = 512 * 1024
# Longer query strings are answered uncached (a search of 200 Cyrillic letters is 1,200).
MAX_QUERY = 2048
MIB = 1024 * 1024
# Byte budgets when the app's config names none (config.py reads them from the environment).
PAGE_CACHE_MAX_BYTES = 64 * MIB
PAGE_CACHE_SHARED_MAX_BYTES = 128 * MIB
FRAGMENT_CACHE_MAX_BYTES = 16 * MIB
_KEPT_HEADERS = ("Content-Type", "Content-Encoding", "Vary", "ETag", "Last-Modified")
# What a 304 repeats of the stored answer (RFC 9110 15.4.5); never a body's own headers.
_NOT_MODIFIED_HEADERS = frozenset(
    {"etag", "last-modified", "cache-control", "vary", "expires", "content-location"}
)
# Headers a served copy must not repeat: computed per response, or by the server.
_NOT_REPLAYED = frozenset({"content-length", "set-cookie", "date"})
_NONCE = re.compile(r"'nonce-[^']*'")


# What an entry costs beyond its key's and item's own objects: the dict's node and hash
# slot, the (item, size) pair. Measured with tracemalloc: about 160 bytes; rounded up.
_ENTRY_BYTES = 200


def _size(value) -> int:
    """The bytes `value` takes in memory, near enough: strings and bytes their own size,
    tuples and lists with their items (what the stores keep: keys, bodies, headers)."""
    if type(value) is tuple or type(value) is list:
        return sys.getsizeof(value) + sum(map(_size, value))
    return sys.getsizeof(value)


class PageStore:
    """A thread-safe LRU of rendered text, bounded by the bytes it holds.

    Counting entries bounded nothing: one entry may be a 512 KB page. Each entry is
    weighed once, when it is put (key and item, as _size() sees them), and the least
    recently used go until the total is back within `max_bytes`. An entry heavier than an
    eighth of the budget is not kept: it would push out many others.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0  # what the entries held now weigh
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple):
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            self._items.move_to_end(key)
            return entry[0]

    def put(self, key: tuple, item) -> None:
        size = _ENTRY_BYTES + _size(key) + _size(item)
        if size > self.max_bytes // 8:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (item, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _key, (_item, freed) = self._items.popitem(last=False)
                self.bytes -= freed

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


class SharedPageStore:
    """Rendered pages in Redis, shared by every worker and host (a second level behind
    each worker's PageStore).

    Without it each worker renders each page once per version on its own: with three
    workers, every member's first visit after a write was rendered up to three times. Keys
    are a hash of the page key (which holds a member's CSRF token, so it is never written
    out) and expire on their own; a new version makes new keys, so nothing is ever stale.
    A Redis error only costs a render.

    Bounded by bytes, shared by every writer: each window of TTL seconds may write half of
    `max_bytes`, counted atomically in Redis beside the pages. A page lives TTL seconds, so
    what is alive at any moment was written in this window or the last: at most
    `max_bytes`, whatever the number of workers, hosts or distinct URLs. Once a window's
    share is spent, pages are kept only in each worker's own store until the next window.
    So Redis never fills with our pages, and rate-limit counters beside them are never
    refused or evicted for their sake (README: use maxmemory-policy noeviction).
    """

    TTL = 15 * 60
    # Bytes Redis spends on a string key beyond its name and value, near enough.
    OVERHEAD = 64
    _PUT = """
local used = redis.call('INCRBY', KEYS[2], ARGV[2])
if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
if used > tonumber(ARGV[3]) then
  redis.call('DECRBY', KEYS[2], ARGV[2])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[5])
return 1
"""

    def __init__(
        self, redis_url: str, database_url: str, max_bytes: int = PAGE_CACHE_SHARED_MAX_BYTES
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.5)
        # Two boards sharing one Redis never share pages: the names carry the database's.
        site = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        # ...and the markup's version: pages rendered by an older markup are never read.
        self._prefix = f"ideaboard:page:{site}:m{MARKUP_VERSION}:"
        self._budget = f"ideaboard:page-budget:{site}:"
        self.max_bytes = max_bytes
        self._put = self._redis.register_script(self._PUT)

    def _name(self, key: tuple) -> str:
        return self._prefix + hashlib.sha256(repr(key).encode()).hexdigest()

    def get(self, key: tuple):
        try:
            raw = self._redis.get(self._name(key))
        except Exception:  # noqa: BLE001
            log.warning("shared page store unavailable; rendering", exc_info=True)
            return None
        if raw is None:
            return None
        return pagefile.decode(raw)

    def put(self, key: tuple, item) -> None:
        name = self._name(key)
        value = pagefile.encode(item)
        window = int(time.time()) // self.TTL
        try:
            self._put(
                keys=[name, f"{self._budget}{window}"],
                args=[
                    value,
                    len(name) + len(value) + self.OVERHEAD,
                    self.max_bytes // 2,
                    2 * self.TTL,
                    self.TTL,
                ],
            )
        except Exception:  # noqa: BLE001
            log.warning("shared page store unavailable; page kept locally", exc_info=True)


class TwoLevelPageStore:
    """This worker's PageStore first, then the shared one (Redis, or the page file)."""

    def __init__(self, local: PageStore, shared) -> None:
        self.local = local
        self.shared = shared

    def get(self, key: tuple):
        item = self.local.get(key)
        if item is None:
            item = self.shared.get(key)
            if item is not None:
                self.local.put(key, item)
        return item

    def put(self, key: tuple, item) -> None:
        self.local.put(key, item)
        self.shared.put(key, item)

    def clear(self) -> None:
        self.local.clear()


class VersionStore:
    """The shared content version: Redis when configured, else the database."""

    KEY = "ideaboard:content-version"
    #: The bump: sent by bump() after a commit, or by freshness.py as a writer's last statement.
    SQL = "UPDATE content_version SET value = value + 1 WHERE id = 1"

    def __init__(self, redis_url: str | None, engine: Engine, key: str = KEY) -> None:
        self.engine = engine
        self.key = key
        self.on_failure = lambda: None  # PageCache: drop this worker's pages
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=1)
            # One command, atomic: a missing counter starts from the clock (as in
            # _redis_version) before it moves, so INCR never starts it at 1.
            self._bump = self._redis.register_script(
                "if redis.call('EXISTS', KEYS[1]) == 0 then "
                "redis.call('SET', KEYS[1], ARGV[1]) end "
                "return redis.call('INCR', KEYS[1])"
            )

    def _redis_version(self) -> int:
        value = self._redis.get(self.key)
        if value is None:
            # A new or restarted Redis: start from the clock, above any version a worker
            # may still hold pages for, never from 0 (that would replay old versions).
            self._redis.set(self.key, time.time_ns(), nx=True)
            value = self._redis.get(self.key)
        return int(value)

    def read(self) -> int | None:
        """The current version, or None if the store cannot be reached (then: no cache)."""
        try:
            if self._redis is not None:
                return self._redis_version()
            return db.session.scalar(select(ContentVersion.value).where(ContentVersion.id == 1))
        except Exception:  # noqa: BLE001 - a cache must never break the page
            log.warning("content version unavailable; serving uncached")
            return None

    def read_with(self, other: VersionStore) -> tuple:
        """This version and `other`'s (another key of the same Redis) in one round trip: a
        community page needs the content version and the community generation. (None,
        None) when Redis cannot be reached."""
        try:
            mine, theirs = self._redis.mget(self.key, other.key)
            if mine is None or theirs is None:  # a new or restarted Redis: start them
                return self._redis_version(), other._redis_version()
            return int(mine), int(theirs)
        except Exception:  # noqa: BLE001 - a cache must never break the page
            log.warning("content version unavailable; serving uncached")
            return None, None

    @property
    def in_transaction(self) -> bool:
        """True when the version lives in the database, where the writer's own transaction
        bumps it (freshness.py sends SQL just before the COMMIT)."""
        return self._redis is None

    def bump(self) -> None:
        """Advance the version after a commit, on its own connection."""
        try:
            if self._redis is not None:
                self._bump(keys=[self.key], args=[time.time_ns()])
                return
            with self.engine.begin() as conn:
                conn.exec_driver_sql(self.SQL)
        except Exception:  # noqa: BLE001
            if self._redis is None and not self._has_table():
                return  # no version yet (or any more): a migration is making or dropping it
            # Without the bump visitors could see old pages: drop this worker's copies and
            # say so loudly; other workers' copies age out only with the next bump.
            log.exception("could not bump the content version")
            self.on_failure()

    def _has_table(self) -> bool:
        try:
            return inspect(self.engine).has_table(ContentVersion.__tablename__)
        except Exception:  # noqa: BLE001 - the database is gone: say the bump failed
            return True


class FileVersionStore:
    """The version as a file beside a SQLite database: every process on the machine sees it.

    Each bump writes a value never written before (clock, process, thread, counter), padded
    to a fixed width, over the start of the file with one pwrite; readers pread it. Values
    are compared for equality only, so concurrent bumps cannot collapse into one value, and
    a read torn by a concurrent write is just a value no page was stored under (a miss).
    The file stays open: a read is an fstat and a pread, a bump one pwrite; neither makes
    a new file or renames one. If the file is deleted or replaced, it is reopened.
    """

    in_transaction = False
    WIDTH = 80

    def __init__(self, path: Path) -> None:
        self.path = path
        self.on_failure = lambda: None  # PageCache: drop this worker's pages
        self._count = itertools.count()
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _file(self) -> int:
        fd = self._fd
        if fd is not None and os.fstat(fd).st_nlink > 0:
            return fd
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            return self._fd

    def read(self) -> str | None:
        try:
            value = os.pread(self._file(), self.WIDTH, 0).rstrip(b" \0")
            if not value:
                self.bump()
                value = os.pread(self._file(), self.WIDTH, 0).rstrip(b" \0")
        except OSError:
            log.warning("content version file unreadable; serving uncached")
            return None
        return value.decode("ascii", "replace") or None

    def bump(self) -> None:
        value = f"{time.time_ns()}-{os.getpid()}-{threading.get_ident()}-{next(self._count)}"
        try:
            os.pwrite(self._file(), value.ljust(self.WIDTH).encode("ascii"), 0)
        except OSError:
            log.exception("could not bump the content version")
            self.on_failure()


def _sqlite_file(app: Flask) -> Path | None:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database)
    return None


def _version_store(app: Flask, engine: Engine):
    if app.config.get("REDIS_URL"):
        return VersionStore(app.config["REDIS_URL"], engine)
    path = _sqlite_file(app)
    if path is not None:
        return FileVersionStore(path.with_name(path.name + ".version"))
    return VersionStore(None, engine)


#: Where the community generation lives in Redis (scopes.Stamps).
COMMUNITY_GENERATION_KEY = "ideaboard:community-generation"


def _generation_store(app: Flask, engine: Engine):
    """The community generation (scopes.Stamps) beside the content version: in Redis, or
    in a second file beside a SQLite database; None with the version in the database,
    where each page reads its community's stamp itself."""
    if app.config.get("REDIS_URL"):
        return VersionStore(app.config["REDIS_URL"], engine, key=COMMUNITY_GENERATION_KEY)
    path = _sqlite_file(app)
    if path is not None:
        return FileVersionStore(path.with_name(path.name + ".communities"))
    return None


class PageCache:
    def __init__(self, app: Flask, engine: Engine) -> None:
        config = app.config
        self.engine = engine
        self.enabled = config.get("PAGE_CACHE_ENABLED", True)
        redis_url = config.get("REDIS_URL")
        local = PageStore(config.get("PAGE_CACHE_MAX_BYTES", PAGE_CACHE_MAX_BYTES))
        self.pages = local
        shared_bytes = config.get("PAGE_CACHE_SHARED_MAX_BYTES", PAGE_CACHE_SHARED_MAX_BYTES)
        if redis_url:
            shared = SharedPageStore(
                redis_url, str(config["SQLALCHEMY_DATABASE_URI"]), shared_bytes
            )
            self.pages = TwoLevelPageStore(local, shared)
        elif (path := _sqlite_file(app)) is not None:
            # One machine by nature: its workers share pages through a file beside it.
            shared = pagefile.FilePageStore(
                path.with_name(path.name + ".pages"), shared_bytes, MARKUP_VERSION
            )
            self.pages = TwoLevelPageStore(local, shared)
        self.versions = _version_store(app, engine)
        self.versions.on_failure = self.pages.clear
        self.generations = _generation_store(app, engine)
        # Community pages' stamps, read once per community generation per process.
        self.stamps = scopes.Stamps(self.generations, engine)
        if self.generations is not None:
            self.generations.on_failure = self._lost_generation
        self.fragments = PageStore(config.get("FRAGMENT_CACHE_MAX_BYTES", FRAGMENT_CACHE_MAX_BYTES))

    def read_versions(self, scoped: bool) -> tuple:
        """The content version, and for a scoped page the community generation (None
        without one): in one round trip when both live in Redis."""
        generations = self.generations
        if not scoped or generations is None:
            return self.versions.read(), None
        if isinstance(generations, VersionStore) and isinstance(self.versions, VersionStore):
            return self.versions.read_with(generations)
        return self.versions.read(), generations.read()

    def _lost_generation(self) -> None:
        """A community write's generation could not be moved: forget this worker's stamps
        and pages (other workers' age out with the next move, as after a failed bump)."""
        self.stamps.forget()
        self.pages.clear()

    def fragment(self, name: tuple, viewer, template: str, lazy=None, **context) -> Markup:
        """`template` rendered from `context` for `viewer`, shared by everyone who would
        see the same: `viewer` (perf/shared.py) holds the person's answers to every
        permission question the template asks, and those answers, `name` (what else it
        depends on besides the content), the locale and the site's root are its key.

        Kept under the content version, like a page, and kept only under a version read
        before its data: the page key's, read before the request loaded anything. Without
        one (a form sent back with errors, a page no one else could be served), a copy
        made under the current version may be served, but a new render is not kept: the
        data it was made from may be older than the version read now. Rendered by an
        autoescaped template, so it is marked safe to embed in the page.

        `lazy`, if given, returns more context and is called only to render: what only the
        fragment shows is read only when no copy is kept (its name must then say all that
        the read depends on besides the content).
        """
        from flask_babel import get_locale

        from . import shared

        page_key = g.get("page_cache_key")
        pinned = page_key[0] if page_key else None  # read before the data
        key = html = None
        if self.enabled:
            version = pinned if pinned is not None else self.versions.read()
            if version is not None:
                key = (version, str(get_locale()), request.script_root, *name, viewer.key)
                html = self.fragments.get(key)
        if html is None:
            if lazy is not None:
                context.update(lazy())
            html = shared.render(template, viewer, **context)
            if key is not None and pinned is not None:
                self.fragments.put(key, html)
        return Markup(shared.personalise(html))


def fragment(name: tuple, viewer, template: str, lazy=None, **context) -> Markup:
    """PageCache.fragment() of the current app."""
    cache = current_app.extensions["ideaboard_cache"]
    return cache.fragment(name, viewer, template, lazy, **context)


def current_cache() -> PageCache | None:
    """The current app's page cache (None in an app built without it)."""
    return current_app.extensions.get("ideaboard_cache")


def _owner() -> tuple | None:
    """Whose page this is: () for a visitor, the session's identity for a member, or None
    when it cannot be told without loading the user (then the page is not cached)."""
    user_id = session.get("_user_id")
    if user_id is None:
        remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
        return None if remember in request.cookies else ()
    token = session.get("csrf_token")
    return (user_id, token) if token else None


def _own_url(req, declared: frozenset[str]) -> bool:
    """True when the URL is one the app makes for its page: the path as its route builds
    it (not /ideas/0005), and only `declared` query parameters, each once, by their own
    names. Any other URL is answered uncached, so junk cannot fill the stores (a page echoes
    its URL, so it cannot be kept under the cleaned-up one either)."""
    query = req.query_string
    if len(query) > MAX_QUERY:
        return False
    if query:
        seen = set()
        for piece in query.split(b"&"):
            name = piece.partition(b"=")[0].decode("latin-1")
            if name not in declared or name in seen:
                return False
            seen.add(name)
    built = req.url_rule.build(req.view_args, append_unknown=False)
    return built is not None and unquote(built[1]) == req.path


def _scoped(version, scope: tuple):
    """The version part of a page's key: the shared version, with the page's scope stamp
    when it has one (scopes.read())."""
    return (version, scope) if scope else version


_WARNED: set = set()


def _warn_scoped(endpoint: str | None) -> None:
    if endpoint not in _WARNED:
        _WARNED.add(endpoint)
        log.warning(
            "%s read community content but is not a scoped page (perf/scopes.py): not cached",
            endpoint,
        )


def uncached() -> None:
    """Answer this request without keeping its page: for a view that finds its URL is
    not the page's own (an idea's old or made-up slug)."""
    g.pop("page_cache_key", None)


def _encoding(accepted: str) -> str:
    """The content coding Flask-Compress gives a response to this Accept-Encoding.

    Its own choice, by its own function over the same algorithms it compresses with, so
    a page's key names the coding its body gets: a substring test ("gzip" in the header)
    kept gzip bodies under the key of "GZIP" or "*" clients' neighbours, and plain bodies
    (from "x-gzip" or "gzip;q=0") under gzip clients' keys. A body may still be plain
    under a compressed coding's key (too small, or not compressible), which every client
    reads; _store refuses the other way round.
    """
    return _choose_algorithm(compress.enabled_algorithms, accepted) or "identity"


def page_key(version: str, owner: tuple, locale: str, req) -> tuple:
    """The cache key of a page: the same for Flask's request and the fast path's.

    It names every input the page's text depends on. The script root is in it although
    only BASE_URL's is ever served (security.py refuses others, and so do the readers
    here): every link on a page is built from it, so a page made under another root must
    never be found under this one's key. Host and scheme are not: pages build absolute
    URLs from BASE_URL only (tests/test_cache_keys.py holds every other input to that).
    """
    return (
        version,
        owner,
        locale,
        # The UTC day: a page may show what the date alone changes (the home page's
        # "shipped in the last 12 months" drops an idea a year after it shipped, with no
        # write to move the version), so every page is rendered afresh once a day.
        time.strftime("%Y-%m-%d", time.gmtime()),
        req.script_root,
        req.full_path,
        req.headers.get("HX-Request") == "true",
        req.headers.get("HX-History-Restore-Request") == "true",
        _encoding(req.headers.get("Accept-Encoding", "")),
    )


class VisitorFastPath:
    """WSGI middleware: a visitor's cached page without the cost of a Flask request."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.cache = app.extensions["ideaboard_cache"]
        self.root = configured_root(app.config)
        self.scopes = scopes.PathScopes(app)
        self.private_cookies = (
            app.config.get("SESSION_COOKIE_NAME", "session"),
            app.config.get("REMEMBER_COOKIE_NAME", "remember_token"),
        )

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and self.cache.enabled:
            started = time.perf_counter()
            hit = self._lookup(environ)
            if hit is not None:
                status, body, headers, endpoint = hit
                start_response(status, headers)
                if observe.listening():
                    observe.answered(
                        self.app,
                        observe.Answer(
                            via=observe.VIA_VISITOR_CACHE,
                            method="GET",
                            path=environ.get("PATH_INFO", ""),
                            endpoint=endpoint,
                            status=int(status[:3]),
                            user_id=None,
                            seconds=time.perf_counter() - started,
                        ),
                    )
                return [body]
        return self.wsgi_app(environ, start_response)

    def _lookup(self, environ):
        from ideaboard.i18n import locale_of

        req = Request(environ)
        if req.script_root != self.root:
            return None  # Flask refuses it (security.py)
        cookies = req.cookies
        if any(name in cookies for name in self.private_cookies):
            return None
        scoped = self.scopes.match(environ)
        if scoped is not None and scoped[0] not in CACHEABLE:
            return None  # not one of our pages (a 404, a redirect): Flask answers it
        generation = None
        if self.cache.versions.in_transaction:
            # The version lives in the database (no Redis, not SQLite): read it through
            # the app's session, which needs an app context (its teardown ends the session).
            with self.app.app_context():
                version = self.cache.versions.read()
        else:
            version, generation = self.cache.read_versions(scoped is not None)
        if version is not None and scoped is not None:
            # After the version, before the page: like the version, read before any data.
            scope = self.cache.stamps.read(*scoped, generation=generation)
            version = None if scope is None else _scoped(version, scope)
        if version is None:
            return None
        key = page_key(version, (), locale_of(req, self.app.config), req)
        entry = self.cache.pages.get(key)
        if entry is None or entry[3] is None:
            return None
        status, body, _kept, final, endpoint = entry
        if not_modified(environ, final):
            return "304 Not Modified", b"", _for_304(final), endpoint
        headers = [
            (name, _NONCE.sub(f"'nonce-{secrets.token_urlsafe(18)}'", value))
            if name == "Content-Security-Policy"
            else (name, value)
            for name, value in final
        ]
        headers.append(("Content-Length", str(len(body))))
        return "200 OK", body, headers, endpoint  # only 200 responses are stored


def not_modified(environ, headers) -> bool:
    """Whether a conditional GET already has the stored answer whose headers are given:
    its If-None-Match names the stored ETag (or, without one, If-Modified-Since is not
    older than Last-Modified). Only answers that carry an ETag (the feeds) take part."""
    stored = dict(headers)
    etag = stored.get("ETag")
    if etag is None:
        return False
    from werkzeug.http import is_resource_modified, parse_date, unquote_etag

    return not is_resource_modified(
        environ,
        etag=unquote_etag(etag)[0],
        last_modified=parse_date(stored.get("Last-Modified")),
    )


def _for_304(headers) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() in _NOT_MODIFIED_HEADERS]


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    cache = PageCache(app, engine)
    app.extensions["ideaboard_cache"] = cache
    # Every committed write to page content, through any door, moves the version on.
    freshness.init_app(app, cache.versions, cache.generations)

    root = configured_root(app.config)

    def get_flashed_messages(*args, **kwargs):
        """Flask's get_flashed_messages() for templates: a page that shows a flash is
        that one viewer's, once, so it is not kept (a visitor's copy would be served to
        every visitor; a member's would repeat the message)."""
        messages = flask_get_flashed_messages(*args, **kwargs)
        if messages:
            uncached()
        return messages

    app.jinja_env.globals["get_flashed_messages"] = get_flashed_messages

    @app.before_request
    def _serve_cached():
        declared = CACHEABLE.get(request.endpoint)
        if declared is None or not cache.enabled or request.method != "GET":
            return None
        if request.script_root != root:
            return None  # refused before this hook; never cached, whatever the hooks' order
        if not _own_url(request, declared):
            return None
        if session.get("_flashes"):
            return None  # a flashed page is personal: render it, and keep it nowhere
        owner = _owner()
        if owner is None:
            return None
        # Before any data is read: see the module doc.
        version, generation = cache.read_versions(request.endpoint in scopes.SCOPED)
        if version is None:
            return None
        scope = cache.stamps.read(request.endpoint, request.view_args, generation=generation)
        if scope is None:
            return None
        version = _scoped(version, scope)
        from flask_babel import get_locale

        key = page_key(version, owner, str(get_locale()), request)
        g.page_cache_key = key
        hit = cache.pages.get(key)
        if hit is None:
            return None
        status, body, headers, _final, _endpoint = hit
        g.page_cache_hit = True
        if not_modified(request.environ, headers):
            return Response(status=304, headers=_for_304(headers))
        return Response(body, status=status, headers=headers)

    # Registered before flask-compress (create_app calls init_app before assets.init_app),
    # so it runs after compression and keeps the encoded body, ready to serve as is; in
    # the other order pages would only be kept uncompressed (see the encoding check).
    @app.after_request
    def _store(resp: Response) -> Response:
        key = g.pop("page_cache_key", None)
        if key is None or g.get("page_cache_hit"):
            return resp
        if resp.status_code != 200 or resp.direct_passthrough or "Set-Cookie" in resp.headers:
            return resp
        if freshness.read_scoped_content() and not isinstance(key[0], tuple):
            # It showed community content but is keyed by the shared version alone, which
            # a write to that content does not move: kept, it could go stale (scopes.py).
            _warn_scoped(request.endpoint)
            return resp
        # Whatever order the hooks run in, a body is kept only under the encoding it has:
        # an encoded body under a key for clients that asked for none would be unreadable.
        if resp.headers.get("Content-Encoding", "identity") not in (key[-1], "identity"):
            return resp
        body = resp.get_data()
        if len(body) <= MAX_BODY:
            headers = [(h, resp.headers[h]) for h in _KEPT_HEADERS if h in resp.headers]
            # A visitor's copy also keeps the final headers, for VisitorFastPath. This hook
            # runs after every other header hook but Flask-Login's and Flask-Limiter's,
            # which add nothing to a visitor's cacheable page.
            final = None
            if key[1] == ():
                final = [
                    (name, value)
                    for name, value in resp.headers.items()
                    if name.lower() not in _NOT_REPLAYED and name != "Vary"
                ]
                # Flask adds "Vary: Cookie" after every hook, when it saves the session.
                vary = [v.strip() for v in resp.headers.get("Vary", "").split(",") if v.strip()]
                final.append(("Vary", ", ".join([*vary, *(["Cookie"] * ("Cookie" not in vary))])))
            # Tuples all through, of strings and numbers: the garbage collector stops
            # tracking such an entry, so the kept pages add nothing to a full collection.
            item = (resp.status_code, body, tuple(headers), final and tuple(final))
            cache.pages.put(key, (*item, request.endpoint))
        return resp
