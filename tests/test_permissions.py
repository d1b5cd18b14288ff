"""Permission predicates as plain calls."""

import re
from datetime import datetime
from pathlib import Path

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


def _comment(author):
    comment = Comment(id=1, author_id=author.id)
    comment.author = author
    return comment


def test_comment_edits_belong_to_their_author():
    """Only the author edits a comment."""
    comment = _comment(OTHER)
    assert p.can_edit_comment(OTHER, comment)
    assert not p.can_edit_comment(STAFF, comment)
    assert not p.can_edit_comment(ANON, comment)


@pytest.mark.parametrize(
    "user, author, deleted, expected",
    [
        (STAFF, ADMIN, False, True),
        (ADMIN, STAFF, False, True),
        (STAFF, STAFF, True, False),  # a deleted idea gets no new answers
        (STAFF, OTHER, False, False),  # only a staff member's comment is the company's answer
        (MOD, STAFF, False, False),
        (OTHER, STAFF, False, False),
        (ANON, STAFF, False, False),
    ],
)
def test_staff_mark_a_staff_comment_official_on_a_live_idea(user, author, deleted, expected):
    """Marking official: staff, on a live idea, a staff member's comment (one rule, which
    the comment template asks too)."""
    assert p.can_mark_official(user, _comment(author), _idea(deleted)) is expected
    assert p.can_post_official(user, _idea(deleted)) is (
        expected or (user, deleted) == (STAFF, False)
    )


@pytest.mark.parametrize(
    "user, other, expected",
    [(ADMIN, STAFF, True), (ADMIN, OTHER, True), (ADMIN, ADMIN, False), (STAFF, OTHER, False)]
    + [(MOD, OTHER, False), (OTHER, AUTHOR, False), (ANON, OTHER, False)],
)
def test_only_admins_change_roles_and_never_their_own(user, other, expected):
    """Role changes: admins, on someone else (no self-escalation, no last-admin demotion)."""
    assert p.can_change_role(user, other) is expected


def test_only_active_admins_run_the_admin_area_and_not_on_themselves():
    """The admin area: active admins only; access changes only on someone else."""
    disabled_admin = _user(99, "admin")
    disabled_admin.disabled_at = datetime(2026, 1, 1)
    assert p.can_manage_site(ADMIN) and not p.can_manage_site(disabled_admin)
    for user in (ANON, AUTHOR, MOD, STAFF):
        assert not p.can_manage_site(user)
        assert not p.can_change_access(user, OTHER)
    assert p.can_change_access(ADMIN, OTHER) and p.can_change_access(ADMIN, STAFF)
    assert not p.can_change_access(ADMIN, ADMIN)
    assert not p.can_change_access(disabled_admin, OTHER)


def test_staff_means_the_same_on_a_model_and_in_the_rule():
    """User.is_staff (for code holding a model) reads the rule's own list of roles."""
    for user in (AUTHOR, STAFF, ADMIN, MOD):
        assert user.is_staff is p.is_staff(user)
    assert not p.is_staff(ANON) and not p.is_member(ANON) and p.is_member(MOD)


# --- templates ask the predicates -------------------------------------------------

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: What a template may read off current_user: things it shows, never a rule's input.
SHOWN = {"display_name", "role"}  # the role only as ROLE_LABELS[current_user.role]


def test_templates_decide_nothing_about_the_viewer_themselves():
    """No template reads a rule's input off current_user (is_authenticated, id, role in a
    comparison, is_staff...): they ask the can_*/is_* predicates, which are the rules."""
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"current_user\.(\w+)", text):
            line = text.count("\n", 0, match.start()) + 1
            attr = match.group(1)
            shown = attr in SHOWN and (
                attr != "role" or text[max(0, match.start() - 12) : match.start()] == "ROLE_LABELS["
            )
            if not shown:
                found.append(f"{path.relative_to(TEMPLATES)}:{line}: current_user.{attr}")
    assert not found, "ask permissions.py instead:\n" + "\n".join(found)


def test_every_predicate_is_a_template_global(app):
    """Templates can ask every can_*/is_* rule by its name."""
    for name in p.predicates():
        assert name in app.jinja_env.globals, name
