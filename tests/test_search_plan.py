"""SQLite search picks its plan by how many ideas match, and both plans give the same page.

A common word walks the sort's index (no sort of thousands of matches); a rare word
fetches its few matches and sorts them (no walk of the whole index). PostgreSQL's planner
makes this choice itself; tests/test_explain.py checks its plans.
"""

import re

import pytest
from sqlalchemy import event, select

from ideaboard.extensions import db
from ideaboard.models import Idea
from ideaboard.services import search
from ideaboard.services.ideas import IdeaQuery, list_ideas

from .conftest import BACKEND
from .factories import bench_seed

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's search plan")
SIZES = ["--ideas", "3000", "--votes", "6000", "--comments", "200", "--members", "200",
         "--boards", "2", "--hot-comments", "10"]  # fmt: skip


@pytest.fixture
def seeded(app, tmp_path):
    return bench_seed(app, tmp_path, SIZES)


def _plan_of_list_query(q: str) -> tuple[str, list[Idea]]:
    seen = []

    def _on(conn, cursor, statement, parameters, context, executemany):
        if "ideas_fts MATCH" in statement and "FROM ideas" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", _on)
    try:
        page = list_ideas(IdeaQuery(q=q))
    finally:
        event.remove(db.engine, "before_cursor_execute", _on)
    statement, parameters = seen[-1]
    conn = db.session.connection()
    plan = " | ".join(
        row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
    )
    return plan, page.items


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _expected(word: str) -> list[int]:
    """The first page by brute force: every live idea with a word starting with `word`."""
    ideas = db.session.scalars(select(Idea).where(Idea.deleted_at.is_(None))).all()
    hits = [i for i in ideas if any(w.startswith(word) for w in _words(f"{i.title} {i.body}"))]
    hits.sort(key=lambda i: (i.trending_score, i.id), reverse=True)
    return [i.id for i in hits[:20]]


def _word_with(count_range: range) -> str:
    counts: dict[str, int] = {}
    for title, body in db.session.execute(select(Idea.title, Idea.body)):
        for w in set(_words(f"{title} {body}")):
            counts[w] = counts.get(w, 0) + 1
    return next(w for w, n in sorted(counts.items()) if n in count_range and len(w) > 2)


def test_common_word_walks_the_index_and_rare_word_sorts_its_matches(app, seeded, monkeypatch):
    monkeypatch.setattr(search, "FEW_MATCHES", 100)  # the threshold, scaled to 3,000 ideas
    common = _word_with(range(300, 10**6))
    rare = _word_with(range(2, 30))
    for word, walks in ((common, True), (rare, False)):
        assert search.walks_sort_index([word]) is walks, word
        plan, items = _plan_of_list_query(word)
        if walks:
            assert "USING INDEX ix_ideas_trending" in plan, plan
            assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
        else:
            assert "INTEGER PRIMARY KEY" in plan, plan
        assert [i.id for i in items] == _expected(word), word
