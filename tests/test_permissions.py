"""Permission predicates as plain calls."""

import pytest
from flask_login import AnonymousUserMixin

from ideaboard import permissions as p
from ideaboard.models import Comment, Idea, User


def _user(uid, role="member"):
    u = User(id=uid, role=role, email=f"{uid}@x.test", email_key=f"{uid}@x.test")
    return u


ANON = AnonymousUserMixin()
AUTHOR, OTHER, STAFF, ADMIN, MOD = (
    _user(1),
    _user(2),
    _user(3, "staff"),
    _user(4, "admin"),
    _user(5, "moderator"),
)


def _idea(deleted=False):
    from datetime import datetime

    return Idea(id=10, author_id=AUTHOR.id, deleted_at=datetime(2026, 1, 1) if deleted else None)


@pytest.mark.parametrize(
    "user, expected",
    [(ANON, False), (AUTHOR, True), (OTHER, False), (MOD, False), (STAFF, True), (ADMIN, True)],
)
def test_only_author_and_staff_edit_an_idea(user, expected):
    """Authors and staff may edit an idea; other members, moderators and visitors may not."""
    assert p.can_edit_idea(user, _idea()) is expected
    assert p.can_delete_idea(user, _idea()) is expected


@pytest.mark.parametrize(
    "user, expected",
    [(ANON, False), (AUTHOR, False), (MOD, False), (STAFF, True), (ADMIN, True)],
)
def test_only_staff_change_status(user, expected):
    """Only staff and admins move ideas along the roadmap."""
    assert p.can_change_status(user, _idea()) is expected


def test_deleted_idea_is_visible_and_restorable_only_by_staff():
    """A deleted idea is hidden from its author and visitors; staff see and restore it."""
    idea = _idea(deleted=True)
    assert not p.can_view_idea(ANON, idea)
    assert not p.can_view_idea(AUTHOR, idea)
    assert p.can_view_idea(STAFF, idea)
    assert p.can_restore_idea(STAFF, idea)
    assert not p.can_restore_idea(AUTHOR, idea)
    assert not p.can_edit_idea(AUTHOR, idea)
    assert not p.can_vote(AUTHOR, idea)


def test_members_vote_and_comment_visitors_do_not():
    """Signed-in members vote and comment on live ideas; visitors cannot."""
    assert p.can_vote(OTHER, _idea()) and p.can_comment(OTHER, _idea())
    assert not p.can_vote(ANON, _idea()) and not p.can_comment(ANON, _idea())


def test_comment_edits_belong_to_their_author():
    """Only the author edits a comment; official marking is for staff."""
    comment = Comment(id=1, author_id=OTHER.id)
    assert p.can_edit_comment(OTHER, comment)
    assert not p.can_edit_comment(STAFF, comment)
    assert p.can_mark_official(STAFF, comment)
    assert not p.can_mark_official(OTHER, comment)
    assert p.can_mark_official(STAFF, comment, _idea())
    assert not p.can_mark_official(STAFF, comment, _idea(deleted=True))
