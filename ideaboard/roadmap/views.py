"""The public roadmap and the staff action that moves ideas along it."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ideaboard.extensions import db
from ideaboard.htmx import is_htmx, render
from ideaboard.i18n import status_label
from ideaboard.perf import pagecache as page_cache
from ideaboard.services import boards, ideas, live, roadmap
from ideaboard.services.errors import NotFound, ValidationError
from ideaboard.urls import idea_url

from .forms import StatusForm

bp = Blueprint("roadmap", __name__)


@bp.get("/roadmap")
def index():
    """Columns from heard to shipped, each ordered by votes."""
    board = boards.find_board(request.args.get("board"))
    columns = roadmap.roadmap_columns(board, viewer=current_user)
    return render(
        "roadmap/index.html",
        columns=columns,
        main_stages=roadmap.MAIN_STAGES,
        other_stages=roadmap.OTHER_STAGES,
        board=board,
        boards=boards.list_boards(),
        **_live_context(board, columns),
    )


def _live_context(board, columns) -> dict:
    """The live poll of a roadmap showing `columns` (no query)."""
    return {
        "live_url": url_for("roadmap.live_updates", board=board.slug if board else None),
        "live_etag": live.roadmap_etag(live.roadmap_digest(columns), str(get_locale())),
        "live_seconds": current_app.config["LIVE_POLL_SECONDS"],
    }


@bp.get("/roadmap/live")
def live_updates():
    """The roadmap's columns again when they changed (htmx pieces swapped out of band),
    an empty 304 while the page's ETag still describes them. Between writes a poll costs
    a dictionary lookup: the columns' digest is kept per content version and board."""
    board = boards.find_board(request.args.get("board"))
    if not is_htmx():  # only the page's script asks for pieces: send a visit to the page
        return redirect(url_for("roadmap.index", board=board.slug if board else None), 302)
    locale = str(get_locale())
    cache = page_cache.current_cache()
    version = cache.versions.read() if cache is not None and cache.enabled else None
    stamp = live.roadmap_stamp(
        current_app.extensions.setdefault("ideaboard_live_roadmap", {}),
        version,
        board,
        lambda: live.roadmap_digest(roadmap.roadmap_columns(board)),
    )
    etag = live.roadmap_etag(stamp, locale)
    if live.matches(request.headers.get("If-None-Match"), etag):
        resp = make_response("", 304)
        resp.headers["ETag"] = etag
        return resp
    columns = roadmap.roadmap_columns(board, viewer=current_user)
    context = _live_context(board, columns)
    body = render_template(
        "roadmap/_live.html",
        columns=columns,
        main_stages=roadmap.MAIN_STAGES,
        other_stages=roadmap.OTHER_STAGES,
        board=board,
        back=url_for("roadmap.index", board=board.slug if board else None),
        **context,
    )
    resp = make_response(body, 200)
    resp.headers["ETag"] = context["live_etag"]
    return resp


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
