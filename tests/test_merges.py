"""Merging duplicates (issue 13, item 7): counts stay exact, undo restores exactly.

- B's voters become A's voters once (a member who voted for both counts once); B's
  followers follow A unless they unfollowed A (sticky); A's vote, trending and follower
  numbers equal its rows; B becomes `merged`, points to A, keeps its comments, takes no
  votes (Flask and the fast path: 403, "Closed: Merged").
- Refusals are 422 next to the `into` field and change nothing.
- Undo takes off A exactly what the merge added that still stands.
- Two merges at once, or votes on B during a merge, leave exact counts.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from __future__ import annotations

import json
import re
from functools import partial

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Event, EventKind, Follow, Idea, Merge, Vote
from ideaboard.services import follows, ideas, merges, roadmap, votes
from ideaboard.services.errors import ValidationError

from .factories import at_once, login_as, make_comment, make_idea, make_user, reload, vote_for
from .routes import db_snapshot, snapshot_diff
from .test_fastvote import handled_by_flask, sign_in
from .test_fastvote import make_fast_app as _make_fast_app
from .test_fastvote import vote as htmx_vote

make_fast_app = pytest.fixture(_make_fast_app.__wrapped__, name="make_fast_app")


def _voters(idea) -> set[int]:
    db.session.commit()
    return set(db.session.scalars(select(Vote.user_id).where(Vote.idea_id == idea.id)))


def _followers(idea) -> set[int]:
    db.session.commit()
    return set(db.session.scalars(follows.followers_query(idea.id)))


def _exact() -> None:
    """Every idea's counts equal its rows, its score follows from its count, and every
    merged idea's standing merge names the idea it points to."""
    db.session.commit()
    assert votes.count_mismatches() == []
    assert follows.follower_mismatches() == []
    assert merges.merge_mismatches() == []
    for idea in db.session.scalars(select(Idea)):
        assert idea.trending_score == pytest.approx(
            ideas.trending_score(idea.vote_count, idea.created_at), abs=1e-9
        ), idea


def _state(idea) -> tuple:
    """What a merge or an undo may touch on an idea."""
    i = reload(idea)
    return (
        i.status,
        i.merged_into_id,
        i.vote_count,
        i.follower_count,
        i.trending_score,
        _voters(i),
        _followers(i),
    )


@pytest.fixture
def pair(app):
    """A (two voters besides its author) and B (one of them voted for it too), a member
    following B who unfollowed A, and staff."""
    staff = make_user("staff")
    a, b = make_idea(title="Dark mode for the app"), make_idea(title="Night theme please")
    shared, only_a, only_b, sticky = make_user(), make_user(), make_user(), make_user()
    for user in (shared, only_a):
        vote_for(a, user)
    for user in (shared, only_b, sticky):
        vote_for(b, user)
    follows.unfollow_idea(sticky, a)  # sticky: never subscribed to A again
    db.session.commit()
    return {"a": a, "b": b, "staff": staff, "shared": shared, "only_b": only_b, "sticky": sticky}


def _merge(p):
    merge = merges.merge_idea(p["staff"], p["b"], str(p["a"].id))
    db.session.commit()
    return merge


# --- merging ----------------------------------------------------------------------------


def test_merge_moves_each_voter_once_and_followers_except_a_sticky_unfollow(pair):
    """A ends with the union of both ideas' voters, counted once each; B's followers follow
    A, except the one who had unfollowed A; B is merged into A and keeps its own rows."""
    a, b = pair["a"], pair["b"]
    voters_a, voters_b = _voters(a), _voters(b)
    followers_a, followers_b = _followers(a), _followers(b)
    b_before = _state(b)
    assert voters_a & voters_b == {pair["shared"].id}
    merge = _merge(pair)
    assert _voters(a) == voters_a | voters_b
    assert reload(a).vote_count == len(voters_a | voters_b) == 6  # 3 + 4 - 1 shared
    assert merge.votes_moved == len(voters_b - voters_a) == 3
    assert _followers(a) == followers_a | (followers_b - {pair["sticky"].id})
    assert pair["sticky"].id in followers_b and pair["sticky"].id not in _followers(a)
    assert reload(a).follower_count == len(_followers(a))
    # B: merged into A, its own votes, followers and count kept (frozen), as history.
    status, into, *rest = _state(b)
    assert (status, into) == ("merged", a.id)
    assert rest == list(b_before[2:])
    _exact()


def test_merge_records_one_merged_event_on_b_naming_a(pair):
    """Everyone following B hears of it: one `merged` event on B, by the staff member,
    with A's id (the fan-out reads it)."""
    _merge(pair)
    found = db.session.scalars(select(Event).where(Event.kind == EventKind.MERGED)).all()
    assert len(found) == 1
    assert found[0].idea_id == pair["b"].id and found[0].actor_id == pair["staff"].id
    assert json.loads(found[0].data)["into"] == pair["a"].id


# --- undo -------------------------------------------------------------------------------


def test_undo_restores_both_ideas_exactly(pair):
    """Merge then undo: both ideas are as before, to the row and the score."""
    a, b = pair["a"], pair["b"]
    before = _state(a), _state(b)
    merge = _merge(pair)
    assert _state(a) != before[0]
    merges.undo_merge(pair["staff"], reload(a), reload(merge))
    db.session.commit()
    assert (_state(a), _state(b)) == before
    assert reload(merge).undone_at is not None
    _exact()


def test_the_api_names_the_idea_a_merged_one_went_into(pair, client):
    """GET /api/v1/ideas/B says where B went (id and URL); after undo, nothing."""
    a, b = pair["a"], pair["b"]
    before = client.get(f"/api/v1/ideas/{b.id}").get_json()
    assert before["merged_into"] is None and before["merged_into_url"] is None
    merge = _merge(pair)
    after = client.get(f"/api/v1/ideas/{b.id}").get_json()
    assert after["status"] == "merged" and after["merged_into"] == a.id
    assert after["merged_into_url"] == f"http://127.0.0.1:5000/ideas/{a.id}"
    merges.undo_merge(pair["staff"], reload(a), reload(merge))
    db.session.commit()
    assert client.get(f"/api/v1/ideas/{b.id}").get_json()["merged_into"] is None


def test_undo_keeps_what_members_did_on_a_after_the_merge(pair):
    """After the merge, a moved voter takes their vote back and a newcomer votes for A:
    undo removes only the merge's remaining votes; the un-vote and the new vote stand."""
    a = pair["a"]
    voters_before = _voters(a)
    merge = _merge(pair)
    only_b, newcomer = pair["only_b"], make_user()
    votes.set_vote(only_b, reload(a), votes.UNVOTE)
    vote_for(reload(a), newcomer)
    assert merges.undo_preview(reload(merge)).votes == merge.votes_moved - 1
    merges.undo_merge(pair["staff"], reload(a), reload(merge))
    db.session.commit()
    assert _voters(a) == voters_before | {newcomer.id}
    assert only_b.id not in _voters(a)
    _exact()


def test_undo_keeps_an_unfollow_made_after_the_merge(pair):
    """A moved follower who unfollowed A after the merge keeps that choice after undo
    (their row stays, inactive, so no vote or comment re-subscribes them)."""
    a = pair["a"]
    merge = _merge(pair)
    follows.unfollow_idea(pair["only_b"], reload(a))
    db.session.commit()
    merges.undo_merge(pair["staff"], reload(a), reload(merge))
    db.session.commit()
    row = db.session.scalar(
        select(Follow).where(Follow.idea_id == a.id, Follow.user_id == pair["only_b"].id)
    )
    assert row is not None and row.active is False
    _exact()


def test_undo_twice_is_refused(pair, client):
    """The second undo is a 422 with a message, and changes nothing."""
    a = pair["a"]
    merge = _merge(pair)
    login_as(client, pair["staff"])
    url = f"/ideas/{a.id}/merges/{merge.id}/undo"
    assert client.post(url).status_code == 303
    before = db_snapshot()
    resp = client.post(url)
    assert resp.status_code == 422
    assert "This merge was undone already." in resp.get_data(as_text=True)
    assert snapshot_diff(before, db_snapshot()) == []


# --- through the pages -------------------------------------------------------------------


def test_staff_merge_through_the_pages_without_javascript(pair, client):
    """Staff type B's duplicate's title, pick A, see what will move, confirm: they land on
    A, whose history says one idea merged into it with an Undo link; B says where it went."""
    a, b = pair["a"], pair["b"]
    login_as(client, pair["staff"])
    page = client.get(f"/ideas/{b.id}").get_data(as_text=True)
    assert 'name="into"' in page and f'action="/ideas/{b.id}/merge"' in page
    found = client.get(f"/ideas/{b.id}/merge", query_string={"into": "dark mode"})
    assert found.status_code == 200
    assert f"/ideas/{b.id}/merge?into={a.id}" in found.get_data(as_text=True)
    confirm = client.get(f"/ideas/{b.id}/merge", query_string={"into": str(a.id)})
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and 'id="merge-confirm"' in text
    assert "3 votes move" in text and "2 followers start" in text
    assert _state(b)[0] == "heard"  # asking moved nothing
    done = client.post(f"/ideas/{b.id}/merge", data={"into": str(a.id)})
    assert done.status_code == 303
    assert (
        done.headers["Location"].startswith(f"/ideas/{a.id}-")
        and "#merges" in done.headers["Location"]
    )
    page_a = client.get(f"/ideas/{a.id}").get_data(as_text=True)
    assert "1 idea merged into this" in page_a
    merge = db.session.scalar(select(Merge))
    assert f"/ideas/{a.id}/merges/{merge.id}/undo" in page_a
    page_b = client.get(f"/ideas/{b.id}").get_data(as_text=True)
    notice = re.search(r'<div class="alert merged-notice".*?</div>', page_b, re.S).group(0)
    assert "Merged into" in notice and f'href="/ideas/{a.id}-' in notice
    assert "Dark mode for the app" in notice
    undo_page = client.get(f"/ideas/{a.id}/merges/{merge.id}/undo")
    assert undo_page.status_code == 200 and "3 votes the merge added" in undo_page.get_data(
        as_text=True
    )
    assert client.post(f"/ideas/{a.id}/merges/{merge.id}/undo").status_code == 303
    assert _state(b)[:2] == ("heard", None)
    _exact()


def test_merged_idea_keeps_its_comments_and_members_see_no_staff_controls(pair, client):
    """B's comments stay readable; a member's and a visitor's pages of A and B show no
    merge form, no undo link and no staff tokens."""
    a, b = pair["a"], pair["b"]
    make_comment(b, body="An old remark on the duplicate")
    _merge(pair)
    for who in (pair["shared"], None):
        c = client.application.test_client()
        if who is not None:
            login_as(c, who)
        for _ in range(2):  # the second look may come from the page cache
            page_b = c.get(f"/ideas/{b.id}").get_data(as_text=True)
            page_a = c.get(f"/ideas/{a.id}").get_data(as_text=True)
            assert "An old remark on the duplicate" in page_b
            assert "Merged into" in page_b and "1 idea merged into this" in page_a
            for page in (page_a, page_b):
                assert "/merge" not in page and "Undo merge" not in page
                assert 'id="staff-controls"' not in page


def test_a_deleted_merged_idea_is_not_listed_on_a_for_visitors(pair, client):
    """Once B is deleted, A's history no longer names it to visitors; staff still see it."""
    _merge(pair)
    ideas.delete_idea(pair["staff"], reload(pair["b"]))
    db.session.commit()
    page = client.get(f"/ideas/{pair['a'].id}").get_data(as_text=True)
    assert "Night theme please" not in page and "merged into this" not in page
    login_as(client, pair["staff"])
    page = client.get(f"/ideas/{pair['a'].id}").get_data(as_text=True)
    assert "Night theme please" in page and "1 idea merged into this" in page


def test_merged_ideas_leave_the_open_list_and_the_roadmap(pair, client):
    """The default list, the roadmap and the similar ideas drop B; `status=merged` lists it."""
    b = pair["b"]
    title = "Night theme please"
    member = client.application.test_client()
    login_as(member, pair["shared"])
    similar = member.get("/ideas/similar", query_string={"title": "night theme"})
    assert title in similar.get_data(as_text=True)  # offered while open
    _merge(pair)
    assert title not in client.get("/ideas").get_data(as_text=True)
    assert title not in client.get("/roadmap").get_data(as_text=True)
    assert title in client.get("/ideas?status=merged").get_data(as_text=True)
    assert f"/ideas/{b.id}-" in client.get("/ideas?status=all").get_data(as_text=True)
    # Nor is it offered as a similar idea to vote for instead (its votes are frozen).
    login_as(client, pair["shared"])
    similar = client.get("/ideas/similar", query_string={"title": "night theme"})
    assert similar.status_code == 200 and title not in similar.get_data(as_text=True)


# --- refusals -----------------------------------------------------------------------------


def _refusal_cases(p):
    a, b = p["a"], p["b"]
    author = make_user()
    gone = make_idea(author, title="A deleted idea")
    ideas.delete_idea(author, gone)
    c = make_idea(title="Third one")
    d = make_idea(title="Fourth one")
    merges.merge_idea(p["staff"], d, str(c.id))
    db.session.commit()
    return {
        "itself": (b, str(b.id), "cannot be merged into itself"),
        "deleted": (b, str(gone.id), "That idea is deleted"),
        "merged target": (b, str(d.id), f"merged into #{c.id}"),
        "already merged": (d, str(a.id), "already merged into another"),
        "not a number": (b, "dark mode", "Enter the number of the idea"),
        "no such idea": (b, "2147483000", "No idea has this number"),
        "too big": (b, "99999999999", "Enter the number of the idea"),
        "empty": (b, "", "Enter the number of the idea"),
    }


def test_refusals_are_422_next_to_the_field_and_change_nothing(pair, client):
    """Each unfit `into` answers 422 with its message beside the field; the DB is unchanged."""
    cases = _refusal_cases(pair)
    login_as(client, pair["staff"])
    for name, (idea, into, message) in cases.items():
        before = db_snapshot()
        resp = client.post(f"/ideas/{idea.id}/merge", data={"into": into})
        text = resp.get_data(as_text=True)
        assert resp.status_code == 422, name
        error = re.search(r'<p class="field-error" id="into-error">(.*?)</p>', text, re.S)
        assert error and message in error.group(1), (name, error and error.group(1))
        assert snapshot_diff(before, db_snapshot()) == [], name
    # Asking to merge an idea merged already says so at once, before any number is typed.
    merged = cases["already merged"][0]
    page = client.get(f"/ideas/{merged.id}/merge").get_data(as_text=True)
    assert "already merged into another" in page and 'id="merge-confirm"' not in page


def test_status_change_never_sets_merged(pair, client):
    """`merged` is not a choice of the status form, and posting it is a 422; a merged idea
    is not moved by a status change either (undo first)."""
    a, b = pair["a"], pair["b"]
    login_as(client, pair["staff"])
    page = client.get(f"/ideas/{a.id}").get_data(as_text=True)
    assert 'value="merged"' not in page.split('id="staff-controls"')[1].split("</form>")[0]
    assert client.post(f"/ideas/{a.id}/status", data={"status": "merged"}).status_code == 422
    assert reload(a).status == "heard"
    _merge(pair)
    with pytest.raises(ValidationError):
        roadmap.change_status(pair["staff"], reload(b), "planned")
    db.session.rollback()
    assert client.post(f"/ideas/{b.id}/status", data={"status": "planned"}).status_code == 422
    assert reload(b).status == "merged"


# --- votes are frozen on a merged idea ----------------------------------------------------


def test_votes_on_a_merged_idea_are_refused_by_flask_and_the_fast_path(make_fast_app):
    """Flask's route and the fast path both answer 403 "closed" on B, for vote, unvote and
    toggle; the page shows the disabled "Closed: Merged" control."""
    app = make_fast_app()
    with app.app_context():
        a, b = make_idea(), make_idea()
        voter = make_user()
        vote_for(b, voter)
        merges.merge_idea(make_user("staff"), b, str(a.id))
        db.session.commit()
        client, token = sign_in(app, voter)
        for intent in ("vote", "unvote", None):
            form = {} if intent is None else {"intent": intent}
            via_flask, resp = handled_by_flask(app, partial(htmx_vote, client, b.id, token, **form))
            assert via_flask and resp.status_code == 403
            assert "this idea was merged into another" in resp.get_data(as_text=True)
        plain = client.post(f"/ideas/{b.id}/vote", data={"csrf_token": token, "intent": "vote"})
        assert plain.status_code == 403
        assert voter.id in _voters(b) and reload(b).vote_count == 2
        page = client.get(f"/ideas/{b.id}").get_data(as_text=True)
        control = re.search(r'<div id="vote-\d+" class="vote is-closed">.*?</div>', page, re.S)
        assert control and "Closed: Merged" in control.group(0) and "disabled" in control.group(0)
        _exact()


# --- concurrency ----------------------------------------------------------------------------


def _staff_client(app):
    client = app.test_client()
    login_as(client, make_user("staff"))
    return client


def test_two_merges_of_one_idea_at_once_make_one_merge(app):
    """B into A and B into C at once: one merge, the other a 422; counts exact."""
    a, b, c = make_idea(), make_idea(), make_idea()
    for _ in range(3):
        vote_for(b, make_user())
    calls = [
        partial(_staff_client(app).post, f"/ideas/{b.id}/merge", data={"into": str(t.id)})
        for t in (a, c, a, c)
    ]
    statuses = sorted(r.status_code for r in at_once(calls))
    assert statuses == [303, 422, 422, 422], statuses
    assert db.session.scalar(select(func.count()).select_from(Merge)) == 1
    into = reload(b).merged_into_id
    assert reload(db.session.get(Idea, into)).vote_count == 5  # its author, B's 4 voters
    _exact()


def test_crossed_merges_at_once_never_chain_or_fail(app):
    """A into B and B into A at once (locks taken in id order): one of them happens, the
    other is refused; no 500, no idea merged into a merged idea; counts exact."""
    for _ in range(3):
        a, b = make_idea(), make_idea()
        vote_for(a, make_user())
        vote_for(b, make_user())
        answers = at_once(
            [
                partial(_staff_client(app).post, f"/ideas/{a.id}/merge", data={"into": str(b.id)}),
                partial(_staff_client(app).post, f"/ideas/{b.id}/merge", data={"into": str(a.id)}),
            ]
        )
        assert sorted(r.status_code for r in answers) == [303, 422]
        states = sorted(reload(i).status for i in (a, b))
        assert states == ["heard", "merged"]
        _exact()


def test_votes_on_b_during_the_merge_leave_exact_counts(app):
    """Members vote on B while staff merge it: every vote lands (on B before the merge,
    carried to A) or is refused (403 after); all counts equal their rows."""
    a, b = make_idea(), make_idea()
    members = [make_user() for _ in range(8)]
    clients = []
    for m in members:
        c = app.test_client()
        login_as(c, m)
        clients.append(c)
    calls = [partial(c.post, f"/ideas/{b.id}/vote", data={"intent": "vote"}) for c in clients]
    calls.insert(
        4, partial(_staff_client(app).post, f"/ideas/{b.id}/merge", data={"into": str(a.id)})
    )
    statuses = [r.status_code for r in at_once(calls)]
    assert statuses.pop(4) == 303
    assert set(statuses) <= {303, 403}, statuses
    # A 303 is a vote that stands on B (counted there, and on A if the merge saw it); a 403
    # came after the merge and wrote nothing.
    on_b = _voters(b)
    for member, status in zip(members, statuses, strict=True):
        assert (member.id in on_b) == (status == 303), (member.id, status)
    _exact()


# --- the page's statement budget ------------------------------------------------------------


def test_idea_pages_with_merges_stay_within_the_budget(app, count_queries, client):
    """B's page (merged) costs what any idea page costs; A's page with merges into it costs
    one statement more (the list of merged ideas), whether 1 or 3 ideas were merged."""
    from .test_query_budget import BUDGET

    app.extensions["ideaboard_cache"].enabled = False
    staff = make_user("staff")
    a = make_idea()
    counts = []
    for n in (1, 3):
        while len(merges.merges_into(a)) < n:
            b = make_idea()
            merges.merge_idea(staff, b, str(a.id))
            db.session.commit()
        member = make_user()
        login_as(client, member)
        row = []
        for path in (f"/ideas/{a.id}", f"/ideas/{b.id}"):
            client.get(path)
            with count_queries() as counter:
                assert client.get(path).status_code == 200
            row.append(counter.count)
        counts.append(row)
    (a1, b1), (a3, b3) = counts
    assert a1 == a3 and b1 == b3, counts
    assert b1 <= BUDGET["idea"] and a1 <= BUDGET["idea"] + 1, counts


# --- the migration on a database with ideas --------------------------------------------------


def test_sqlite_migration_keeps_rows_search_and_checks(tmp_path):
    """Upgrading a SQLite database that holds ideas widens the status CHECK in place: the
    rows, the full-text triggers and the other constraints stay; `merged` is accepted, an
    unknown status still refused; the downgrade narrows it again and drops the column."""
    import sqlalchemy as sa
    from flask_migrate import downgrade, upgrade

    from ideaboard import create_app

    from .conftest import _config

    app = create_app(_config(f"sqlite:///{tmp_path / 'old.db'}"))
    with app.app_context():
        upgrade(revision="a1e7c0d3b9f4")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users (email, email_key, display_name, search_name, password_hash,"
                " role, session_token, created_at) VALUES ('s@x.org', 's@x.org', 'S', 's', 'x',"
                " 'member', 't', CURRENT_TIMESTAMP)"
            )
            for n, word in enumerate(("lighthouse", "harbour")):
                conn.exec_driver_sql(
                    "INSERT INTO ideas (board_id, author_id, kind, title, body, status,"
                    " vote_count, comment_count, follower_count, trending_score, updated_at,"
                    " last_activity_at, version, created_at) VALUES (1, 1, 'idea', ?, '',"
                    " 'planned', 0, 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1,"
                    " CURRENT_TIMESTAMP)",
                    (f"A {word} idea {n}",),
                )
        upgrade()

        def search(conn, word):
            return conn.exec_driver_sql(
                "SELECT rowid FROM ideas_fts WHERE ideas_fts MATCH ?", (word,)
            ).all()

        with db.engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM ideas").scalar() == 2
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert len(search(conn, "lighthouse")) == 1  # the rows' search entries stayed
            conn.exec_driver_sql("UPDATE ideas SET title = 'A beacon idea' WHERE id = 1")
            assert len(search(conn, "beacon")) == 1  # and the triggers still fire
            conn.exec_driver_sql(
                "UPDATE ideas SET status = 'merged', merged_into_id = 2 WHERE id = 1"
            )
            conn.exec_driver_sql(
                "INSERT INTO merges (merged_id, into_id, by_id, previous_status, votes_moved,"
                " follows_moved, created_at) VALUES (1, 2, 1, 'planned', 0, 0, CURRENT_TIMESTAMP)"
            )
        for bad in ("UPDATE ideas SET status = 'bogus' WHERE id = 2",
                    "UPDATE ideas SET vote_count = -1 WHERE id = 2",
                    "UPDATE ideas SET merged_into_id = 999 WHERE id = 2"):  # fmt: skip
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
                conn.exec_driver_sql(bad)
        downgrade(revision="a1e7c0d3b9f4")
        with db.engine.begin() as conn:
            assert (
                conn.exec_driver_sql("SELECT status FROM ideas WHERE id = 1").scalar() == "planned"
            )
            columns = {c["name"] for c in sa.inspect(conn).get_columns("ideas")}
            assert "merged_into_id" not in columns
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            with pytest.raises(sa.exc.IntegrityError):
                conn.exec_driver_sql("UPDATE ideas SET status = 'merged' WHERE id = 2")
        db.engine.dispose()
