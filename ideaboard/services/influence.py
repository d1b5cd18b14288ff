"""A member's influence (issue 13, item 8): the ideas they posted or voted for, where each
stands now, and how many of those they backed have shipped.

Only the member sees it (`/account/influence`). The ideas are the public ones (as on a
profile: not deleted, board not archived). "Backed" means voted for; an author's own vote
counts, as it does on the idea. Two statements whatever the rows: one for the counts per
status, one for the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Integer, and_, any_, case, cast, func, literal, select, union
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import contains_eager, defer

from ideaboard.extensions import db
from ideaboard.models import Board, Idea, Status, User, Vote
from ideaboard.models.idea import ROADMAP
from ideaboard.permissions import is_public_idea_sql

PER_PAGE = 20
MAX_PAGE = 1_000

#: Shipped first, then the way the roadmap runs backwards (nearest to shipping first);
#: declined last. The breakdown's bar keeps the roadmap's own order.
ORDER = (
    Status.SHIPPED,
    Status.IN_PROGRESS,
    Status.PLANNED,
    Status.UNDER_REVIEW,
    Status.HEARD,
    Status.DECLINED,
)
CHART_ORDER = (*ROADMAP, Status.DECLINED)


@dataclass
class Slice:
    """One status in the breakdown: its ideas, and where its bar starts and ends (0-100)."""

    status: str
    count: int
    start: float = 0.0
    width: float = 0.0


@dataclass
class Influence:
    user: User
    ideas: list[Idea]  #: this page, each with `.voted` and `.posted` set
    page: int
    has_next: bool
    status: str | None  #: the filter, if any
    total: int  #: ideas they posted or voted for
    backed: int  #: ideas they voted for
    backed_shipped: int  #: of those, how many shipped
    posted: int  #: ideas they posted
    slices: list[Slice] = field(default_factory=list)  #: by status, roadmap order

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def shown(self) -> int:
        """Ideas under the current filter."""
        if self.status is None:
            return self.total
        return next((s.count for s in self.slices if s.status == self.status), 0)


def parse_status(value: str | None) -> str | None:
    """The `status` filter: one of the statuses, else None (all)."""
    return value if value in {s.value for s in Status} else None


def _theirs(user_id: int):
    """A condition on ideas: the member posted or voted for it (two index lookups).

    On PostgreSQL the ids are gathered first, once (an array), and the ideas fetched by
    primary key (`id = ANY(...)`): as a join the planner guesses the member's share of the
    ideas from averages and may read the whole table instead.
    """
    ids = union(
        select(Vote.idea_id.label("idea_id")).where(Vote.user_id == user_id),
        select(Idea.id.label("idea_id")).where(Idea.author_id == user_id),
    )
    if db.session.get_bind().dialect.name == "postgresql":
        theirs = ids.subquery("theirs")
        gathered = select(func.array_agg(theirs.c.idea_id)).scalar_subquery()
        # The cast makes ANY take one array value, not the rows of a subquery.
        return Idea.id == any_(cast(gathered, ARRAY(Integer)))
    return Idea.id.in_(ids)


def influence(user: User, page: int = 1, status: str | None = None) -> Influence:
    """One page of the member's ideas (shipped first, then nearest to shipping; newest
    first within a status), the counts per status and how many they backed shipped."""
    page = min(max(page, 1), MAX_PAGE)
    status = parse_status(status)
    theirs = _theirs(user.id)
    mine = Vote.__table__.alias("mine")
    public = is_public_idea_sql(Idea.__table__, Board.__table__)
    voted = (mine.c.id.is_not(None)).label("voted")
    joined = (
        select(Idea)
        .join(Board, Board.id == Idea.board_id)
        .outerjoin(mine, and_(mine.c.idea_id == Idea.id, mine.c.user_id == user.id))
        .where(theirs, public)
    )

    counts = db.session.execute(
        joined.with_only_columns(
            Idea.status,
            func.count(),
            func.coalesce(func.sum(case((mine.c.id.is_not(None), 1), else_=0)), 0),
            func.coalesce(func.sum((Idea.author_id == user.id).cast(Integer)), 0),
        ).group_by(Idea.status)
    ).all()
    per_status = {row[0]: int(row[1]) for row in counts}
    backed = sum(int(row[2]) for row in counts)
    backed_shipped = sum(int(row[2]) for row in counts if row[0] == Status.SHIPPED.value)
    posted = sum(int(row[3]) for row in counts)

    rank = case(
        *((Idea.status == s.value, literal(i)) for i, s in enumerate(ORDER)),
        else_=literal(len(ORDER)),
    )
    stmt = (
        joined.add_columns(voted)
        .options(contains_eager(Idea.board), defer(Idea.body, raiseload=True))
        .order_by(rank, Idea.created_at.desc(), Idea.id.desc())
        .limit(PER_PAGE + 1)
        .offset((page - 1) * PER_PAGE)
    )
    if status is not None:
        stmt = stmt.where(Idea.status == status)
    rows = db.session.execute(stmt).all()
    ideas = []
    for idea, did_vote in rows[:PER_PAGE]:
        idea.voted = bool(did_vote)
        idea.posted = idea.author_id == user.id
        ideas.append(idea)

    total = sum(per_status.values())
    slices, start = [], 0.0
    for s in CHART_ORDER:
        count = per_status.get(s.value, 0)
        width = 100.0 * count / total if total else 0.0
        slices.append(Slice(s.value, count, round(start, 3), round(width, 3)))
        start += width
    return Influence(
        user=user,
        ideas=ideas,
        page=page,
        has_next=len(rows) > PER_PAGE,
        status=status,
        total=total,
        backed=backed,
        backed_shipped=backed_shipped,
        posted=posted,
        slices=slices,
    )
