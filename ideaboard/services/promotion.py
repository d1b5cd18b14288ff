"""From fan talk to roadmap: a thread promoted to an idea, the links both ways, and what
a community's promoted ideas became ("what this club changed")."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import joinedload

from ideaboard.extensions import db
from ideaboard.models import Board, Community, Idea, Status, Thread, User
from ideaboard.permissions import can_promote_thread

from . import audit, ideas
from .errors import Conflict, NotAllowed, ValidationError

CHANGED_SHOWN = 5  # on the community page; the rest on /c/<slug>/changed
CHANGED_PER_PAGE = 30
MAX_PAGE = 10_000

#: Where a promoted idea stands, shown in this order: shipped first, then what is on its
#: way, then what was heard, then what was declined. Merged ideas live on in the idea they
#: went into, so they are left out.
ORDER = (
    Status.SHIPPED,
    Status.IN_PROGRESS,
    Status.PLANNED,
    Status.UNDER_REVIEW,
    Status.HEARD,
    Status.DECLINED,
)
_RANK = case({s.value: i for i, s in enumerate(ORDER)}, value=Idea.status, else_=len(ORDER))


def _refuse_unless_allowed(actor: User, thread: Thread, community: Community) -> None:
    if thread.idea_id is not None:
        raise Conflict(_("This thread has already become an idea."))
    if not can_promote_thread(actor, thread, community):
        raise NotAllowed(_("Only staff and this community's moderators promote its threads."))


def _claim(thread: Thread, idea: Idea) -> None:
    """Set the thread's idea, compare-and-set: of two promotions at once, one wins and
    the other is refused (on PostgreSQL its UPDATE waits for the first and finds the
    thread taken; on SQLite the writers take turns)."""
    done = db.session.execute(
        update(Thread)
        .where(Thread.id == thread.id, Thread.idea_id.is_(None))
        .values(idea_id=idea.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not done:
        raise Conflict(_("This thread has already become an idea."))
    thread.idea_id = idea.id
    if idea.from_thread_id is None:  # an idea linked from several threads names the first
        idea.from_thread_id = thread.id


def promote_thread(
    actor: User,
    thread: Thread,
    community: Community,
    board: Board | None,
    *,
    title: str,
    body: str,
    kind: str,
) -> Idea:
    """Turn a visible thread into an idea on `board`, in its author's name (their vote,
    their follow), with the title, text and kind the promoter chose (the thread's by
    default). A title already on the board raises DuplicateTitle naming that idea: the
    promoter may link the thread to it instead (link_thread)."""
    _refuse_unless_allowed(actor, thread, community)
    author = db.session.get(User, thread.author_id) if thread.author_id else None
    if author is None:
        raise ValidationError(
            {"title": _("The thread's author has left: there is nobody to keep it in the name of.")}
        )
    idea = ideas.create_idea_for(author, board, kind, title, body)
    db.session.flush()
    _claim(thread, idea)
    audit.record(
        actor,
        "thread.promote",
        "thread",
        thread.id,
        community_id=community.id,
        before={"idea_id": None},
        after={"idea_id": idea.id, "board": board.slug, "title": idea.title},
    )
    return idea


def link_thread(actor: User, thread: Thread, community: Community, idea: Idea | None) -> Idea:
    """Point a thread at an idea already on a board (the one its title duplicates)."""
    _refuse_unless_allowed(actor, thread, community)
    if idea is None or idea.is_deleted or idea.status == Status.MERGED.value:
        raise ValidationError({"link_to": _("That idea is no longer on the board.")})
    _claim(thread, idea)
    audit.record(
        actor,
        "thread.promote",
        "thread",
        thread.id,
        community_id=community.id,
        before={"idea_id": None},
        after={"idea_id": idea.id, "linked": True},
    )
    return idea


def idea_of(thread: Thread) -> Idea | None:
    """The live idea a thread became (its board loaded), or None."""
    if thread.idea_id is None:
        return None
    return db.session.scalar(
        select(Idea).options(joinedload(Idea.board)).where(Idea.id == thread.idea_id, Idea.live())
    )


def thread_of(idea: Idea) -> Thread | None:
    """The visible thread an idea came from (its community loaded), or None."""
    return db.session.scalar(
        select(Thread)
        .options(joinedload(Thread.community))
        .where(Thread.idea_id == idea.id, Thread.deleted_at.is_(None), Thread.held_at.is_(None))
        .order_by(Thread.id)
        .limit(1)
    )


def _threads_ideas(community_ids):
    """The ideas the communities' visible threads became (a subquery of idea ids)."""
    return select(Thread.idea_id).where(
        Thread.community_id.in_(community_ids),
        Thread.idea_id.is_not(None),
        Thread.deleted_at.is_(None),
        Thread.held_at.is_(None),
    )


def _promoted(community_id: int):
    """The live ideas a community's visible threads became (merged ones left out: they
    live on in the idea they went into); each once, however many threads name it."""
    return select(Idea).where(
        Idea.id.in_(_threads_ideas([community_id])),
        Idea.live(),
        Idea.status != Status.MERGED.value,
    )


@dataclass
class Changed:
    """What a community's promoted ideas became: counts by status, and some of them."""

    ideas: list[Idea]
    counts: dict[str, int]
    page: int = 1
    more: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def shipped(self) -> int:
        return self.counts.get(Status.SHIPPED.value, 0)

    def in_order(self) -> list[tuple[str, int]]:
        """(status, count) for each status that has ideas, shipped first."""
        return [(s.value, self.counts[s.value]) for s in ORDER if self.counts.get(s.value)]


def _counts(community_id: int) -> dict[str, int]:
    rows = db.session.execute(
        _promoted(community_id).with_only_columns(Idea.status, func.count()).group_by(Idea.status)
    )
    return {status: n for status, n in rows}


def changed(community: Community, page: int = 1, per_page: int = CHANGED_SHOWN) -> Changed:
    """One page of the community's promoted ideas, shipped first, then newest; with the
    counts by status (two statements whatever the number of ideas)."""
    page = min(max(page, 1), MAX_PAGE)
    rows = list(
        db.session.scalars(
            _promoted(community.id)
            .options(joinedload(Idea.board))
            .order_by(_RANK, Idea.updated_at.desc(), Idea.id.desc())
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        )
    )
    return Changed(rows[:per_page], _counts(community.id), page, len(rows) > per_page)


def shipped_counts(community_ids: list[int]) -> dict[int, int]:
    """How many shipped ideas each community's threads became (one statement)."""
    if not community_ids:
        return {}
    rows = db.session.execute(
        select(Thread.community_id, func.count(func.distinct(Idea.id)))
        .join(Idea, Idea.id == Thread.idea_id)
        .where(
            Thread.community_id.in_(community_ids),
            Thread.deleted_at.is_(None),
            Thread.held_at.is_(None),
            Idea.live(),
            Idea.status == Status.SHIPPED.value,
        )
        .group_by(Thread.community_id)
    )
    return {cid: n for cid, n in rows}
