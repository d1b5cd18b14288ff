"""Comments and official responses."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.extensions import db
from ideaboard.models import Comment, EventKind, Idea, StatusChange, User, utcnow
from ideaboard.permissions import (
    can_comment,
    can_edit_comment,
    can_mark_official,
    can_post_official,
)

from . import events, follows
from .errors import NotAllowed, NotFound, ValidationError
from .text import check_text

COMMENT_MAX = 10_000
COMMENTS_PER_PAGE = 50
MAX_COMMENT_PAGE = 10_000


def _check_body(body: str) -> str:
    body = (body or "").strip()
    errors: dict[str, str] = {}
    check_text(errors, "body", body, minimum=1, maximum=COMMENT_MAX, label=_("Comment"))
    if errors:
        raise ValidationError(errors)
    return body


def add_comment(actor: User, idea: Idea, body: str, official: bool = False) -> Comment:
    """Comment on an idea; staff may post it as the official response."""
    if not can_comment(actor, idea):
        raise NotAllowed(_("Sign in to comment."))
    body = _check_body(body)
    if official and not can_post_official(actor, idea):
        raise NotAllowed(_("Only staff give official responses."))
    now = utcnow()
    comment = Comment(
        idea_id=idea.id, author_id=actor.id, body=body, is_official=official, created_at=now
    )
    comment.author = actor
    db.session.add(comment)
    count = db.session.execute(
        update(Idea)
        .where(Idea.id == idea.id)
        .values(comment_count=Idea.comment_count + 1, last_activity_at=now)
        .returning(Idea.comment_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(idea, "comment_count", count)
    set_committed_value(idea, "last_activity_at", now)
    follows.auto_follow(actor, idea)
    db.session.flush()
    kind = EventKind.OFFICIAL_RESPONSE if official else EventKind.COMMENT
    events.record(kind, idea, actor, comment_id=comment.id)
    return comment


def get_comment(idea: Idea, comment_id: int) -> Comment:
    comment = db.session.scalar(
        select(Comment)
        .options(joinedload(Comment.author))
        .where(Comment.id == comment_id, Comment.idea_id == idea.id)
    )
    if comment is None:
        raise NotFound(_("This comment does not exist."))
    return comment


def edit_comment(actor: User, comment: Comment, body: str) -> Comment:
    """Change one's own comment; it shows as edited."""
    if not can_edit_comment(actor, comment):
        raise NotAllowed(_("You can only edit your own comments."))
    comment.body = _check_body(body)
    comment.edited_at = utcnow()
    return comment


def set_official(actor: User, comment: Comment, official: bool) -> Comment:
    """Mark or unmark a staff member's comment as the company's answer."""
    idea = db.session.get(Idea, comment.idea_id)
    if not can_mark_official(actor, comment, idea):
        if can_post_official(actor, idea):  # then the comment is what does not qualify
            raise NotAllowed(_("Only a staff member's comment can be the official response."))
        raise NotAllowed(_("Only staff give official responses."))
    was_official = comment.is_official
    comment.is_official = official
    if official and not was_official:
        events.record(EventKind.OFFICIAL_RESPONSE, idea, actor, comment_id=comment.id)
    return comment


class CommentPage(tuple):
    """(comments, more) as before, plus `next_at`: when the next page's first comment was
    written (None on the last page), where this page's share of status events ends."""

    next_at: datetime | None = None

    def __new__(cls, rows: list[Comment], more: bool, next_at: datetime | None = None):
        page = super().__new__(cls, (rows, more))
        page.next_at = next_at
        return page


def list_comments(idea: Idea, page: int = 1) -> CommentPage:
    """Official responses first, then the conversation in order; one page of it."""
    stmt = (
        select(Comment)
        .options(joinedload(Comment.author))
        .where(Comment.idea_id == idea.id)
        .order_by(Comment.is_official.desc(), Comment.created_at, Comment.id)
        .limit(COMMENTS_PER_PAGE + 1)
        .offset((min(max(page, 1), MAX_COMMENT_PAGE) - 1) * COMMENTS_PER_PAGE)
    )
    rows = list(db.session.scalars(stmt))
    more = len(rows) > COMMENTS_PER_PAGE
    return CommentPage(rows[:COMMENTS_PER_PAGE], more, rows[-1].created_at if more else None)


def discussion(
    comment_list: list[Comment], page: CommentPage | tuple, history: list[StatusChange], cpage: int
) -> list[tuple[str, Comment | StatusChange]]:
    """One page of the discussion: its comments with the status changes made meanwhile,
    in time order (official responses stay first), as ("comment" | "event", row) pairs.

    `history` is the idea's status history the page loads anyway (no query here). A
    change belongs to the page whose comments span its time: from this page's first
    conversation comment (the start of time on page 1) to the next page's first comment
    (the end of time on the last page), so each change is on exactly one page.
    """
    official = [c for c in comment_list if c.is_official]
    talk = [c for c in comment_list if not c.is_official]
    start = talk[0].created_at if cpage > 1 and talk else None
    end = getattr(page, "next_at", None)
    events = [
        change
        for change in history
        if change.from_status is not None  # the first entry is the post itself
        and (start is None or change.created_at >= start)
        and (end is None or change.created_at < end)
    ]
    merged = sorted(
        [(c.created_at, 0, c.id, "comment", c) for c in talk]
        + [(e.created_at, 1, e.id, "event", e) for e in events],
        key=lambda row: row[:3],
    )
    return [("comment", c) for c in official] + [(kind, row) for *_, kind, row in merged]
