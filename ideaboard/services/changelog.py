"""What customers changed: shipped ideas, status changes and new ideas, for the changelog
page and the Atom feeds.

Every list here shows only what permissions.is_public_idea() allows (its SQL twin decides
in the statement), and each is one statement over an index, whatever the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import aliased, contains_eager, joinedload

from ideaboard import clock
from ideaboard.extensions import db
from ideaboard.models import Board, Idea, Status, StatusChange
from ideaboard.permissions import is_public_idea_sql

#: Shipped ideas on one changelog page; months run on across pages.
PER_PAGE = 30
MAX_PAGE = 1_000
#: Entries in each Atom feed (the newest).
FEED_SIZE = 50

_SHIPPED = Status.SHIPPED.value


@dataclass
class Shipped:
    """One shipped idea: the move that shipped it (its note and time) and the idea."""

    change: StatusChange
    idea: Idea

    @property
    def at(self) -> datetime:
        return self.change.created_at


@dataclass
class ShippedPage:
    items: list[Shipped]
    page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def _public(stmt: Select) -> Select:
    """`stmt` (over ideas) joined to their boards, keeping what anyone may see."""
    return stmt.join(Board, Board.id == Idea.board_id).where(
        is_public_idea_sql(Idea.__table__, Board.__table__)
    )


def _shipped_moves() -> Select:
    """The moves to shipped that still stand: the idea is shipped and no later move
    followed (an idea shipped, reopened and shipped again counts once, at the last)."""
    later = aliased(StatusChange)
    # Later by id: an idea's moves are made one after another (change_status is a
    # compare-and-set), so their ids are in order whatever their stored times say.
    superseded = exists().where(later.idea_id == StatusChange.idea_id, later.id > StatusChange.id)
    stmt = (
        select(StatusChange)
        .join(Idea, Idea.id == StatusChange.idea_id)
        .where(StatusChange.to_status == _SHIPPED, Idea.status == _SHIPPED, ~superseded)
    )
    return _public(stmt)


def twelve_months_ago(now: datetime | None = None) -> datetime:
    """The start of the headline's window: the same moment a year earlier, at midnight
    (so the count moves at most once a day; 29 February falls back to the 28th)."""
    now = now or clock.now()
    day = min(now.day, 28) if now.month == 2 else now.day
    return now.replace(year=now.year - 1, day=day, hour=0, minute=0, second=0, microsecond=0)


def shipped_count(now: datetime | None = None) -> int:
    """How many ideas shipped in the last 12 months: one statement over the
    (to_status, created_at) index."""
    stmt = _shipped_moves().where(StatusChange.created_at >= twelve_months_ago(now))
    return db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _rows(stmt: Select, *, limit: int, offset: int = 0) -> list[Shipped]:
    stmt = (
        stmt.add_columns(Idea)
        .options(
            joinedload(StatusChange.by),
            contains_eager(Idea.board),
            joinedload(Idea.author),
        )
        .order_by(StatusChange.created_at.desc(), StatusChange.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [Shipped(change, idea) for change, idea in db.session.execute(stmt)]


def shipped_page(page: int = 1) -> ShippedPage:
    """One page of shipped ideas, newest first (the template groups them by month)."""
    page = min(max(page, 1), MAX_PAGE)
    rows = _rows(_shipped_moves(), limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE)
    return ShippedPage(items=rows[:PER_PAGE], page=page, has_next=len(rows) > PER_PAGE)


def shipped_feed() -> list[Shipped]:
    """The newest shipped ideas, for the changelog's feed."""
    return _rows(_shipped_moves(), limit=FEED_SIZE)


def changes_feed() -> list[Shipped]:
    """The newest status changes of public ideas, each with its idea (not an idea's first
    status, which it got when posted: the new-ideas feed has those)."""
    stmt = _public(
        select(StatusChange)
        .join(Idea, Idea.id == StatusChange.idea_id)
        .where(StatusChange.from_status.is_not(None))
    )
    return _rows(stmt, limit=FEED_SIZE)


def new_ideas(board: Board | None = None) -> list[Idea]:
    """The newest public ideas, all boards or one, with their authors and boards."""
    stmt = _public(select(Idea)).options(contains_eager(Idea.board), joinedload(Idea.author))
    if board is not None:
        stmt = stmt.where(Idea.board_id == board.id)
    stmt = stmt.order_by(Idea.created_at.desc(), Idea.id.desc()).limit(FEED_SIZE)
    return list(db.session.scalars(stmt).unique())
