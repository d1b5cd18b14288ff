"""Values every viewer of a page shares, computed once per content version per process.

A member's page is kept per session, so each member's first visit after a write renders
it again; what that render reads and shows alike for everyone need not be read again.
The count of a list of ideas is such a value: "100,000+ ideas" was two thirds of a
member's board page (a scan of the status index, 6.5 ms at 100,000 ideas).

A value is kept under the content version this request read before any data (the page
key's, as for shared fragments: pagecache.PageCache.fragment), in the fragment store
(bounded by bytes), and only when the request has one: outside a cacheable page every
call reads afresh. So a kept value is never older than the version it is found under,
and a write moves that version on. Only for values that depend on the content alone,
never on the viewer: the name must hold every input besides the content.
"""

from __future__ import annotations

from flask import current_app, g, has_request_context

from . import freshness


def _store_and_version():
    if not has_request_context():
        return None, None
    cache = current_app.extensions.get("ideaboard_cache")
    page_key = g.get("page_cache_key")
    if cache is None or not cache.enabled or page_key is None:
        return None, None
    return cache.fragments, page_key[0]


def get(name: tuple):
    """The value kept under `name` for this request's content version, or None."""
    store, version = _store_and_version()
    if store is None:
        return None
    kept = store.get(("value", version, *name))
    return None if kept is None else kept[0]


def put(name: tuple, value) -> None:
    """Keep `value` (read after this request's version was) under `name`.

    Not kept when the request read community content under a version that does not hold
    a community's stamp (a page outside perf/scopes.SCOPED): writes to that content do
    not move the shared version, so the value could go stale (as pagecache._store)."""
    store, version = _store_and_version()
    if store is None or value is None:
        return
    if freshness.read_scoped_content() and not isinstance(version, tuple):
        return
    store.put(("value", version, *name), (value,))
