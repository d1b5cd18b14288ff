"""Full-text search over idea titles and bodies, the same for the user on both databases.

Both sides see the same words: the query is cut into word tokens here, and each token must
begin a word of the title or the body (prefix match, any case). SQLite uses the FTS5 table
`ideas_fts` (unicode61 tokenizer, diacritics kept); PostgreSQL a stored, GIN-indexed
to_tsvector('simple', ...) column, whose 'simple' configuration lower-cases without stemming.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, func, literal_column, select, text

from ideaboard.extensions import db
from ideaboard.models import Idea

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
