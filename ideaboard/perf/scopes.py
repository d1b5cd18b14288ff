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
unique). Any other page that reads a scoped table while it renders is not kept at all
(pagecache._store asks freshness.read_scoped_content()): it could not be told when to
render again. So a new page showing community content must be listed here, or stay
uncached; it can never be stale.
"""

from __future__ import annotations

from sqlalchemy import text

#: The directory's version, moved by every change of any community's row.
DIRECTORY_SQL = text("SELECT value FROM community_directory_version WHERE id = 1")
#: One community's stamp, by the slug in its URL.
STAMP_SQL = text("SELECT stamp FROM communities WHERE slug = :slug")

DIRECTORY, COMMUNITY = "dir", "c"

#: Endpoints whose pages are keyed by a scope: the directory, or the community named by
#: the URL's `slug`. Such a page shows only that community's rows (or, for the directory,
#: communities' own rows).
SCOPED: dict[str, str] = {
    "community.index": DIRECTORY,
    "community.show": COMMUNITY,
    "community.thread": COMMUNITY,
}

#: read() for a page that is not scoped.
UNSCOPED = ()


def read(endpoint: str | None, view_args: dict | None, session) -> tuple | None:
    """The scope part of a page's key: UNSCOPED for an unscoped endpoint; for a scoped one
    its stamp, or None when it cannot be read (no such community: not cached)."""
    kind = SCOPED.get(endpoint)
    if kind is None:
        return UNSCOPED
    try:
        if kind == DIRECTORY:
            value = session.execute(DIRECTORY_SQL).scalar()
            return None if value is None else (DIRECTORY, value)
        slug = (view_args or {}).get("slug")
        if not isinstance(slug, str):
            return None
        value = session.execute(STAMP_SQL, {"slug": slug}).scalar()
        return None if value is None else (COMMUNITY, slug, value)
    except Exception:  # noqa: BLE001 - a cache must never break the page
        return None


class EngineReader:
    """read() on a connection of the engine's pool, without an app context or a session:
    the visitor fast path's way (an app context and a session cost more than the read)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        slug = "?" if engine.dialect.paramstyle == "qmark" else "%(slug)s"
        self.stamp_sql = f"SELECT stamp FROM communities WHERE slug = {slug}"
        self.directory_sql = str(DIRECTORY_SQL)
        self.qmark = engine.dialect.paramstyle == "qmark"

    def read(self, endpoint: str | None, view_args: dict | None) -> tuple | None:
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

    def match(self, environ) -> tuple[str, dict] | None:
        """(endpoint, view_args) of a path that may be scoped; None for any other path."""
        path = environ.get("PATH_INFO", "")
        if path not in self.exact and not path.startswith(self.prefixes):
            return None
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match(method="GET")
        except Exception:  # noqa: BLE001 - not found, a redirect: Flask answers it
            return ("", {})
        return endpoint, args
