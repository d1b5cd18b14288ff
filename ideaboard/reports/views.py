"""Reports and the moderation queues: a member reports an idea, comment, thread or reply;
a community's moderators (and staff, everywhere) read the queue, resolve reports and
approve or reject posts held for approval. Queue pages are never stored nor cached."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ideaboard import permissions, ratelimit
from ideaboard.extensions import db
from ideaboard.forms import apply_errors
from ideaboard.htmx import is_htmx, render
from ideaboard.models.community import ReportTarget
from ideaboard.perf import pagecache as page_cache
from ideaboard.permissions import is_exempt_from_limits
from ideaboard.security import no_store
from ideaboard.services import communities, reports
from ideaboard.services.errors import Conflict, ValidationError
from ideaboard.urls import idea_url

from .forms import ReportForm

bp = Blueprint("reports", __name__)


def _write_limit(name: str):
    """A member's limit on one kind of write: staff are exempt, only successes count."""
    return ratelimit.limit(
        lambda: current_app.config[name],
        key_func=ratelimit.actor_key,
        exempt_when=lambda: is_exempt_from_limits(current_user),
        refund_when=lambda resp: resp.status_code >= 400,
    )


def report_url(item: reports.Item) -> str:
    """Where the report form of an item is."""
    row = item.row
    if item.kind == ReportTarget.IDEA:
        return url_for("reports.report_idea", idea_id=row.id)
    if item.kind == ReportTarget.COMMENT:
        return url_for("reports.report_comment", idea_id=row.idea_id, comment_id=row.id)
    slug = item.community.slug
    if item.kind == ReportTarget.THREAD:
        return url_for("reports.report_thread", slug=slug, thread_id=row.id)
    return url_for("reports.report_reply", slug=slug, thread_id=row.thread_id, reply_id=row.id)


def item_url(item: reports.Item) -> str:
    """Where an item is shown (its anchor on the page)."""
    row = item.row
    if item.kind == ReportTarget.IDEA:
        return idea_url(row)
    if item.kind == ReportTarget.COMMENT:
        return idea_url(item.idea, _anchor=f"comment-{row.id}")
    slug = item.community.slug
    if item.kind == ReportTarget.THREAD:
        return url_for("community.thread", slug=slug, thread_id=row.id)
    return url_for(
        "community.thread", slug=slug, thread_id=row.thread_id, _anchor=f"reply-{row.id}"
    )


@bp.record_once
def _globals(state) -> None:
    state.app.jinja_env.globals.update(
        report_reasons=reports.reason_labels, report_item_url=item_url
    )


def _report(item: reports.Item):
    """The report form of an item (GET), or filing it (POST)."""
    no_store()
    if not reports.can_see(current_user, item):
        abort(404)
    if not permissions.can_report(current_user, item.author_id) or not reports.is_reportable(item):
        abort(403)
    form = ReportForm()
    context = {"item": item, "form": form, "action": report_url(item), "back": item_url(item)}
    if request.method == "GET":
        return render("reports/new.html", "reports/_form.html", **context)
    try:
        filed = reports.file_report(
            current_user, item, form.reason.data or "", form.note.data or ""
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        context["item"] = reports.load_item(item.kind, item.id)  # fresh after the rollback
        return render("reports/new.html", "reports/_form.html", status=422, **context)
    db.session.commit()
    if not filed.filed:
        message = _("You already reported this. Moderators will look at it.")
    else:
        message = _("Thank you: your report was sent to the moderators.")
    if is_htmx():
        return render("reports/_done.html", item=item, message=message)
    flash(message, "success")
    return redirect(item_url(item), 303)


@bp.route("/ideas/<int:idea_id>/report", methods=["GET", "POST"])
@_write_limit("REPORT_LIMIT")
@login_required
def report_idea(idea_id: int):
    """Report an idea."""
    return _report(reports.load_item(ReportTarget.IDEA, idea_id))


@bp.route("/ideas/<int:idea_id>/comments/<int:comment_id>/report", methods=["GET", "POST"])
@_write_limit("REPORT_LIMIT")
@login_required
def report_comment(idea_id: int, comment_id: int):
    """Report a comment."""
    item = reports.load_item(ReportTarget.COMMENT, comment_id)
    if item.row.idea_id != idea_id:
        abort(404)
    return _report(item)


@bp.route("/c/<slug>/t/<int:thread_id>/report", methods=["GET", "POST"])
@_write_limit("REPORT_LIMIT")
@login_required
def report_thread(slug: str, thread_id: int):
    """Report a thread."""
    item = reports.load_item(ReportTarget.THREAD, thread_id)
    if item.community.slug != slug:
        abort(404)
    return _report(item)


@bp.route("/c/<slug>/t/<int:thread_id>/r/<int:reply_id>/report", methods=["GET", "POST"])
@_write_limit("REPORT_LIMIT")
@login_required
def report_reply(slug: str, thread_id: int, reply_id: int):
    """Report a reply."""
    item = reports.load_item(ReportTarget.REPLY, reply_id)
    if item.community.slug != slug or item.row.thread_id != thread_id:
        abort(404)
    return _report(item)


# --- the queues --------------------------------------------------------------------


def _queue_page(community, status: int = 200, problem=None):
    no_store()
    page_cache.uncached()
    return render(
        "reports/queue.html",
        status=status,
        community=community,
        queue=reports.queue(community),
        problem=problem,
    )


@bp.get("/mod/queue")
@login_required
def queue():
    """Everything waiting for staff: open reports of every kind, and held posts."""
    if not permissions.can_view_moderation(current_user):
        abort(403)
    return _queue_page(None)


@bp.get("/c/<slug>/mod/queue")
@login_required
def community_queue(slug: str):
    """A community's open reports and held posts, for its moderators and staff."""
    community = communities.get_by_slug(slug)
    if community is None:
        abort(404)
    if not permissions.can_view_community_queue(current_user, community):
        abort(403)
    return _queue_page(community)


def _back(item: reports.Item):
    """The queue the action was taken from (`queue`: a community's slug, or empty for the
    staff queue), if the actor may see it; else the one they may."""
    slug = request.form.get("queue", "")
    community = communities.get_by_slug(slug) if slug else None
    if community is not None and permissions.can_view_community_queue(current_user, community):
        return community, url_for("reports.community_queue", slug=community.slug)
    if permissions.can_view_moderation(current_user):
        return None, url_for("reports.queue")
    return item.community, url_for("reports.community_queue", slug=item.community.slug)


def _acted(item: reports.Item, action, success: str):
    """Run a queue action; htmx gets the item's place back with a status message (the
    item leaves the queue), a plain post goes back to the queue."""
    community, back = _back(item)
    try:
        action()
    except ValidationError as err:
        db.session.rollback()
        if is_htmx():
            return render(
                "reports/_acted.html", item=item, message=err.message, error=True, status=422
            )
        return _queue_page(community, status=422, problem=(item.kind, item.id, err.message))
    except Conflict as err:
        db.session.rollback()
        message, error = err.message, True
    else:
        db.session.commit()
        message, error = success, False
    if is_htmx():
        return render("reports/_acted.html", item=item, message=message, error=error)
    flash(message, "error" if error else "success")
    return redirect(back, 303)


@bp.post("/mod/reports/<kind>/<int:item_id>")
@login_required
def resolve(kind: str, item_id: int):
    """Resolve every open report of an item: `resolution` restore | hide | dismiss, with
    an optional `reason`."""
    item = reports.load_item(kind, item_id)
    if not permissions.can_resolve_reports(current_user, item.community):
        abort(403)
    resolution = request.form.get("resolution", "")
    messages = {
        "restore": _("Reports resolved: the item is shown again."),
        "hide": _("Reports resolved: the item stays hidden."),
        "dismiss": _("Reports dismissed: the item stays as it was."),
    }
    return _acted(
        item,
        lambda: reports.resolve_reports(
            current_user, item, resolution, request.form.get("reason", "")
        ),
        messages.get(resolution, ""),
    )


@bp.post("/mod/held/<kind>/<int:item_id>")
@login_required
def decide_held(kind: str, item_id: int):
    """Approve or reject a post held for approval (`decision`, optional `reason`)."""
    item = reports.load_item(kind, item_id)
    if item.community is None:
        abort(404)
    if not permissions.can_resolve_reports(current_user, item.community):
        abort(403)
    decision = request.form.get("decision", "")
    success = (
        _("Approved: the post is shown, and its author posts freely here from now on.")
        if decision == "approve"
        else _("Rejected: the post stays hidden.")
    )
    return _acted(
        item,
        lambda: reports.decide_held_post(
            current_user, item, decision, request.form.get("reason", "")
        ),
        success,
    )
