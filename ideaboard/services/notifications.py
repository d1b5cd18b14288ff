"""Notifications: the fan-out that turns one event into one row per member, and the
member's notification centre (list, unread count, mark read).

**The fan-out.** A request only records an event (services/events.py: one row, in its
own transaction). `fan_out(event_id)` then writes every notification of that event in ONE
set-based `INSERT … SELECT`, whatever the audience (50,000 followers is one statement):

- who: the idea's active followers (follows.followers_query: authors, voters and
  commenters follow automatically; an unfollow is kept and never re-subscribed), minus
  the actor, and only members who may still see the idea (permissions.can_be_notified,
  through its SQL twin). Kinds in `EventKind.AUTHOR_ONLY` (staff edited or hid an idea)
  go to the idea's author only, even when they can no longer open it (they are told why).
- exactly once: the event is claimed first (`UPDATE events SET fanned_out_at = now WHERE
  id = … AND fanned_out_at IS NULL`) in the same transaction as the insert; a second
  process finds nothing to claim (on PostgreSQL it waits on the row lock, then sees the
  claim). `ON CONFLICT DO NOTHING` on (user_id, event_id) is the backstop.

**When.** After the response is sent, the process that served the request fans out the
events its own transaction recorded (notifications/wiring.py, as mail.py delivers the
mail a request queued). Whatever that misses (a crash between commit and fan-out) is
caught by `fan_out_pending()`, run first by every `flask --app wsgi mail send` (the
production worker) and by `flask --app wsgi notifications fan-out`. Ordering: events are
fanned out oldest first (by id); within the worker, the fan-out runs before mail
delivery, so mail queued for an event leaves in the same pass.

Nothing here is page content: the tables are `page_content(False)`, so fanning out,
reading and marking notifications never empty a cached page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, exists, false, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ideaboard.extensions import db
from ideaboard.models import (
    Comment,
    Community,
    Event,
    EventKind,
    Idea,
    Notification,
    Reply,
    Thread,
    ThreadFollow,
    User,
    utcnow,
)
from ideaboard.permissions import (
    can_be_notified_of_thread_sql,
    can_be_notified_sql,
    is_member_sql,
    is_visible_post_sql,
)

from . import events as event_service
from . import notification_mail
from .follows import followers_query

PER_PAGE = 20
MAX_PAGE = 1_000
#: The header shows at most this many, then "99+".
UNREAD_CAP = 99

_events = Event.__table__
_notifications = Notification.__table__
_users = User.__table__
_ideas = Idea.__table__
_threads = Thread.__table__
_follows = ThreadFollow.__table__
_replies = Reply.__table__
_communities = Community.__table__


# --- the fan-out ---------------------------------------------------------------------


def _recipients(kind: str, idea_id: int, actor_id: int | None):
    """SELECT user_id of everyone who hears of an event (see the module doc)."""
    if kind in EventKind.AUTHOR_ONLY:
        stmt = (
            select(_users.c.id)
            .select_from(_ideas.join(_users, _users.c.id == _ideas.c.author_id))
            .where(_ideas.c.id == idea_id, is_member_sql(_users), _users.c.disabled_at.is_(None))
        )
    else:
        followers = followers_query(idea_id).subquery("followers")
        stmt = (
            select(followers.c.user_id)
            .select_from(
                followers.join(_users, _users.c.id == followers.c.user_id).join(
                    _ideas, _ideas.c.id == idea_id
                )
            )
            .where(can_be_notified_sql(_users, _ideas))
        )
    if actor_id is not None:
        stmt = stmt.where(_users.c.id != actor_id)
    return stmt


def _thread_recipients(thread_id: int, actor_id: int | None, data: str):
    """SELECT user_id of a thread event's audience: the thread's active followers (an
    unfollow is kept: active false) who may be told (permissions.can_be_notified_of_thread,
    through its twin), never the actor; nobody once the reply it names is no longer
    visible (hidden between the post and the fan-out)."""
    stmt = (
        select(_follows.c.user_id)
        .select_from(
            _follows.join(_users, _users.c.id == _follows.c.user_id).join(
                _threads, _threads.c.id == _follows.c.thread_id
            )
        )
        .where(
            _follows.c.thread_id == thread_id,
            _follows.c.active.is_(True),
            can_be_notified_of_thread_sql(_users, _threads),
        )
    )
    reply_id = event_service.data_of(Event(data=data)).get("reply_id")
    if isinstance(reply_id, int):
        stmt = stmt.where(
            exists().where(
                _replies.c.id == reply_id,
                _replies.c.thread_id == thread_id,
                _replies.c.deleted_at.is_(None),
                _replies.c.held_at.is_(None),
            )
        )
    else:
        stmt = stmt.where(false())
    if actor_id is not None:
        stmt = stmt.where(_users.c.id != actor_id)
    return stmt


def _insert(dialect: str, rows):
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        make(_notifications)
        .from_select(["user_id", "event_id", "created_at"], rows)
        .on_conflict_do_nothing(index_elements=["user_id", "event_id"])
    )


def fan_out(event_id: int) -> int:
    """Turn one event into its notification rows, once; the number of rows written (0
    when it was fanned out already). Runs in the caller's transaction: commit after."""
    now = utcnow()
    claimed = db.session.execute(
        update(_events)
        .where(_events.c.id == event_id, _events.c.fanned_out_at.is_(None))
        .values(fanned_out_at=now)
        .returning(
            _events.c.kind,
            _events.c.idea_id,
            _events.c.actor_id,
            _events.c.thread_id,
            _events.c.data,
        )
    ).first()
    if claimed is None:
        return 0
    kind, idea_id, actor_id, thread_id, data = claimed
    if thread_id is not None:
        audience = _thread_recipients(thread_id, actor_id, data)
    else:
        audience = _recipients(kind, idea_id, actor_id)
    recipients = audience.subquery("recipients")
    # The WHERE is for SQLite: without it "SELECT … FROM x ON CONFLICT" reads ON as a join's.
    rows = select(recipients.c[0], literal(event_id), literal(now)).where(text("1 = 1"))
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        # psycopg reports no rowcount for this INSERT … SELECT through SQLAlchemy (-1):
        # count what the statement wrote in the same statement instead.
        written_rows = _insert(dialect, rows).returning(_notifications.c.id).cte("written")
        written = db.session.scalar(select(func.count()).select_from(written_rows))
    else:
        written = db.session.execute(_insert(dialect, rows)).rowcount
    # Mail for this event (instant preferences) is queued here, in the same transaction as
    # its notification rows: exactly once, like them; digests pick up the rest later.
    notification_mail.queue_for_event(event_id)
    return max(written or 0, 0)


def pending_ids(limit: int = 1000) -> list[int]:
    """Events not fanned out yet, oldest first (the partial index ix_events_pending)."""
    stmt = select(_events.c.id).where(_events.c.fanned_out_at.is_(None)).order_by(_events.c.id)
    return list(db.session.scalars(stmt.limit(limit)))


@dataclass
class FanOutReport:
    events: int = 0
    notifications: int = 0
    failed: list[int] = field(default_factory=list)


def fan_out_pending(limit: int = 1000, ids: list[int] | None = None) -> FanOutReport:
    """Fan out pending events (only `ids` when given), oldest first, each in its own
    transaction: one that fails is rolled back and left pending for the next run. Starts
    with a rollback (as mail.deliver_queued does): commit your own work before calling."""
    report = FanOutReport()
    candidates = sorted(ids) if ids is not None else pending_ids(limit)
    db.session.rollback()  # end the read before each event takes its own write transaction
    for event_id in candidates:
        try:
            written = fan_out(event_id)
            db.session.commit()
        except Exception:
            db.session.rollback()
            report.failed.append(event_id)
            continue
        report.events += 1
        report.notifications += written
    return report


# --- the notification centre ---------------------------------------------------------


@dataclass
class Item:
    """One notification as the centre shows it: about an idea, or (EventKind.THREAD
    kinds) about a community thread, when idea_id is None and thread_id is set."""

    id: int
    kind: str
    read: bool
    created_at: Any
    idea_id: int | None
    idea_title: str
    idea_visible: bool  # False: the idea is hidden (told to its author, not linked)
    actor_name: str | None
    data: dict
    comment_excerpt: str = ""
    thread_id: int | None = None
    thread_title: str = ""
    thread_visible: bool = False  # False: hidden or held since (not linked)
    community_slug: str = ""
    community_name: str = ""
    #: The reply's page in its thread (None: the reply is no longer visible: not linked).
    reply_page: int | None = None

    @property
    def idea(self) -> SimpleNamespace:
        """What urls.idea_url() reads of an idea."""
        return SimpleNamespace(id=self.idea_id, title=self.idea_title)

    @property
    def reply_id(self) -> int | None:
        value = self.data.get("reply_id")
        return value if isinstance(value, int) else None


@dataclass
class Page:
    items: list[Item]
    page: int
    has_next: bool
    unread: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1


_SPACES = re.compile(r"\s+")
EXCERPT_WORDS = 12


def excerpt(text: str, words: int = EXCERPT_WORDS) -> str:
    """The first words of a comment, as plain text (its Markdown marks stripped roughly)."""
    parts = _SPACES.sub(" ", re.sub(r"[#*_`>\[\]]", " ", text or "")).strip().split(" ")
    short = " ".join(parts[:words])
    return short + ("…" if len(parts) > words else "")


def reply_positions(reply_ids: list[int]):
    """SELECT (reply id, body, page of its thread) for those of `reply_ids` still visible:
    the page as services.threads.reply_page_of counts it (visible replies before it)."""
    from .threads import REPLIES_PER_PAGE

    earlier = _replies.alias("earlier")
    before = (
        select(func.count())
        .where(
            earlier.c.thread_id == _replies.c.thread_id,
            earlier.c.deleted_at.is_(None),
            earlier.c.held_at.is_(None),
            earlier.c.id < _replies.c.id,
        )
        .correlate(_replies)
        .scalar_subquery()
    )
    return select(_replies.c.id, _replies.c.body, before // REPLIES_PER_PAGE + 1).where(
        _replies.c.id.in_(reply_ids), is_visible_post_sql(_replies)
    )


def unread_count(user: User, cap: int = UNREAD_CAP) -> int:
    """How many of the member's notifications are unread, counted to cap + 1 at most
    (the partial index ix_notifications_unread; one statement)."""
    inner = (
        select(literal(1))
        .where(_notifications.c.user_id == user.id, _notifications.c.read_at.is_(None))
        .limit(cap + 1)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(inner)) or 0


def page_of(user: User, page: int = 1) -> Page:
    """One page of the member's notifications, newest first: a constant number of
    statements whatever the page holds (the page with its unread count; the comments
    it quotes, in one statement, when it quotes any)."""
    page = min(max(page, 1), MAX_PAGE)
    actor = _users.alias("actor")
    unread = (
        select(func.count())
        .select_from(
            select(literal(1))
            .where(_notifications.c.user_id == user.id, _notifications.c.read_at.is_(None))
            .limit(UNREAD_CAP + 1)
            .subquery()
        )
        .scalar_subquery()
    )
    stmt = (
        select(
            _notifications.c.id,
            _notifications.c.read_at,
            _events.c.kind,
            _events.c.data,
            _events.c.created_at,
            _ideas.c.id,
            _ideas.c.title,
            _ideas.c.deleted_at,
            actor.c.display_name,
            unread,
            _threads.c.id,
            _threads.c.title,
            is_visible_post_sql(_threads),
            _communities.c.slug,
            _communities.c.name,
        )
        .select_from(
            _notifications.join(_events, _events.c.id == _notifications.c.event_id)
            .outerjoin(_ideas, _ideas.c.id == _events.c.idea_id)
            .outerjoin(_threads, _threads.c.id == _events.c.thread_id)
            .outerjoin(_communities, _communities.c.id == _threads.c.community_id)
            .outerjoin(actor, actor.c.id == _events.c.actor_id)
        )
        .where(_notifications.c.user_id == user.id)
        .order_by(_notifications.c.id.desc())
        .limit(PER_PAGE + 1)
        .offset((page - 1) * PER_PAGE)
    )
    rows = db.session.execute(stmt).all()
    items = []
    for row in rows[:PER_PAGE]:
        data = event_service.data_of(Event(data=row[3]))
        items.append(
            Item(
                id=row[0],
                read=row[1] is not None,
                kind=row[2],
                data=data,
                created_at=row[4],
                idea_id=row[5],
                idea_title=row[6] or "",
                idea_visible=row[5] is not None and row[7] is None,
                actor_name=row[8],
                thread_id=row[10],
                thread_title=row[11] or "",
                thread_visible=bool(row[12]),
                community_slug=row[13] or "",
                community_name=row[14] or "",
            )
        )
    quoted = {
        int(item.data["comment_id"]): item
        for item in items
        if item.kind in (EventKind.COMMENT, EventKind.OFFICIAL_RESPONSE)
        and str(item.data.get("comment_id", "")).isdigit()
    }
    if quoted:
        found = db.session.execute(
            select(Comment.id, Comment.body).where(Comment.id.in_(list(quoted)))
        ).all()
        for comment_id, body in found:
            quoted[comment_id].comment_excerpt = excerpt(body)
    replied = {
        item.reply_id: item
        for item in items
        if item.kind in EventKind.THREAD and item.reply_id is not None and item.thread_visible
    }
    if replied:
        # The replies' openings and their pages in their threads, in one statement.
        for reply_id, body, page_no in db.session.execute(reply_positions(list(replied))):
            replied[reply_id].comment_excerpt = excerpt(body)
            replied[reply_id].reply_page = page_no
    if rows:
        count = rows[0][9]
    else:
        count = unread_count(user) if page > 1 else 0
    return Page(items=items, page=page, has_next=len(rows) > PER_PAGE, unread=count)


def mark_read(user: User, notification_id: int | None = None) -> int:
    """Mark one of the member's notifications read (by id), or all of them; how many
    changed. Someone else's id changes nothing (the caller answers 404)."""
    stmt = (
        update(_notifications)
        .where(_notifications.c.user_id == user.id, _notifications.c.read_at.is_(None))
        .values(read_at=utcnow())
    )
    if notification_id is not None:
        stmt = stmt.where(_notifications.c.id == notification_id)
    return db.session.execute(stmt).rowcount or 0


def owns(user: User, notification_id: int) -> bool:
    """Whether the notification is the member's own (else: 404, as if it did not exist)."""
    stmt = select(_notifications.c.id).where(
        and_(_notifications.c.id == notification_id, _notifications.c.user_id == user.id)
    )
    return db.session.scalar(stmt) is not None
