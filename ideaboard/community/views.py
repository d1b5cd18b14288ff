"""Communities: the directory, a community's threads, a thread and its replies, joining,
starting threads, replying and following a thread."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ideaboard import permissions, ratelimit
from ideaboard.extensions import db
from ideaboard.forms import apply_errors
from ideaboard.htmx import is_htmx, render
from ideaboard.models import Community, Thread
from ideaboard.perf import pagecache as page_cache
from ideaboard.perf import shared
from ideaboard.permissions import is_exempt_from_limits
from ideaboard.security import no_store
from ideaboard.services import communities, promotion, search, threads
from ideaboard.services.errors import NotFound, ValidationError

from .forms import ReplyForm, ThreadForm

bp = Blueprint("community", __name__)

INTENTS = ("join", "leave")
FOLLOW_INTENTS = ("follow", "unfollow")


def thread_url(thread: Thread, community: Community | None = None, **kw) -> str:
    """A thread's address (its community's slug in it)."""
    slug = (community or thread.community).slug
    return url_for("community.thread", slug=slug, thread_id=thread.id, **kw)


@bp.record_once
def _globals(state) -> None:
    state.app.jinja_env.globals.update(thread_url=thread_url)


def _write_limit(name: str):
    """A member's limit on one kind of write: staff are exempt, only successes count."""
    return ratelimit.limit(
        lambda: current_app.config[name],
        key_func=ratelimit.actor_key,
        exempt_when=lambda: is_exempt_from_limits(current_user),
        refund_when=lambda resp: resp.status_code >= 400,
    )


def _page() -> int:
    try:
        return min(max(int(request.args.get("page", 1)), 1), threads.MAX_PAGE)
    except ValueError:
        return 1


def _community(slug: str) -> Community:
    community = communities.get_by_slug(slug)
    if community is None:
        abort(404)
    return community


def _thread(community: Community, thread_id: int) -> Thread:
    try:
        return threads.get_thread(community, thread_id, current_user)
    except NotFound:
        moved = threads.find_thread(thread_id)
        if moved is not None and moved.community_id != community.id:
            # Moved to another community: its old address points to the new one.
            target = db.session.get(Community, moved.community_id)
            if target is not None and permissions.can_view_post(current_user, moved, target):
                return abort(redirect(thread_url(moved, target), 301))
        abort(404)


def _uncached_if_timed(community: Community) -> None:
    """A ban with an expiry ends without a write: a page that shows it is not cached."""
    if permissions.is_member(current_user):
        banned, until = permissions.standing(current_user).banned_until(community.id)
        if banned and until is not None:
            page_cache.uncached()


@bp.get("/t/<int:thread_id>")
def goto_thread(thread_id: int):
    """A thread by its number alone (the link an idea promoted from it keeps): sent to its
    address in its community, if the viewer may see it."""
    found = threads.find_thread(thread_id)
    community = db.session.get(Community, found.community_id) if found is not None else None
    if community is None or not permissions.can_view_post(current_user, found, community):
        abort(404)
    return redirect(thread_url(found, community), 302)


@bp.get("/c")
def index():
    """The communities, most recent activity first."""
    directory = communities.directory(_page())
    return render(
        "community/index.html",
        directory=directory,
        shipped=promotion.shipped_counts([c.id for c in directory.communities]),
    )


@bp.get("/threads")
def search_threads():
    """Search community threads (`q`, `page`): public threads whose title or text has
    every word, newest activity first. htmx swaps the results as one types."""
    try:
        page = min(max(int(request.args.get("page", 1)), 1), search.THREADS_MAX_PAGE)
    except ValueError:
        page = 1
    results = search.search_threads(request.args.get("q", "")[:200], page)
    return render("community/search.html", "community/_search_results.html", results=results)


@bp.get("/c/<slug>")
def show(slug: str):
    """A community: its description, moderators and threads, pinned first."""
    community = _community(slug)
    _uncached_if_timed(community)
    return render(
        "community/show.html",
        "community/_threads_slot.html",
        community=community,
        threads_html=_threads_html(community, threads.page_number(_page())),
        side_html=_side_html(community),
    )


def _threads_html(community: Community, page: int):
    """One page of a community's threads, rendered once for every viewer: the list is the
    same for all (hidden and held threads are in no one's) and asks nothing of its viewer.
    Its content is named by the page's key (the community's stamp) and the page number, so
    the threads are read only when no copy is kept."""
    return page_cache.fragment(
        ("threads", community.id, page),
        shared.ask(current_user, ()),
        "community/_threads.html",
        lazy=lambda: {"page": threads.list_threads(community, page)},
        community=community,
    )


def _side_html(community: Community):
    """The side column: what the club changed, its rules and its moderators, the same for
    every viewer but for the link to the queue; read only when no copy is kept."""
    return page_cache.fragment(
        ("community-side", community.id),
        shared.ask(current_user, [(permissions.can_view_community_queue, community)]),
        "community/_side.html",
        lazy=lambda: {
            "changed": promotion.changed(community),
            "moderators": communities.moderators(community),
        },
        community=community,
    )


@bp.post("/c/<slug>/join")
@_write_limit("FOLLOW_LIMIT")
@login_required
def join(slug: str):
    """Join or leave (`intent`); htmx gets the button back, a plain post goes back."""
    intent = request.form.get("intent")
    if intent not in INTENTS:
        abort(400)
    community = _community(slug)
    joined = communities.set_membership(current_user, community, intent)
    db.session.commit()
    if is_htmx():
        return render("community/_join.html", community=community, joined=joined)
    flash(
        _("You joined %(name)s.", name=community.name)
        if joined
        else _("You left %(name)s.", name=community.name),
        "success",
    )
    return redirect(url_for("community.show", slug=community.slug), 303)


@bp.route("/c/<slug>/new", methods=["GET", "POST"])
@_write_limit("THREAD_LIMIT")
@ratelimit.new_account_link_limit()
@login_required
def new(slug: str):
    """Start a thread; redirects to it."""
    no_store()
    community = _community(slug)
    form = ThreadForm()
    threads.check_can_post(current_user, community)  # says why not (banned, archived)
    if request.method == "GET":
        return render("community/new.html", community=community, form=form)
    try:
        thread = threads.start_thread(
            current_user, community, form.title.data or "", form.body.data or ""
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        return render("community/new.html", community=community, form=form, status=422)
    db.session.commit()
    if thread.is_held:
        flash(_("Your thread waits for a moderator's approval; only you can see it until then."))
    else:
        flash(_("Your thread was posted."), "success")
    return redirect(thread_url(thread, community), 303)


@bp.get("/c/<slug>/t/<int:thread_id>")
def thread(slug: str, thread_id: int):
    """A thread and one page of its replies."""
    community = _community(slug)
    item = _thread(community, thread_id)
    if not permissions.is_visible_post(item):
        page_cache.uncached()
    _uncached_if_timed(community)
    return _thread_page(community, item, _page())


def _reply_questions(thread: Thread, community: Community, entries):
    """What community/_reply.html asks about its viewer (perf/shared.py), in its order;
    from the page's entries, (id, author id, visible), without reading the replies."""
    yield permissions.can_moderate, community
    if permissions.is_visible_post(thread):
        for _reply_id, author_id, visible in entries:
            if visible:
                yield permissions.can_report, author_id


def _replies_html(community: Community, item: Thread, replies, may_reply: bool):
    """One page of replies, rendered once for everyone who would see it alike: the same
    replies (a hidden or held one shows to its author and the moderators only, so the
    ids are in the key), the same answers to its questions, a reply form or not."""
    viewer = shared.ask(current_user, _reply_questions(item, community, replies.entries))
    return page_cache.fragment(
        ("replies", item.id, replies.page, tuple(e[0] for e in replies.entries), may_reply),
        viewer,
        "community/_replies.html",
        community=community,
        thread=item,
        replies=replies,
        reply_form=may_reply,
    )


def _thread_page(community, item, page: int, form=None, status: int = 200):
    replies = threads.list_replies(item, community, current_user, page)
    may_reply = permissions.can_reply(current_user, item, community)
    quote_target = None
    quote = request.args.get("quote", "") if request.method == "GET" else ""
    if may_reply and quote.isdigit() and len(quote) < 11:
        found = threads.find_reply(item, int(quote))
        if found is not None and permissions.is_visible_post(found):
            quote_target = found
    elif form is not None and form.quote_of.data:
        found = threads.find_reply(item, form.quote_of.data)
        quote_target = found if found is not None and permissions.is_visible_post(found) else None
    return render(
        "community/thread.html",
        "community/_replies_slot.html",
        status=status,
        community=community,
        thread=item,
        replies=replies,
        replies_html=_replies_html(community, item, replies, may_reply),
        following=threads.is_following(current_user, item),
        became=promotion.idea_of(item),
        quote_target=quote_target,
        # Only members who may reply get a form (a token would keep visitors' pages out of
        # the page cache).
        reply_form=form or (ReplyForm(formdata=None) if may_reply else None),
    )


@bp.post("/c/<slug>/t/<int:thread_id>/replies")
@_write_limit("REPLY_LIMIT")
@ratelimit.new_account_link_limit()
@login_required
def reply(slug: str, thread_id: int):
    """Reply to a thread (optionally quoting a reply of it)."""
    community = _community(slug)
    item = _thread(community, thread_id)
    form = ReplyForm()
    quote_of = request.form.get("quote_of", "").strip()
    if quote_of and not quote_of.isdigit():
        abort(400)
    try:
        new_reply = threads.add_reply(
            current_user,
            item,
            community,
            form.body.data or "",
            int(quote_of) if quote_of else None,
        )
    except ValidationError as err:
        db.session.rollback()
        apply_errors(form, err)
        pages = max(1, -(-item.reply_count // threads.REPLIES_PER_PAGE))
        return _thread_page(community, item, pages, form=form, status=422)
    db.session.commit()
    if new_reply.is_held:
        flash(_("Your reply waits for a moderator's approval; only you can see it until then."))
    else:
        flash(_("Your reply was posted."), "success")
    page = threads.reply_page_of(item, new_reply) if not new_reply.is_held else None
    target = thread_url(item, community, page=page) if page and page > 1 else None
    target = (target or thread_url(item, community)) + f"#reply-{new_reply.id}"
    return redirect(target, 303)


@bp.post("/c/<slug>/t/<int:thread_id>/follow")
@_write_limit("FOLLOW_LIMIT")
@login_required
def follow(slug: str, thread_id: int):
    """Follow or unfollow a thread (`intent`)."""
    intent = request.form.get("intent")
    if intent not in FOLLOW_INTENTS:
        abort(400)
    community = _community(slug)
    item = _thread(community, thread_id)
    if not permissions.can_follow_thread(current_user, item):
        abort(403)
    if intent == "follow":
        threads.follow_thread(current_user, item)
    else:
        threads.unfollow_thread(current_user, item)
    db.session.commit()
    following = intent == "follow"
    if is_htmx():
        return render(
            "community/_thread_follow.html",
            community=community,
            thread=item,
            following=following,
        )
    return redirect(thread_url(item, community) + "#thread-follow", 303)
