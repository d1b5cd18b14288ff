"""The notification centre (GET /notifications), marking read, the header's count."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user, login_required

from ideaboard.extensions import db
from ideaboard.htmx import is_htmx, render
from ideaboard.models.base import MAX_INT
from ideaboard.security import no_store, safe_next
from ideaboard.services import notifications

bp = Blueprint("notifications", __name__)


def _page_arg() -> int:
    try:
        return int(request.args.get("page", 1))
    except ValueError:
        return 1


@bp.get("/notifications")
@login_required
def index():
    """The member's notifications, newest first, a page at a time."""
    no_store()
    page = notifications.page_of(current_user, _page_arg())
    return render("notifications/index.html", page=page)


@bp.post("/notifications/read")
@login_required
def read():
    """Mark one notification (`id`) or all of them read. htmx gets the item (or the
    whole list) back; a plain post goes back to the page it came from."""
    raw = request.form.get("id", "").strip()
    notification_id = None
    if raw:
        if not raw.isdigit() or not 0 < int(raw) <= MAX_INT:
            abort(400)
        notification_id = int(raw)
        if not notifications.owns(current_user, notification_id):
            abort(404)  # someone else's, or none: the same answer
    notifications.mark_read(current_user, notification_id)
    db.session.commit()
    back = safe_next(request.form.get("next"), url_for("notifications.index"))
    if is_htmx():
        page = notifications.page_of(current_user, _page_from(back))
        resp = render("notifications/_list.html", page=page, read_id=notification_id)
        resp.headers["HX-Trigger"] = "notifications-changed"
        return resp
    return redirect(back, 303)


def _page_from(url: str) -> int:
    """The page number a `next` URL of the centre names (1 otherwise)."""
    _, _, query = url.partition("?")
    for piece in query.split("&"):
        name, _, value = piece.partition("=")
        if name == "page" and value.isdigit():
            return int(value)
    return 1


@bp.get("/notifications/unread")
@login_required
def unread():
    """The header's link with the member's unread count: an htmx fragment, loaded after
    the page and every 60 s. A plain request (no JavaScript) is sent to the centre,
    which shows the count."""
    no_store()
    if not is_htmx():
        return redirect(url_for("notifications.index"), 302)
    return render("notifications/_header_link.html", count=notifications.unread_count(current_user))
