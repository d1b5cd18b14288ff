"""From fan talk to roadmap: promoting a thread to an idea, and the list of what a
community's promoted ideas became."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError
from wtforms.fields.choices import SelectChoice

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.forms import apply_errors
from ideaboard.htmx import render
from ideaboard.models import Idea
from ideaboard.security import no_store
from ideaboard.services import boards, ideas, promotion, votes
from ideaboard.services.errors import Conflict, DuplicateTitle, ValidationError
from ideaboard.urls import idea_url

from .forms import PromoteForm
from .views import _community, _page, _thread, bp, thread_url


def _form(thread) -> PromoteForm:
    form = PromoteForm()
    form.board.choices = [SelectChoice(b.id, b.name) for b in boards.list_boards()]
    if request.method == "GET":
        form.title.data = thread.title[: ideas.TITLE_MAX]
        form.body.data = thread.body
    return form


@bp.route("/c/<slug>/t/<int:thread_id>/promote", methods=["GET", "POST"])
@login_required
def promote(slug: str, thread_id: int):
    """Staff or a moderator of the community turn a thread into an idea on a board (a
    confirm page that works without JavaScript); a title already on the board offers
    linking the thread to that idea instead."""
    no_store()
    community = _community(slug)
    item = _thread(community, thread_id)
    if not permissions.can_moderate(current_user, community):
        abort(403)
    if item.idea_id is not None:
        # Promoted already (by someone else a moment ago, or a resend): say where it went.
        status = 409 if request.method == "POST" else 200
        return render(
            "community/promote.html",
            community=community,
            thread=item,
            became=promotion.idea_of(item),
            form=None,
            status=status,
        )
    if not permissions.can_promote_thread(current_user, item, community):
        abort(403)  # hidden or held: only a visible thread becomes an idea
    form = _form(item)
    if request.method == "GET":
        return render("community/promote.html", community=community, thread=item, form=form)
    board = boards.get_board(form.board.data)
    try:
        if form.link_to.data:
            idea = promotion.link_thread(
                current_user, item, community, db.session.get(Idea, form.link_to.data)
            )
        else:
            idea = promotion.promote_thread(
                current_user,
                item,
                community,
                board,
                title=form.title.data or "",
                body=form.body.data or "",
                kind=form.kind.data or "",
            )
        db.session.commit()
    except IntegrityError:
        # Two ideas of one title at once: the unique index refused this one.
        db.session.rollback()
        err = ideas.duplicate_after_race(board and board.id, form.title.data or "")
        if err is None:
            raise
        return _duplicate(community, item, form, err)
    except DuplicateTitle as err:
        db.session.rollback()
        return _duplicate(community, item, form, err)
    except Conflict as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(thread_url(item, community), 303)
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return render(
            "community/promote.html", community=community, thread=item, form=form, status=422
        )
    flash(_("The thread became idea #%(id)d.", id=idea.id), "success")
    return redirect(idea_url(idea), 303)


def _duplicate(community, item, form, err: DuplicateTitle):
    apply_errors(form, err)
    return render(
        "community/promote.html",
        community=community,
        thread=item,
        form=form,
        duplicate=err.existing,
        duplicate_voted=votes.has_voted(current_user, err.existing),
        status=422,
    )


@bp.get("/c/<slug>/changed")
def changed(slug: str):
    """Every idea the community's threads became, shipped first, a page at a time."""
    community = _community(slug)
    return render(
        "community/changed.html",
        community=community,
        changed=promotion.changed(community, _page(), promotion.CHANGED_PER_PAGE),
    )


def changed_url(community, **kw) -> str:
    return url_for("community.changed", slug=community.slug, **kw)
