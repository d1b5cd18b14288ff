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

# A generated column on PostgreSQL (see the stored_search_vector migration).
PG_DOCUMENT = "ideas.search_vector"


def query_terms(q: str | None) -> list[str]:
    """Lower-cased word tokens of a search box value, at most MAX_TERMS."""
    return [w.lower() for w in _WORD.findall(q or "")][:MAX_TERMS]


def match_clause(terms: list[str]) -> ColumnElement[bool]:
    """A WHERE clause that keeps the ideas matching every term."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        # Tokens are \w+ only, so quoting them as tsquery lexemes cannot inject operators;
        # the value is still a bound parameter.
        tsquery = " & ".join(f"'{t}':*" for t in terms)
        return literal_column(PG_DOCUMENT).op("@@")(func.to_tsquery("simple", tsquery))
    fts = " AND ".join(f'"{t}"*' for t in terms)
    return Idea.id.in_(
        select(literal_column("rowid"))
        .select_from(text("ideas_fts"))
        .where(text("ideas_fts MATCH :fts").bindparams(fts=fts))
    )
