"""bench/seed.py: bulk benchmark data that is as consistent as the services keep it."""

import json
import re

import pytest
from sqlalchemy import func, select, update

from bench.seed import BENCH_PASSWORD, STAFF_EMAIL, _fix_counts, _rescore, seed_command
from ideaboard.extensions import db
from ideaboard.models import Board, Comment, Idea, Status, StatusChange, User, Vote
from ideaboard.services import accounts, follows, votes
from ideaboard.services.ideas import IdeaQuery, list_ideas, trending_score
from ideaboard.services.search import match_clause, query_terms

from .factories import SMALL_CLUBS

WORD = re.compile(r"\w+")
SIZES = {"ideas": 300, "votes": 3000, "comments": 600, "members": 200, "boards": 2}


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _seed(app, state, sizes, *extra):
    args = ["--state", str(state), *extra]
    if "communities" not in sizes:  # a few clubs, not the benchmark's 60,000 replies
        args += SMALL_CLUBS
    for name, value in sizes.items():
        args += [f"--{name}", str(value)]
    result = app.test_cli_runner().invoke(seed_command, args)
    db.session.commit()  # then read what the command's own connection wrote
    return result


def test_bench_seed_fills_a_consistent_database(app, tmp_path):
    """One seeding (it is the slow part), then every property the benchmark relies on."""
    state = tmp_path / "state.json"
    result = _seed(app, state, SIZES)
    assert result.exit_code == 0, result.output
    assert "votes: 3,000/3,000" in result.output  # progress per phase
    seeded = json.loads(state.read_text())
    _assert_sizes(seeded)
    _assert_counts_exact()
    _assert_votes_unique_and_skewed()
    _assert_hot_idea(seeded)
    _assert_statuses_and_history()
    for word in ("export", "dark", "mobile", "уведомления"):
        _assert_search_finds(word)
    _assert_members_sign_in()


def test_count_fix_restores_counts_from_the_rows(app, tmp_path):
    """The bench writes counts with the ideas, then makes them exact from the rows."""
    assert _seed(app, tmp_path / "state.json", SIZES).exit_code == 0
    ids = list(db.session.scalars(select(Idea.id).order_by(Idea.vote_count.desc()).limit(3)))
    db.session.execute(
        update(Idea)
        .where(Idea.id.in_(ids))
        .values(vote_count=Idea.vote_count + 3, comment_count=0, trending_score=0)
    )
    db.session.commit()
    assert sorted(votes.count_mismatches()) == sorted(ids)
    with db.engine.connect() as conn:
        changed = _fix_counts(conn)
        _rescore(conn, changed)
    db.session.commit()
    assert sorted(changed) == sorted(ids)
    _assert_counts_exact()


def _assert_sizes(seeded):
    assert _count(Idea) == SIZES["ideas"]
    assert _count(Vote) == SIZES["votes"]
    assert _count(Comment) == SIZES["comments"]
    assert _count(User, User.role == "member") == SIZES["members"]
    assert _count(User, User.email == STAFF_EMAIL, User.role == "staff") == 1
    slugs = set(db.session.scalars(select(Board.slug)))
    assert slugs == {"general", "bench-1", "bench-2"}
    assert {k: seeded[k] for k in SIZES if k != "boards"} == {
        k: v for k, v in SIZES.items() if k != "boards"
    }
    assert seeded["database"] == db.engine.dialect.name and seeded["seconds"] >= 0
    # Unique sign-in keys and session tokens.
    assert db.session.scalar(select(func.count(func.distinct(User.session_token)))) == _count(User)
    assert db.session.scalar(select(User.email_key).where(User.email == "bench7@bench.test")) == (
        "bench7@bench.test"
    )


def _assert_counts_exact():
    assert votes.count_mismatches() == []
    # Authors, voters and commenters follow, as the app's writes make them; counts exact.
    assert follows.follower_mismatches() == []
    hot = db.session.scalar(select(Idea).order_by(Idea.vote_count.desc()).limit(1))
    assert hot.follower_count >= hot.vote_count > 0
    comment_rows = dict(
        db.session.execute(select(Comment.idea_id, func.count()).group_by(Comment.idea_id)).all()
    )
    for idea_id, stored in db.session.execute(select(Idea.id, Idea.comment_count)):
        assert stored == comment_rows.get(idea_id, 0), idea_id
    for idea in db.session.scalars(select(Idea)):
        assert idea.trending_score == pytest.approx(
            trending_score(idea.vote_count, idea.created_at)
        )
        assert idea.version == 1 and idea.last_activity_at >= idea.created_at


def _assert_votes_unique_and_skewed():
    duplicates = db.session.execute(
        select(Vote.idea_id, Vote.user_id)
        .group_by(Vote.idea_id, Vote.user_id)
        .having(func.count() > 1)
    ).all()
    assert duplicates == []
    counts = sorted(db.session.scalars(select(Idea.vote_count)), reverse=True)
    assert counts[0] >= 10 * counts[len(counts) // 2]  # a few big ideas, most small


def _assert_hot_idea(seeded):
    hot = db.session.get(Idea, seeded["hot_idea_id"])
    assert hot.vote_count == db.session.scalar(select(func.max(Idea.vote_count)))
    assert _count(Comment, Comment.idea_id == hot.id) >= 200


def _assert_statuses_and_history():
    statuses = set(db.session.scalars(select(Idea.status).distinct()))
    # Every status but merged, which only a merge sets (the seed merges nothing).
    assert statuses == {s.value for s in Status} - {Status.MERGED.value}
    # Every idea starts with None -> heard, and has one more row per step it went along.
    assert _count(StatusChange, StatusChange.from_status.is_(None)) == SIZES["ideas"]
    shipped = db.session.scalar(select(Idea).where(Idea.status == "shipped").limit(1))
    steps = db.session.scalars(
        select(StatusChange.to_status)
        .where(StatusChange.idea_id == shipped.id)
        .order_by(StatusChange.created_at, StatusChange.id)
    ).all()
    assert steps == ["heard", "under_review", "planned", "in_progress", "shipped"]


def _assert_search_finds(word):
    """The search index (FTS5 on SQLite, GIN on PostgreSQL) agrees with the rows."""
    expected = {
        idea_id
        for idea_id, title, body in db.session.execute(select(Idea.id, Idea.title, Idea.body))
        if any(token.startswith(word) for token in WORD.findall(f"{title} {body}".lower()))
    }
    assert 0 < len(expected) < SIZES["ideas"] // 3  # a moderate number of matches
    found = set(db.session.scalars(select(Idea.id).where(match_clause(query_terms(word)))))
    assert found == expected
    page = list_ideas(IdeaQuery(q=word, per_page=100))
    assert page.items and {idea.id for idea in page.items} <= expected


def _assert_members_sign_in():
    user = accounts.authenticate("bench1@bench.test", BENCH_PASSWORD)
    assert user is not None and user.role == "member"
    assert accounts.authenticate(STAFF_EMAIL, BENCH_PASSWORD).role == "staff"
    assert accounts.authenticate("bench1@bench.test", "wrong password") is None


def test_bench_seed_refuses_a_database_with_ideas_unless_forced(app, tmp_path):
    small = {"ideas": 20, "votes": 50, "comments": 10, "members": 30, "boards": 1}
    state = tmp_path / "state.json"
    assert _seed(app, state, small).exit_code == 0

    result = _seed(app, state, small)
    assert result.exit_code == 1
    assert "already has 20 ideas" in result.output and "--force" in result.output
    assert _count(Idea) == 20

    result = _seed(app, state, small, "--force")
    assert result.exit_code == 0, result.output
    assert _count(Idea) == 40 and _count(Vote) == 100 and _count(Comment) == 20
    assert _count(User, User.role == "member") == 30  # the bench members are reused
    assert _count(Board) == 2
    assert votes.count_mismatches() == []
    assert json.loads(state.read_text())["hot_idea_id"] > 20


def test_bench_seed_refreshes_cached_pages(app, client, tmp_path):
    """The seed writes around the ORM session, yet no visitor keeps the page from before."""
    before = client.get("/ideas?sort=top&status=all")  # cached while the board is empty
    small = {"ideas": 20, "votes": 50, "comments": 10, "members": 30, "boards": 1}
    assert _seed(app, tmp_path / "state.json", small).exit_code == 0
    hot = json.loads((tmp_path / "state.json").read_text())["hot_idea_id"]
    after = client.get("/ideas?sort=top&status=all")
    assert before.status_code == after.status_code == 200
    assert f'href="/ideas/{hot}-'.encode() in after.data
