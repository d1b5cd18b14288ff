"""Fan-club communities: their threads and replies, the people who run them, and the
records moderation keeps (bans, reports, the audit log).

A thread and a reply are hidden, never deleted (SoftDeleteMixin: who, when, why); a post
held for approval (`held_at`) shows only to its author and the community's moderators.
Counts shown on pages (`member_count`, `thread_count`, `reply_count`) are kept exact by
the services, in the statement that changes what they count.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import COMMUNITY, Base, CreatedMixin, SoftDeleteMixin, page_content, utcnow
from .user import User

#: What "shown to everyone" means for a thread or reply: not hidden, not held for approval.
#: Partial indexes use exactly this text (see models.base.LIVE_SQL).
VISIBLE_SQL = "deleted_at IS NULL AND held_at IS NULL"
#: Posts waiting for a moderator's approval (the moderation queues).
HELD_SQL = "held_at IS NOT NULL AND deleted_at IS NULL"

SLUG_MAX = 40
ACCENT_DEFAULT = "#2f6fde"


def visible_index(name: str, *columns: str) -> Index:
    """An index over visible rows only: the public lists filter on exactly this."""
    return Index(name, *columns, sqlite_where=text(VISIBLE_SQL), postgresql_where=text(VISIBLE_SQL))


class Community(CreatedMixin, Base):
    """A fan club's space: its threads, run by its moderators (and its owner, who appoints
    them)."""

    __tablename__ = "communities"
    __table_args__ = (
        CheckConstraint("accent LIKE '#______'", name="accent_hex"),
        # The directory: most recent activity first.
        Index("ix_communities_activity", "last_activity_at", "id"),
        # Its own stamp moves with every change of the row (a trigger), so its pages and
        # the directory are keyed by their stamps, not by the shared version.
        page_content(True, scope=COMMUNITY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[str] = mapped_column(Text, default="")
    accent: Mapped[str] = mapped_column(String(7), default=ACCENT_DEFAULT)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # A new member's first post waits in the moderation queue until a moderator approves it.
    require_approval: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    member_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    thread_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    reply_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    # Moves on with every committed write to this community's content (its row, threads,
    # replies, thread follows, members, bans): database triggers do it, in the writer's
    # own transaction (migration 14e0a1b2c3d4). Its cached pages are keyed by it.
    stamp: Mapped[int] = mapped_column(BigInteger, default=1, server_default=text("1"))

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id], lazy="raise")

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class CommunityModerator(CreatedMixin, Base):
    """A member who moderates one community (appointed by an admin or its owner)."""

    __tablename__ = "community_moderators"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", name="uq_community_moderators_pair"),
        # "Which communities does this person moderate?": once per request that asks.
        Index("ix_community_moderators_user", "user_id", "community_id"),
        page_content(True),  # the community page lists its moderators
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    appointed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class CommunityMember(CreatedMixin, Base):
    """A member who joined (follows) a community. `approved_at`: a moderator approved
    their first post (or they needed none), so later posts skip the queue."""

    __tablename__ = "community_members"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", name="uq_community_members_pair"),
        Index("ix_community_members_user", "user_id", "community_id"),
        page_content(True, scope=COMMUNITY),  # member counts and the Join/Leave button
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)


class Thread(SoftDeleteMixin, CreatedMixin, Base):
    """A conversation in a community: a title, a Markdown body, and its replies."""

    __tablename__ = "threads"
    __table_args__ = (
        # The community page: pinned first, then newest activity.
        visible_index(
            "ix_threads_community_activity", "community_id", "pinned", "last_activity_at", "id"
        ),
        Index("ix_threads_author", "author_id", "id"),
        # Promotion: the idea page finds its thread; a community lists the ideas it changed.
        Index("ix_threads_idea", "idea_id"),
        Index("ix_threads_community_idea", "community_id", "idea_id"),
        # The moderation queues' posts held for approval (few rows: a partial index).
        Index(
            "ix_threads_held",
            "community_id",
            "id",
            sqlite_where=text(HELD_SQL),
            postgresql_where=text(HELD_SQL),
        ),
        page_content(True, scope=COMMUNITY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    title: Mapped[str] = mapped_column(String(140))
    body: Mapped[str] = mapped_column(Text, default="")
    # 1 when pinned (an integer, so "pinned first" is one index order on both databases).
    pinned: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    held_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    reply_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    follower_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    # Promoted to an idea on a board: the idea it became.
    idea_id: Mapped[int | None] = mapped_column(
        ForeignKey("ideas.id", ondelete="SET NULL"), default=None
    )

    community: Mapped[Community] = relationship(lazy="raise")
    author: Mapped[User | None] = relationship(foreign_keys=[author_id], lazy="raise")

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None

    @property
    def is_held(self) -> bool:
        return self.held_at is not None

    @property
    def is_pinned(self) -> bool:
        return bool(self.pinned)


class Reply(SoftDeleteMixin, CreatedMixin, Base):
    """One reply in a thread; it may quote an earlier reply of the same thread."""

    __tablename__ = "replies"
    __table_args__ = (
        # A thread's pages, oldest first, over visible replies.
        visible_index("ix_replies_thread", "thread_id", "id"),
        Index("ix_replies_author", "author_id", "id"),
        # Every foreign key its own index: deleting a thread, a community or a quoted reply
        # (an account's erasure cascades) finds the rows that point at it without a scan.
        Index("ix_replies_thread_fk", "thread_id"),
        Index("ix_replies_community_fk", "community_id"),
        Index("ix_replies_quote_of", "quote_of_id"),
        Index(
            "ix_replies_held",
            "community_id",
            "id",
            sqlite_where=text(HELD_SQL),
            postgresql_where=text(HELD_SQL),
        ),
        page_content(True, scope=COMMUNITY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    # The thread's community, kept on the reply (moved with it): scope checks and
    # per-community cache freshness read it without a join.
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    body: Mapped[str] = mapped_column(Text)
    quote_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("replies.id", ondelete="SET NULL"), default=None
    )
    held_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)

    author: Mapped[User | None] = relationship(foreign_keys=[author_id], lazy="raise")

    @property
    def is_held(self) -> bool:
        return self.held_at is not None


class ThreadFollow(CreatedMixin, Base):
    """A member following a thread (its author and repliers follow it automatically);
    `active` false once they unfollowed, so replying later never subscribes them again."""

    __tablename__ = "thread_follows"
    __table_args__ = (
        UniqueConstraint("user_id", "thread_id", name="uq_thread_follows_user_thread"),
        Index("ix_thread_follows_thread_active", "thread_id", "active", "user_id"),
        page_content(
            True, scope=COMMUNITY
        ),  # the thread page shows the count and the member's button
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class CommunityBan(CreatedMixin, Base):
    """A member banned from one community: they read it, they cannot post there. In force
    while not lifted and not past `expires_at`."""

    __tablename__ = "community_bans"
    __table_args__ = (
        Index("ix_community_bans_lookup", "community_id", "user_id", "lifted_at"),
        page_content(True, scope=COMMUNITY),  # a banned member's page shows no reply form
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text, default="")
    banned_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    lifted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class CommunityDirectoryVersion(Base):
    """One row whose value moves with every committed write to any community's content
    (a trigger on `communities`, whose stamp every scoped write moves): the key of the
    directory, /c."""

    __tablename__ = "community_directory_version"
    __table_args__ = (page_content(False),)  # the key of a page, not what it shows

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=1)


class ReportReason:
    SPAM = "spam"
    ABUSE = "abuse"
    OFF_TOPIC = "off_topic"
    PERSONAL_DATA = "personal_data"
    OTHER = "other"

    ALL = (SPAM, ABUSE, OFF_TOPIC, PERSONAL_DATA, OTHER)


class ReportTarget:
    IDEA = "idea"
    COMMENT = "comment"
    THREAD = "thread"
    REPLY = "reply"

    ALL = (IDEA, COMMENT, THREAD, REPLY)


class Report(CreatedMixin, Base):
    """One member's report of one item (an idea, comment, thread or reply), once each.
    `community_id` is set for threads and replies: their community's queue shows it."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint(
            "target_kind", "target_id", "reporter_id", name="uq_reports_target_reporter"
        ),
        CheckConstraint(
            "target_kind IN ('idea', 'comment', 'thread', 'reply')", name="target_known"
        ),
        # The queues: open reports, per community and overall, oldest first.
        Index(
            "ix_reports_open",
            "community_id",
            "id",
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
        Index("ix_reports_target", "target_kind", "target_id"),
        # Reports show only in the moderation queues, which are never cached: filing one
        # must not empty anyone's cached pages (hiding at the threshold writes content).
        page_content(False),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int] = mapped_column(Integer)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="CASCADE"), default=None
    )
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    resolved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # What the moderator decided: "restore" (shown again), "hide" (kept hidden), "dismiss".
    resolution: Mapped[str | None] = mapped_column(String(16), default=None)


class AuditEntry(Base):
    """One moderation or staff action: who, what, when, on what, before and after, why.
    Written in the transaction of the action itself (services/audit.py)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_community", "community_id", "id"),
        Index("ix_audit_log_actor", "actor_id", "id"),
        Index("ix_audit_log_action", "action", "id"),
        # Shown only on staff and moderator pages, which are never cached.
        page_content(False),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow, nullable=False)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    action: Mapped[str] = mapped_column(String(40))
    target_kind: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int | None] = mapped_column(Integer, default=None)
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("communities.id", ondelete="SET NULL"), default=None
    )
    before: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    after: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    reason: Mapped[str] = mapped_column(Text, default="")
