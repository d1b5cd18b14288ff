"""Live updates: an open idea page and the roadmap ask what changed (issue 13, item 11).

The page names its live URL and the ETag of what it shows (#live-state); a poll with that
ETag answers an empty 304 until something the page shows changes on that idea (or on the
roadmap), then a 200 of htmx pieces. Runs on the suite's database: SQLite in the first
pass, PostgreSQL in the second.
"""

from __future__ import annotations

import html
import re

import pytest

from ideaboard.extensions import db
from ideaboard.services import ideas as idea_service
from ideaboard.services import roadmap

from .factories import login_as, make_comment, make_idea, make_user, vote_for

STATE = re.compile(r'id="live-state" data-live-url="([^"]*)" data-etag="([^"]*)"')


def _state(body: str) -> tuple[str, str]:
    """The live URL and ETag a page (or a live answer) names."""
    found = STATE.search(body)
    assert found, "no #live-state on the page"
    return html.unescape(found.group(1)), html.unescape(found.group(2))


def _open(client, path: str) -> tuple[str, str]:
    resp = client.get(path)
    assert resp.status_code == 200
    return _state(resp.get_data(as_text=True))


def _poll(client, url: str, etag: str):
    return client.get(url, headers={"If-None-Match": etag, "HX-Request": "true"})


def _idea_path(idea) -> str:
    return f"/ideas/{idea.id}"


def test_a_poll_answers_304_until_a_comment_lands_then_brings_it_once(app):
    idea = make_idea()
    make_comment(idea, body="First words")
    client = app.test_client()
    url, etag = _open(client, _idea_path(idea))
    quiet = _poll(client, url, etag)
    assert quiet.status_code == 304
    assert quiet.get_data() == b""
    assert quiet.headers["ETag"] == etag

    make_comment(idea, make_user(name="Rosa Live"), body="Fresh from another session")
    news = _poll(client, url, etag)
    assert news.status_code == 200
    body = news.get_data(as_text=True)
    assert "Fresh from another session" in body and "Rosa Live" in body
    assert "First words" not in body  # only what came after the last comment shown
    assert 'hx-swap-oob="beforeend:#comments"' in body
    assert "2 comments" in body  # the heading's count
    assert "1 new comment." in body  # the polite announcement
    assert 'name="body"' not in body  # the comment form is never sent again
    new_url, new_etag = _state(body)
    assert new_etag != etag and news.headers["ETag"] == new_etag
    # The next poll, from where the page now is, is quiet again.
    assert _poll(client, new_url, new_etag).status_code == 304


def test_a_vote_and_a_status_change_each_change_the_answer(app):
    idea = make_idea()
    staff = make_user("staff")
    client = app.test_client()
    url, etag = _open(client, _idea_path(idea))

    vote_for(idea, make_user())
    resp = _poll(client, url, etag)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert re.search(r'class="vote-count">2<', body), "the new count"
    assert 'id="voters" hx-swap-oob="true"' in body
    assert "Status changed" not in body and 'id="idea-status"' not in body
    url, etag = _state(body)
    assert _poll(client, url, etag).status_code == 304

    roadmap.change_status(staff, idea, "planned", "On the list for June")
    db.session.commit()
    resp = _poll(client, url, etag)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert 'id="idea-status" hx-swap-oob="true"' in body and "status-planned" in body
    assert "Status changed to Planned." in body
    assert "On the list for June" in body  # the history and the discussion's event
    url, etag = _state(body)
    assert _poll(client, url, etag).status_code == 304


def test_a_status_change_there_and_back_still_changes_the_stamp(app):
    idea = make_idea()
    staff = make_user("staff")
    client = app.test_client()
    url, etag = _open(client, _idea_path(idea))
    roadmap.change_status(staff, idea, "planned")
    roadmap.change_status(staff, idea, "heard")
    db.session.commit()
    resp = _poll(client, url, etag)
    assert resp.status_code == 200
    assert resp.get_data(as_text=True).count('class="comment status-event"') == 2


def test_changes_to_another_idea_keep_the_304(app):
    idea, other = make_idea(), make_idea()
    staff = make_user("staff")
    client = app.test_client()
    url, etag = _open(client, _idea_path(idea))
    make_comment(other)
    vote_for(other, make_user())
    roadmap.change_status(staff, other, "shipped")
    db.session.commit()
    assert _poll(client, url, etag).status_code == 304


def test_a_304_is_one_indexed_read_however_long_the_discussion(app, count_queries):
    idea = make_idea()
    for n in range(30):
        make_comment(idea, body=f"Comment {n}")
    client = app.test_client()
    url, etag = _open(client, _idea_path(idea))
    _poll(client, url, etag)  # warm-up
    with count_queries() as counter:
        assert _poll(client, url, etag).status_code == 304
    assert counter.count == 1, counter.statements


def test_a_deleted_idea_stops_answering_those_who_cannot_see_it(app):
    author = make_user()
    idea = make_idea(author)
    staff = make_user("staff")
    visitor = app.test_client()
    url, etag = _open(visitor, _idea_path(idea))
    staff_client = app.test_client()
    login_as(staff_client, staff)
    staff_url, staff_etag = _open(staff_client, _idea_path(idea))

    idea_service.delete_idea(staff, idea)
    db.session.commit()
    assert _poll(visitor, url, etag).status_code == 404
    assert visitor.get(url, headers={"HX-Request": "true"}).status_code == 404  # no ETag
    other = app.test_client()
    login_as(other, make_user())
    assert _poll(other, url, etag).status_code == 404
    # Staff still see it (marked deleted), so their poll says it changed.
    assert _poll(staff_client, staff_url, staff_etag).status_code == 200
    assert app.test_client().get("/ideas/999999/live").status_code == 404
    assert app.test_client().get(url).status_code == 404  # a plain visit too


def test_members_and_visitors_each_get_their_own_controls_and_no_one_elses(app):
    idea = make_idea()
    staff, member = make_user("staff"), make_user()
    visitor_client, member_client, staff_client = (app.test_client() for _ in range(3))
    login_as(member_client, member)
    login_as(staff_client, staff)
    opened = {
        name: _open(c, _idea_path(idea))
        for name, c in (
            ("visitor", visitor_client),
            ("member", member_client),
            ("staff", staff_client),
        )
    }
    make_comment(idea, staff, body="A word from staff")
    vote_for(idea, make_user())
    bodies = {}
    for name, c in (
        ("visitor", visitor_client),
        ("member", member_client),
        ("staff", staff_client),
    ):
        resp = _poll(c, *opened[name])
        assert resp.status_code == 200, name
        bodies[name] = resp.get_data(as_text=True)
        assert "A word from staff" in bodies[name]
    visitor, member_body, staff_body = bodies["visitor"], bodies["member"], bodies["staff"]
    assert "csrf_token" not in visitor and "Sign in to vote" in visitor
    assert "Mark as official response" not in visitor + member_body
    assert 'name="csrf_token"' in member_body and 'name="intent" value="vote"' in member_body
    assert "Mark as official response" in staff_body
    # Each member's fragment carries their own token, never another's.
    with member_client.session_transaction() as sess:
        member_token = sess.get("csrf_token")
    with staff_client.session_transaction() as sess:
        staff_token = sess.get("csrf_token")
    assert member_token and staff_token and member_token != staff_token
    assert staff_token not in member_body and member_token not in staff_body
    for body in bodies.values():
        assert 'name="body"' not in body and 'name="note"' not in body


def test_a_page_beyond_the_first_of_comments_gets_counts_but_no_appended_comments(app):
    idea = make_idea()
    client = app.test_client()
    url, etag = _open(client, _idea_path(idea))
    assert "c=" in url  # the last page (the only one) appends
    make_comment(idea, body="Later words")
    body = _poll(client, re.sub(r"[?&]c=\d+", "", url), etag).get_data(as_text=True)
    assert "Later words" not in body and "1 comment" in body


@pytest.mark.parametrize("query", ["v=x", "n=-1", "st=bogus", "c=1e3", "s=%C2%B2"])
def test_a_malformed_live_query_is_refused(app, query):
    idea = make_idea()
    assert app.test_client().get(f"/ideas/{idea.id}/live?{query}").status_code == 400


def test_a_plain_visit_to_a_live_url_is_sent_to_the_page(app):
    idea = make_idea()
    client = app.test_client()
    url, _etag = _open(client, _idea_path(idea))
    resp = client.get(url)
    assert resp.status_code == 302
    assert f"/ideas/{idea.id}-" in resp.headers["Location"]
    resp = client.get("/roadmap/live?board=general")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/roadmap?board=general")


def test_a_poll_does_not_take_a_flash_meant_for_the_next_page(app):
    member = make_user()
    idea = make_idea(member)
    client = app.test_client()
    login_as(client, member)
    url, etag = _open(client, _idea_path(idea))
    with client.session_transaction() as sess:
        sess["_flashes"] = [("success", "Kept for the next page")]
    make_comment(idea)
    assert _poll(client, url, etag).status_code == 200
    assert "Kept for the next page" in client.get(_idea_path(idea)).get_data(as_text=True)


# --- the roadmap -----------------------------------------------------------------------


def test_the_roadmap_answers_304_until_its_columns_change(app):
    staff = make_user("staff")
    on_map, elsewhere = make_idea(title="On the map"), make_idea(title="Talked about")
    roadmap.change_status(staff, on_map, "planned")
    db.session.commit()
    client = app.test_client()
    url, etag = _open(client, "/roadmap")
    assert _poll(client, url, etag).status_code == 304
    # A comment moves the shared content version but shows nowhere on the roadmap.
    make_comment(elsewhere, body="Not roadmap news")
    assert _poll(client, url, etag).status_code == 304

    vote_for(on_map, make_user())
    resp = _poll(client, url, etag)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert 'id="stage-body-planned" hx-swap-oob="true"' in body
    assert re.search(r'class="vote-count">2<', body)
    assert "The roadmap was updated." in body
    assert 'action="/roadmap"' not in body  # the filter form stays as it is
    url, etag = _state(body)
    assert _poll(client, url, etag).status_code == 304

    roadmap.change_status(staff, elsewhere, "in_progress")
    db.session.commit()
    body = _poll(client, url, etag).get_data(as_text=True)
    assert 'id="count-in_progress" hx-swap-oob="true">1<' in body
    assert "Talked about" in body


def test_a_roadmap_filtered_by_board_ignores_other_boards(app):
    from .factories import make_board

    staff = make_user("staff")
    board, other = make_board(), make_board()
    mine = make_idea(board=board)
    roadmap.change_status(staff, mine, "planned")
    db.session.commit()
    client = app.test_client()
    url, etag = _open(client, f"/roadmap?board={board.slug}")
    assert f"board={board.slug}" in url
    roadmap.change_status(staff, make_idea(board=other), "planned")
    db.session.commit()
    assert _poll(client, url, etag).status_code == 304
    vote_for(mine, make_user())
    assert _poll(client, url, etag).status_code == 200


def test_a_members_roadmap_pieces_carry_their_token_and_a_visitors_none(app):
    staff, member = make_user("staff"), make_user()
    idea = make_idea()
    roadmap.change_status(staff, idea, "planned")
    db.session.commit()
    visitor_client, member_client = app.test_client(), app.test_client()
    login_as(member_client, member)
    v_url, v_etag = _open(visitor_client, "/roadmap")
    m_url, m_etag = _open(member_client, "/roadmap")
    vote_for(idea, make_user())
    visitor = _poll(visitor_client, v_url, v_etag).get_data(as_text=True)
    member_body = _poll(member_client, m_url, m_etag).get_data(as_text=True)
    assert "csrf_token" not in visitor and 'name="csrf_token"' in member_body
    assert 'name="next" value="/roadmap"' in member_body  # back to the page, not the poll


# --- the fast path: a visitor's unchanged poll, 304 before Flask (perf/livepoll.py) ------


def _observed(app, calls):
    from ideaboard.perf.observe import request_answered

    seen = []

    def record(sender, answer, **_):
        seen.append(answer)

    request_answered.connect(record, app)
    try:
        results = [call() for call in calls]
    finally:
        request_answered.disconnect(record, app)
    return results, [(a.via, a.status, a.user_id) for a in seen]


def _comparable(resp) -> dict:
    headers = {k: v for k, v in resp.headers.items() if k not in ("Date", "Content-Length")}
    if "Content-Security-Policy" in headers:
        headers["Content-Security-Policy"] = re.sub(
            r"'nonce-[^']*'", "'nonce-x'", headers["Content-Security-Policy"]
        )
    return headers


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_visitors_unchanged_poll_is_answered_before_flask_exactly_as_flask(app, language):
    idea = make_idea()
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    url, etag = _open(client, _idea_path(idea))
    (first, second), via = _observed(app, [lambda: _poll(client, url, etag)] * 2)
    assert via == [("flask", 304, None), ("live-fast-path", 304, None)]
    assert first.status_code == second.status_code == 304
    assert first.get_data() == second.get_data() == b""
    assert _comparable(first) == _comparable(second)
    assert "Cache-Control" in second.headers and "Content-Security-Policy" in second.headers
    # A change goes to Flask, which answers 200.
    make_comment(idea)
    (changed,), via = _observed(app, [lambda: _poll(client, url, etag)])
    assert changed.status_code == 200 and via == [("flask", 200, None)]


def test_the_fast_path_leaves_members_deleted_ideas_and_odd_queries_to_flask(app):
    staff = make_user("staff")
    idea = make_idea()
    visitor, member = app.test_client(), app.test_client()
    login_as(member, make_user())
    url, etag = _open(visitor, _idea_path(idea))
    m_url, m_etag = _open(member, _idea_path(idea))
    calls = [
        lambda: _poll(visitor, url, etag),  # Flask; its headers are learned
        lambda: _poll(member, m_url, m_etag),  # a member: Flask
        lambda: _poll(visitor, re.sub(r"\bv=\d+", "v=oops", url), etag),  # the 400
        lambda: visitor.get(url, headers={"If-None-Match": etag}),  # not htmx: the redirect
        lambda: _poll(visitor, url, etag),  # the fast path
    ]
    results, via = _observed(app, calls)
    assert [r.status_code for r in results] == [304, 304, 400, 302, 304]
    assert [v[0] for v in via] == ["flask", "flask", "flask", "flask", "live-fast-path"]
    idea_service.delete_idea(staff, idea)
    db.session.commit()
    (gone,), via = _observed(app, [lambda: _poll(visitor, url, etag)])
    assert gone.status_code == 404 and via == [("flask", 404, None)]


def test_with_the_fast_path_off_flask_answers_every_poll(make_app):
    from .conftest import fresh_app

    with fresh_app(make_app, LIVE_FAST_PATH=False) as app:
        idea = make_idea()
        client = app.test_client()
        url, etag = _open(client, _idea_path(idea))
        results, via = _observed(app, [lambda: _poll(client, url, etag)] * 2)
        assert [r.status_code for r in results] == [304, 304]
        assert via == [("flask", 304, None)] * 2


# --- several workers sharing Redis (REDIS_URL) ---------------------------------------


def test_workers_sharing_redis_each_see_a_change_made_through_another(make_app):
    """Two apps over one database and one Redis stand for two workers (or hosts): a write
    through one turns the other's next poll into a 200, for an idea and for the roadmap,
    and each is quiet (304) again afterwards."""
    from .conftest import TEST_REDIS, fresh_app, redis_or_skip

    redis_or_skip()
    with fresh_app(make_app, REDIS_URL=TEST_REDIS) as first:
        second = make_app(REDIS_URL=TEST_REDIS)
        staff = make_user("staff")
        idea = make_idea()
        roadmap.change_status(staff, idea, "planned")
        db.session.commit()
        one, two = first.test_client(), second.test_client()
        r_url, r_etag = _open(one, "/roadmap")
        i_url, i_etag = _open(one, _idea_path(idea))
        assert _poll(two, r_url, r_etag).status_code == 304
        assert _poll(two, i_url, i_etag).status_code == 304

        roadmap.change_status(staff, idea, "in_progress")  # through the first worker's app
        db.session.commit()
        for client in (two, one):
            resp = _poll(client, r_url, r_etag)
            assert resp.status_code == 200
            assert 'id="count-in_progress" hx-swap-oob="true">1<' in resp.get_data(as_text=True)
            assert _poll(client, *_state(resp.get_data(as_text=True))).status_code == 304
            resp = _poll(client, i_url, i_etag)
            assert resp.status_code == 200 and "status-in_progress" in resp.get_data(as_text=True)
