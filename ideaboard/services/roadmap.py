"""The roadmap: status changes and the columns that show them."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ideaboard.extensions import db
from ideaboard.models import ROADMAP, Board, Idea, Status, StatusChange, User, utcnow
from ideaboard.permissions import can_change_status

from .errors import NotAllowed, ValidationError
from .ideas import with_author_and_board
from .text import check_text

NOTE_MAX = 5_000
COLUMN_LIMIT = 20


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
    """For each roadmap status: its top ideas by votes and how many it holds in all."""
    columns = {}
    base = select(Idea).where(Idea.deleted_at.is_(None))
    count_stmt = (
        select(Idea.status, func.count()).where(Idea.deleted_at.is_(None)).group_by(Idea.status)
    )
    if board is not None:
        base = base.where(Idea.board_id == board.id)
        count_stmt = count_stmt.where(Idea.board_id == board.id)
    totals = dict(db.session.execute(count_stmt).all())
    # One statement per column (a fixed six), each using the status/votes index.
    for status in (*ROADMAP, Status.DECLINED):
        stmt = with_author_and_board(
            base.where(Idea.status == status.value)
            .order_by(Idea.vote_count.desc(), Idea.id.desc())
            .limit(limit)
        )
        columns[status.value] = {
            "ideas": list(db.session.scalars(stmt)),
            "total": totals.get(status.value, 0),
        }
    return columns
