"""Ideas: lists, the idea page, posting, editing, voting and comments."""

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
from flask_babel import format_date, get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from limits import parse_many
from sqlalchemy.exc import IntegrityError
from wtforms.fields.choices import SelectChoice

from ideaboard import clock, ratelimit
from ideaboard.extensions import db
from ideaboard.forms import apply_errors
from ideaboard.htmx import hx_redirect, is_htmx, render
from ideaboard.i18n import status_label
from ideaboard.models import Idea
from ideaboard.perf import pagecache as page_cache
from ideaboard.perf import shared
from ideaboard.perf.rows import idea_rows
from ideaboard.permissions import (
    can_change_status,
    can_comment,
    can_delete_idea,
    can_edit_comment,
    can_edit_idea,
    can_mark_official,
    can_merge_idea,
    can_report_comment,
    can_undo_merge,
    can_view_comment,
    can_view_idea,
    is_exempt_from_limits,
    restore_deadline,
    restore_window,
)
from ideaboard.roadmap.forms import StatusForm
from ideaboard.security import no_store, safe_next
from ideaboard.services import (
    boards,
    comments,
    follows,
    ideas,
    live,
    merges,
    roadmap,
    votes,
)
from ideaboard.services.errors import Conflict, DuplicateTitle, NotFound, ValidationError
from ideaboard.urls import board_url, idea_url, slugify

from .forms import CommentForm, IdeaForm

bp = Blueprint("ideas", __name__)


@bp.record_once
def _globals(state) -> None:
    # Globals, not context variables, so imported macros can call them too.
    state.app.jinja_env.globals.update(
        idea_url=idea_url,
        board_url=board_url,
        idea_rows=idea_rows,
        restore_deadline=restore_deadline,
    )


def _write_limit(name: str):
    """A member's limit on one kind of write: staff are exempt, and only successes count
    (a form sent back with an error, or a 429, gives its count back)."""
    return ratelimit.limit(
        lambda: current_app.config[name],
        key_func=ratelimit.actor_key,
        exempt_when=lambda: is_exempt_from_limits(current_user),
        refund_when=lambda resp: resp.status_code >= 400,
    )


def _load(idea_id: int, *, related: bool = True) -> Idea:
    try:
        return ideas.get_idea(idea_id, current_user, related=related)
    except NotFound:
        abort(404)


def _list_page(board=None):
    # Pages open on the ideas still in play; shipped and declined are a filter away.
    query = ideas.IdeaQuery.parse(request.args, board=board, default_status="open")
    page = ideas.list_ideas(query, current_user)
    return render(
        "ideas/index.html",
        "ideas/_list.html",
        page=page,
        query=query,
        board=board,
        boards=boards.list_boards(),
    )


@bp.get("/ideas")
def index():
    """List ideas across boards: sort, filter, search, paginate."""
    return _list_page(boards.find_board(request.args.get("board")))


@bp.get("/b/<slug>")
def board(slug: str):
    """List one board's ideas."""
    found = boards.get_board_by_slug(slug)
    if found is None:
        abort(404)
    return _list_page(found)


def _idea_form(idea: Idea | None = None) -> IdeaForm:
    form = IdeaForm(obj=None)
    shown = boards.list_boards(include=idea.board if idea is not None else None)
    form.board.choices = [SelectChoice(b.id, b.name) for b in shown]
    return form


def _similar_within_limit() -> bool:
    """Count one suggestion request against SIMILAR_LIMIT (per member), as the write
    limits count (a GET here, so not through the POST-only route decorator)."""
    if not current_app.config.get("RATELIMIT_ENABLED", True) or is_exempt_from_limits(current_user):
        return True
    items = sorted(parse_many(current_app.config["SIMILAR_LIMIT"]))
    return ratelimit.hit_all(items, ratelimit.limit_args(ratelimit.actor_key(), "ideas.similar"))


@bp.get("/ideas/similar")
@login_required
def similar():
    """Ideas like the title being typed on the new-idea form (a fragment for htmx; a
    plain page otherwise), each with a one-click vote for it instead."""
    no_store()
    if not _similar_within_limit():
        abort(429)
    board = boards.find_board(request.args.get("board"))
    found = ideas.similar_ideas(request.args.get("title", "")[:400], board)
    return render(
        "ideas/similar.html",
        "ideas/_similar.html",
        similar=found,
        voted=ideas.voted_ids(current_user, [i.id for i in found]),
    )


@bp.route("/ideas/new", methods=["GET", "POST"])
@_write_limit("IDEA_LIMIT")
@ratelimit.new_account_link_limit()
@login_required
def new():
    """Post an idea; it starts at heard."""
    no_store()
    form = _idea_form()
    if request.method == "GET":
        wanted = boards.get_board_by_slug(request.args.get("board", ""))
        if wanted is not None:
            form.board.data = wanted.id
        return render("ideas/new.html", form=form)
    board = boards.get_board(form.board.data)
    title = form.title.data or ""
    try:
        idea = ideas.create_idea(
            current_user, board, form.kind.data or "", title, form.body.data or ""
        )
        db.session.commit()
    except IntegrityError:
        # Two posts of one title at once: the unique index refused the later one.
        db.session.rollback()
        err = ideas.duplicate_after_race(board and board.id, title)
        if err is None:
            raise
        return _duplicate_form("ideas/new.html", form, err)
    except DuplicateTitle as err:
        db.session.rollback()
        return _duplicate_form("ideas/new.html", form, err)
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return render("ideas/new.html", form=form, status=422)
    flash(_("Your idea was posted."), "success")
    return redirect(idea_url(idea), 303)


def _duplicate_form(template: str, form: IdeaForm, err: DuplicateTitle, **context):
    """The form again (422), with a link to the idea that has this title and a one-click
    vote for it."""
    apply_errors(form, err)
    existing = err.existing
    return render(
        template,
        form=form,
        duplicate=existing,
        duplicate_voted=votes.has_voted(current_user, existing),
        status=422,
        **context,
    )


@bp.get("/ideas/<int:idea_id>")
@bp.get("/ideas/<int:idea_id>-<slug>")
def show(idea_id: int, slug: str | None = None):
    """The idea: its body, votes, status history and comments."""
    idea = _load(idea_id)
    if idea.is_deleted:
        # Shown only to staff and, until a deadline no write marks, to its author.
        page_cache.uncached()
    if slug is not None and slug != slugify(idea.title):
        page_cache.uncached()  # the page echoes its URL: keep only the idea's own address
    try:
        cpage = max(int(request.args.get("cpage", 1)), 1)
    except ValueError:
        cpage = 1
    return _idea_page(idea, cpage=cpage)


def _comment_questions(idea: Idea, comment_list):
    """What ideas/_comment.html asks about its viewer, for each comment."""
    for comment in comment_list:
        yield can_edit_comment, comment
        yield can_mark_official, comment, idea
        if comment.hidden_at is None:
            yield can_report_comment, comment
        else:
            yield can_view_comment, comment


def _comments_html(idea: Idea, comment_list, cpage: int, items=None):
    """One page of comments (and the status changes among them), rendered once per version
    for everyone who sees it alike: everyone whose answers to its permission questions are
    the same (perf/shared.py)."""
    viewer = shared.ask(current_user, _comment_questions(idea, comment_list))
    return page_cache.fragment(
        ("comments", idea.id, cpage),
        viewer,
        "ideas/_comments.html",
        idea=idea,
        comments=comment_list,
        items=items if items is not None else [("comment", c) for c in comment_list],
    )


def _idea_page(idea: Idea, *, cpage: int = 1, comment_form=None, status: int = 200):
    """The idea page, also re-shown with a comment form's errors."""
    page = comments.list_comments(idea, cpage)
    comment_list, more_comments = page
    timeline = roadmap.history(idea)
    items = comments.discussion(comment_list, page, timeline, cpage)
    voted, following = follows.viewer_state(current_user, idea)
    shown = live.shown_on_page(idea, comment_list, timeline, last_page=not more_comments)
    return render(
        "ideas/show.html",
        live_url=url_for("ideas.live_updates", idea_id=idea.id, **shown.query()),
        live_etag=live.idea_etag(live.IdeaStamp.of(idea), shown, str(get_locale())),
        live_seconds=current_app.config["LIVE_POLL_SECONDS"],
        status=status,
        idea=idea,
        voted=voted,
        following=following,
        voters=votes.recent_voters(idea),
        # Asked only when ideas stand merged into this one (counted in the idea's load).
        merged_here=[m for m in merges.merges_into(idea) if can_view_idea(current_user, m.merged)]
        if idea.merged_count
        else [],
        timeline=timeline,
        comments=comment_list,
        comments_html=_comments_html(idea, comment_list, cpage, items),
        cpage=cpage,
        more_comments=more_comments,
        # Only members get a form: making one makes a CSRF token, and with it a session
        # cookie, which would keep a visitor's page out of the page cache.
        comment_form=comment_form or (CommentForm() if can_comment(current_user, idea) else None),
        status_form=StatusForm(status=idea.status)
        if can_change_status(current_user, idea)
        else None,
    )


@bp.route("/ideas/<int:idea_id>/edit", methods=["GET", "POST"])
@_write_limit("EDIT_LIMIT")
@login_required
def edit(idea_id: int):
    """Edit an idea; an edit based on an older version is refused with 409."""
    no_store()
    idea = _load(idea_id)
    if not can_edit_idea(current_user, idea):
        abort(403)
    form = _idea_form(idea)
    if request.method == "GET":
        form.title.data, form.body.data = idea.title, idea.body
        form.board.data, form.kind.data, form.version.data = idea.board_id, idea.kind, idea.version
        return render("ideas/edit.html", form=form, idea=idea)
    board = boards.get_board(form.board.data)
    try:
        ideas.update_idea(
            current_user,
            idea,
            title=form.title.data or "",
            body=form.body.data or "",
            kind=form.kind.data or "",
            board=board,
            version=form.version.data,
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        err = ideas.duplicate_after_race(board and board.id, form.title.data or "", idea_id)
        if err is None:
            raise
        return _duplicate_form("ideas/edit.html", form, err, idea=_load(idea_id))
    except DuplicateTitle as err:
        db.session.rollback()
        return _duplicate_form("ideas/edit.html", form, err, idea=_load(idea_id))
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return render("ideas/edit.html", form=form, idea=idea, status=422)
    except Conflict as err:
        db.session.rollback()
        idea = _load(idea_id)
        return render("ideas/edit.html", form=form, idea=idea, conflict=err.message, status=409)
    flash(_("Your changes were saved."), "success")
    return redirect(idea_url(idea), 303)


@bp.route("/ideas/<int:idea_id>/delete", methods=["GET", "POST"])
@login_required
def delete(idea_id: int):
    """Ask before deleting an idea (GET, a page that works without JavaScript); delete it
    (POST). The author can restore it for IDEA_RESTORE_DAYS; staff always."""
    idea = _load(idea_id)
    if not can_delete_idea(current_user, idea):
        abort(403)
    if request.method == "GET":
        no_store()
        deadline = _deadline_if_deleted_now(idea)
        return render(
            "ideas/delete.html",
            idea=idea,
            deadline=deadline and format_date(deadline, "long"),
        )
    ideas.delete_idea(current_user, idea)
    db.session.commit()
    deadline = restore_deadline(idea)
    if deadline is not None:
        flash(
            _(
                "Your idea was deleted. You can restore it until %(date)s.",
                date=format_date(deadline, "long"),
            ),
            "success",
        )
    else:
        flash(_("The idea was deleted."), "success")
    # Back to the idea: whoever deleted it still sees it there, with Restore.
    return hx_redirect(idea_url(idea))


def _deadline_if_deleted_now(idea: Idea):
    """Until when the actor could restore the idea, were they to delete it now (None if
    only staff could: a member deleting someone else's idea never happens)."""
    if idea.author_id != current_user.id:
        return None
    return clock.now() + restore_window()


@bp.post("/ideas/<int:idea_id>/restore")
@login_required
def restore(idea_id: int):
    """Bring back a deleted idea: staff, or its author for a while after deleting it."""
    idea = _load(idea_id)
    ideas.restore_idea(current_user, idea)
    db.session.commit()
    flash(_("The idea was restored."), "success")
    return hx_redirect(idea_url(idea))


@bp.post("/ideas/<int:idea_id>/vote")
@_write_limit("VOTE_LIMIT")
@login_required
def vote(idea_id: int):
    """Set the member's vote (`intent` vote/unvote; none toggles); htmx gets the button
    back, a plain post goes back to the same row."""
    try:
        intent = votes.parse_intent(request.form.get("intent"))
    except votes.BadIntent:
        abort(400)
    idea = _load(idea_id, related=False)
    result = votes.set_vote(current_user, idea, intent)
    db.session.commit()
    if is_htmx():
        # On the idea page the voters card changes too: send it out of band.
        on_page = request.form.get("on_idea_page") == "1"
        return render(
            "ideas/_vote_on_page.html" if on_page else "ideas/_vote.html",
            idea=idea,
            voted=result.voted,
            voters=votes.recent_voters(idea) if on_page else [],
            on_idea_page=on_page,
        )
    # Back to the row voted on (the list keeps its page and cursor in `next`).
    back = safe_next(request.form.get("next"), idea_url(idea)).split("#", 1)[0]
    return redirect(f"{back}#vote-{idea.id}", 303)


@bp.post("/ideas/<int:idea_id>/follow")
@_write_limit("FOLLOW_LIMIT")
@login_required
def follow(idea_id: int):
    """Follow or unfollow (`intent`); htmx gets the button back, a plain post goes back."""
    intent = request.form.get("intent")
    if intent not in follows.INTENTS:
        abort(400)
    idea = _load(idea_id, related=False)
    result = follows.set_following(current_user, idea, intent)
    db.session.commit()
    if is_htmx():
        return render("ideas/_follow_changed.html", idea=idea, following=result.following)
    return redirect(idea_url(idea, _anchor="followers"), 303)


@bp.post("/ideas/<int:idea_id>/comments")
@_write_limit("COMMENT_LIMIT")
@ratelimit.new_account_link_limit()
@login_required
def comment(idea_id: int):
    """Add a comment (staff may mark it the official response)."""
    idea = _load(idea_id)
    form = CommentForm()
    try:
        new_comment = comments.add_comment(
            current_user, idea, form.body.data or "", official=bool(form.official.data)
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        if is_htmx():
            return render("ideas/_comment_form.html", idea=idea, comment_form=form, status=422)
        return _idea_page(idea, comment_form=form, status=422)
    db.session.commit()
    flash(_("Your comment was posted."), "success")
    if is_htmx():
        return render(
            "ideas/_comment_added.html",
            idea=idea,
            comment=new_comment,
            comment_form=CommentForm(formdata=None),
        )
    return redirect(idea_url(idea, _anchor=f"comment-{new_comment.id}"), 303)


@bp.route("/ideas/<int:idea_id>/comments/<int:comment_id>/edit", methods=["GET", "POST"])
@_write_limit("EDIT_LIMIT")
@login_required
def edit_comment(idea_id: int, comment_id: int):
    """Edit one's own comment."""
    no_store()
    idea = _load(idea_id)
    try:
        target = comments.get_comment(idea, comment_id)
    except NotFound:
        abort(404)
    if not can_edit_comment(current_user, target):
        abort(403)
    form = CommentForm()
    if request.method == "GET":
        form.body.data = target.body
        return render("ideas/edit_comment.html", idea=idea, comment=target, form=form)
    try:
        comments.edit_comment(current_user, target, form.body.data or "")
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return render("ideas/edit_comment.html", idea=idea, comment=target, form=form, status=422)
    db.session.commit()
    flash(_("Your comment was saved."), "success")
    return redirect(idea_url(idea, _anchor=f"comment-{target.id}"), 303)


@bp.post("/ideas/<int:idea_id>/comments/<int:comment_id>/official")
@login_required
def mark_official(idea_id: int, comment_id: int):
    """Mark or unmark a staff comment as the official response."""
    idea = _load(idea_id)
    try:
        target = comments.get_comment(idea, comment_id)
    except NotFound:
        abort(404)
    comments.set_official(current_user, target, request.form.get("official") == "1")
    db.session.commit()
    return hx_redirect(idea_url(idea, _anchor=f"comment-{target.id}"))


# --- merging duplicates (issue 13, item 7) ------------------------------------------------


def _merge_page(idea: Idea, *, into: str = "", error: str | None = None, status: int = 200):
    """The merge page for staff: with an idea number that may be merged into, both ideas
    and what would move, to confirm; otherwise the field (with its error, if any) and
    candidates: ideas whose titles match the words typed, or, at first, ideas like B."""
    target = counts = None
    candidates = []
    if error is None and merges.parse_into(into) is not None:
        try:
            target = merges.check_merge(current_user, idea, into)
        except ValidationError as err:
            error, status = err.errors.get("into"), 422
        else:
            counts = merges.preview(idea, target)
    if idea.status == "merged" and error is None:  # say so at once (a stale link, say)
        error = merges.problem_with_target(idea, None, current_user)
    if target is None and idea.status != "merged":
        words = into if into and merges.parse_into(into) is None else idea.title
        candidates = [i for i in ideas.similar_ideas(words) if i.id != idea.id]
    return render(
        "ideas/merge.html",
        status=status,
        idea=idea,
        into=into,
        error=error,
        target=target,
        counts=counts,
        candidates=candidates,
    )


@bp.route("/ideas/<int:idea_id>/merge", methods=["GET", "POST"])
@login_required
def merge(idea_id: int):
    """Merge this idea into another (`into`, the other idea's number; staff). GET asks
    first: it finds the other idea by number or title and shows what would move; POST
    merges and goes to the idea it went into."""
    no_store()
    idea = _load(idea_id)
    if not can_merge_idea(current_user, idea):
        abort(403)
    into = (request.values.get("into") or "").strip()[:200]
    if request.method == "GET":
        return _merge_page(idea, into=into)
    try:
        done = merges.merge_idea(current_user, idea, into)
    except ValidationError as err:
        db.session.rollback()
        return _merge_page(idea, into=into, error=err.errors.get("into"), status=422)
    db.session.commit()
    flash(
        _("The idea was merged into this one. It can be undone from the status history."), "success"
    )
    return hx_redirect(idea_url(db.session.get(Idea, done.into_id), _anchor="merges"))


@bp.route("/ideas/<int:idea_id>/merges/<int:merge_id>/undo", methods=["GET", "POST"])
@login_required
def undo_merge(idea_id: int, merge_id: int):
    """Undo a merge into this idea (staff): GET shows what would be taken back; POST does it."""
    no_store()
    idea = _load(idea_id)
    if not can_undo_merge(current_user, idea):
        abort(403)
    try:
        found = merges.get_merge(idea, merge_id)
    except NotFound:
        abort(404)
    if request.method == "POST":
        try:
            merged = merges.undo_merge(current_user, idea, found)
        except ValidationError as err:
            db.session.rollback()
            return _undo_page(idea, found, error=err.message, status=422)
        db.session.commit()
        flash(
            _("The merge was undone: “%(title)s” is its own idea again.", title=merged.title),
            "success",
        )
        return hx_redirect(idea_url(idea, _anchor="timeline"))
    return _undo_page(idea, found)


def _undo_page(idea: Idea, found, *, error: str | None = None, status: int = 200):
    counts = merges.undo_preview(found) if found.undone_at is None else None
    return render(
        "ideas/undo_merge.html", status=status, idea=idea, merge=found, counts=counts, error=error
    )


def not_modified(etag: str):
    """An empty 304: what the polling page shows is still true."""
    resp = make_response("", 304)
    resp.headers["ETag"] = etag
    return resp


@bp.get("/ideas/<int:idea_id>/live")
def live_updates(idea_id: int):
    """What changed on an open idea page since it was shown (its query says what it
    shows): an empty 304 while nothing did (If-None-Match), else htmx pieces swapped out
    of band: the vote button and voters, the status, the comment count, the status
    history, the comments and status changes posted since, and a polite announcement.
    Never the comment form. Answered for the person asking, like the page; a request
    that is not htmx's is sent to the page."""
    try:
        shown = live.Shown.parse(request.args)
    except live.BadState:
        abort(400)
    locale = str(get_locale())
    stamp = live.read_stamp(idea_id)
    if stamp is None:
        abort(404)
    idea = _load(idea_id) if stamp.deleted else None  # 404 to whoever may not see it
    if not is_htmx():
        # Only the page's script asks for pieces; a plain visit gets the page itself.
        return redirect(idea_url(idea or _load(idea_id, related=False)), 302)
    if live.matches(request.headers.get("If-None-Match"), live.idea_etag(stamp, shown, locale)):
        return not_modified(live.idea_etag(stamp, shown, locale))
    if idea is None:
        idea = _load(idea_id)
    update = live.idea_update(idea, shown)
    news = []
    if update.new_comments:
        news.append(ngettext("%(num)d new comment.", "%(num)d new comments.", update.new_comments))
    if update.status_changed:
        news.append(_("Status changed to %(status)s.", status=status_label(idea.status)))
    etag = live.idea_etag(live.IdeaStamp.of(idea), update.now, locale)
    # Not htmx.render(): a poll must not take the flash messages meant for the next page.
    body = render_template(
        "ideas/_live.html",
        idea=idea,
        update=update,
        live_url=url_for("ideas.live_updates", idea_id=idea.id, **update.now.query()),
        live_etag=etag,
        voted=votes.has_voted(current_user, idea) if update.votes_changed else False,
        voters=votes.recent_voters(idea) if update.voters_changed else [],
        timeline=update.timeline,
        items=update.items,
        news=" ".join(news),
    )
    resp = make_response(body, 200)
    resp.headers["ETag"] = etag
    return resp
