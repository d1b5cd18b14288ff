"""Following ideas: who hears about an idea, with the idea's follower count kept exact.

A member follows an idea by posting it, voting for it or commenting on it (auto_follow),
or by asking to (follow_idea). Unfollowing keeps the row, inactive, so that no later vote
or comment subscribes them again; only an explicit follow does. The followers of an idea,
the set a notification fan-out reads, are its active rows (followers_query()).

Each write decides from what its own statement wrote (RETURNING), never from a state read
earlier, and moves `ideas.follower_count` by exactly that, under the idea's row lock: so
concurrent follows and unfollows leave the count equal to the active rows, on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import Executable, Result, bindparam, func, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import Follow, Idea, User, Vote, utcnow

from .errors import NotAllowed

#: The contract's `intent` values for POST /ideas/<id>/follow.
INTENTS = ("follow", "unfollow")

Run = Callable[[Executable, dict], Result]

_follows = Follow.__table__
_ideas = Idea.__table__


@dataclass(frozen=True)
class FollowResult:
    following: bool
    count: int


def _inserts(values: dict):
    """The same INSERT for each dialect (ON CONFLICT is spelled per dialect)."""
    return {
        "sqlite": sqlite_insert(_follows).values(**values),
        "postgresql": pg_insert(_follows).values(**values),
    }


_KEY = {"user_id": bindparam("p_user"), "idea_id": bindparam("p_idea")}
_CONFLICT = ["user_id", "idea_id"]

# Follow: a new row, or an unfollowed row made active again. RETURNING names the row only
# when this statement changed it from "not following" to "following".
_FOLLOW = {
    name: stmt.on_conflict_do_update(
        index_elements=_CONFLICT,
        set_={"active": True, "unfollowed_at": None},
        where=_follows.c.active.is_(False),
    ).returning(_follows.c.id)
    for name, stmt in _inserts({**_KEY, "active": True, "created_at": bindparam("p_at")}).items()
}
# Auto-follow: only where the member has no row yet; an unfollow (a row with
# active = false) stands.
AUTO_FOLLOW = {
    name: stmt.on_conflict_do_nothing(index_elements=_CONFLICT).returning(_follows.c.id)
    for name, stmt in _inserts({**_KEY, "active": True, "created_at": bindparam("p_at")}).items()
}
# Unfollow: the active row made inactive (the count goes down) ...
_UNFOLLOW = (
    update(_follows)
    .where(
        _follows.c.user_id == bindparam("p_user"),
        _follows.c.idea_id == bindparam("p_idea"),
        _follows.c.active.is_(True),
    )
    .values(active=False, unfollowed_at=bindparam("p_at"))
    .returning(_follows.c.id)
)
# ... or, with no row at all, an inactive row, so that auto-follow never subscribes them.
_OPT_OUT = {
    name: stmt.on_conflict_do_nothing(index_elements=_CONFLICT)
    for name, stmt in _inserts(
        {
            **_KEY,
            "active": False,
            "created_at": bindparam("p_at"),
            "unfollowed_at": bindparam("p_at"),
        }
    ).items()
}
_MOVE = (
    update(_ideas)
    .where(_ideas.c.id == bindparam("p_idea"))
    .values(follower_count=_ideas.c.follower_count + bindparam("p_delta"))
    .returning(_ideas.c.follower_count)
)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _params(idea: Idea, user: User) -> dict:
    return {"p_idea": idea.id, "p_user": user.id, "p_at": utcnow()}


def _move(idea: Idea, delta: int) -> int:
    """Move the idea's count by what was written; the new count (unchanged if delta is 0)."""
    if delta:
        count = db.session.execute(_MOVE, {"p_idea": idea.id, "p_delta": delta}).scalar_one()
        set_committed_value(idea, "follower_count", count)
    return idea.follower_count


def follow_idea(actor: User, idea: Idea) -> FollowResult:
    """Follow an idea (again, after an unfollow); following it already changes nothing."""
    if not permissions.can_follow(actor, idea):
        raise NotAllowed(_("Sign in to follow ideas."))
    added = db.session.execute(_FOLLOW[_dialect()], _params(idea, actor)).first() is not None
    return FollowResult(following=True, count=_move(idea, 1 if added else 0))


def unfollow_idea(actor: User, idea: Idea) -> FollowResult:
    """Stop following an idea, for good: votes and comments no longer re-subscribe."""
    if not permissions.can_follow(actor, idea):
        raise NotAllowed(_("Sign in to follow ideas."))
    params = _params(idea, actor)
    removed = db.session.execute(_UNFOLLOW, params).first() is not None
    if not removed:
        db.session.execute(_OPT_OUT[_dialect()], params)
    return FollowResult(following=False, count=_move(idea, -1 if removed else 0))


def set_following(actor: User, idea: Idea, intent: str) -> FollowResult:
    """Apply the contract's `intent` (follow or unfollow); idempotent either way."""
    if intent == "follow":
        return follow_idea(actor, idea)
    if intent == "unfollow":
        return unfollow_idea(actor, idea)
    raise ValueError(intent)


def auto_follow(user: User, idea: Idea) -> bool:
    """The author, a voter or a commenter follows the idea, unless they unfollowed it;
    True if this made them a follower. Callers have checked their own rule (posting,
    voting, commenting)."""
    added = db.session.execute(AUTO_FOLLOW[_dialect()], _params(idea, user)).first() is not None
    _move(idea, 1 if added else 0)
    return added


def is_following(user: User | None, idea: Idea) -> bool:
    if not permissions.is_member(user):
        return False
    return db.session.scalar(_following_stmt(user.id, idea.id)) is True


def _following_stmt(user_id: int, idea_id: int):
    return select(Follow.active).where(Follow.user_id == user_id, Follow.idea_id == idea_id)


def viewer_state(user: User | None, idea: Idea) -> tuple[bool, bool]:
    """(voted, following) for the idea page, in one statement (the page's budget)."""
    if not permissions.is_member(user):
        return False, False
    voted = select(Vote.id).where(Vote.idea_id == idea.id, Vote.user_id == user.id)
    following = _following_stmt(user.id, idea.id)
    row = db.session.execute(select(voted.exists(), following.scalar_subquery())).one()
    return bool(row[0]), row[1] is True or row[1] == 1


def followers_query(idea_id: int):
    """The ids of an idea's followers: what a notification fan-out reads (set-based)."""
    return select(_follows.c.user_id).where(
        _follows.c.idea_id == idea_id, _follows.c.active == true()
    )


def follower_mismatches() -> list[int]:
    """Ideas whose follower_count differs from their active follows (should be none)."""
    rows = (
        select(Follow.idea_id, func.count().label("n"))
        .where(Follow.active.is_(True))
        .group_by(Follow.idea_id)
        .subquery()
    )
    stmt = (
        select(Idea.id)
        .outerjoin(rows, rows.c.idea_id == Idea.id)
        .where(Idea.follower_count != func.coalesce(rows.c.n, 0))
    )
    return list(db.session.scalars(stmt))
