"""What customers changed: the shipped changelog and the Atom feeds."""

from __future__ import annotations

from datetime import datetime
from itertools import groupby

from babel.dates import format_date
from flask import Blueprint, abort, make_response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ideaboard.htmx import render
from ideaboard.i18n import status_label
from ideaboard.markup import render_markdown
from ideaboard.services import boards, changelog
from ideaboard.urls import idea_url

from .atom import MIMETYPE, Entry, Feed, absolute

bp = Blueprint("changelog", __name__)

#: Feed readers poll; five minutes of freshness is plenty, and a revalidation is a 304.
FEED_MAX_AGE = 300


@bp.record_once
def _globals(state) -> None:
    state.app.jinja_env.globals["feed_links"] = feed_links


def month_heading(dt: datetime) -> str:
    """ "December 2026" / "Декабрь 2026": the stand-alone (nominative) month and year."""
    text = format_date(dt, "LLLL y", locale=get_locale() or "en")
    return text[:1].upper() + text[1:]


@bp.get("/changelog")
def index():
    """Shipped ideas by month, newest first, with the staff note and the votes behind each."""
    try:
        page = int(request.args.get("page", 1))
    except ValueError:
        page = 1
    shipped = changelog.shipped_page(page)
    months = [
        (month_heading(items[0].at), items)
        for _key, group in groupby(shipped.items, key=lambda s: (s.at.year, s.at.month))
        for items in [list(group)]
    ]
    return render(
        "changelog/index.html",
        months=months,
        shipped=shipped,
        headline=changelog.shipped_count(),
    )


def _canonical(idea) -> str:
    """An idea's stable absolute address (its slug follows the title; this does not)."""
    return absolute(f"{request.script_root}/ideas/{idea.id}")


def _idea_entry(idea) -> Entry:
    return Entry(
        id=_canonical(idea),
        title=idea.title,
        link=absolute(idea_url(idea)),
        published=idea.created_at,
        updated=max(idea.updated_at or idea.created_at, idea.created_at),
        author=idea.author.display_name,
        html=str(render_markdown(idea.body)),
    )


def _change_html(row, votes_line: bool) -> str:
    """A status change as the HTML of its feed entry (an autoescaped template: the note
    is plain text, shown as written)."""
    return render_template("changelog/_entry.html", row=row, votes_line=votes_line)


def _atom(feed: Feed):
    """The feed as a conditional response: ETag (from its bytes) and Last-Modified (its
    newest entry), 304 to a reader that has it, cacheable by anyone for a short while."""
    resp = make_response(feed.to_xml(fallback_updated=_epoch()))
    resp.headers["Content-Type"] = f"{MIMETYPE}; charset=utf-8"
    if feed.updated is not None:
        resp.last_modified = feed.updated
    resp.add_etag()
    resp.headers["Cache-Control"] = f"public, max-age={FEED_MAX_AGE}"
    return resp.make_conditional(request)


def _epoch() -> datetime:
    """An empty feed's `updated`: a fixed time, so its ETag does not change by itself."""
    return datetime(2024, 1, 1)


@bp.get("/feeds/ideas.atom")
def ideas_feed():
    """New ideas on every board, newest 50."""
    feed = Feed(
        title=_("New ideas · %(site)s", site=_("Ideaboard")),
        alternate=absolute(url_for("ideas.index", sort="new")),
        entries=[_idea_entry(i) for i in changelog.new_ideas()],
    )
    return _atom(feed)


@bp.get("/feeds/b/<slug>.atom")
def board_feed(slug: str):
    """New ideas on one board, newest 50 (none from an archived board)."""
    board = boards.get_board_by_slug(slug)
    if board is None:
        abort(404)
    entries = [] if board.is_archived else changelog.new_ideas(board)
    feed = Feed(
        title=_("New ideas on %(board)s · %(site)s", board=board.name, site=_("Ideaboard")),
        alternate=absolute(url_for("ideas.board", slug=board.slug, sort="new")),
        entries=[_idea_entry(i) for i in entries],
    )
    return _atom(feed)


def _change_feed(rows, *, title: str, alternate: str, shipped: bool):
    """A feed of status changes: every change (with the note), or the moves to shipped
    (titled "Shipped: …", with the votes behind each)."""
    anchor = "shipped" if shipped else "change"
    entries = [
        Entry(
            id=f"{_canonical(row.idea)}#{anchor}-{row.change.id}",
            title=_("Shipped: %(title)s", title=row.idea.title)
            if shipped
            else _(
                "%(title)s: %(status)s",
                title=row.idea.title,
                status=status_label(row.change.to_status),
            ),
            link=absolute(
                idea_url(row.idea) if shipped else idea_url(row.idea, _anchor="timeline")
            ),
            published=row.at,
            updated=row.at,
            author=row.change.by.display_name,
            html=_change_html(row, votes_line=shipped),
        )
        for row in rows
    ]
    return _atom(Feed(title=title, alternate=alternate, entries=entries))


@bp.get("/feeds/changes.atom")
def changes_feed():
    """The newest status changes, with the staff notes."""
    return _change_feed(
        changelog.changes_feed(),
        title=_("Status changes · %(site)s", site=_("Ideaboard")),
        alternate=absolute(url_for("roadmap.index")),
        shipped=False,
    )


@bp.get("/feeds/changelog.atom")
def changelog_feed():
    """Shipped ideas, newest 50, with the staff note and the votes behind each."""
    return _change_feed(
        changelog.shipped_feed(),
        title=_("Shipped · %(site)s", site=_("Ideaboard")),
        alternate=absolute(url_for("changelog.index")),
        shipped=True,
    )


def feed_links() -> list[tuple[str, str]]:
    """The Atom feeds of the page being rendered, as (title, URL) for `<link
    rel="alternate">` in its head (base.html)."""
    endpoint = request.endpoint
    ideas = (_("New ideas"), url_for("changelog.ideas_feed"))
    shipped = (_("Shipped"), url_for("changelog.changelog_feed"))
    changes = (_("Status changes"), url_for("changelog.changes_feed"))
    if endpoint == "main.home":
        return [ideas, shipped]
    if endpoint == "ideas.index":
        return [ideas]
    if endpoint == "ideas.board" and request.view_args:
        slug = request.view_args.get("slug", "")
        return [(_("New ideas on this board"), url_for("changelog.board_feed", slug=slug))]
    if endpoint == "roadmap.index":
        return [changes, shipped]
    if endpoint == "changelog.index":
        return [shipped]
    return []
