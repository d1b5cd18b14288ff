"""Votes: one per member and idea, with the idea's count kept exact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import (
    Connection,
    DateTime,
    Executable,
    Float,
    Result,
    and_,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import Idea, User, Vote, utcnow
from ideaboard.models.idea import Status
from ideaboard.perf.driver import driver_runner

from .errors import NotAllowed
from .follows import AUTO_FOLLOW
from .ideas import TRENDING_EPOCH, TRENDING_GRAVITY, age_bonus, trending_score_sql


@dataclass(frozen=True)
class VoteResult:
    voted: bool
    count: int


#: The vote request's `intent` field (../shared/contract.md): set the vote to it, so a
#: doubled or retried request changes nothing. Without it, the request toggles.
VOTE, UNVOTE = "vote", "unvote"
INTENTS = (VOTE, UNVOTE)


class BadIntent(ValueError):
    """An `intent` that is neither vote nor unvote: the request is refused (400)."""


def parse_intent(value: str | None) -> str | None:
    """The request's intent: "vote", "unvote", or None (toggle) when the field is absent
    or empty. Anything else raises BadIntent. Flask's route and the fast path both ask
    this, so they answer the same request the same way."""
    if value is None or value == "":
        return None
    if value not in INTENTS:
        raise BadIntent(value)
    return value


# The toggle's statements, built once: a vote is the hottest write path, and building and
# cache-keying SQLAlchemy constructs on every request cost more than running them.
_votes = Vote.__table__
_ideas = Idea.__table__
_users = User.__table__

#: Runs a statement with parameters: Session.execute, Connection.execute, or (the vote
#: fast path) perf.driver.driver_runner(), which gives rows the same way.
Run = Callable[[Executable, dict], Result]
_DELETE = (
    delete(_votes)
    .where(_votes.c.idea_id == bindparam("p_idea"), _votes.c.user_id == bindparam("p_user"))
    .returning(_votes.c.id)
)
# SQLite's insert; PostgreSQL does the whole toggle in one statement (_PG_TOGGLE).
_INSERT = (
    sqlite_insert(_votes)
    .values(idea_id=bindparam("p_idea"), user_id=bindparam("p_user"), created_at=bindparam("p_at"))
    .on_conflict_do_nothing(index_elements=["idea_id", "user_id"])
    .returning(_votes.c.id)
)
_new_count = _ideas.c.vote_count + bindparam("p_delta")
# One UPDATE moves the count and rescores from the row's own new count, so the score can
# never lag a concurrent toggle, and the row is locked once. It also moves the follower
# count by the follow the vote wrote, if any (a voter follows the idea: services/follows.py).
_BUMP = (
    update(_ideas)
    .where(_ideas.c.id == bindparam("p_idea"))
    .values(
        vote_count=_new_count,
        trending_score=trending_score_sql(_new_count, bindparam("p_bonus")),
        follower_count=_ideas.c.follower_count + bindparam("p_followed"),
    )
    .returning(_ideas.c.vote_count, _ideas.c.trending_score)
)
# A vote makes the voter follow the idea, unless they unfollowed it (follows.AUTO_FOLLOW).
_AUTO_FOLLOW = AUTO_FOLLOW["sqlite"]


def _toggle_sqlite(
    run: Run, idea_id: int, user_id: int, bonus: float, intent: str | None = None
) -> tuple:
    """(voted, count, score): with an intent, insert (vote) or delete (unvote) the member's
    vote; without, delete it or else insert it; then move the count by what was written.
    A vote inserted makes the voter follow the idea unless they unfollowed it."""
    removed = followed = 0
    if intent != VOTE:
        removed = len(run(_DELETE, {"p_idea": idea_id, "p_user": user_id}).all())
    if removed:
        delta, voted = -removed, False
    elif intent == UNVOTE:
        return False, None, None  # no vote to take back: nothing changes
    else:
        # Decided from RETURNING, which names the row only if this statement wrote it.
        params = {"p_idea": idea_id, "p_user": user_id, "p_at": utcnow()}
        inserted = run(_INSERT, params).first() is not None
        if not inserted:
            # Voted already (a repeated request), or a concurrent request of the same
            # member voted first: the vote stands, once.
            return True, None, None
        delta, voted = 1, True
        followed = 1 if run(_AUTO_FOLLOW, params).first() is not None else 0
    params = {"p_idea": idea_id, "p_delta": delta, "p_bonus": bonus, "p_followed": followed}
    count, score = run(_BUMP, params).one()
    return voted, count, score


# PostgreSQL does the whole toggle in one statement (one round trip instead of three):
# delete the member's vote from the target idea, or, if there was none, insert it and
# make the voter follow the idea unless they unfollowed it (services/follows.py); then
# move the count by what was actually written and rescore, under the idea's row lock, and
# say which it was. `target` (the idea's id and age bonus) comes first, from the caller.
# :p_intent ('vote', 'unvote' or 'toggle') switches the delete and the insert off: with
# an intent the statement only sets the vote, so running it twice changes nothing.
_PG_TOGGLE_REST = """
    gone AS (
        DELETE FROM votes
        WHERE idea_id = (SELECT id FROM target) AND user_id = :p_user
          AND CAST(:p_intent AS text) <> 'vote'
        RETURNING id
    ), added AS (
        INSERT INTO votes (idea_id, user_id, created_at)
        SELECT target.id, :p_user, :p_at FROM target
        WHERE CAST(:p_intent AS text) <> 'unvote' AND NOT EXISTS (SELECT 1 FROM gone)
        ON CONFLICT (idea_id, user_id) DO NOTHING
        RETURNING id
    ), followed AS (
        INSERT INTO follows (user_id, idea_id, active, created_at)
        SELECT :p_user, target.id, true, :p_at FROM target WHERE EXISTS (SELECT 1 FROM added)
        ON CONFLICT (user_id, idea_id) DO NOTHING
        RETURNING id
    ), moved AS (
        SELECT (SELECT count(*) FROM added) - (SELECT count(*) FROM gone) AS delta,
               (SELECT count(*) FROM gone) AS removed,
               (SELECT count(*) FROM followed) AS followed
    )
    UPDATE ideas
    SET vote_count = ideas.vote_count + moved.delta,
        trending_score = log10(1 + ideas.vote_count + moved.delta) + target.bonus,
        follower_count = ideas.follower_count + moved.followed
    FROM moved, target
    WHERE ideas.id = target.id
    RETURNING ideas.vote_count, ideas.trending_score, moved.removed, moved.delta
"""
# The ORM path checked can_vote() on the loaded idea and knows its bonus.
_PG_TOGGLE = text(
    "WITH target AS (SELECT CAST(:p_idea AS integer) AS id, CAST(:p_bonus AS float8) AS bonus),"
    + _PG_TOGGLE_REST
).bindparams(bindparam("p_at", type_=DateTime()), bindparam("p_bonus", type_=Float()))


def _pg_intent(intent: str | None) -> str:
    return intent or "toggle"


def _pg_outcome(row, intent: str | None = None) -> tuple[bool, int, float, bool]:
    """(voted, count, score, changed) from a _PG_TOGGLE* row."""
    count, score, removed, delta = row
    if intent == UNVOTE:
        return False, count, score, delta != 0
    # Nothing removed means the vote stands: added now, or by a concurrent request of the
    # same member (the insert then did nothing, and neither did the count).
    return not removed, count, score, delta != 0


def _toggle_postgresql(
    run: Run, idea_id: int, user_id: int, bonus: float, intent: str | None = None
) -> tuple:
    params = {
        "p_idea": idea_id,
        "p_user": user_id,
        "p_at": utcnow(),
        "p_bonus": bonus,
        "p_intent": _pg_intent(intent),
    }
    voted, count, score, changed = _pg_outcome(run(_PG_TOGGLE, params).one(), intent)
    return (voted, count, score) if changed else (voted, None, None)


def toggle_on(
    run: Run,
    dialect: str,
    idea_id: int,
    user_id: int,
    created_at: datetime,
    intent: str | None = None,
) -> tuple:
    """The vote itself, through `run` (see Run) inside its transaction, on a `dialect`
    database: (voted, count, score). `intent` (parse_intent()) sets the vote; None toggles.

    count and score are None when nothing changed (the vote already was as asked, or the
    member's concurrent request voted first). Safe under concurrency: a delete or insert
    that found nothing to do changes no count, and the unique constraint makes a racing
    second insert a no-op. Callers check the rule (can_vote) first: set_vote() on loaded
    objects, toggle_for_session() from the rows' facts or the rule's SQL twin.
    """
    toggle = _toggle_postgresql if dialect == "postgresql" else _toggle_sqlite
    return toggle(run, idea_id, user_id, age_bonus(created_at), intent)


def closed_message(idea: Idea) -> str:
    """Why nobody can vote on the idea any more (permissions.voting_closed)."""
    if idea.status == Status.SHIPPED.value:
        return _("Voting is closed: this idea has shipped.")
    if idea.status == Status.MERGED.value:
        return _("Voting is closed: this idea was merged into another; vote there.")
    return _("Voting is closed: this idea was declined.")


def set_vote(actor: User, idea: Idea, intent: str | None = None) -> VoteResult:
    """Set the member's vote as `intent` says (vote, unvote; see parse_intent), or toggle
    it when there is no intent. Repeating an intent changes nothing."""
    if not permissions.can_vote(actor, idea):
        if permissions.is_member(actor) and permissions.voting_closed(idea):
            raise NotAllowed(closed_message(idea))
        raise NotAllowed(_("Sign in to vote."))
    # Through the Session (any connection would do: perf.freshness sees writes at the engine).
    dialect = db.session.get_bind().dialect.name
    voted, count, score = toggle_on(
        db.session.execute, dialect, idea.id, actor.id, idea.created_at, intent
    )
    if count is None:
        return VoteResult(voted=voted, count=idea.vote_count)
    set_committed_value(idea, "vote_count", count)
    set_committed_value(idea, "trending_score", score)
    return VoteResult(voted=voted, count=count)


def toggle_vote(actor: User, idea: Idea) -> VoteResult:
    """Add the member's vote, or take it back if it is there."""
    return set_vote(actor, idea, None)


def pending_vote_idea(idea_id: str | int | None) -> Idea | None:
    """The idea a visitor's `vote` field names, if it is one anyone may see and vote on
    once signed in (sign-in and registration pages say so); None for no or a malformed id,
    a missing or deleted idea, or closed voting."""
    try:
        wanted = int(idea_id or 0)
    except (TypeError, ValueError):
        return None
    if not 0 < wanted <= 2**31 - 1:
        return None
    idea = db.session.get(Idea, wanted)
    if idea is None or idea.is_deleted or permissions.voting_closed(idea):
        return None
    return idea


def cast_pending_vote(actor: User, idea_id: str | int | None) -> int | None:
    """The vote a visitor asked for before signing in or registering (the `vote` field
    carried through those forms), cast in the caller's transaction, which signs them in.

    Returns the idea's id when the member's vote stands on it now (cast, or there
    already); None when there is nothing to cast (see pending_vote_idea()) or the member
    may not vote on it. Never toggles: a member who had voted keeps the vote.
    """
    idea = pending_vote_idea(idea_id)
    if idea is None or not permissions.can_vote(actor, idea):
        return None
    set_vote(actor, idea, VOTE)
    return idea.id


# The vote fast path (perf/fastvote.py) asks permissions.py, never its own rule: "may this
# signed-in member vote here, through the fast path" is can_vote() and not
# is_exempt_from_limits() (the fast path has counted the member's write limit, which staff
# do not have). The sign-in still standing (the session's login token is the member's
# current one, as security._load_user checks) is part of finding the member's row.
_SIGNED_IN = and_(
    _users.c.id == bindparam("p_user"), _users.c.session_token == bindparam("p_token")
)

# On SQLite the fast path reads the facts and the predicates decide (permissions.facts()).
_IDEA_FACTS = permissions.fact_columns(_ideas)
_USER_FACTS = permissions.fact_columns(_users)
_FACTS = (
    select(*_IDEA_FACTS, *_USER_FACTS)
    .select_from(_ideas.join(_users, _SIGNED_IN))
    .where(_ideas.c.id == bindparam("p_idea"))
)


def fast_path_may_vote(user, idea) -> bool:
    """Whether the fast path may record this member's vote on this idea (see above)."""
    return permissions.can_vote(user, idea) and not permissions.is_exempt_from_limits(user)


def fast_path_may_vote_sql(user, idea):
    """fast_path_may_vote() as SQL, from the predicates' twins (permissions.TWINS)."""
    return and_(permissions.can_vote_sql(user, idea), ~permissions.is_exempt_from_limits_sql(user))


def _pg(expression) -> str:
    """A constant expression (no parameters left) as PostgreSQL SQL, to splice into text()."""
    return str(
        expression.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )


# On PostgreSQL the check and the toggle are one statement, one round trip: the twins
# decide in the target's WHERE. The age bonus is age_bonus() in SQL: the exact epoch
# difference (numeric) as a double, divided as a double, so the score is the same number
# Python computes.
_PG_TOGGLE_FOR_SESSION = text(
    """
    WITH target AS (
        SELECT ideas.id,
               CAST(EXTRACT(EPOCH FROM ideas.created_at - :p_epoch) AS float8) / :p_gravity
                   AS bonus
        FROM ideas JOIN users ON users.id = :p_user AND users.session_token = :p_token
        WHERE ideas.id = :p_idea AND """
    + _pg(fast_path_may_vote_sql(_users, _ideas))
    + """
    ),"""
    + _PG_TOGGLE_REST
).bindparams(
    bindparam("p_at", type_=DateTime()),
    bindparam("p_epoch", type_=DateTime()),
    bindparam("p_gravity", type_=Float()),
)


def toggle_for_session(
    conn: Connection, idea_id: int, user_id: int, token: str, intent: str | None = None
) -> tuple[bool, int, bool] | None:
    """The fast path's whole vote (set_vote()'s: `intent` sets it, None toggles), for the
    member whose session holds `token`.

    (voted, count, changed), or None, with nothing written, when the rule says no (see
    fast_path_may_vote()) or the idea is gone or the sign-in no longer stands.
    """
    # Straight on the DB-API cursor (perf.driver.driver_runner): on SQLite the writes queue
    # at the one writer, where every bit of Python overhead is paid by every voter waiting
    # behind; on PostgreSQL SQLAlchemy's execute was a visible share of the fast path's CPU.
    run = driver_runner(conn)
    if conn.dialect.name == "postgresql":
        params = {
            "p_idea": idea_id,
            "p_user": user_id,
            "p_token": token,
            "p_at": utcnow(),
            "p_epoch": TRENDING_EPOCH,
            "p_gravity": float(TRENDING_GRAVITY),
            "p_intent": _pg_intent(intent),
        }
        row = run(_PG_TOGGLE_FOR_SESSION, params).first()
        if row is None:
            return None
        voted, count, _score, changed = _pg_outcome(row, intent)
        return voted, count, changed
    row = run(_FACTS, {"p_idea": idea_id, "p_user": user_id, "p_token": token}).first()
    if row is None:
        return None
    split = len(_IDEA_FACTS)
    idea = permissions.facts(Idea, row[:split])
    if not fast_path_may_vote(permissions.facts(User, row[split:]), idea):
        return None
    voted, count, _score = toggle_on(run, "sqlite", idea_id, user_id, idea.created_at, intent)
    if count is None:
        return voted, run(_COUNT, {"p_idea": idea_id}).scalar_one(), False
    return voted, count, True


_COUNT = select(_ideas.c.vote_count).where(_ideas.c.id == bindparam("p_idea"))


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
