"""The roadmap: status changes and the columns that show them."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import joinedload

from ideaboard.extensions import db
from ideaboard.models import ROADMAP, Board, Idea, Status, StatusChange, User, utcnow
from ideaboard.permissions import can_change_status

from .errors import NotAllowed, ValidationError
from .ideas import with_author_and_board
from .text import check_text

NOTE_MAX = 5_000
COLUMN_LIMIT = 20
#: Column totals are counted up to this many (bounded work on huge boards), then shown as "1000+".
COUNT_CAP = 1000


def change_status(actor: User, idea: Idea, status: str, note: str = "") -> StatusChange:
    """Move an idea along the roadmap, keeping the change and its public note."""
    if not can_change_status(actor, idea):
        raise NotAllowed(_("Only staff change an idea's status."))
    errors: dict[str, str] = {}
    note = (note or "").strip()
    if status not in {s.value for s in Status}:
        errors["status"] = _("Choose a status.")
    elif status == idea.status:
        errors["status"] = _("The idea already has this status.")
    check_text(errors, "note", note, minimum=0, maximum=NOTE_MAX, label=_("Note"))
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    change = StatusChange(
        idea_id=idea.id,
        from_status=idea.status,
        to_status=status,
        by_id=actor.id,
        note=note,
        created_at=now,
    )
    change.by = actor
    idea.status = status
    idea.last_activity_at = now
    db.session.add(change)
    db.session.flush()
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


def roadmap_columns(board: Board | None = None, limit: int = COLUMN_LIMIT) -> dict:
    """For each status: its top ideas by votes, and how many it holds (capped at COUNT_CAP).

    Two statements whatever the size: six index-bounded counts in one UNION ALL, and the
    six top-N lists in another, then one load of those ideas with authors and boards.
    """
    statuses = [s.value for s in (*ROADMAP, Status.DECLINED)]

    def live(status: str):
        stmt = select(Idea.id).where(Idea.deleted_at.is_(None), Idea.status == status)
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
    by_id = (
        {
            idea.id: idea
            for idea in db.session.scalars(
                with_author_and_board(select(Idea).where(Idea.id.in_(ids)), body=False)
            )
        }
        if ids
        else {}
    )
    columns = {}
    for status in statuses:
        ideas = sorted(
            (i for i in by_id.values() if i.status == status),
            key=lambda i: (i.vote_count, i.id),
            reverse=True,
        )
        columns[status] = {
            "ideas": ideas,
            "total": totals.get(status, 0),
            "capped": totals.get(status, 0) > COUNT_CAP,
        }
    return columns
