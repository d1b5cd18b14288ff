"""Who may do what: pure predicates shared by views, templates, services and tests."""

from __future__ import annotations

from typing import Any

from ideaboard.models import Comment, Idea, Role

STAFF_ROLES = (Role.STAFF.value, Role.ADMIN.value)


def _member(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def is_staff(user: Any) -> bool:
    """Staff and admins run the roadmap."""
    return _member(user) and user.role in STAFF_ROLES


def can_view_idea(user: Any, idea: Idea) -> bool:
    """Everyone sees live ideas; only staff see deleted ones."""
    return not idea.is_deleted or is_staff(user)


def can_post_idea(user: Any) -> bool:
    return _member(user)


def can_edit_idea(user: Any, idea: Idea) -> bool:
    """Authors edit their own live ideas; staff edit any."""
    if not _member(user) or idea.is_deleted:
        return False
    return idea.author_id == user.id or is_staff(user)


def can_delete_idea(user: Any, idea: Idea) -> bool:
    return can_edit_idea(user, idea)


def can_restore_idea(user: Any, idea: Idea) -> bool:
    return idea.is_deleted and is_staff(user)


def can_vote(user: Any, idea: Idea) -> bool:
    return _member(user) and not idea.is_deleted


def can_comment(user: Any, idea: Idea) -> bool:
    return _member(user) and not idea.is_deleted


def can_edit_comment(user: Any, comment: Comment) -> bool:
    return _member(user) and comment.author_id == user.id


def can_mark_official(user: Any, comment: Comment | None, idea: Idea | None = None) -> bool:
    """Only staff answer for the company; a deleted idea gets no new answers."""
    return is_staff(user) and not (idea is not None and idea.is_deleted)


def can_change_status(user: Any, idea: Idea) -> bool:
    return is_staff(user) and not idea.is_deleted
