"""Community pages are cached under their community's stamp, so a reply in one community
leaves every other cached page served.

Tables declared `page_content(True, scope=COMMUNITY)` (a community's row, threads,
replies, thread follows, members, bans) do not move the shared content version
(freshness.py). Instead database triggers (migration 14e0a1b2c3d4) move
`communities.stamp` of the community a written row belongs to, and every change of a
`communities` row moves `community_directory_version`: in the writer's own transaction,
whoever writes, so stamp and data become visible together and nothing can forget.

A page of a scoped endpoint is keyed by (shared version, its scope's stamp): a community's
page and its thread pages by `("c", slug, stamp)`, the directory by `("dir", value)`. Both
are read before any data, like the shared version (one indexed read: `communities.slug` is
unique), and each process keeps what it read until the community generation moves
(Stamps, below): a writer moves it after committing community content. Any other page
that reads a scoped table while it renders is not kept at all (pagecache._store asks
freshness.read_scoped_content()): it could not be told when to render again. So a new
page showing community content must be listed here, or stay uncached; it can never be
stale.
"""

from __future__ import annotations

#: The directory's version, moved by every change of any community's row.
DIRECTORY_SQL = "SELECT value FROM community_directory_version WHERE id = 1"

DIRECTORY, COMMUNITY = "dir", "c"

#: Endpoints whose pages are keyed by a scope: the directory, or the community named by
#: the URL's `slug`. Such a page shows only that community's rows (or, for the directory,
#: communities' own rows).
SCOPED: dict[str, str] = {
    "community.index": DIRECTORY,
    "community.show": COMMUNITY,
    "community.thread": COMMUNITY,
}

#: The scope part of the key of a page that is not scoped.
UNSCOPED = ()


class EngineReader:
    """read() on a connection of the engine's pool, without an app context or a session:
    the visitor fast path's way (an app context and a session cost more than the read)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        slug = "?" if engine.dialect.paramstyle == "qmark" else "%(slug)s"
        self.stamp_sql = f"SELECT stamp FROM communities WHERE slug = {slug}"
        self.directory_sql = DIRECTORY_SQL
        self.qmark = engine.dialect.paramstyle == "qmark"

    def read(self, endpoint: str | None, view_args: dict | None) -> tuple | None:
        """The scope part of a page's key: UNSCOPED for an unscoped endpoint; for a scoped
        one its stamp, or None when it cannot be read (no such community: not cached)."""
        kind = SCOPED.get(endpoint)
        if kind is None:
            return UNSCOPED
        try:
            with self.engine.connect() as conn:
                if kind == DIRECTORY:
                    value = conn.exec_driver_sql(self.directory_sql).scalar()
                    return None if value is None else (DIRECTORY, value)
                slug = (view_args or {}).get("slug")
                if not isinstance(slug, str):
                    return None
                params = (slug,) if self.qmark else {"slug": slug}
                value = conn.exec_driver_sql(self.stamp_sql, params).scalar()
                return None if value is None else (COMMUNITY, slug, value)
        except Exception:  # noqa: BLE001 - a cache must never break the page
            return None


class Stamps:
    """Stamps as this process last read them, kept while the community generation stays.

    Reading a stamp is a round trip to the database for every community page; with
    PostgreSQL that was most of what a visitor's cached community page cost. So writers
    move a second shared value beside the content version, the community generation
    (Redis, or a file beside a SQLite database), after each commit that wrote community
    content (freshness.py: a write to a scoped table, or DDL), and each process keeps the
    stamps it read under the generation it read before them: while the generation stays,
    no community's stamp can have moved, so the kept one is the database's.

    Why it is correct: as for the version. The generation is read before the stamp, and
    moves only after the commit that moved the stamp; so a stamp kept under a generation
    is never older than the writes whose move that generation has not seen, and a request
    that sees the move reads the stamp afresh. A stamp moved with no move of the
    generation (a cascade from a deleted user, a restore) comes with a move of the
    content version, which is in every page's key beside the stamp: the kept stamp then
    only names pages rendered after it.

    A write around SQLAlchemy (a bare DB-API cursor) still moves the stamp, through the
    trigger, but not the generation: like any write around SQLAlchemy it must say so, with
    freshness.content_changed(community=True) (tests/test_freshness.py holds the package
    to that).

    Without a generation store (the version in the database) every read goes to the
    database, in its own pooled connection.
    """

    def __init__(self, generations, engine) -> None:
        self.generations = generations
        self.reader = EngineReader(engine)
        # (generation, {(kind, slug): scope}); replaced whole, so a thread that reads
        # it sees one generation's stamps.
        self._kept: tuple = (None, {})

    def forget(self) -> None:
        self._kept = (None, {})

    def read(self, endpoint: str | None, view_args: dict | None, generation=None) -> tuple | None:
        """EngineReader.read(), from what was kept under the current generation (read here,
        unless the caller read it with the version: pagecache.PageCache.read_versions)."""
        kind = SCOPED.get(endpoint)
        if kind is None:
            return UNSCOPED
        if generation is None and self.generations is not None:
            generation = self.generations.read()
        if generation is None:
            return self.reader.read(endpoint, view_args)
        name = (kind, None if kind == DIRECTORY else (view_args or {}).get("slug"))
        kept_generation, kept = self._kept
        if kept_generation == generation:
            scope = kept.get(name)
            if scope is not None:
                return scope
        scope = self.reader.read(endpoint, view_args)
        if scope is not None:
            # Kept under the generation read before it (never a later one a concurrent
            # request put in place). A community that does not exist keeps nothing.
            kept_generation, kept = self._kept
            if kept_generation != generation:
                kept = {}
                self._kept = (generation, kept)
            kept[name] = scope
        return scope


class PathScopes:
    """Which request paths may be scoped pages, cheaply: the fast path matches the URL
    map only for paths that begin like a scoped endpoint's rule."""

    def __init__(self, app) -> None:
        exact, prefixes = set(), set()
        for rule in app.url_map.iter_rules():
            if rule.endpoint not in SCOPED:
                continue
            static = rule.rule.split("<", 1)[0]
            if static == rule.rule:
                exact.add(static)
            else:
                prefixes.add(static)
        self.exact = frozenset(exact)
        self.prefixes = tuple(sorted(prefixes))
        self.url_map = app.url_map
        # Matches by path: werkzeug's matcher cost a visitor's cached community page about
        # a third of its time. The map is fixed once the app is built, and a found rule
        # depends on the path alone (no host matching); bounded (started over when full).
        self._matched: dict[str, tuple[str, dict]] = {}

    MATCHED_MAX = 4096

    def match(self, environ) -> tuple[str, dict] | None:
        """(endpoint, view_args) of a path that may be scoped; None for any other path."""
        path = environ.get("PATH_INFO", "")
        if path not in self.exact and not path.startswith(self.prefixes):
            return None
        found = self._matched.get(path)
        if found is not None:
            return found
        try:
            found = self.url_map.bind_to_environ(environ).match(method="GET")
        except Exception:  # noqa: BLE001 - not found, a redirect: Flask answers it
            return ("", {})  # not kept: it may depend on more than the path (the host)
        if len(self._matched) >= self.MATCHED_MAX:
            self._matched = {}
        self._matched[path] = found
        return found
