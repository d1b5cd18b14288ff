"""The rows of idea lists, each rendered once per distinct content and reused by every page.

A list row is a pure function of what it shows: the idea's title, status, kind, counts,
board and author name, whether the viewer voted, the viewer's answers to the row's
permission questions (may they vote on it? are they signed in at all?), the language and
the site's root. Rendering twenty rows through Jinja macro
calls was most of a board page's cost (docs/performance.md), and it was paid again for every
member, every search and every page after each write. Here each row is keyed by exactly
those values, so a cached row is never stale (whatever changes what a row shows changes
its key) and needs no invalidation; a bounded per-process LRU holds them. The row is
rendered from a perf.shared.Viewer holding those answers, never from the person, so it
cannot show anything of them its key leaves out.

Two parts of a row belong to the request, not to the idea: the CSRF token of a member's
vote form, and the page the vote (or a visitor's sign-in link) sends back to, which is the
list's own URL with its query. Both are rendered as stand-ins and replaced in the joined
rows, so members share rows, and every page, sort and search shares them too (a search
with a query no one asked before still finds its rows rendered).
"""

from __future__ import annotations

import secrets

from flask import current_app, request, url_for
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup, escape

from ideaboard.config import Config
from ideaboard.perf import shared
from ideaboard.perf.pagecache import PageStore
from ideaboard.permissions import can_vote, is_member

# Stand-ins for the two per-request values, replaced in the joined rows: the member's CSRF
# token (shared.TOKEN, as in every shared render) and the page the row links back to. No
# title or name can spell one: each holds a nonce drawn when the process starts (nobody
# can know it), and each is matched only as raw markup with a character autoescaping
# always changes in text, `<` (or, in the visitor's sign-in link, the `"` around the
# href), even if the nonce were known. Fixed letters (the old ROWTOKEN...) let a title
# showing them be replaced by each member's CSRF token.
_TOKEN = shared.TOKEN
_BACK = Markup(f"<rowback {secrets.token_hex(16)}>")

# One store per process, for every app in it: rows are keyed by all they show, whatever app
# renders them. ROW_CACHE_MAX_BYTES in the environment sizes it (about 3 KB a row).
_rows = PageStore(max_bytes=Config.ROW_CACHE_MAX_BYTES)


def row_questions(idea) -> tuple:
    """What the idea_row macro asks about its viewer."""
    return ((can_vote, idea), (is_member,))


def row_key(idea, voted: bool, viewer: shared.Viewer, locale: str, root: str) -> tuple:
    """Every value the idea_row macro shows: see the module doc."""
    return (
        locale,
        root,
        viewer.key,
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
        idea.author.is_staff,  # the author_name macro's staff badge
    )


def idea_rows(ideas, voted_ids, back: str) -> Markup:
    """The idea_row macro's output for each idea, joined, for the current viewer."""
    macro = current_app.jinja_env.get_template("_macros/ideas.html").module.idea_row
    locale, root = str(get_locale()), request.script_root
    user = current_user._get_current_object()
    parts = []
    for idea in ideas:
        voted = idea.id in voted_ids
        viewer = shared.ask(user, row_questions(idea))
        key = row_key(idea, voted, viewer, locale, root)
        html = _rows.get(key)
        if html is None:
            with shared.rendering():
                html = str(macro(idea, voted, viewer, _TOKEN, _BACK))
            _rows.put(key, html)
        parts.append(html)
    joined = "".join(parts)
    if "/login?" in joined:
        # The sign-in link: the whole quoted href, as url_for writes it with the real path
        # (url_for quotes the stand-in's `<`, so the quotes around it keep text out).
        # The link goes on with `&amp;vote=<id>` (the vote it carries), after the path.
        joined = joined.replace(
            f'href="{escape(url_for("auth.login", next=_BACK))}',
            f'href="{escape(url_for("auth.login", next=back))}',
        )
    # The vote form's hidden fields: the token and the path, each HTML-escaped. A token is
    # made only when a row has a form: a visitor's page must not start a session.
    joined = shared.personalise(joined).replace(_BACK, str(escape(back)))
    # The macro's autoescaped output; the token and the path escaped above.
    return Markup(joined)  # noqa: S704
