"""Votes: one per member and idea, with the idea's count kept exact."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import DateTime, Float, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.extensions import db
from ideaboard.models import Idea, User, Vote, utcnow
from ideaboard.permissions import can_vote

from .errors import NotAllowed
from .ideas import age_bonus, trending_score_sql


@dataclass(frozen=True)
class VoteResult:
    voted: bool
    count: int


# The toggle's statements, built once: a vote is the hottest write path, and building and
# cache-keying SQLAlchemy constructs on every request cost more than running them.
_votes = Vote.__table__
_ideas = Idea.__table__
_DELETE = (
    delete(_votes)
    .where(_votes.c.idea_id == bindparam("p_idea"), _votes.c.user_id == bindparam("p_user"))
    .returning(_votes.c.id)
)
_INSERTS = {
    name: insert(_votes)
    .values(idea_id=bindparam("p_idea"), user_id=bindparam("p_user"), created_at=bindparam("p_at"))
    .on_conflict_do_nothing(index_elements=["idea_id", "user_id"])
    .returning(_votes.c.id)
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_new_count = _ideas.c.vote_count + bindparam("p_delta")
# One UPDATE moves the count and rescores from the row's own new count, so the score can
# never lag a concurrent toggle, and the row is locked once.
_BUMP = (
    update(_ideas)
    .where(_ideas.c.id == bindparam("p_idea"))
    .values(
        vote_count=_new_count,
        trending_score=trending_score_sql(_new_count, bindparam("p_bonus")),
    )
    .returning(_ideas.c.vote_count, _ideas.c.trending_score)
)


def _insert_vote(idea_id: int, user_id: int) -> bool:
    """Insert the vote unless it exists; True only if this statement wrote the row.

    Decided from RETURNING, not rowcount: through the ORM, psycopg reports rowcount -1
    for INSERT ... ON CONFLICT, which would count a vote that was never written.
    """
    stmt = _INSERTS[db.session.get_bind().dialect.name]
    params = {"p_idea": idea_id, "p_user": user_id, "p_at": utcnow()}
    return db.session.execute(stmt, params).first() is not None


def _bump(idea: Idea, delta: int) -> int:
    """Move the stored count by `delta` in SQL (never read-modify-write) and rescore."""
    params = {"p_idea": idea.id, "p_delta": delta, "p_bonus": age_bonus(idea.created_at)}
    count, score = db.session.execute(_BUMP, params).one()
    set_committed_value(idea, "vote_count", count)
    set_committed_value(idea, "trending_score", score)
    return count


# PostgreSQL does the whole toggle in one statement (one round trip instead of three):
# delete the member's vote, or, if there was none, insert it; then move the count by what
# was actually written and rescore, under the idea's row lock, and say which it was.
_PG_TOGGLE = text(
    """
    WITH gone AS (
        DELETE FROM votes WHERE idea_id = :p_idea AND user_id = :p_user RETURNING id
    ), added AS (
        INSERT INTO votes (idea_id, user_id, created_at)
        SELECT :p_idea, :p_user, :p_at WHERE NOT EXISTS (SELECT 1 FROM gone)
        ON CONFLICT (idea_id, user_id) DO NOTHING
        RETURNING id
    ), moved AS (
        SELECT (SELECT count(*) FROM added) - (SELECT count(*) FROM gone) AS delta,
               (SELECT count(*) FROM gone) AS removed
    )
    UPDATE ideas
    SET vote_count = ideas.vote_count + moved.delta,
        trending_score = log10(1 + ideas.vote_count + moved.delta) + :p_bonus
    FROM moved
    WHERE ideas.id = :p_idea
    RETURNING ideas.vote_count, ideas.trending_score, moved.removed
    """
).bindparams(bindparam("p_at", type_=DateTime()), bindparam("p_bonus", type_=Float()))


def _toggle_postgresql(actor: User, idea: Idea) -> VoteResult:
    params = {
        "p_idea": idea.id,
        "p_user": actor.id,
        "p_at": utcnow(),
        "p_bonus": age_bonus(idea.created_at),
    }
    count, score, removed = db.session.execute(_PG_TOGGLE, params).one()
    set_committed_value(idea, "vote_count", count)
    set_committed_value(idea, "trending_score", score)
    # Nothing removed means the vote stands: added now, or by a concurrent request of the
    # same member (the insert then did nothing, and neither did the count).
    return VoteResult(voted=not removed, count=count)


def toggle_vote(actor: User, idea: Idea) -> VoteResult:
    """Add the member's vote, or take it back if it is there.

    Safe under concurrency: a delete or insert that found nothing to do changes no count,
    and the unique constraint makes a racing second insert a no-op.
    """
    if not can_vote(actor, idea):
        raise NotAllowed(_("Sign in to vote."))
    if db.session.get_bind().dialect.name == "postgresql":
        return _toggle_postgresql(actor, idea)
    removed = len(db.session.execute(_DELETE, {"p_idea": idea.id, "p_user": actor.id}).all())
    if removed:
        return VoteResult(voted=False, count=_bump(idea, -removed))
    if _insert_vote(idea.id, actor.id):
        return VoteResult(voted=True, count=_bump(idea, 1))
    # A concurrent request of the same member voted first: the vote stands.
    return VoteResult(voted=True, count=idea.vote_count)


def has_voted(user: User | None, idea: Idea) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return (
        db.session.scalar(select(Vote.id).where(Vote.idea_id == idea.id, Vote.user_id == user.id))
        is not None
    )


def recent_voters(idea: Idea, limit: int = 12) -> list[User]:
    """The latest voters' accounts, newest first."""
    stmt = (
        select(User)
        .join(Vote, Vote.user_id == User.id)
        .where(Vote.idea_id == idea.id)
        .order_by(Vote.created_at.desc(), Vote.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))


def count_mismatches() -> list[int]:
    """Ideas whose stored vote count differs from their vote rows (should be none)."""
    rows = select(Vote.idea_id, func.count().label("n")).group_by(Vote.idea_id).subquery()
    stmt = (
        select(Idea.id)
        .outerjoin(rows, rows.c.idea_id == Idea.id)
        .where(Idea.vote_count != func.coalesce(rows.c.n, 0))
    )
    return list(db.session.scalars(stmt))
