"""Full-text search over idea titles and bodies (and community threads' titles and bodies,
below), the same for the user on both databases.

Both sides see the same words: the query is cut into word tokens here, and each token must
begin a word of the title or the body (prefix match, any case). SQLite uses the FTS5 table
`ideas_fts` (unicode61 tokenizer, diacritics kept); PostgreSQL a stored, GIN-indexed
to_tsvector('simple', ...) column, whose 'simple' configuration lower-cases without stemming.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, literal_column, select, text
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.extensions import db
from ideaboard.models import Community, Idea, Thread
from ideaboard.permissions import is_public_thread_sql

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8
# Below this many matches a search fetches them all and sorts them; at or above it, it
# walks the sort's index and keeps the matching ideas, which stops after one page. The two
# plans cost the same near this many (measured: docs/performance.md, "Search picks its plan").
FEW_MATCHES = 250

# A generated column on PostgreSQL (see the stored_search_vector migration).
PG_DOCUMENT = "ideas.search_vector"


def query_terms(q: str | None) -> list[str]:
    """Lower-cased word tokens of a search box value, at most MAX_TERMS."""
    return [w.lower() for w in _WORD.findall(q or "")][:MAX_TERMS]


def _sqlite_fts(terms: list[str], any_term: bool = False) -> str:
    return (" OR " if any_term else " AND ").join(f'"{t}"*' for t in terms)


def walks_sort_index(terms: list[str], any_term: bool = False) -> bool:
    """True when the terms match so many ideas that walking the sort's index is cheaper.

    SQLite only. Its planner otherwise drives every search from the full-text match list:
    it looks up and sorts every match, slow for a common word. Walking the sort's index
    and testing each idea against the match list finds a page of a common word after a few
    hundred ideas, but would read the whole index for a rare one. So count the matches
    first, up to FEW_MATCHES, from the full-text index alone (cheap), and choose.
    PostgreSQL's planner makes this choice itself from the GIN index's statistics. The
    figures: docs/performance.md, "Search picks its plan by how many ideas match".
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return False
    found = db.session.execute(
        text(
            "SELECT count(*) FROM (SELECT rowid FROM ideas_fts "
            "WHERE ideas_fts MATCH :fts LIMIT :cap)"
        ),
        {"fts": _sqlite_fts(terms, any_term), "cap": FEW_MATCHES},
    ).scalar_one()
    return found >= FEW_MATCHES


def match_clause(
    terms: list[str], walk: bool = False, any_term: bool = False
) -> ColumnElement[bool]:
    """A WHERE clause that keeps the ideas matching every term (with `any_term`, any one).

    With `walk` (SQLite), the membership test is written `id + 0 IN (...)`, which SQLite
    cannot use to look rows up, so it reads the ideas in the ORDER BY's index instead.
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        # Tokens are \w+ only, so quoting them as tsquery lexemes cannot inject operators;
        # the value is still a bound parameter.
        tsquery = (" | " if any_term else " & ").join(f"'{t}':*" for t in terms)
        return literal_column(PG_DOCUMENT).op("@@")(func.to_tsquery("simple", tsquery))
    matches = (
        select(literal_column("rowid"))
        .select_from(text("ideas_fts"))
        .where(text("ideas_fts MATCH :fts").bindparams(fts=_sqlite_fts(terms, any_term)))
    )
    return ((Idea.id + 0) if walk else Idea.id).in_(matches)


# --- community threads (issue 14) ---------------------------------------------------------
#
# Threads are found the same way: the same word tokens, each the start of a word of the
# title or the body. SQLite: the FTS5 table `threads_fts`; PostgreSQL: the stored,
# GIN-indexed `threads.search_vector` ('simple' configuration), both made by migration
# 14f0a1b2c3d4. Only public threads show (permissions.is_public_thread, by its SQL twin):
# visible (not hidden, not held) in a community that is not archived.

THREADS_PER_PAGE = 20
THREADS_MAX_PAGE = 500

PG_THREAD_DOCUMENT = "threads.search_vector"


def thread_match_clause(terms: list[str]) -> ColumnElement[bool]:
    """A WHERE clause keeping the threads whose title or body match every term."""
    if db.session.get_bind().dialect.name == "postgresql":
        tsquery = " & ".join(f"'{t}':*" for t in terms)  # \w+ tokens: no operators
        return literal_column(PG_THREAD_DOCUMENT).op("@@")(func.to_tsquery("simple", tsquery))
    matches = (
        select(literal_column("rowid"))
        .select_from(text("threads_fts"))
        .where(text("threads_fts MATCH :thread_fts").bindparams(thread_fts=_sqlite_fts(terms)))
    )
    return Thread.id.in_(matches)


@dataclass
class ThreadResults:
    """One page of threads matching a search, most recent activity first."""

    q: str
    terms: list[str]
    threads: list[Thread]
    page: int
    more: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def search_threads(q: str | None, page: int = 1) -> ThreadResults:
    """Public threads matching every word of `q`, newest activity first: ONE statement
    (the threads with their community and author), whatever the page holds; none for a
    query without words."""
    q = (q or "").strip()
    terms = query_terms(q)
    page = min(max(page, 1), THREADS_MAX_PAGE)
    if not terms:
        return ThreadResults(q, terms, [], page, False)
    stmt = (
        select(Thread, Community)
        .join(Community, Community.id == Thread.community_id)
        .options(joinedload(Thread.author))
        .where(
            is_public_thread_sql(Thread.__table__, Community.__table__),
            thread_match_clause(terms),
        )
        .order_by(Thread.last_activity_at.desc(), Thread.id.desc())
        .limit(THREADS_PER_PAGE + 1)
        .offset((page - 1) * THREADS_PER_PAGE)
    )
    found = []
    for thread, community in db.session.execute(stmt).unique().all():
        set_committed_value(thread, "community", community)
        found.append(thread)
    return ThreadResults(q, terms, found[:THREADS_PER_PAGE], page, len(found) > THREADS_PER_PAGE)
