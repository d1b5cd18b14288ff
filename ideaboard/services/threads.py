"""Threads and replies in communities: starting, replying, quoting, reading in pages.

Counts are exact: a visible post moves its thread's and community's counters in the
statement that adds it; a post held for approval moves them when it is approved
(services/moderation.py), and hiding or showing one moves them back and forth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import func, not_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import Community, Event, EventKind, Reply, Thread, User, utcnow
from ideaboard.models.base import MAX_INT
from ideaboard.models.community import ThreadFollow
from ideaboard.perf import memo
from ideaboard.permissions import (
    can_post_in,
    can_reply,
    can_view_post,
    is_post_held,
    is_visible_post_sql,
)

from . import events
from .errors import NotAllowed, NotFound, ValidationError
from .text import check_text, clean_line

TITLE_MIN, TITLE_MAX = 3, 140
BODY_MAX = 20_000
REPLY_MAX = 10_000
THREADS_PER_PAGE = 30
REPLIES_PER_PAGE = 50
MAX_PAGE = 10_000


def _check_title(errors: dict[str, str], title: str) -> None:
    check_text(errors, "title", title, minimum=TITLE_MIN, maximum=TITLE_MAX, label=_("Title"))


def _check_reply(body: str) -> str:
    body = (body or "").strip()
    errors: dict[str, str] = {}
    check_text(errors, "body", body, minimum=1, maximum=REPLY_MAX, label=_("Reply"))
    if errors:
        raise ValidationError(errors)
    return body


def check_can_post(actor: User, community: Community) -> None:
    """Raise NotAllowed saying why the actor may not post in the community, if not."""
    if can_post_in(actor, community):
        return
    if permissions.is_banned_from(actor, community):
        until = permissions.standing(actor).banned_until(community.id)[1]
        if until is None:
            raise NotAllowed(_("You are banned from posting in this community."))
        raise NotAllowed(
            _(
                "You are banned from posting in this community until %(date)s.",
                date=format_datetime(until, "short"),
            )
        )
    if community.is_archived:
        raise NotAllowed(_("This community is archived: it takes no new posts."))
    raise NotAllowed(_("Sign in to post."))


def _bump_community(community: Community, threads: int, replies: int, now) -> None:
    row = db.session.execute(
        update(Community)
        .where(Community.id == community.id)
        .values(
            thread_count=Community.thread_count + threads,
            reply_count=Community.reply_count + replies,
            last_activity_at=now,
        )
        .returning(Community.thread_count, Community.reply_count)
        .execution_options(synchronize_session=False)
    ).one()
    set_committed_value(community, "thread_count", row[0])
    set_committed_value(community, "reply_count", row[1])
    set_committed_value(community, "last_activity_at", now)


def _follow_insert(values: dict):
    """INSERT INTO thread_follows, ON CONFLICT spelled for the session's dialect."""
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(ThreadFollow).values(**values)


def follow_thread(user: User, thread: Thread, *, explicit: bool = True) -> bool:
    """Follow a thread; True if this call made the member a follower. Automatic follows
    (posting) never undo an explicit unfollow. Decided by what the statement wrote
    (RETURNING), never by a row read before, so two requests at once count once."""
    stmt = _follow_insert(
        {"user_id": user.id, "thread_id": thread.id, "active": True, "created_at": utcnow()}
    )
    if explicit:
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "thread_id"],
            set_={"active": True},
            where=ThreadFollow.active.is_(False),
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["user_id", "thread_id"])
    added = db.session.execute(stmt.returning(ThreadFollow.id)).first() is not None
    if added:
        _move_followers(thread, 1)
    return added


def unfollow_thread(user: User, thread: Thread) -> bool:
    """Stop following a thread for good (a later reply does not subscribe again); True if
    this call ended a follow."""
    removed = (
        db.session.execute(
            update(ThreadFollow)
            .where(
                ThreadFollow.user_id == user.id,
                ThreadFollow.thread_id == thread.id,
                ThreadFollow.active.is_(True),
            )
            .values(active=False)
            .returning(ThreadFollow.id)
            .execution_options(synchronize_session=False)
        ).first()
        is not None
    )
    if removed:
        _move_followers(thread, -1)
    else:  # no row at all: an inactive one, so that posting never subscribes them
        db.session.execute(
            _follow_insert(
                {
                    "user_id": user.id,
                    "thread_id": thread.id,
                    "active": False,
                    "created_at": utcnow(),
                }
            ).on_conflict_do_nothing(index_elements=["user_id", "thread_id"])
        )
    return removed


def is_following(user: User | None, thread: Thread) -> bool:
    if not permissions.is_member(user):
        return False
    return bool(
        db.session.scalar(
            select(ThreadFollow.active).where(
                ThreadFollow.user_id == user.id, ThreadFollow.thread_id == thread.id
            )
        )
    )


def _move_followers(thread: Thread, delta: int) -> None:
    count = db.session.execute(
        update(Thread)
        .where(Thread.id == thread.id)
        .values(follower_count=Thread.follower_count + delta)
        .returning(Thread.follower_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(thread, "follower_count", count)


def start_thread(actor: User, community: Community, title: str, body: str) -> Thread:
    """Start a thread; held for approval when the community holds this member's posts."""
    check_can_post(actor, community)
    title, body = clean_line(title), (body or "").strip()
    errors: dict[str, str] = {}
    _check_title(errors, title)
    check_text(errors, "body", body, minimum=0, maximum=BODY_MAX, label=_("Text"))
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    held = is_post_held(actor, community)
    thread = Thread(
        community_id=community.id,
        author_id=actor.id,
        title=title,
        body=body,
        created_at=now,
        last_activity_at=now,
        held_at=now if held else None,
    )
    thread.author = actor
    thread.community = community
    db.session.add(thread)
    db.session.flush()
    if not held:
        _bump_community(community, 1, 0, now)
    follow_thread(actor, thread, explicit=False)
    return thread


def add_reply(
    actor: User, thread: Thread, community: Community, body: str, quote_of: int | None = None
) -> Reply:
    """Reply to a thread, optionally quoting one of its visible replies."""
    if not can_reply(actor, thread, community):
        if can_post_in(actor, community) and thread.is_locked:
            raise NotAllowed(_("This thread is locked: it takes no new replies."))
        check_can_post(actor, community)
        raise NotAllowed(_("This thread takes no replies."))
    body = _check_reply(body)
    if quote_of is not None:
        quoted = db.session.get(Reply, quote_of)
        if (
            quoted is None
            or quoted.thread_id != thread.id
            or not permissions.is_visible_post(quoted)
        ):
            raise ValidationError({"quote_of": _("The quoted reply is not in this thread.")})
    now = utcnow()
    held = is_post_held(actor, community)
    reply = Reply(
        thread_id=thread.id,
        community_id=community.id,
        author_id=actor.id,
        body=body,
        quote_of_id=quote_of,
        created_at=now,
        held_at=now if held else None,
    )
    reply.author = actor
    db.session.add(reply)
    db.session.flush()
    if not held:
        count = db.session.execute(
            update(Thread)
            .where(Thread.id == thread.id)
            .values(reply_count=Thread.reply_count + 1, last_activity_at=now)
            .returning(Thread.reply_count)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        set_committed_value(thread, "reply_count", count)
        set_committed_value(thread, "last_activity_at", now)
        _bump_community(community, 0, 1, now)
    follow_thread(actor, thread, explicit=False)
    if not held:
        # A new reply: announced here, once (a held one when approved: reply_became_visible).
        events.record_thread(EventKind.REPLY, thread, actor, reply_id=reply.id)
    return reply


def reply_became_visible(actor: User | None, reply: Reply) -> Event | None:
    """Tell the thread's followers of a reply everyone can now see (flushes): a new
    visible reply (add_reply), or a held one a moderator approved (`actor`: who approved
    it; call this in the approval's transaction, after clearing held_at).

    Records one EventKind.REPLY event on the thread, whose actor is the reply's author
    (the one who "replied"; the fan-out never tells them of their own reply). At most one
    event per reply, ever: a reply hidden and shown again is not announced twice. None
    when nothing was recorded (not visible, or announced already).
    """
    if not permissions.is_visible_post(reply):
        return None
    data = {"reply_id": reply.id}
    announced = db.session.scalar(
        select(Event.id).where(
            Event.thread_id == reply.thread_id,
            Event.kind == EventKind.REPLY,
            Event.data == events.encode(data),
        )
    )
    if announced is not None:
        return None
    author = db.session.get(User, reply.author_id) if reply.author_id is not None else None
    thread = db.session.get(Thread, reply.thread_id)
    return events.record_thread(EventKind.REPLY, thread, author, **data)


# --- reading -----------------------------------------------------------------------


@dataclass
class ThreadPage:
    threads: list[Thread]
    page: int
    more: bool


def page_number(page: int) -> int:
    """A requested page of a community's threads, within the pages there can be."""
    return min(max(page, 1), MAX_PAGE)


def list_threads(community: Community, page: int = 1) -> ThreadPage:
    """Visible threads of a community: pinned first, then newest activity, one page."""
    page = page_number(page)
    stmt = (
        select(Thread)
        .options(joinedload(Thread.author))
        .where(
            Thread.community_id == community.id,
            Thread.deleted_at.is_(None),
            Thread.held_at.is_(None),
        )
        .order_by(Thread.pinned.desc(), Thread.last_activity_at.desc(), Thread.id.desc())
        .limit(THREADS_PER_PAGE + 1)
        .offset((page - 1) * THREADS_PER_PAGE)
    )
    rows = list(db.session.scalars(stmt))
    return ThreadPage(rows[:THREADS_PER_PAGE], page, len(rows) > THREADS_PER_PAGE)


def get_thread(community: Community, thread_id: int, viewer) -> Thread:
    """The thread, if it is in this community and the viewer may see it (else 404)."""
    if thread_id > MAX_INT:
        raise NotFound(_("This thread does not exist."))
    thread = db.session.scalar(
        select(Thread)
        .options(joinedload(Thread.author))
        .where(Thread.id == thread_id, Thread.community_id == community.id)
    )
    if thread is None or not can_view_post(viewer, thread, community):
        raise NotFound(_("This thread does not exist."))
    thread.community = community
    return thread


def find_thread(thread_id: int) -> Thread | None:
    """A thread by id wherever it is (for redirects after a move)."""
    if thread_id > MAX_INT:
        return None
    return db.session.get(Thread, thread_id)


#: Replies with their authors, as every page of them shows them.
_WITH_AUTHOR = select(Reply).options(joinedload(Reply.author))


class ReplyPage:
    """One page of a thread's replies for one viewer.

    `entries` says which replies, in order, as (id, author id, visible): enough to name the
    page's shared render and to ask the viewer's questions about it. The rows themselves
    (`replies`, and the replies they quote, `quoted`) are read on first use, which a kept
    render never makes."""

    def __init__(self, thread: Thread, entries, page: int, pages: int, rows=None):
        self.thread, self.entries, self.page, self.pages = thread, tuple(entries), page, pages
        if rows is not None:
            self.replies = rows

    @cached_property
    def replies(self) -> list[Reply]:
        visible = {entry[0]: entry[2] for entry in self.entries}
        if not visible:
            return []
        rows = db.session.scalars(
            _WITH_AUTHOR.where(Reply.thread_id == self.thread.id, Reply.id.in_(visible)).order_by(
                Reply.id
            )
        )
        # A reply hidden or shown since it was listed is left out of this one render: a
        # hidden one shows only to its author, and the questions the page's render was
        # asked are those of the replies as listed.
        return [r for r in rows if permissions.is_visible_post(r) == visible[r.id]]

    @cached_property
    def quoted(self) -> dict[int, Reply]:
        wanted = {r.quote_of_id for r in self.replies if r.quote_of_id}
        if not wanted:
            return {}
        return {r.id: r for r in db.session.scalars(_WITH_AUTHOR.where(Reply.id.in_(wanted)))}


def list_replies(thread: Thread, community: Community, viewer, page: int = 1) -> ReplyPage:
    """One page of the thread's visible replies, oldest first, and the replies they quote.
    The viewer's own hidden or held replies (and, for moderators, all of them) show too,
    in place, marked: they do not count toward the pages."""
    pages = max(1, -(-thread.reply_count // REPLIES_PER_PAGE))
    page = min(max(page, 1), pages)
    # The page's visible replies, (id, author id), and the first of the next page: the
    # same for every viewer, so kept per content version (perf/memo.py; a community page's
    # version holds its stamp): the walk to a far page's OFFSET is paid once, not by each
    # member, and a member whose page of replies is kept rendered reads no reply row.
    name = ("reply-entries", thread.id, page)
    visible = memo.get(name)
    if visible is None:
        visible = tuple(
            tuple(row)
            for row in db.session.execute(
                select(Reply.id, Reply.author_id)
                .where(Reply.thread_id == thread.id, is_visible_post_sql(Reply.__table__))
                .order_by(Reply.id)
                .limit(REPLIES_PER_PAGE + 1)
                .offset((page - 1) * REPLIES_PER_PAGE)
            )
        )
        memo.put(name, visible)
    more = len(visible) > REPLIES_PER_PAGE
    first = visible[0][0] if visible and page > 1 else 0
    last = visible[REPLIES_PER_PAGE][0] if more else None
    # Between them, the replies only some viewers see: a moderator all of them (read
    # here, a range of the thread), a member their own hidden or held ones (by author).
    in_range = Reply.id >= first
    if last is not None:
        in_range = in_range & (Reply.id < last)
    if permissions.can_moderate(viewer, community):
        rows = list(
            db.session.scalars(
                _WITH_AUTHOR.where(Reply.thread_id == thread.id, in_range).order_by(Reply.id)
            )
        )
        entries = [(r.id, r.author_id, permissions.is_visible_post(r)) for r in rows]
        return ReplyPage(thread, entries, page, pages, rows)
    entries = [(reply_id, author_id, True) for reply_id, author_id in visible[:REPLIES_PER_PAGE]]
    if permissions.is_member(viewer):
        own = db.session.scalars(
            select(Reply.id).where(
                Reply.author_id == viewer.id,
                Reply.thread_id == thread.id,
                in_range,
                not_(is_visible_post_sql(Reply.__table__)),
            )
        )
        entries = sorted([*entries, *((reply_id, viewer.id, False) for reply_id in own)])
    return ReplyPage(thread, entries, page, pages)


def find_reply(thread: Thread, reply_id: int) -> Reply | None:
    """A reply of this thread by id, or None."""
    if reply_id > MAX_INT:
        return None
    return db.session.scalar(_WITH_AUTHOR.where(Reply.id == reply_id, Reply.thread_id == thread.id))


def get_reply(thread: Thread, reply_id: int) -> Reply:
    reply = db.session.scalar(
        _WITH_AUTHOR.where(Reply.id == reply_id, Reply.thread_id == thread.id)
    )
    if reply is None:
        raise NotFound(_("This reply does not exist."))
    return reply


def edit_thread(actor: User, thread: Thread, community: Community, title: str, body: str) -> Thread:
    """The author changes their thread's title and text."""
    if not permissions.can_edit_post(actor, thread, community):
        raise NotAllowed(_("You can only edit your own posts."))
    title, body = clean_line(title), (body or "").strip()
    errors: dict[str, str] = {}
    _check_title(errors, title)
    check_text(errors, "body", body, minimum=0, maximum=BODY_MAX, label=_("Text"))
    if errors:
        raise ValidationError(errors)
    thread.title, thread.body, thread.edited_at = title, body, utcnow()
    return thread


def edit_reply(actor: User, reply: Reply, community: Community, body: str) -> Reply:
    """The author changes their reply."""
    if not permissions.can_edit_post(actor, reply, community):
        raise NotAllowed(_("You can only edit your own posts."))
    reply.body, reply.edited_at = _check_reply(body), utcnow()
    return reply


def reply_page_of(thread: Thread, reply: Reply) -> int:
    """The page of the thread a visible reply is on."""
    before = db.session.scalar(
        select(func.count()).where(
            Reply.thread_id == thread.id,
            Reply.deleted_at.is_(None),
            Reply.held_at.is_(None),
            Reply.id < reply.id,
        )
    )
    return before // REPLIES_PER_PAGE + 1
