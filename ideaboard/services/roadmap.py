"""The roadmap: status changes and the columns that show them."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import exists, func, literal, select, union_all, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard.extensions import db
from ideaboard.models import (
    ROADMAP,
    Board,
    EventKind,
    Idea,
    Status,
    StatusChange,
    User,
    Vote,
    utcnow,
)
from ideaboard.permissions import can_change_status

from . import events
from .errors import Conflict, NotAllowed, NotFound, ValidationError
from .ideas import with_author_and_board
from .text import check_text

NOTE_MAX = 5_000
#: What a customer looks for first, in the first screen; the other stages are one click away.
MAIN_STAGES = (Status.PLANNED.value, Status.IN_PROGRESS.value, Status.SHIPPED.value)
OTHER_STAGES = (Status.UNDER_REVIEW.value, Status.HEARD.value, Status.DECLINED.value)
COLUMN_LIMIT = 20
#: Column totals are counted up to this many (bounded work on huge boards), then shown as "1000+".
COUNT_CAP = 1000
#: Compare-and-set attempts before a status change gives up (each failure means another
#: change committed in between; on SQLite the second attempt always succeeds).
STATUS_ATTEMPTS = 10


def change_status(actor: User, idea: Idea, status: str, note: str = "") -> StatusChange:
    """Move an idea along the roadmap, keeping the change and its public note.

    The UPDATE itself checks that the idea still has the status this change records as its
    `from_status` (compare-and-set); when another change committed first, the status is
    read again and the change is applied on top of it. So concurrent changes are recorded
    one after the other, each starting where the previous one ended, exactly as if they
    had been made in turn, and a change that the race made pointless (the idea already
    has that status) is refused as it would be in turn: "already has this status", 422.
    """
    if not can_change_status(actor, idea):
        raise NotAllowed(_("Only staff change an idea's status."))
    errors: dict[str, str] = {}
    note = (note or "").strip()
    if status not in {s.value for s in Status}:
        errors["status"] = _("Choose a status.")
    elif status == Status.MERGED.value:
        errors["status"] = _("An idea becomes merged only by merging it into another.")
    elif idea.status == Status.MERGED.value:
        errors["status"] = _("This idea was merged into another; undo the merge to move it.")
    check_text(errors, "note", note, minimum=0, maximum=NOTE_MAX, label=_("Note"))
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    current = idea.status
    for _attempt in range(STATUS_ATTEMPTS):
        if current == status:
            raise ValidationError({"status": _("The idea already has this status.")})
        moved = db.session.execute(
            update(Idea)
            .where(Idea.id == idea.id, Idea.status == current)
            .values(status=status, last_activity_at=now)
            .returning(Idea.id)
            .execution_options(synchronize_session=False)
        ).first()
        if moved is not None:
            break
        current = db.session.scalar(select(Idea.status).where(Idea.id == idea.id))
        if current is None:  # deleted from the database meanwhile (not soft-deleted)
            raise NotFound(_("This idea does not exist."))
        if current == Status.MERGED.value:  # a merge committed first: only undo moves it
            raise ValidationError(
                {"status": _("This idea was merged into another; undo the merge to move it.")}
            )
    else:
        raise Conflict(_("The idea's status kept changing; try again."))
    set_committed_value(idea, "status", status)
    set_committed_value(idea, "last_activity_at", now)
    change = StatusChange(
        idea_id=idea.id,
        from_status=current,
        to_status=status,
        by_id=actor.id,
        note=note,
        created_at=now,
    )
    change.by = actor
    db.session.add(change)
    db.session.flush()
    events.record(
        EventKind.STATUS_CHANGED,
        idea,
        actor,
        change_id=change.id,
        note=note,
        **{"from": current, "to": status},
    )
    return change


def history(idea: Idea) -> list[StatusChange]:
    """Every status change of the idea, oldest first."""
    stmt = (
        select(StatusChange)
        .options(joinedload(StatusChange.by))
        .where(StatusChange.idea_id == idea.id)
        .order_by(StatusChange.created_at, StatusChange.id)
    )
    return list(db.session.scalars(stmt))


def roadmap_columns(
    board: Board | None = None, limit: int = COLUMN_LIMIT, viewer: User | None = None
) -> dict:
    """For each status: its top ideas by votes, how many it holds (capped at COUNT_CAP),
    and when its shipped ideas shipped.

    Two statements whatever the size: six index-bounded counts in one UNION ALL, and the
    six top-N lists in another, then one load of those ideas with authors, boards, the
    time of their last move to shipped and whether the viewer voted for each.
    """
    statuses = [s.value for s in (*ROADMAP, Status.DECLINED)]

    def live(status: str):
        stmt = select(Idea.id).where(Idea.live(), Idea.status == status)
        return stmt.where(Idea.board_id == board.id) if board is not None else stmt

    counts = union_all(
        *(
            select(literal(status).label("status"), func.count().label("n")).select_from(
                live(status).limit(COUNT_CAP + 1).subquery()
            )
            for status in statuses
        )
    )
    totals = {row.status: row.n for row in db.session.execute(counts)}
    tops = union_all(
        *(
            select(literal(status).label("status"), sub.c.id).select_from(sub)
            for status in statuses
            for sub in [
                live(status)
                .order_by(Idea.vote_count.desc(), Idea.id.desc())
                .limit(limit)
                .subquery()
            ]
        )
    )
    ids = [row.id for row in db.session.execute(tops)]
    # When each idea last moved to shipped, in the same load: cards say "shipped 3 May".
    shipped_at = (
        select(func.max(StatusChange.created_at))
        .where(StatusChange.idea_id == Idea.id, StatusChange.to_status == Status.SHIPPED.value)
        .correlate(Idea)
        .scalar_subquery()
    )
    member = viewer is not None and viewer.is_authenticated
    voted_col = (
        exists()
        .where(Vote.idea_id == Idea.id, Vote.user_id == viewer.id)
        .correlate(Idea)
        .label("voted")
        if member
        else literal(False).label("voted")
    )
    by_id, shipped, voted = {}, {}, set()
    if ids:
        stmt = with_author_and_board(select(Idea).where(Idea.id.in_(ids)), body=False)
        stmt = stmt.add_columns(shipped_at.label("shipped_at"), voted_col)
        for idea, at, has_voted in db.session.execute(stmt):
            by_id[idea.id] = idea
            if idea.status == Status.SHIPPED.value and at is not None:
                shipped[idea.id] = at
            if has_voted:
                voted.add(idea.id)
    columns = {}
    for status in statuses:
        ideas = sorted(
            (i for i in by_id.values() if i.status == status),
            key=lambda i: (i.vote_count, i.id),
            reverse=True,
        )
        columns[status] = {
            "ideas": ideas,
            "shipped_at": {i.id: shipped[i.id] for i in ideas if i.id in shipped},
            "voted": {i.id for i in ideas if i.id in voted},
            "total": totals.get(status, 0),
            "capped": totals.get(status, 0) > COUNT_CAP,
            "cap": COUNT_CAP,
        }
    return columns
