"""Comments and official responses."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.extensions import db
from ideaboard.models import Comment, Idea, User, utcnow
from ideaboard.permissions import (
    can_comment,
    can_edit_comment,
    can_mark_official,
    can_post_official,
)

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
    db.session.flush()
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
    comment.is_official = official
    return comment


def list_comments(idea: Idea, page: int = 1) -> tuple[list[Comment], bool]:
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
    return rows[:COMMENTS_PER_PAGE], len(rows) > COMMENTS_PER_PAGE
