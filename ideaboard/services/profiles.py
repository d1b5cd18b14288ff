"""A member's public profile: their name, since when, what they posted, what shipped."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import contains_eager, defer
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.extensions import db
from ideaboard.models import Board, Idea, Status, User
from ideaboard.models.base import MAX_INT
from ideaboard.permissions import is_public_idea_sql

PER_PAGE = 20
MAX_PAGE = 1_000


@dataclass
class Profile:
    user: User
    ideas: list[Idea]
    page: int
    has_next: bool
    posted: int  #: public ideas they posted
    shipped: int  #: of those, how many shipped

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def get_profile_user(user_id: int) -> User | None:
    """The member whose profile this is; None for no such id or a disabled account (a
    disabled account's profile is gone, as the account is: 404)."""
    if not 0 < user_id <= MAX_INT:
        return None
    user = db.session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user


def profile(user: User, page: int = 1) -> Profile:
    """One page of the member's public ideas, newest first, and how many they posted and
    how many of those shipped: two statements over the (author_id, created_at) index."""
    page = min(max(page, 1), MAX_PAGE)
    public = is_public_idea_sql(Idea.__table__, Board.__table__)
    counts = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum((Idea.status == Status.SHIPPED.value).cast(Integer)), 0),
        )
        .select_from(Idea)
        .join(Board, Board.id == Idea.board_id)
        .where(Idea.author_id == user.id, public)
    ).one()
    stmt = (
        select(Idea)
        .join(Board, Board.id == Idea.board_id)
        .where(Idea.author_id == user.id, public)
        .options(contains_eager(Idea.board), defer(Idea.body, raiseload=True))
        .order_by(Idea.created_at.desc(), Idea.id.desc())
        .limit(PER_PAGE + 1)
        .offset((page - 1) * PER_PAGE)
    )
    rows = list(db.session.scalars(stmt))
    for idea in rows:
        # Every idea here is theirs: no join for the author.
        set_committed_value(idea, "author", user)
    return Profile(
        user=user,
        ideas=rows[:PER_PAGE],
        page=page,
        has_next=len(rows) > PER_PAGE,
        posted=counts[0],
        shipped=int(counts[1]),
    )
