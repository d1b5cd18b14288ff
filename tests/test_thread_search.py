"""Search over community threads (issue 14): `/threads?q=` finds public threads by words of
their title or text, like the idea search (prefix of a word, any case), on SQLite (FTS5)
and PostgreSQL (stored tsvector + GIN); hidden, held and archived ones never show.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text, update

from ideaboard.extensions import db
from ideaboard.models import Community, Thread, utcnow
from ideaboard.services import search, threads

from .conftest import BACKEND
from .factories import make_community, make_idea, make_reply, make_thread, make_user, reload
from .test_input_shape import PAYLOADS

HX = {"HX-Request": "true"}


def _found(client, q: str, **args) -> list[str]:
    resp = client.get("/threads", query_string={"q": q, **args})
    assert resp.status_code == 200
    return re.findall(r'class="thread-title" href="[^"]*">([^<]*)</a>', resp.get_data(as_text=True))


@pytest.fixture
def clubs(app):
    fans = make_community("fans", "Fan Club")
    old = make_community("old-club", "Old Club")
    author = make_user()
    make_thread(fans, author, title="Tour dates announced", body="Berlin and Warsaw")
    make_thread(fans, author, title="Merch ideas", body="Hoodies for the TOUR crew")
    make_thread(fans, author, title="Концерт в Москве", body="Билеты уже в продаже")
    hidden = make_thread(fans, author, title="Tour spoilers")
    held = make_thread(fans, author, title="Tour secrets")
    make_thread(old, author, title="Tour of 2019")
    db.session.execute(update(Thread).where(Thread.id == hidden.id).values(deleted_at=utcnow()))
    db.session.execute(update(Thread).where(Thread.id == held.id).values(held_at=utcnow()))
    db.session.execute(update(Community).where(Community.id == old.id).values(archived_at=utcnow()))
    db.session.commit()
    return fans, author


def test_search_finds_public_threads_by_title_and_text(app, client, clubs):
    """Words start a word of the title or the text, any case; every word must match;
    hidden, held and archived-community threads never show."""
    assert set(_found(client, "tour")) == {"Tour dates announced", "Merch ideas"}
    assert _found(client, "TOU war") == ["Tour dates announced"]
    assert _found(client, "hood") == ["Merch ideas"]
    assert _found(client, "билет") == ["Концерт в Москве"]
    assert _found(client, "our") == []  # a prefix, not a substring
    assert _found(client, "spoilers") == [] and _found(client, "secrets") == []
    assert _found(client, "2019") == []
    html = client.get("/threads?q=tour").get_data(as_text=True)
    assert "Fan Club" in html and 'href="/c/fans"' in html


def test_an_edited_thread_is_found_by_its_new_words(app, client, clubs):
    fans, author = clubs
    thread = make_thread(fans, author, title="Setlist wishes")
    threads.edit_thread(author, reload(thread), fans, "Encore wishes", "Play the old songs")
    db.session.commit()
    assert _found(client, "setlist") == []
    assert _found(client, "encore old") == ["Encore wishes"]


def test_results_come_newest_activity_first_in_pages(app, client, clubs, count_queries):
    """25 matches: 20 on the first page, 5 on the second, linked both ways; a reply moves
    its thread up; the result statements are as many for one match as for twenty."""
    fans, author = clubs
    with count_queries() as one:
        assert _found(client, "hood") == ["Merch ideas"]
    made = [make_thread(fans, author, title=f"Gig number {n}") for n in range(25)]
    with count_queries() as many:
        first = _found(client, "gig")
    assert many.count == one.count
    assert first == [f"Gig number {n}" for n in range(24, 4, -1)]
    second = _found(client, "gig", page=2)
    assert second == [f"Gig number {n}" for n in range(4, -1, -1)]
    html = client.get("/threads?q=gig&page=2").get_data(as_text=True)
    assert 'rel="prev" href="/threads?q=gig"' in html
    make_reply(made[0], make_user(), "Bump")
    assert _found(client, "gig")[0] == "Gig number 0"
    assert "past the end" in client.get("/threads?q=gig&page=9").get_data(as_text=True)


def test_htmx_gets_the_results_fragment_and_no_words_asks_for_some(app, client, clubs):
    resp = client.get("/threads?q=tour", headers=HX)
    body = resp.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="thread-results"') and "<html" not in body
    empty = client.get("/threads").get_data(as_text=True)
    assert "Type a few words" in empty and 'role="search"' in empty


def test_the_idea_search_points_to_thread_results(app, client, clubs):
    make_idea(title="Tour merch store")
    db.session.commit()
    html = client.get("/ideas?q=tour").get_data(as_text=True)
    assert 'href="/threads?q=tour"' in html
    assert "Search community threads for “tour”" in html
    assert "/threads?q=" not in client.get("/ideas").get_data(as_text=True)


def test_hostile_query_strings_never_fail(app, client, clubs):
    for value in PAYLOADS + ["tour" * 100, "a " * 300, "\x00", "'':*|!"]:
        for param in ("q", "page"):
            resp = client.get("/threads", query_string={param: value})
            # NUL is refused by the app for every request (400); nothing else fails.
            assert resp.status_code in (200, 400), (param, value, resp.status_code)
            assert resp.status_code == 200 or "\x00" in value


def test_the_search_service_caps_the_page_and_ignores_non_words(app, clubs):
    assert search.search_threads("!!! ***").threads == []
    assert search.search_threads("tour", page=10**9).page == search.THREADS_MAX_PAGE


@pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's plan")
def test_postgres_reads_the_gin_index_for_a_rare_word(app, clubs):
    """With 30,000 threads, a rare word is found through ix_threads_search, and no
    search statement reads the threads table sequentially."""
    fans, _author = clubs
    db.session.execute(
        text(
            "INSERT INTO threads (community_id, title, body, pinned, reply_count, "
            "follower_count, created_at, last_activity_at) "
            "SELECT :c, 'Thread ' || n, 'common words here ' || md5(n::text), 0, 0, 0, "
            "now(), now() - (n || ' minutes')::interval FROM generate_series(1, 30000) AS n"
        ),
        {"c": fans.id},
    )
    db.session.commit()
    db.session.execute(text("ANALYZE threads"))
    db.session.commit()
    seen = []
    from sqlalchemy import event

    def _on(conn, cursor, statement, parameters, context, executemany):
        if "search_vector" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", _on)
    try:
        assert [t.title for t in search.search_threads("hoodies").threads] == ["Merch ideas"]
        assert len(search.search_threads("common").threads) == search.THREADS_PER_PAGE
    finally:
        event.remove(db.engine, "before_cursor_execute", _on)
    plans = [
        "\n".join(db.session.connection().exec_driver_sql("EXPLAIN " + s, p).scalars())
        for s, p in seen
    ]
    assert "ix_threads_search" in plans[0], plans[0]
    assert all("Seq Scan on threads" not in plan for plan in plans), plans
