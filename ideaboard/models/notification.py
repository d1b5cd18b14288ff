"""What happened to an idea (events) and who was told (notifications).

A write that others should hear about records one `Event` in its own transaction
(services/events.py). Turning an event into one `Notification` per recipient (and mail)
is the fan-out: set-based, exactly once per event (`fanned_out_at`), never in the
request's critical path for a large audience. Neither table is page content: reading,
marking and fanning out notifications never empties a cached page.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedMixin, page_content


class EventKind:
    STATUS_CHANGED = "status_changed"  # data: from, to, note, change_id
    OFFICIAL_RESPONSE = "official_response"  # data: comment_id
    COMMENT = "comment"  # data: comment_id
    MERGED = "merged"  # data: into (idea id)
    IDEA_EDITED = "idea_edited"  # staff edited the author's idea; only the author hears
    IDEA_HIDDEN = "idea_hidden"  # staff hid the author's idea; data: reason
    REPLY = "reply"  # a new visible reply in a thread (events.thread_id); data: reply_id

    ALL = (STATUS_CHANGED, OFFICIAL_RESPONSE, COMMENT, MERGED, IDEA_EDITED, IDEA_HIDDEN, REPLY)
    #: Kinds told only to the idea's author (not to voters and followers).
    AUTHOR_ONLY = (IDEA_EDITED, IDEA_HIDDEN)
    #: Kinds about a thread (events.thread_id set, idea_id NULL), told to its followers.
    THREAD = (REPLY,)


class Event(CreatedMixin, Base):
    """One thing that happened to one idea or one community thread (exactly one of the
    two), by one actor; `data` is JSON text."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("(idea_id IS NULL) <> (thread_id IS NULL)", name="one_subject"),
        Index("ix_events_idea_created", "idea_id", "created_at", "id"),
        Index("ix_events_thread_created", "thread_id", "created_at", "id"),
        # The fan-out worker's queue: events not fanned out yet.
        Index(
            "ix_events_pending",
            "id",
            sqlite_where=text("fanned_out_at IS NULL"),
            postgresql_where=text("fanned_out_at IS NULL"),
        ),
        page_content(False),  # pages show status changes and comments from their own tables
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    idea_id: Mapped[int | None] = mapped_column(
        ForeignKey("ideas.id", ondelete="CASCADE"), nullable=True, default=None
    )
    thread_id: Mapped[int | None] = mapped_column(
        ForeignKey("threads.id", ondelete="CASCADE"), nullable=True, default=None
    )
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    data: Mapped[str] = mapped_column(Text, default="{}")
    # Set, in the same transaction as the notification rows, when the fan-out ran.
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)


class Notification(CreatedMixin, Base):
    """One event told to one member; unique per (member, event): exactly once."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "event_id", name="uq_notifications_user_event"),
        Index("ix_notifications_user_id", "user_id", "id"),
        # The header's unread count and "mark all read".
        Index(
            "ix_notifications_unread",
            "user_id",
            "id",
            sqlite_where=text("read_at IS NULL"),
            postgresql_where=text("read_at IS NULL"),
        ),
        page_content(False),  # read state is not page content (issue 13)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    # When mail for it was queued (instant) or included in a digest; NULL: not yet/never.
    mailed_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)


class Delivery:
    INSTANT = "instant"
    DAILY = "daily"
    OFF = "off"
    ALL = (INSTANT, DAILY, OFF)


class NotificationPreference(Base):
    """A member's choice of mail for one kind of event; no row: the kind's default."""

    __tablename__ = "notification_prefs"
    __table_args__ = (page_content(False),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery: Mapped[str] = mapped_column(String(16), default=Delivery.INSTANT)
