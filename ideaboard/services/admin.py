"""The admin area: boards (create, rename, describe, archive) and members (find, change
role, disable). Every function asks permissions.can_manage_site first, whatever the view
did, and logs what it changed as a security event.

Role and access changes decide in their own UPDATE (style rule 19): the row changes only
if, when the statement runs, the actor is still an active admin, is not the target, and
another active admin remains. On PostgreSQL a transaction-scoped advisory lock makes two
such changes run one after the other, so two admins demoting each other at once cannot
both win and leave the site with none (on SQLite the writer gate already serialises).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, union, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.clock import now
from ideaboard.extensions import db
from ideaboard.models import Board, Idea, Role, User
from ideaboard.models.base import MAX_INT
from ideaboard.models.user import new_session_token, search_name_of
from ideaboard.permissions import can_manage_site
from ideaboard.seclog import security_event

from . import boards as board_service
from .errors import NotAllowed, NotFound, ValidationError
from .text import check_text, clean_line

DESCRIPTION_MAX = 500
MEMBERS_PER_PAGE = 25
MAX_PAGE = 400  # deep offsets cost a scan; a search narrows faster than paging
QUERY_MAX = 100
ROLES = tuple(r.value for r in Role)


def require_admin(actor) -> None:
    """Refuse anyone but an active admin (403, logged as authz.denied by the handler)."""
    if not can_manage_site(actor):
        raise NotAllowed(_("Only admins can do that."))


# --- boards -----------------------------------------------------------------------


@dataclass(frozen=True)
class BoardRow:
    board: Board
    ideas: int


@dataclass(frozen=True)
class Overview:
    boards: list[BoardRow]
    roles: dict[str, int]
    disabled: int


def site_overview(actor) -> Overview:
    """Every board (archived last) with its live ideas, and members by role."""
    require_admin(actor)
    counts = (
        select(Idea.board_id, func.count().label("n"))
        .where(Idea.deleted_at.is_(None))
        .group_by(Idea.board_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Board, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.board_id == Board.id)
        .order_by(Board.archived_at.is_not(None), Board.name, Board.id)
    ).all()
    tally = db.session.execute(
        select(
            User.role,
            func.count(),
            func.count(User.disabled_at),
        ).group_by(User.role)
    ).all()
    roles = dict.fromkeys(ROLES, 0)
    disabled = 0
    for role, n, n_disabled in tally:
        roles[role] = n
        disabled += n_disabled
    return Overview(
        boards=[BoardRow(board, n) for board, n in rows], roles=roles, disabled=disabled
    )


def get_board(actor, board_id: int) -> Board:
    """The board to manage, archived or not; NotFound if there is none."""
    require_admin(actor)
    board = board_service.get_board(board_id)
    if board is None:
        raise NotFound()
    return board


def _check_board_fields(errors: dict[str, str], name: str, description: str) -> None:
    check_text(errors, "name", name, minimum=2, maximum=100, label=_("Board name"))
    check_text(
        errors, "description", description, minimum=0, maximum=DESCRIPTION_MAX,
        label=_("Description"),
    )  # fmt: skip


def create_board(actor, slug: str, name: str, description: str = "") -> Board:
    """Add a board (its slug is its stable address)."""
    require_admin(actor)
    description = (description or "").strip()
    errors: dict[str, str] = {}
    check_text(
        errors, "description", description, minimum=0, maximum=DESCRIPTION_MAX,
        label=_("Description"),
    )  # fmt: skip
    if errors:
        raise ValidationError(errors)
    board = board_service.create_board(slug, name, description)  # checks slug and name
    security_event("board.created", board_id=board.id, slug=board.slug, by=actor.id)
    return board


def update_board(actor, board: Board, name: str, description: str) -> bool:
    """Rename or describe a board (the slug stays: it is in bookmarks); True if changed."""
    require_admin(actor)
    name = clean_line(name)
    description = (description or "").strip()
    errors: dict[str, str] = {}
    _check_board_fields(errors, name, description)
    if errors:
        raise ValidationError(errors)
    changed = [
        field
        for field, value in (("name", name), ("description", description))
        if getattr(board, field) != value
    ]
    if not changed:
        return False
    board.name, board.description = name, description
    db.session.flush()
    security_event("board.updated", board_id=board.id, fields=",".join(changed), by=actor.id)
    return True


def set_board_archived(actor, board: Board, archived: bool) -> bool:
    """Archive a board (no new ideas, off the lists) or bring it back; True if changed."""
    require_admin(actor)
    state = Board.archived_at.is_(None) if archived else Board.archived_at.is_not(None)
    moment = now() if archived else None
    done = db.session.execute(
        update(Board)
        .where(Board.id == board.id, state)
        .values(archived_at=moment)
        .returning(Board.id)
        .execution_options(synchronize_session=False)
    ).first()
    if done is None:
        return False  # already so: a repeated request changes nothing
    set_committed_value(board, "archived_at", moment)
    event = "board.archived" if archived else "board.unarchived"
    security_event(event, board_id=board.id, slug=board.slug, by=actor.id)
    return True


# --- members ----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberPage:
    items: list[User]
    query: str
    page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def _next_prefix(prefix: str) -> str | None:
    """The smallest string above every string starting with `prefix`, in code point
    order (which is byte order for UTF-8, SQLite's BINARY and PostgreSQL's "C")."""
    for i in range(len(prefix) - 1, -1, -1):
        if ord(prefix[i]) < 0x10FFFF:
            return prefix[:i] + chr(ord(prefix[i]) + 1)
    return None


def starts_with(column, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, as a condition its b-tree index answers.

    A range on SQLite (whose LIKE ignores case and skips the index); LIKE on PostgreSQL,
    where the "C" column or the varchar_pattern_ops index turns it into an index range.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(escaped + "%", escape="\\")
    upper = _next_prefix(prefix)
    return and_(column >= prefix, column < upper) if upper else column >= prefix


def search_members(actor, query: str = "", page: int = 1) -> MemberPage:
    """Members whose name or email starts with `query` (any case), by name, a page at a time."""
    require_admin(actor)
    query = clean_line(query or "")[:QUERY_MAX]
    page = min(max(page or 1, 1), MAX_PAGE)
    offset = (page - 1) * MEMBERS_PER_PAGE
    key = search_name_of(query)
    stmt = select(User)
    if key:
        # Two index ranges, each read in name order and cut at what this page needs, then
        # merged: an OR of the two prefixes would make PostgreSQL walk the whole name index.
        wanted = offset + MEMBERS_PER_PAGE + 1
        branches = [
            select(User.id, User.search_name)
            .where(starts_with(column, key))
            .order_by(User.search_name, User.id)
            .limit(wanted)
            .subquery()
            for column in (User.search_name, User.email_key)
        ]
        found = union(*(select(b.c.id, b.c.search_name) for b in branches)).subquery()
        stmt = stmt.join(found, found.c.id == User.id)
    rows = list(
        db.session.scalars(
            stmt.order_by(User.search_name, User.id).limit(MEMBERS_PER_PAGE + 1).offset(offset)
        )
    )
    return MemberPage(
        items=rows[:MEMBERS_PER_PAGE],
        query=query,
        page=page,
        has_next=len(rows) > MEMBERS_PER_PAGE,
    )


def get_member(actor, user_id: int) -> User:
    """The account to manage; NotFound if there is none."""
    require_admin(actor)
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_INT else None
    if user is None:
        raise NotFound()
    return user


def _serialise_admin_changes() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext("admin:roles"))))


def _guarded(actor, user: User, *, losing_admin: bool) -> ColumnElement[bool]:
    """The WHERE that makes a role or access change safe when it runs: the actor is still
    an active admin and not the target; if the target is an active admin about to stop
    being one, another active admin remains."""
    acting = aliased(User)
    other = aliased(User)
    still_admin = exists().where(
        acting.id == actor.id, acting.role == Role.ADMIN.value, acting.disabled_at.is_(None)
    )
    conditions = [User.id == user.id, User.id != actor.id, still_admin]
    if losing_admin:
        another = exists().where(
            other.id != User.id, other.role == Role.ADMIN.value, other.disabled_at.is_(None)
        )
        target_active_admin = and_(User.role == Role.ADMIN.value, User.disabled_at.is_(None))
        conditions.append(or_(not_(target_active_admin), another))
    return and_(*conditions)


def _refuse(actor, user: User, action: str) -> None:
    """Say why a guarded change did not happen (after its UPDATE matched no row)."""
    if user.id == actor.id:
        raise NotAllowed(
            _("You cannot change your own role.")
            if action == "role"
            else _("You cannot disable your own account.")
        )
    now_actor = db.session.scalar(
        select(User).where(User.id == actor.id).execution_options(populate_existing=True)
    )
    if not can_manage_site(now_actor):
        raise NotAllowed(_("Only admins can do that."))
    raise ValidationError({action: _("The site must keep at least one active admin.")})


def change_member_role(actor, user: User, role: str) -> bool:
    """Give a member another role; they are signed out everywhere. True if it changed."""
    require_admin(actor)
    if user.id == actor.id:
        raise NotAllowed(_("You cannot change your own role."))
    if role not in ROLES:
        raise ValidationError({"role": _("Unknown role.")})
    if user.role == role:
        return False
    _serialise_admin_changes()
    token = new_session_token()
    done = db.session.execute(
        update(User)
        .where(_guarded(actor, user, losing_admin=role != Role.ADMIN.value))
        .values(role=role, session_token=token)
        .returning(User.id)
        .execution_options(synchronize_session=False)
    ).first()
    if done is None:
        db.session.refresh(user)
        if user.role == role:
            return False  # another admin did the same a moment ago
        _refuse(actor, user, "role")
    old = user.role
    set_committed_value(user, "role", role)
    set_committed_value(user, "session_token", token)
    security_event("role.changed", user_id=user.id, role=role, previous=old, by=actor.id)
    return True


def set_member_access(actor, user: User, enabled: bool) -> bool:
    """Disable an account (it cannot sign in; every session ends) or enable it again.
    True if it changed."""
    require_admin(actor)
    if user.id == actor.id:
        raise NotAllowed(_("You cannot disable your own account."))
    if enabled:
        done = db.session.execute(
            update(User)
            .where(_guarded(actor, user, losing_admin=False), User.disabled_at.is_not(None))
            .values(disabled_at=None)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        ).first()
        if done is None:
            if user.disabled_at is None:
                return False
            _refuse(actor, user, "access")
        set_committed_value(user, "disabled_at", None)
        security_event("account.enabled", user_id=user.id, by=actor.id)
        return True
    if user.disabled_at is not None:
        return False
    _serialise_admin_changes()
    moment, token = now(), new_session_token()
    done = db.session.execute(
        update(User)
        .where(_guarded(actor, user, losing_admin=True), User.disabled_at.is_(None))
        .values(disabled_at=moment, session_token=token)
        .returning(User.id)
        .execution_options(synchronize_session=False)
    ).first()
    if done is None:
        db.session.refresh(user)
        if user.disabled_at is not None:
            return False  # another admin did the same a moment ago
        _refuse(actor, user, "access")
    set_committed_value(user, "disabled_at", moment)
    set_committed_value(user, "session_token", token)
    # The new session token ends every session and remember-me cookie, the vote fast
    # path's too (it matches the token in SQL: services/votes.py).
    security_event("account.disabled", user_id=user.id, by=actor.id)
    return True
