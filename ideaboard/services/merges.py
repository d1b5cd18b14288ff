"""Merging duplicate ideas, and undoing a merge (issue 13, item 7).

Merging idea B into idea A:

- B's voters become A's voters, once: one set-based INSERT of the votes A lacks (ON
  CONFLICT DO NOTHING on the unique (idea, member) pair); B's active followers follow A,
  except members who have any row on A (following already, or unfollowed it: an unfollow
  is sticky, services/follows.py). A's vote count, trending score and follower count move
  by exactly what those statements wrote (RETURNING), in one UPDATE, as a vote does.
- B keeps its own votes, follows and comments (readable on its page, votes frozen:
  permissions.VOTING_CLOSED_STATUSES); its status becomes `merged` and it records
  `merged_into_id`.
- A `merges` row keeps who, when, B's previous status, and, as `merge_moves`, the ids of
  the votes and follows the merge inserted on A. Undo removes exactly those that still
  stand (a vote a member took back after the merge stays taken back; one cast on A later
  has another id and stays), restores B's status and clears `merged_into_id`.

Concurrency: on PostgreSQL both ideas' rows are locked first, in id order (two merges of
the same pair in opposite directions cannot deadlock); on SQLite the first write makes the
transaction the only writer (perf/writergate.py). Every decision is then a compare-and-set
in its own statement: B moves to `merged` only from the status this merge read, and only if
not merged or deleted meanwhile; A's counts move only while A is neither merged nor deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import Integer, and_, delete, exists, func, insert, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.extensions import db
from ideaboard.models import (
    EventKind,
    Follow,
    Idea,
    Merge,
    MergeMove,
    Status,
    User,
    Vote,
    utcnow,
)
from ideaboard.permissions import can_merge_idea, can_undo_merge, can_view_idea

from . import events
from .errors import Conflict, NotAllowed, NotFound, ValidationError
from .ideas import age_bonus, trending_score_sql

MERGED = Status.MERGED.value
VOTE, FOLLOW = "vote", "follow"
#: Attempts of B's compare-and-set: a failure means a status change committed in between
#: (after it, this transaction is the writer on SQLite and holds B's lock on PostgreSQL).
ATTEMPTS = 3

_votes = Vote.__table__
_follows = Follow.__table__
_ideas = Idea.__table__
_merges = Merge.__table__
_moves = MergeMove.__table__


@dataclass(frozen=True)
class MergePreview:
    """What a merge would move: votes and followers A does not have yet."""

    votes: int
    follows: int


def parse_into(value: str | None) -> int | None:
    """The idea number in the `into` field ("12", "#12"), or None when it is not one."""
    text = (value or "").strip().lstrip("#").strip()
    if not re.fullmatch(r"[0-9]{1,10}", text):
        return None
    number = int(text)
    return number if 0 < number <= 2**31 - 1 else None


def merged_count_expression():
    """How many ideas stand merged into an idea (undone merges not counted), as a
    correlated subquery for Idea.merged_count: the idea page gets it in its own load."""
    return (
        select(func.count())
        .select_from(_merges)
        .where(_merges.c.into_id == Idea.id, _merges.c.undone_at.is_(None))
        .correlate(Idea)
        .scalar_subquery()
    )


def problem_with_target(idea: Idea, target: Idea | None, viewer: User) -> str | None:
    """Why `idea` cannot be merged into `target` (a message for the `into` field), or None."""
    if idea.status == MERGED:
        return _("This idea is already merged into another; undo that merge first.")
    if target is None or not can_view_idea(viewer, target):
        return _("No idea has this number.")
    if target.id == idea.id:
        return _("An idea cannot be merged into itself.")
    if target.is_deleted:
        return _("That idea is deleted; restore it first, or choose another.")
    if target.status == MERGED:
        return _(
            "That idea was itself merged into #%(id)s; merge into that one.",
            id=target.merged_into_id or 0,
        )
    return None


def load_target(into_id: int | None) -> Idea | None:
    """The idea a merge would go into, with its author and board (None if there is none)."""
    if into_id is None:
        return None
    stmt = (
        select(Idea)
        .options(joinedload(Idea.author), joinedload(Idea.board))
        .where(Idea.id == into_id)
    )
    return db.session.scalar(stmt)


def check_merge(actor: User, idea: Idea, into: str | None) -> Idea:
    """The idea `into` names, if `actor` may merge `idea` into it; else NotAllowed (403)
    or ValidationError on the `into` field (422)."""
    if not can_merge_idea(actor, idea):
        raise NotAllowed(_("Only staff merge ideas."))
    into_id = parse_into(into)
    if into_id is None:
        if idea.status == MERGED:
            raise ValidationError({"into": problem_with_target(idea, None, actor)})
        raise ValidationError({"into": _("Enter the number of the idea to merge into.")})
    target = load_target(into_id)
    problem = problem_with_target(idea, target, actor)
    if problem:
        raise ValidationError({"into": problem})
    return target


def preview(idea: Idea, target: Idea) -> MergePreview:
    """What merging `idea` into `target` would move now (the confirm page's counts)."""
    theirs_v = _votes.alias("theirs_v")
    lacking_vote = ~exists().where(
        theirs_v.c.idea_id == target.id, theirs_v.c.user_id == Vote.user_id
    )
    votes = select(func.count()).where(Vote.idea_id == idea.id, lacking_vote)
    theirs = _follows.alias("theirs")
    lacking_follow = ~exists().where(
        theirs.c.idea_id == target.id, theirs.c.user_id == Follow.user_id
    )
    follows = select(func.count()).where(
        Follow.idea_id == idea.id, Follow.active.is_(True), lacking_follow
    )
    row = db.session.execute(select(votes.scalar_subquery(), follows.scalar_subquery())).one()
    return MergePreview(votes=row[0], follows=row[1])


def _insert(table):
    return (pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert)(
        table
    )


def _lock_pair(first: int, second: int) -> None:
    """PostgreSQL: lock both ideas' rows, in id order (SQLite ignores FOR UPDATE; there
    the first write below makes this transaction the only writer)."""
    db.session.execute(
        select(Idea.id)
        .where(Idea.id.in_([first, second]))
        .order_by(Idea.id)
        .with_for_update()
        .execution_options(populate_existing=False)
    ).all()


def _bump(target_id: int, created_at, votes: int, follows: int, *, guarded: bool):
    """Move A's counts by what was written and rescore from its own new count, in one
    UPDATE; `guarded`: only while A is neither merged nor deleted. (count, score) or None."""
    new_count = _ideas.c.vote_count + votes
    stmt = update(_ideas).where(_ideas.c.id == target_id)
    if guarded:
        stmt = stmt.where(_ideas.c.status != MERGED, _ideas.c.deleted_at.is_(None))
    stmt = stmt.values(
        vote_count=new_count,
        trending_score=trending_score_sql(new_count, age_bonus(created_at)),
        follower_count=_ideas.c.follower_count + follows,
    ).returning(_ideas.c.vote_count, _ideas.c.trending_score, _ideas.c.follower_count)
    return db.session.execute(stmt).first()


def _copy_rows(merge_id: int, kind: str, inserted) -> int:
    """Run `inserted` (an INSERT ... RETURNING id of the rows it wrote) and keep those ids
    as the merge's moves of `kind`; how many rows it wrote.

    PostgreSQL does both in one statement (the INSERT as a data-modifying CTE: 50,000 moves
    cost one round trip, not 50 batches); SQLite, which has no such CTE, inserts the ids
    it got back.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        added = inserted.cte("added")
        kept = (
            insert(_moves)
            .from_select(
                ["merge_id", "kind", "row_id"],
                select(literal(merge_id, Integer), literal(kind), added.c.id),
            )
            .returning(_moves.c.row_id)
            .cte("kept")
        )
        return db.session.execute(select(func.count()).select_from(kept)).scalar_one()
    ids = list(db.session.scalars(inserted))
    if ids:
        db.session.execute(
            insert(_moves), [{"merge_id": merge_id, "kind": kind, "row_id": i} for i in ids]
        )
    return len(ids)


def merge_idea(actor: User, idea: Idea, into: str | None) -> Merge:
    """Merge `idea` (B) into the idea `into` names (A); see the module's docstring."""
    target = check_merge(actor, idea, into)
    now = utcnow()
    _lock_pair(idea.id, target.id)
    previous = idea.status
    for _attempt in range(ATTEMPTS):
        moved = db.session.execute(
            update(_ideas)
            .where(
                _ideas.c.id == idea.id,
                _ideas.c.status == previous,
                _ideas.c.status != MERGED,
                _ideas.c.deleted_at.is_(None),
            )
            .values(status=MERGED, merged_into_id=target.id)
            .returning(_ideas.c.id)
        ).first()
        if moved is not None:
            break
        row = db.session.execute(
            select(_ideas.c.status, _ideas.c.deleted_at).where(_ideas.c.id == idea.id)
        ).first()
        if row is None:
            raise NotFound(_("This idea does not exist."))
        if row.status == MERGED:
            raise ValidationError(
                {"into": _("This idea is already merged into another; undo that merge first.")}
            )
        if row.deleted_at is not None:
            raise NotAllowed(_("Only staff merge ideas."))
        previous = row.status
    else:
        raise Conflict(_("The idea's status kept changing; try again."))
    merge = Merge(
        merged_id=idea.id,
        into_id=target.id,
        by_id=actor.id,
        previous_status=previous,
        created_at=now,
    )
    db.session.add(merge)
    db.session.flush()
    # B's voters A lacks: one INSERT ... SELECT; RETURNING names exactly the rows written.
    source = select(literal(target.id, Integer), _votes.c.user_id, _votes.c.created_at).where(
        _votes.c.idea_id == idea.id
    )
    votes_moved = _copy_rows(
        merge.id,
        VOTE,
        _insert(_votes)
        .from_select(["idea_id", "user_id", "created_at"], source)
        .on_conflict_do_nothing(index_elements=["idea_id", "user_id"])
        .returning(_votes.c.id),
    )
    # B's followers with no row on A (none: neither following nor a sticky unfollow).
    followers = select(
        _follows.c.user_id, literal(target.id, Integer), true(), _follows.c.created_at
    ).where(_follows.c.idea_id == idea.id, _follows.c.active == true())
    follows_moved = _copy_rows(
        merge.id,
        FOLLOW,
        _insert(_follows)
        .from_select(["user_id", "idea_id", "active", "created_at"], followers)
        .on_conflict_do_nothing(index_elements=["user_id", "idea_id"])
        .returning(_follows.c.id),
    )
    counts = _bump(target.id, target.created_at, votes_moved, follows_moved, guarded=True)
    if counts is None:  # A was merged or deleted before this merge got its lock
        db.session.expire(target)
        raise ValidationError(
            {"into": _("That idea changed meanwhile (merged or deleted); choose another.")}
        )
    merge.votes_moved, merge.follows_moved = votes_moved, follows_moved
    set_committed_value(idea, "status", MERGED)
    set_committed_value(idea, "merged_into_id", target.id)
    set_committed_value(target, "vote_count", counts[0])
    set_committed_value(target, "trending_score", counts[1])
    set_committed_value(target, "follower_count", counts[2])
    merge.merged = idea
    db.session.flush()
    events.record(EventKind.MERGED, idea, actor, into=target.id, merge_id=merge.id)
    return merge


def get_merge(into: Idea, merge_id: int) -> Merge:
    """A merge into `into`, with the merged idea; NotFound for any other id."""
    stmt = (
        select(Merge)
        .options(joinedload(Merge.merged), joinedload(Merge.by))
        .where(Merge.id == merge_id, Merge.into_id == into.id)
    )
    found = db.session.scalar(stmt)
    if found is None:
        raise NotFound(_("There is no such merge."))
    return found


def _moved(merge_id: int, kind: str):
    return select(_moves.c.row_id).where(_moves.c.merge_id == merge_id, _moves.c.kind == kind)


def undo_preview(merge: Merge) -> MergePreview:
    """What undoing `merge` would take off the idea it went into: the votes and follows
    it added that still stand."""
    votes = select(func.count()).where(
        _votes.c.idea_id == merge.into_id, _votes.c.id.in_(_moved(merge.id, VOTE))
    )
    follows = select(func.count()).where(
        _follows.c.idea_id == merge.into_id,
        _follows.c.active == true(),
        _follows.c.id.in_(_moved(merge.id, FOLLOW)),
    )
    row = db.session.execute(select(votes.scalar_subquery(), follows.scalar_subquery())).one()
    return MergePreview(votes=row[0], follows=row[1])


def undo_merge(actor: User, into: Idea, merge: Merge) -> Idea:
    """Undo `merge` (from the history of `into`, the idea it went into): take off `into`
    exactly the votes and follows the merge added that still stand, give the merged idea
    back its status, keep both ideas' counts exact. Returns the merged idea.

    No event: there is no notification kind for an undo, and nobody is told (the merge's
    own notification stays in the inboxes that got it)."""
    if not can_undo_merge(actor, into):
        raise NotAllowed(_("Only staff undo merges."))
    if merge.undone_at is not None:
        raise ValidationError({"merge": _("This merge was undone already.")})
    now = utcnow()
    _lock_pair(merge.merged_id, merge.into_id)
    undone = db.session.execute(
        update(_merges)
        .where(_merges.c.id == merge.id, _merges.c.undone_at.is_(None))
        .values(undone_at=now, undone_by_id=actor.id)
        .returning(_merges.c.id)
    ).first()
    if undone is None:
        raise ValidationError({"merge": _("This merge was undone already.")})
    restored = db.session.execute(
        update(_ideas)
        .where(
            _ideas.c.id == merge.merged_id,
            _ideas.c.status == MERGED,
            _ideas.c.merged_into_id == merge.into_id,
        )
        .values(status=merge.previous_status, merged_into_id=None)
        .returning(_ideas.c.id)
    ).first()
    if restored is None:  # cannot happen while undo is the only way out of `merged`
        raise Conflict(_("The merged idea changed meanwhile; reload and try again."))
    votes_gone = db.session.execute(
        delete(_votes)
        .where(_votes.c.idea_id == merge.into_id, _votes.c.id.in_(_moved(merge.id, VOTE)))
        .returning(_votes.c.id)
    ).all()
    # Only follows still active: a member who unfollowed since keeps that choice (sticky).
    follows_gone = db.session.execute(
        delete(_follows)
        .where(
            _follows.c.idea_id == merge.into_id,
            _follows.c.active == true(),
            _follows.c.id.in_(_moved(merge.id, FOLLOW)),
        )
        .returning(_follows.c.id)
    ).all()
    counts = _bump(into.id, into.created_at, -len(votes_gone), -len(follows_gone), guarded=False)
    set_committed_value(into, "vote_count", counts[0])
    set_committed_value(into, "trending_score", counts[1])
    set_committed_value(into, "follower_count", counts[2])
    merged = db.session.get(Idea, merge.merged_id)
    set_committed_value(merged, "status", merge.previous_status)
    set_committed_value(merged, "merged_into_id", None)
    set_committed_value(merge, "undone_at", now)
    set_committed_value(merge, "undone_by_id", actor.id)
    return merged


def merges_into(idea: Idea) -> list[Merge]:
    """The merges into `idea` that stand, oldest first, with the merged ideas (only
    asked when Idea.merged_count says there are some)."""
    stmt = (
        select(Merge)
        .options(joinedload(Merge.merged))
        .where(Merge.into_id == idea.id, Merge.undone_at.is_(None))
        .order_by(Merge.created_at, Merge.id)
    )
    return list(db.session.scalars(stmt))


def merge_mismatches() -> list[int]:
    """Merged ideas whose standing merge does not name the idea they point to (none)."""
    standing = select(_merges.c.merged_id, _merges.c.into_id).where(_merges.c.undone_at.is_(None))
    sub = standing.subquery()
    stmt = (
        select(_ideas.c.id)
        .outerjoin(
            sub, and_(sub.c.merged_id == _ideas.c.id, sub.c.into_id == _ideas.c.merged_into_id)
        )
        .where(_ideas.c.status == MERGED, sub.c.merged_id.is_(None))
    )
    return list(db.session.scalars(stmt))
