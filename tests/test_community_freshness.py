"""Per-community freshness (perf/scopes.py, migration 14e0a1b2c3d4): a write to one
community's content moves that community's stamp (database triggers), never the shared
content version, so every other cached page stays served; the community's own pages and
the directory show the write at once.

"Served from the cache" is a visitor's request that never reaches Flask (as in
test_freshness.py); most tests run with each version store (the backend's own, Redis).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ideaboard.extensions import db
from ideaboard.models import SCOPE, Base, Community, CommunityBan, Thread
from ideaboard.perf import pagecache
from ideaboard.perf.freshness import content_changed

from . import freshness_kit
from .conftest import BACKEND, fresh_app
from .factories import login_as, make_community, make_idea, make_reply, make_thread, make_user

# The shared fixtures and visitor (freshness_kit.py), found by pytest under these names.
settings, server, other = freshness_kit.settings, freshness_kit.server, freshness_kit.other
Visitor = freshness_kit.Visitor


def stamp(community_id: int) -> int:
    db.session.remove()
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT stamp FROM communities WHERE id = :i"), {"i": community_id}
        ).scalar_one()


def _two_clubs():
    a, b = make_community("alpha", "Alpha"), make_community("beta", "Beta")
    ta, tb = make_thread(a, title="Alpha talk"), make_thread(b, title="Beta talk")
    idea = make_idea()
    urls_b = ["/c/beta", f"/c/beta/t/{tb.id}"]
    urls_a = ["/c/alpha", f"/c/alpha/t/{ta.id}"]
    return a, b, ta, tb, idea, urls_a, urls_b


def test_a_reply_in_one_community_leaves_the_others_and_ideas_cached(server):
    a, b, ta, tb, idea, urls_a, urls_b = _two_clubs()
    other = [*urls_b, "/ideas", f"/ideas/{idea.id}"]
    author = make_user()  # a new account is shared content (names show everywhere)
    visitor = Visitor(server)
    visitor.warm(*urls_a, *other, "/c")

    make_reply(ta, author=author, body="Alpha says hello")

    for url in other:
        rendered, _page = visitor.get(url)
        assert not rendered, f"a reply in Alpha re-rendered {url}"
    rendered, page = visitor.get(urls_a[1])
    assert rendered and "Alpha says hello" in page
    rendered, page = visitor.get(urls_a[0])
    assert rendered, "Alpha's thread list did not show the new reply count"
    rendered, page = visitor.get("/c")
    assert rendered, "the directory did not show Alpha's new activity"
    assert "1 reply" in page


def test_a_write_to_shared_content_still_refreshes_community_pages(server):
    _a, _b, _ta, _tb, idea, _urls_a, urls_b = _two_clubs()
    visitor = Visitor(server)
    visitor.warm(*urls_b)
    user = make_user()
    user.display_name = "Renamed Person"
    db.session.commit()
    for url in urls_b:
        assert visitor.get(url)[0], f"{url} kept its page after a shared-content write"


def test_a_raw_write_to_replies_moves_the_stamp_through_the_trigger(server):
    """A write no SQLAlchemy code sees (a bare DB-API cursor) still moves the stamp; said
    with content_changed(community=True), as every write around SQLAlchemy must say it, it
    refreshes that community's pages and no other page."""
    a, b, ta, _tb, _idea, urls_a, urls_b = _two_clubs()
    reply = make_reply(ta, body="Before")
    visitor = Visitor(server)
    visitor.warm(*urls_a, *urls_b)
    before_a, before_b = stamp(a.id), stamp(b.id)

    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"UPDATE replies SET body = 'Edited around the ORM' WHERE id = {reply.id}")
        raw.commit()
    finally:
        raw.close()
    content_changed(db.engine, community=True)

    assert stamp(a.id) > before_a
    assert stamp(b.id) == before_b
    rendered, page = visitor.get(urls_a[1])
    assert rendered and "Edited around the ORM" in page
    for url in urls_b:
        assert not visitor.get(url)[0]


def test_a_rolled_back_write_moves_nothing(server):
    a, _b, ta, _tb, _idea, urls_a, _urls_b = _two_clubs()
    visitor = Visitor(server)
    visitor.warm(*urls_a)
    before = stamp(a.id)
    with pytest.raises(RuntimeError), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE threads SET title = 'Never seen' WHERE id = :i"), {"i": ta.id})
        raise RuntimeError("undo")
    assert stamp(a.id) == before
    for url in urls_a:
        rendered, page = visitor.get(url)
        assert not rendered and "Never seen" not in page


def test_stamps_are_never_reused_by_a_community_made_again(server):
    """A deleted community's slug given again: its pages start from a stamp never used."""
    a = make_community("gamma", "Gamma")
    visitor = Visitor(server)
    visitor.warm("/c/gamma")
    old = stamp(a.id)
    db.session.execute(sa.delete(Community).where(Community.id == a.id))
    db.session.commit()
    again = make_community("gamma", "Gamma again")
    assert stamp(again.id) > old
    rendered, page = visitor.get("/c/gamma")
    assert rendered and "Gamma again" in page


def _scoped_rows():
    community = make_community("delta", "Delta")
    member = make_user()
    thread = make_thread(community, author=member)  # the author follows it
    make_reply(thread)
    db.session.add(CommunityBan(community_id=community.id, user_id=make_user().id, reason="x"))
    from ideaboard.services import communities

    communities.join(make_user(), community)
    db.session.commit()
    return community


SCOPED = sorted(t.name for t in Base.metadata.sorted_tables if t.info.get(SCOPE))


def test_the_scoped_tables_are_the_community_content():
    assert SCOPED == [
        "communities",
        "community_bans",
        "community_members",
        "replies",
        "thread_follows",
        "threads",
    ]


@pytest.mark.parametrize("verb", ["update", "delete"])
@pytest.mark.parametrize("table", SCOPED)
def test_every_write_to_each_scoped_table_moves_its_communitys_stamp(app, table, verb):
    """Each scoped table has its triggers in the migrated database (a batch migration on
    SQLite that copies the table drops them: this fails until they are made again)."""
    community = _scoped_rows()
    if verb == "delete" and table == "communities":
        return  # its stamp goes with it (test_stamps_are_never_reused...)
    count = db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))
    assert count, f"no row of {table} to write"
    before = stamp(community.id)
    with db.engine.begin() as conn:
        if verb == "update":
            conn.exec_driver_sql(f"UPDATE {table} SET id = id")
        else:
            conn.exec_driver_sql(f"DELETE FROM {table}")
    assert stamp(community.id) > before, f"{verb} on {table} left the stamp"


def test_an_insert_into_replies_moves_the_stamp(app):
    community = _scoped_rows()
    thread = make_thread(community)
    author = make_user()
    before = stamp(community.id)
    make_reply(thread, author=author)
    assert stamp(community.id) > before


def test_a_page_that_reads_community_content_without_its_scope_is_not_kept(make_app, monkeypatch):
    """Any page outside perf/scopes.SCOPED that shows community rows is rendered every
    time: kept under the shared version alone, it would go stale."""
    with fresh_app(make_app) as app:

        def probe():
            return f"{db.session.scalar(sa.text('SELECT count(*) FROM threads'))} threads"

        app.add_url_rule("/probe", "probe", probe)
        monkeypatch.setitem(pagecache.CACHEABLE, "probe", frozenset())
        visitor = Visitor(app)
        visitor.get("/probe")
        assert visitor.get("/probe")[0], "a page showing threads was kept unscoped"


# --- each worker's kept stamps (perf/scopes.Stamps) ---------------------------------------


class _Undo(Exception):
    pass


def _retitle_sql(thread_id: int, title: str) -> str:
    return f"UPDATE threads SET title = '{title}' WHERE id = {int(thread_id)}"


# Each door writes `title` into thread `thread_id`, then commits or rolls back.
def _orm(thread_id, title, commit):
    db.session.get(Thread, thread_id).title = title
    db.session.flush()
    db.session.commit() if commit else db.session.rollback()


def _engine_begin_core(thread_id, title, commit):
    with db.engine.begin() as conn:
        conn.execute(sa.update(Thread.__table__).where(Thread.id == thread_id).values(title=title))
        if not commit:
            raise _Undo


def _exec_driver_sql(thread_id, title, commit):
    with db.engine.begin() as conn:
        conn.exec_driver_sql(_retitle_sql(thread_id, title))
        if not commit:
            raise _Undo


def _session_text(thread_id, title, commit):
    db.session.execute(sa.text(_retitle_sql(thread_id, title)))
    db.session.commit() if commit else db.session.rollback()


def _autocommit(thread_id, title, commit):
    if BACKEND != "postgres":
        pytest.skip("SQLite runs every statement in a transaction (perf/writergate.py)")
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(_retitle_sql(thread_id, title))


DOORS = {
    "ORM session": _orm,
    "engine.begin() Core": _engine_begin_core,
    "exec_driver_sql()": _exec_driver_sql,
    "session text()": _session_text,
    "autocommit": _autocommit,
}


@pytest.mark.parametrize("door", DOORS.values(), ids=DOORS.keys())
def test_a_community_write_through_any_door_is_on_every_workers_next_page(server, other, door):
    """Each worker keeps the stamps it read until the community generation moves: a
    thread retitled through any door shows on both workers' next page of that community
    (not before its commit), and neither renders the other community's pages again."""
    a, _b, ta, _tb, _idea, urls_a, urls_b = _two_clubs()
    db.session.commit()
    here, there = Visitor(server), Visitor(other)
    here.warm(*urls_a, *urls_b, "/c")
    there.warm(*urls_a, *urls_b, "/c")

    if door is not _autocommit:
        try:
            door(ta.id, "Undone title", commit=False)
        except _Undo:
            pass
        for visitor in (here, there):
            rendered, page = visitor.get(urls_a[1])
            assert not rendered and "Undone title" not in page

    door(ta.id, "New title", commit=True)
    for visitor in (here, there):
        for url in urls_a:
            # With Redis, the other worker may take the page this one just rendered.
            assert "New title" in visitor.get(url)[1], url
        for url in urls_b:
            assert not visitor.get(url)[0], f"a write in Alpha re-rendered {url}"


def test_a_reply_posted_on_one_worker_shows_on_the_others_next_page(server, other):
    """Through the app, as a member posts: the request moves the generation as it ends."""
    _a, _b, ta, _tb, _idea, urls_a, urls_b = _two_clubs()
    member = make_user()
    db.session.commit()
    there = Visitor(other)
    there.warm(*urls_a, *urls_b)
    poster = server.test_client()
    login_as(poster, member)
    resp = poster.post(f"{urls_a[1]}/replies", data={"body": "Posted on the first worker"})
    assert resp.status_code == 303
    assert "Posted on the first worker" in there.get(urls_a[1])[1]
    for url in urls_b:
        assert not there.get(url)[0], f"a reply in Alpha re-rendered {url}"


class Statements:
    """Counts the statements `app`'s engine runs (transaction control aside)."""

    def __init__(self, app) -> None:
        self.count = 0
        self.seen: list[str] = []
        with app.app_context():
            self.engine = db.engine
        sa.event.listen(self.engine, "before_cursor_execute", self._on)

    def _on(self, _conn, _cursor, statement, *_args) -> None:
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK")):
            self.count += 1
            self.seen.append(statement)

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._on)


def test_a_kept_community_page_reads_its_stamp_once_per_generation(server):
    """A visitor's kept community page costs no statement while no community content was
    written; a reply in another community costs each of its pages one stamp read, not a
    render. Without a generation store (PostgreSQL with the version in its database),
    every page reads its stamp."""
    _a, _b, _ta, tb, _idea, urls_a, _urls_b = _two_clubs()
    author = make_user()
    db.session.commit()
    visitor = Visitor(server)
    visitor.warm(*urls_a)
    kept = server.extensions["ideaboard_cache"].generations is not None
    db.session.remove()
    statements = Statements(server)
    try:
        for url in urls_a:
            assert not visitor.get(url)[0]
        if kept:
            assert statements.count == 0

        make_reply(tb, author=author, body="In Beta")
        db.session.remove()
        statements.count = 0
        for url in urls_a:
            assert not visitor.get(url)[0], f"a reply in Beta re-rendered {url}"
        if kept:  # Alpha's stamp, read once for both pages
            assert statements.count == 1
    finally:
        statements.close()


def test_a_far_page_of_replies_is_found_once_per_stamp_and_follows_a_new_reply(server):
    """Where a page of replies starts is kept under the community's stamp: a second
    member's last page does not walk the replies again; a reply moves the stamp, and the
    pages after it start where they now should."""
    club = make_community("epsilon", "Epsilon")
    thread = make_thread(club, title="Long thread")
    author = make_user()
    for n in range(51):
        make_reply(thread, author=author, body=f"Reply {n}")
    one, two = server.test_client(), server.test_client()
    for client in (one, two):
        login_as(client, make_user())
        client.get("/")  # the session gets its CSRF token (part of a member's page key)
    db.session.commit()
    url = f"/c/epsilon/t/{thread.id}?page=2"
    assert "Reply 50" in one.get(url).get_data(as_text=True)
    statements = Statements(server)
    try:
        page = two.get(url).get_data(as_text=True)
        assert "Reply 50" in page and "Reply 49" not in page
        assert statements.count and not [s for s in statements.seen if "OFFSET" in s.upper()], (
            statements.seen
        )
    finally:
        statements.close()
    make_reply(thread, author=author, body="Reply 51")
    page = two.get(url).get_data(as_text=True)
    assert "Reply 50" in page and "Reply 51" in page


def test_a_community_slugged_like_the_directorys_scope_keeps_its_own_stamp(server):
    """The kept stamps are named by kind and slug: a club at /c/dir never lends its stamp
    to the directory, which must still show another club's change."""
    make_community("dir", "Dir club")
    make_community("zeta", "Zeta")
    db.session.commit()
    visitor = Visitor(server)
    visitor.warm("/c/dir", "/c")  # the club's stamp read first, as below
    zeta = db.session.scalar(sa.select(Community).where(Community.slug == "zeta"))
    zeta.name = "Zeta renamed"
    db.session.commit()
    visitor.get("/c/dir")  # the club's stamp, read first under the new generation
    rendered, page = visitor.get("/c")
    assert rendered and "Zeta renamed" in page
