"""The rows of idea lists, each rendered once per distinct content and reused by every page.

A list row is a pure function of what it shows: the idea's title, status, kind, counts,
board and author name, whether the viewer voted, whether the viewer may vote, the page it
sends back to, the language and the site's root. Rendering twenty rows through Jinja macro
calls was most of a board page's cost (about 60% of 5.6 ms), and it was paid again for every
member, every search and every page after each write. Here each row is keyed by exactly
those values, so a cached row is never stale (whatever changes what a row shows changes
its key) and needs no invalidation; a bounded per-process LRU holds them.

The one per-session part of a member's row, the CSRF token of its vote form, is rendered as
a stand-in and replaced in the joined rows, so members share rows too.
"""

from __future__ import annotations

from flask import current_app, request
from flask_babel import get_locale
from markupsafe import Markup, escape

from ideaboard.cache import PageStore

MAX_ROWS = 5000
_TOKEN = "ROWTOKEN0idearows0ROWTOKEN"  # letters and digits: escaping leaves it as it is

_rows = PageStore(max_entries=MAX_ROWS)


def row_key(idea, voted: bool, member: bool, back: str, locale: str, root: str) -> tuple:
    """Every value the idea_row macro shows: see the module doc."""
    return (
        locale,
        root,
        back,
        member,
        voted,
        idea.id,
        idea.title,
        idea.status,
        idea.kind,
        idea.vote_count,
        idea.comment_count,
        idea.board.slug,
        idea.board.name,
        idea.author.display_name,
    )


def idea_rows(ideas, voted_ids, token: str | None, back: str) -> Markup:
    """The idea_row macro's output for each idea, joined; `token` None for a visitor."""
    macro = current_app.jinja_env.get_template("_macros/ideas.html").module.idea_row
    locale, root, member = str(get_locale()), request.script_root, token is not None
    parts = []
    for idea in ideas:
        voted = idea.id in voted_ids
        key = row_key(idea, voted, member, back, locale, root)
        html = _rows.get(key)
        if html is None:
            html = str(macro(idea, voted, _TOKEN if member else None, back))
            _rows.put(key, html)
        parts.append(html)
    joined = "".join(parts)
    if member:
        joined = joined.replace(_TOKEN, str(escape(token)))
    return Markup(joined)  # noqa: S704 - the macro's autoescaped output; the token escaped above
