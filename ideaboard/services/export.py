"""A member's own data, for a data-access request (GDPR article 15 style).

What is theirs: their account (never the password hash or the session token), the ideas
they posted (deleted ones too), their comments, their votes and the status changes they
made. Nothing written by anyone else is included: votes and comments on other people's
ideas name the idea by id and address only, not by its title, and a moderator who deleted
one of their ideas is not named.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.models import Board, Comment, Idea, StatusChange, User, Vote, utcnow

from .accounts import email_key

FORMAT = "ideaboard-user-export"
VERSION = 1


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def _idea_url(idea_id: int) -> str:
    return f"{current_app.config['BASE_URL']}/ideas/{idea_id}"


def find_user_by_email(email: str) -> User | None:
    """The account with this email, in any letter case."""
    return db.session.scalar(select(User).where(User.email_key == email_key(email or "")))


def export_user_data(user: User) -> dict[str, Any]:
    """Everything the board keeps that this user wrote or did, as JSON-ready data."""
    ideas = db.session.execute(
        select(Idea, Board.slug)
        .join(Board, Board.id == Idea.board_id)
        .where(Idea.author_id == user.id)
        .order_by(Idea.id)
    ).all()
    comments = db.session.scalars(
        select(Comment).where(Comment.author_id == user.id).order_by(Comment.id)
    )
    votes = db.session.scalars(select(Vote).where(Vote.user_id == user.id).order_by(Vote.id))
    changes = db.session.scalars(
        select(StatusChange).where(StatusChange.by_id == user.id).order_by(StatusChange.id)
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _at(utcnow()),
        "account": {
            "id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role,
            "created_at": _at(user.created_at),
        },
        "ideas": [
            {
                "id": idea.id,
                "url": _idea_url(idea.id),
                "board": board_slug,
                "kind": idea.kind,
                "title": idea.title,
                "body": idea.body,
                "status": idea.status,
                "votes": idea.vote_count,
                "comments": idea.comment_count,
                "created_at": _at(idea.created_at),
                "updated_at": _at(idea.updated_at),
                "deleted_at": _at(idea.deleted_at),
            }
            for idea, board_slug in ideas
        ],
        "comments": [
            {
                "id": c.id,
                "idea_id": c.idea_id,
                "idea_url": _idea_url(c.idea_id),
                "body": c.body,
                "is_official": c.is_official,
                "created_at": _at(c.created_at),
                "edited_at": _at(c.edited_at),
            }
            for c in comments
        ],
        "votes": [
            {
                "idea_id": v.idea_id,
                "idea_url": _idea_url(v.idea_id),
                "created_at": _at(v.created_at),
            }
            for v in votes
        ],
        "status_changes": [
            {
                "idea_id": s.idea_id,
                "idea_url": _idea_url(s.idea_id),
                "from": s.from_status,
                "to": s.to_status,
                "note": s.note,
                "created_at": _at(s.created_at),
            }
            for s in changes
        ],
    }
