"""Issue 12, the idea page: each action says what happened (and no cached page carries
someone's message), deleting asks first and the author may restore for a while, one live
idea per title on a board, single line breaks kept, status changes in the discussion, and
staff controls first."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.markup import MARKUP_VERSION, render_markdown
from ideaboard.models import Idea, utcnow
from ideaboard.models.idea import title_key
from ideaboard.services import comments, ideas, roadmap

from .factories import (
    general_board,
    login_as,
    make_board,
    make_comment,
    make_idea,
    make_user,
    reload,
)

FLASH = re.compile(r'<div id="flash"[^>]*>(.*?)</div>\s*<main', re.S)


def flash_of(html: str) -> str:
    """The text in the page's #flash status region."""
    found = FLASH.search(html)
    assert found, "the page has no #flash region"
    return re.sub(r"<[^>]+>", " ", found[1]).strip()


def follow(client, resp):
    """The page a 303 leads to, as the browser loads it."""
    assert resp.status_code == 303, resp.status_code
    return client.get(resp.headers["Location"]).get_data(as_text=True)


# --- 3. say what happened ---------------------------------------------------------------


def test_registering_says_what_happened(client):
    """Registration says on the page it leads to, once, where the confirmation link went
    (the same words for a taken address, issue 13: no "Welcome" that would tell them
    apart)."""
    resp = client.post(
        "/register",
        data={"email": "new@example.com", "display_name": "Nadia", "password": "a long passphrase"},
    )
    assert "We sent a link to new@example.com to confirm the address" in flash_of(
        follow(client, resp)
    )
    assert flash_of(client.get("/ideas").get_data(as_text=True)) == ""


def test_posting_editing_commenting_and_status_each_say_what_happened(client, app):
    """Posting, editing, commenting, editing a comment and a staff status change each
    confirm in the status region of the next page, and only once."""
    author, staff = make_user(), make_user("staff")
    login_as(client, author)
    resp = client.post(
        "/ideas/new",
        data={"title": "Offline maps", "body": "x", "board": general_board().id, "kind": "idea"},
    )
    assert "Your idea was posted." in flash_of(follow(client, resp))
    idea = db.session.scalar(select(Idea).where(Idea.title == "Offline maps"))
    again = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert flash_of(again) == ""  # said once

    form = {"title": "Offline maps, please", "body": "y", "board": idea.board_id}
    resp = client.post(f"/ideas/{idea.id}/edit", data={**form, "kind": "idea", "version": 1})
    assert "Your changes were saved." in flash_of(follow(client, resp))

    resp = client.post(f"/ideas/{idea.id}/comments", data={"body": "First!"})
    assert "Your comment was posted." in flash_of(follow(client, resp))
    comment = comments.list_comments(reload(idea))[0][0]
    resp = client.post(f"/ideas/{idea.id}/comments/{comment.id}/edit", data={"body": "Second"})
    assert "Your comment was saved." in flash_of(follow(client, resp))

    login_as(client, staff)
    resp = client.post(f"/ideas/{idea.id}/status", data={"status": "planned", "note": "Q3"})
    assert "Status changed to “Planned”." in flash_of(follow(client, resp))


def test_an_htmx_comment_says_so_out_of_band(app, htmx):
    """An htmx comment answers its fragment plus the message for the #flash region."""
    idea = make_idea()
    login_as(htmx, make_user())
    html = htmx.post(f"/ideas/{idea.id}/comments", data={"body": "Via htmx"}).get_data(as_text=True)
    assert "<html" not in html
    oob = re.search(r'<div id="flash" hx-swap-oob="innerHTML">(.*?)</div>\s*$', html, re.S)
    assert oob and "Your comment was posted." in oob[1]
    # Said, so not said again on the next full page.
    htmx.environ_base.pop("HTTP_HX_REQUEST")
    assert flash_of(htmx.get(f"/ideas/{idea.id}").get_data(as_text=True)) == ""


def test_an_htmx_delete_redirects_and_the_next_page_says_so(app, htmx):
    """htmx follows HX-Redirect with a full page load, which carries the message."""
    author = make_user()
    idea = make_idea(author=author)
    login_as(htmx, author)
    resp = htmx.post(f"/ideas/{idea.id}/delete")
    assert resp.status_code == 200 and resp.headers["HX-Redirect"].startswith(f"/ideas/{idea.id}")
    htmx.environ_base.pop("HTTP_HX_REQUEST")
    html = htmx.get(resp.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Your idea was deleted. You can restore it until" in flash_of(html)


def _flash_in_session(client, message: str) -> None:
    with client.session_transaction() as sess:
        sess["_flashes"] = [("message", message)]


def test_a_cached_page_never_shows_someone_elses_flash(app, make_app):
    """A visitor whose session carries a message sees it on a page others have cached;
    the page with it is kept nowhere, so no other visitor ever gets it."""
    make_idea(title="Something to list")
    first, second = app.test_client(), app.test_client()
    assert b"Something to list" in first.get("/ideas").data  # the visitors' copy is cached
    _flash_in_session(second, "Only for the second visitor")
    assert "Only for the second visitor" in flash_of(second.get("/ideas").get_data(as_text=True))
    # Neither the cached copy nor a copy stored now carries it.
    for client in (first, app.test_client(), second):
        for _ in range(2):
            html = client.get("/ideas").get_data(as_text=True)
            assert "Only for the second visitor" not in html
            assert flash_of(html) == ""


def test_a_members_flashed_page_is_neither_served_from_nor_kept_in_the_cache(app, client):
    """A member's cached page is not served while a message waits (it would hide it), and
    the page that showed it is not kept (it would repeat it)."""
    member = make_user()
    login_as(client, member)
    client.get("/ideas")  # cached for this session
    _flash_in_session(client, "Just for you")
    assert "Just for you" in flash_of(client.get("/ideas").get_data(as_text=True))
    assert "Just for you" not in client.get("/ideas").get_data(as_text=True)


# --- 3. confirm, delete, restore --------------------------------------------------------


def test_delete_asks_first_without_javascript(app, client):
    """GET /ideas/<id>/delete is a confirm page with a plain form; only its POST deletes."""
    author = make_user()
    idea = make_idea(author=author, title="Keep me a while")
    login_as(client, author)
    show = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert f'href="/ideas/{idea.id}/delete"' in show  # a link, not a one-click form
    resp = client.get(f"/ideas/{idea.id}/delete")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "no-store" in resp.headers["Cache-Control"]
    assert "Delete this idea?" in html and "Keep me a while" in html
    assert re.search(rf'<form method="post"[^>]*action="/ideas/{idea.id}/delete"', html)
    assert reload(idea).deleted_at is None
    other = app.test_client()
    login_as(other, make_user())
    assert other.get(f"/ideas/{idea.id}/delete").status_code == 403
    assert app.test_client().get(f"/ideas/{idea.id}/delete").status_code == 302
    client.post(f"/ideas/{idea.id}/delete")
    assert reload(idea).deleted_at is not None


def test_the_author_sees_a_deleted_idea_marked_and_restores_it(app, client):
    """After deleting, the author sees the idea marked deleted with Restore; everyone else
    gets 404; Restore brings it back for all."""
    author = make_user()
    idea = make_idea(author=author, title="Undo me")
    login_as(client, author)
    html = follow(client, client.post(f"/ideas/{idea.id}/delete"))
    assert 'id="deleted-notice"' in html and "You deleted this idea" in html
    assert f'action="/ideas/{idea.id}/restore"' in html
    assert "Undo me" not in app.test_client().get("/ideas").get_data(as_text=True)
    other = app.test_client()
    login_as(other, make_user())
    assert other.get(f"/ideas/{idea.id}").status_code == 404
    assert app.test_client().get(f"/ideas/{idea.id}").status_code == 404
    assert other.post(f"/ideas/{idea.id}/restore").status_code == 404
    html = follow(client, client.post(f"/ideas/{idea.id}/restore"))
    assert "The idea was restored." in flash_of(html) and "deleted-notice" not in html
    assert reload(idea).deleted_at is None
    assert app.test_client().get(f"/ideas/{idea.id}").status_code == 200


def test_after_the_window_the_author_gets_404_and_cannot_restore(make_app):
    """IDEA_RESTORE_DAYS after deleting, the idea is gone for its author (staff still
    restore it)."""
    from .conftest import fresh_app

    now = [utcnow()]
    overrides = {"IDEA_RESTORE_DAYS": 2, "SESSION_IDLE_TIMEOUT": timedelta(days=30)}
    with fresh_app(make_app, CLOCK=lambda: now[0], **overrides) as app:
        author, staff = make_user(), make_user("staff")
        idea = make_idea(author=author)
        client = app.test_client()
        login_as(client, author)
        client.post(f"/ideas/{idea.id}/delete")
        now[0] += timedelta(days=1, hours=23)
        assert client.get(f"/ideas/{idea.id}").status_code == 200
        now[0] += timedelta(hours=2)
        login_as(client, author)
        assert client.get(f"/ideas/{idea.id}").status_code == 404
        assert client.post(f"/ideas/{idea.id}/restore").status_code == 404
        assert reload(idea).deleted_at is not None
        login_as(client, staff)
        assert client.post(f"/ideas/{idea.id}/restore").status_code == 303
        assert reload(idea).deleted_at is None


def test_an_idea_staff_deleted_is_not_its_authors_to_restore(app, client):
    """Staff's deletion is a moderation decision: its author gets 404, not a Restore."""
    author, staff = make_user(), make_user("staff")
    idea = make_idea(author=author)
    ideas.delete_idea(staff, idea)
    db.session.commit()
    login_as(client, author)
    assert client.get(f"/ideas/{idea.id}").status_code == 404
    assert client.post(f"/ideas/{idea.id}/restore").status_code == 404


# --- 7c. duplicate titles ---------------------------------------------------------------


def test_title_key_is_nfkc_casefold_and_collapsed_whitespace():
    """'Exact' means the same after NFKC, casefolding and whitespace collapse."""
    assert title_key("Dark mode") == title_key("  DARK \t mode ")
    assert title_key("ﬁle export") == title_key("File export")  # NFKC ligature
    assert title_key("Straße") == title_key("STRASSE")  # casefold, not lower
    assert title_key("Dark mode") != title_key("Dark modes")
    assert len(title_key("x")) == 64


def _post(client, title, board=None):
    board = board or general_board()
    return client.post(
        "/ideas/new", data={"title": title, "body": "", "board": board.id, "kind": "idea"}
    )


def test_a_duplicate_title_is_refused_with_a_link_and_a_vote(app, client):
    """The same title (any case, spacing or width) on the same board is a 422 that links
    the existing idea and offers a one-click vote for it; another board takes it."""
    existing = make_idea(title="Dark mode for the app")
    login_as(client, make_user())
    resp = _post(client, "  DARK mode   for the APP ")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "An idea with this title is already on this board" in html
    assert f'href="/ideas/{existing.id}-' in html
    vote = re.search(
        rf'<form method="post"[^>]*action="/ideas/{existing.id}/vote">(.*?)</form>', html, re.S
    )
    assert vote and 'name="intent" value="vote"' in vote[1]
    assert db.session.scalar(select(Idea.id).where(Idea.id != existing.id)) is None
    assert _post(client, "Dark mode for the app", board=make_board()).status_code == 303


def test_a_deleted_idea_frees_its_title_and_cannot_come_back_over_a_new_one(app, client):
    """Only live ideas hold a title; restoring one whose title was taken since is refused."""
    author = make_user()
    old = make_idea(author=author, title="Export to CSV")
    ideas.delete_idea(author, old)
    db.session.commit()
    login_as(client, author)
    assert _post(client, "Export to CSV").status_code == 303
    resp = client.post(f"/ideas/{old.id}/restore")
    assert resp.status_code == 409 and reload(old).deleted_at is not None


def test_editing_a_title_into_a_duplicate_is_refused(app, client):
    """An edit may keep its own title, but not take another live idea's."""
    author = make_user()
    make_idea(title="Calendar sync")
    mine = make_idea(author=author, title="Calendar export")
    login_as(client, author)
    form = {"body": "", "board": mine.board_id, "kind": "idea", "version": mine.version}
    resp = client.post(f"/ideas/{mine.id}/edit", data={**form, "title": "calendar  SYNC"})
    assert resp.status_code == 422 and "already on this board" in resp.get_data(as_text=True)
    resp = client.post(f"/ideas/{mine.id}/edit", data={**form, "title": "Calendar Export"})
    assert resp.status_code == 303
    assert reload(mine).title_key == title_key("calendar export")


def test_two_posts_of_one_title_at_once_end_in_a_form_error(app, client, monkeypatch):
    """When the check misses a post committed meanwhile (the race), the unique index
    refuses the insert, and the member gets the form error, not a 500."""
    existing = make_idea(title="Race me")
    real = ideas.duplicate_of
    calls = []

    def misses_first(*args, **kw):  # as if the other post had not committed yet
        calls.append(args)
        return None if len(calls) == 1 else real(*args, **kw)

    monkeypatch.setattr(ideas, "duplicate_of", misses_first)
    login_as(client, make_user())
    resp = _post(client, "race ME")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and f'href="/ideas/{existing.id}-' in html
    assert len(calls) == 2
    assert db.session.scalar(select(Idea.id).where(Idea.id != existing.id)) is None


def test_the_unique_index_holds_below_the_service(app):
    """The database itself refuses a second live idea with the same key on a board."""
    from sqlalchemy.exc import IntegrityError

    first = make_idea(title="Index guarded")
    twin = Idea(
        board_id=first.board_id, author_id=first.author_id, kind="idea", title="INDEX guarded"
    )
    db.session.add(twin)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


# --- 7d. line breaks --------------------------------------------------------------------


def test_single_line_breaks_are_kept_and_sanitised():
    """A single newline is a <br>; the output still goes through the sanitiser."""
    html = str(render_markdown("- milk\neggs\nbread <script>x</script>"))
    assert "eggs<br />\nbread" in html or "eggs<br>\nbread" in html
    assert "<script" not in html
    assert MARKUP_VERSION >= 2


def test_shared_page_names_carry_the_markup_version(app):
    """Pages kept in Redis by an older markup are never read by this one."""
    from ideaboard.perf.pagecache import SharedPageStore

    store = SharedPageStore("redis://127.0.0.1:1/0", "sqlite:///x")
    assert f":m{MARKUP_VERSION}:" in store._name(("k",))


# --- 9. staff first; status changes in the discussion ----------------------------------


def test_a_status_change_is_an_event_in_the_discussion(app, client):
    """A status change with its note appears among the comments, in time order."""
    staff = make_user("staff", name="Alice")
    idea = make_idea()
    make_comment(idea, body="Before the change")
    roadmap.change_status(staff, reload(idea), "planned", "Coming in Q3")
    db.session.commit()
    make_comment(reload(idea), body="After the change")
    html = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    stream = html[html.index('<div id="comments">') : html.index('<nav class="pager"')]
    assert "Alice changed the status to" in stream and "Coming in Q3" in stream
    assert stream.index("Before the change") < stream.index("Coming in Q3")
    assert stream.index("Coming in Q3") < stream.index("After the change")
    assert (
        stream.count('class="comment status-event"') == 1
    )  # not the first entry (the post itself)


def test_status_events_cost_no_statement(app, client, count_queries):
    """The events come from the status history the page loads anyway."""
    staff = make_user("staff")
    plain, moved = make_idea(), make_idea()
    for idea in (plain, moved):
        make_comment(idea)
    roadmap.change_status(staff, reload(moved), "planned", "Yes")
    roadmap.change_status(staff, reload(moved), "in_progress", "Started")
    db.session.commit()
    counts = []
    ids = [plain.id, moved.id]
    db.session.remove()  # no objects of the test's own for a request to refresh
    for idea_id in ids:
        with count_queries() as counter:
            assert client.get(f"/ideas/{idea_id}").status_code == 200
        counts.append(counter.statements)
    assert len(counts[0]) == len(counts[1]), counts


def test_events_are_split_between_comment_pages_without_loss(app):
    """Each change is on exactly one comment page: between that page's first comment and
    the next page's."""
    from ideaboard.services.comments import COMMENTS_PER_PAGE, discussion, list_comments

    idea = make_idea()
    staff = make_user("staff")
    for n in range(COMMENTS_PER_PAGE + 3):
        make_comment(idea, body=f"c{n}")
        if n in (10, COMMENTS_PER_PAGE + 1):
            roadmap.change_status(staff, reload(idea), "planned" if n == 10 else "shipped", "")
            db.session.commit()
    history = roadmap.history(reload(idea))
    seen = []
    for cpage in (1, 2):
        page = list_comments(reload(idea), cpage)
        items = discussion(page[0], page, history, cpage)
        seen += [row.to_status for kind, row in items if kind == "event"]
    assert seen == ["planned", "shipped"]


def test_staff_controls_come_first_once(app, client):
    """For staff the status form is rendered once, before the discussion and the sidebar
    (CSS places it); a member's page has none."""
    idea = make_idea()
    login_as(client, make_user("staff"))
    html = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    assert html.count('id="staff-controls"') == 1
    assert html.count('name="status"') == 1
    staff_at = html.index('id="staff-controls"')
    assert html.index("</article>") < staff_at < html.index('class="discussion"')
    assert staff_at < html.index('class="sidebar"')
    assert 'class="idea-layout idea-page has-staff"' in html
    login_as(client, make_user())
    assert 'id="staff-controls"' not in client.get(f"/ideas/{idea.id}").get_data(as_text=True)


def test_the_stylesheet_places_staff_controls_first_on_both_widths():
    """Desktop: top of the sidebar column; phones (≤ 640 px): right under the title."""
    from pathlib import Path

    css = (Path(__file__).parent.parent / "static" / "css" / "app.css").read_text()
    wide = css[css.index("@media (min-width:800px){\n  .idea-page") :]
    assert ".idea-page>.staff-controls{grid-column:2;grid-row:2}" in wide
    assert ".idea-page>.sidebar{grid-column:2;grid-row:3}" in wide
    narrow = css[css.index("@media (max-width:640px){\n  .idea-page") :]
    assert ".idea-page>.idea>.idea-head{order:1}" in narrow
    assert ".idea-page>.staff-controls{order:2}" in narrow


# --- the duplicate check's plan ---------------------------------------------------------


def test_the_duplicate_lookup_uses_the_title_index(app, tmp_path):
    """The check before every post reads the partial unique index, not the table (EXPLAIN:
    PostgreSQL after ANALYZE over a few thousand ideas; SQLite's query plan)."""
    from sqlalchemy.dialects import postgresql, sqlite

    from .conftest import BACKEND
    from .factories import bench_seed

    bench_seed(app, tmp_path, ["--ideas", "3000", "--votes", "3000", "--comments", "100",
                               "--members", "200", "--boards", "3"])  # fmt: skip
    board_id, title = db.session.execute(select(Idea.board_id, Idea.title).limit(1)).one()
    stmt = (
        select(Idea)
        .where(Idea.board_id == board_id, Idea.title_key == title_key(title), Idea.live())
        .limit(1)
    )
    dialect = postgresql.dialect() if BACKEND == "postgres" else sqlite.dialect()
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN " if BACKEND == "postgres" else "EXPLAIN QUERY PLAN "
    with db.engine.connect() as conn:
        plan = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(explain + sql))
    assert "uq_ideas_board_title_key" in plan, plan
    assert ideas.duplicate_of(board_id, title.upper()) is not None


def _backfill(url: str) -> None:
    from flask_migrate import upgrade

    from ideaboard import create_app

    from .conftest import _config

    app = create_app(_config(url))
    with app.app_context():
        upgrade(revision="b7d41e0a9c35")  # before title_key
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users (id, email, email_key, display_name, password_hash, role,"
                " session_token, created_at) VALUES (1, 'a@x.test', 'a@x.test', 'A', 'x',"
                " 'member', 't', '2026-01-01')"
            )
            rows = [
                (1, "Dark mode", None),
                (2, "DARK  mode", None),  # a live duplicate from before the rule
                (3, "dark mode", "2026-02-01"),  # a deleted one
                (4, "Export", None),
            ]
            for idea_id, title, deleted_at in rows:
                conn.exec_driver_sql(
                    "INSERT INTO ideas (id, board_id, author_id, kind, title, body, status,"
                    " updated_at, last_activity_at, created_at, deleted_at) VALUES"
                    f" ({idea_id}, 1, 1, 'idea', '{title}', '', 'heard', '2026-01-01',"
                    " '2026-01-01', '2026-01-01', "
                    + ("NULL" if deleted_at is None else f"'{deleted_at}'")
                    + ")"
                )
        upgrade()
        with db.engine.connect() as conn:
            keys = dict(conn.exec_driver_sql("SELECT id, title_key FROM ideas ORDER BY id").all())
        assert keys == {
            1: title_key("dark mode"),
            2: None,
            3: title_key("dark mode"),
            4: title_key("export"),
        }
        db.engine.dispose()


def test_the_migration_gives_existing_ideas_their_keys(tmp_path):
    """Existing ideas get their key; an older live duplicate keeps NULL so the unique
    index can be built (SQLite, and PostgreSQL when TEST_DATABASE_URL names one)."""
    from .conftest import PG_URL, drop_pg_database, make_pg_database

    _backfill(f"sqlite:///{tmp_path / 'old.db'}")
    if PG_URL:
        url = make_pg_database(PG_URL)
        try:
            _backfill(url)
        finally:
            drop_pg_database(PG_URL, url)


def test_statement_budgets_of_the_confirm_page_and_a_staff_idea_page(app, client, count_queries):
    """The confirm page costs the user and the idea; a staff member's idea page with status
    events in its discussion stays within the idea page's budget (test_query_budget)."""
    from .test_query_budget import BUDGET

    app.extensions["ideaboard_cache"].enabled = False
    author, staff = make_user(), make_user("staff")
    idea = make_idea(author=author)
    for n, status in enumerate(("under_review", "planned", "in_progress")):
        make_comment(reload(idea), body=f"c{n}")
        roadmap.change_status(staff, reload(idea), status, f"note {n}")
        db.session.commit()
    for who, url, budget in (
        (author, f"/ideas/{idea.id}/delete", 2),
        (staff, f"/ideas/{idea.id}", BUDGET["idea"]),
    ):
        login_as(client, who)
        client.get(url)  # warm-up
        with count_queries() as counter:
            assert client.get(url).status_code == 200
        assert counter.count <= budget, (url, counter.statements)


def test_members_posting_one_title_at_once_get_one_idea_and_form_errors(app):
    """Six members post the same title at once: one idea is made, every other answer is
    the duplicate form (422) with a link to it, and none is a server error."""
    from functools import partial

    from .factories import at_once

    board = general_board()
    form = {"title": "All at once", "body": "", "board": board.id, "kind": "idea"}
    jobs = []
    for _ in range(6):
        client = app.test_client()
        login_as(client, make_user())
        jobs.append(partial(client.post, "/ideas/new", data=form))
    answers = at_once(jobs)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [303] + [422] * 5, statuses
    db.session.commit()
    made = db.session.scalars(select(Idea).where(Idea.title == "All at once")).all()
    assert len(made) == 1 and made[0].board_id == board.id
    for resp in answers:
        if resp.status_code == 422:
            assert f'href="/ideas/{made[0].id}-' in resp.get_data(as_text=True)
