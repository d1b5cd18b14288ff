"""The admin area: boards and members in the browser, for admins only.

Each view parses, loads, calls one service in services/admin.py (which checks
permissions.can_manage_site and refuses with 403 anyone else), commits once and
redirects with a confirmation. Visitors are sent to sign in by login_required.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ideaboard.extensions import db
from ideaboard.forms import apply_errors
from ideaboard.htmx import render
from ideaboard.i18n import ROLE_LABELS
from ideaboard.security import no_store
from ideaboard.services import admin
from ideaboard.services.errors import ValidationError

from .forms import BoardForm, IntentForm, NewBoardForm, RoleForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def _private():
    # Member emails and forms with tokens: never kept by a browser or proxy cache. (A
    # visitor only gets the redirect to sign in, cached like any other.)
    if current_user.is_authenticated:
        no_store()


def _page_arg() -> int:
    value = request.values.get("page", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 6 else 1


def _overview(form: NewBoardForm, status: int = 200):
    from ideaboard.moderation.forms import CommunityForm
    from ideaboard.services import communities

    return render(
        "admin/index.html",
        overview=admin.site_overview(current_user),
        form=form,
        status=status,
        community_form=CommunityForm(formdata=None),
        community_list=communities.directory(1, include_archived=True).communities,
    )


@bp.get("")
@login_required
def index():
    """Boards with their idea counts, members by role, and a form for a new board."""
    return _overview(NewBoardForm(formdata=None))


@bp.post("/boards")
@login_required
def create_board():
    """Add a board."""
    admin.require_admin(current_user)
    form = NewBoardForm()
    try:
        board = admin.create_board(
            current_user, form.slug.data or "", form.name.data or "", form.description.data or ""
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return _overview(form, status=422)
    db.session.commit()
    flash(_("Board created."))
    return redirect(url_for("admin.board", board_id=board.id), 303)


@bp.route("/boards/<int:board_id>", methods=["GET", "POST"])
@login_required
def board(board_id: int):
    """Rename or describe a board, and archive it or bring it back."""
    found = admin.get_board(current_user, board_id)
    if request.method == "GET":
        form = BoardForm(formdata=None, obj=found)
        return render("admin/board.html", board=found, form=form, intent=IntentForm())
    form = BoardForm()
    try:
        changed = admin.update_board(
            current_user, found, form.name.data or "", form.description.data or ""
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return render("admin/board.html", board=found, form=form, intent=IntentForm(), status=422)
    db.session.commit()
    flash(_("Board saved.") if changed else _("Nothing to change."))
    return redirect(url_for("admin.board", board_id=found.id), 303)


@bp.post("/boards/<int:board_id>/archive")
@login_required
def archive_board(board_id: int):
    """Archive a board (intent=archive) or bring it back (intent=unarchive)."""
    found = admin.get_board(current_user, board_id)
    intent = IntentForm().intent.data
    if intent not in ("archive", "unarchive"):
        abort(400)
    admin.set_board_archived(current_user, found, intent == "archive")
    db.session.commit()
    flash(_("Board archived.") if intent == "archive" else _("Board is open again."))
    return redirect(url_for("admin.board", board_id=found.id), 303)


@bp.get("/members")
@login_required
def members():
    """Find members by the start of their name or email, a page at a time."""
    page = admin.search_members(current_user, request.args.get("q", ""), _page_arg())
    return render(
        "admin/members.html", result=page, role_form=RoleForm(formdata=None), intent=IntentForm()
    )


def _back_to_members(user_id: int):
    """Back to the list the action was made from, at the member's row."""
    q = (request.form.get("q") or "")[: admin.QUERY_MAX]
    return redirect(
        url_for("admin.members", q=q or None, page=_page_arg() if _page_arg() > 1 else None)
        + f"#member-{user_id}",
        303,
    )


def _refused(err: ValidationError):
    db.session.rollback()
    return render(
        "errors/error.html",
        status=422,
        title=_("Check your input"),
        message=err.message,
        back=url_for("admin.members"),
    )


@bp.post("/members/<int:user_id>/role")
@login_required
def member_role(user_id: int):
    """Give a member another role (they are signed out everywhere)."""
    member = admin.get_member(current_user, user_id)
    role = RoleForm().role.data or ""
    try:
        admin.change_member_role(current_user, member, role)
    except ValidationError as err:
        return _refused(err)
    db.session.commit()
    flash(_("Role changed to %(role)s.", role=ROLE_LABELS[role]))
    return _back_to_members(member.id)


@bp.post("/members/<int:user_id>/access")
@login_required
def member_access(user_id: int):
    """Disable an account (intent=disable) or enable it again (intent=enable)."""
    member = admin.get_member(current_user, user_id)
    intent = IntentForm().intent.data
    if intent not in ("disable", "enable"):
        abort(400)
    try:
        admin.set_member_access(current_user, member, intent == "enable")
    except ValidationError as err:
        return _refused(err)
    db.session.commit()
    if intent == "disable":
        flash(_("Account disabled. %(name)s was signed out everywhere.", name=member.display_name))
    else:
        flash(_("Account enabled. %(name)s can sign in again.", name=member.display_name))
    return _back_to_members(member.id)
