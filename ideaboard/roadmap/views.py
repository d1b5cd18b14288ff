"""The public roadmap and the staff action that moves ideas along it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ideaboard.extensions import db
from ideaboard.htmx import render
from ideaboard.i18n import status_label
from ideaboard.services import boards, ideas, roadmap
from ideaboard.services.errors import NotFound, ValidationError
from ideaboard.urls import idea_url

from .forms import StatusForm

bp = Blueprint("roadmap", __name__)


@bp.get("/roadmap")
def index():
    """Columns from heard to shipped, each ordered by votes."""
    board = boards.find_board(request.args.get("board"))
    return render(
        "roadmap/index.html",
        columns=roadmap.roadmap_columns(board, viewer=current_user),
        main_stages=roadmap.MAIN_STAGES,
        other_stages=roadmap.OTHER_STAGES,
        board=board,
        boards=boards.list_boards(),
    )


@bp.post("/ideas/<int:idea_id>/status")
@login_required
def change_status(idea_id: int):
    """Move an idea to another status with an optional public note (staff)."""
    try:
        idea = ideas.get_idea(idea_id, current_user)
    except NotFound:
        abort(404)
    form = StatusForm()
    try:
        roadmap.change_status(current_user, idea, form.status.data or "", form.note.data or "")
    except ValidationError as err:
        db.session.rollback()
        return render(
            "errors/error.html",
            status=422,
            title=_("Check your input"),
            message=err.message,
            back=idea_url(idea),
        )
    db.session.commit()
    flash(_("Status changed to “%(status)s”.", status=status_label(idea.status)), "success")
    return redirect(idea_url(idea, _anchor="timeline"), 303)
