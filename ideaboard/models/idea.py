"""Ideas, their votes, comments and status history."""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from .base import (
    LIVE_SQL,
    Base,
    CreatedMixin,
    SoftDeleteMixin,
    live_index,
    page_content,
    utcnow,
)
from .board import Board
from .user import User


class Status(enum.StrEnum):
    HEARD = "heard"
    UNDER_REVIEW = "under_review"
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    SHIPPED = "shipped"
    DECLINED = "declined"
    # Set only by a merge (services/merges.py), never by a status change.
    MERGED = "merged"


class Kind(enum.StrEnum):
    IDEA = "idea"
    PROBLEM = "problem"
    PRODUCT = "product"


#: The roadmap line, in order; declined stands beside it.
ROADMAP = (Status.HEARD, Status.UNDER_REVIEW, Status.PLANNED, Status.IN_PROGRESS, Status.SHIPPED)


def title_key(title: str) -> str:
    """What makes two titles "the same": SHA-256 of the title after Unicode NFKC,
    casefolding and collapsing whitespace ("Dark  MODE" is "dark mode"; "ﬁle" is "file")."""
    normal = " ".join(unicodedata.normalize("NFKC", title or "").casefold().split())
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


def _title_key_default(context) -> str | None:
    """An inserted idea's title_key, from its title, whoever inserts it (services, seeds,
    demo, factories): a live duplicate on the board is then refused by the unique index."""
    title = context.get_current_parameters().get("title")
    return None if title is None else title_key(title)


class Idea(SoftDeleteMixin, CreatedMixin, Base):
    __tablename__ = "ideas"
    __table_args__ = (
        CheckConstraint(
            "status IN ('heard', 'under_review', 'planned', 'in_progress', 'shipped', 'declined', "
            "'merged')",
            name="status_known",
        ),
        CheckConstraint("kind IN ('idea', 'problem', 'product')", name="kind_known"),
        CheckConstraint("vote_count >= 0", name="vote_count_nonnegative"),
        CheckConstraint("comment_count >= 0", name="comment_count_nonnegative"),
        live_index("ix_ideas_trending", "trending_score", "id"),
        live_index("ix_ideas_top", "vote_count", "id"),
        live_index("ix_ideas_new", "created_at", "id"),
        live_index("ix_ideas_board_trending", "board_id", "trending_score", "id"),
        live_index("ix_ideas_board_top", "board_id", "vote_count", "id"),
        live_index("ix_ideas_board_new", "board_id", "created_at", "id"),
        live_index("ix_ideas_status_top", "status", "vote_count", "id"),
        live_index("ix_ideas_board_status_top", "board_id", "status", "vote_count", "id"),
        live_index("ix_ideas_activity", "last_activity_at", "id"),
        Index("ix_ideas_author", "author_id", "created_at"),
        # One live idea per normalised title on a board (services/ideas.py refuses the
        # duplicate with a link to it; this index settles two posts at once).
        Index(
            "uq_ideas_board_title_key",
            "board_id",
            "title_key",
            unique=True,
            sqlite_where=text(LIVE_SQL),
            postgresql_where=text(LIVE_SQL),
        ),
        page_content(True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id", ondelete="RESTRICT"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16), default=Kind.IDEA.value)
    title: Mapped[str] = mapped_column(String(150))
    # title_key(title); NULL only for duplicates that predate the rule (see its migration).
    title_key: Mapped[str | None] = mapped_column(String(64), default=_title_key_default)
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=Status.HEARD.value)
    vote_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    comment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Active rows of `follows` for this idea, kept exact like vote_count (services/follows.py).
    follower_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # log10(votes) + age bonus; see services/ideas.py trending_score().
    trending_score: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    # Bumped on every edit: a form carrying an older version is a stale edit (409).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The idea this one was merged into (status `merged`); NULL otherwise.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("ideas.id", ondelete="SET NULL"), default=None
    )
    board: Mapped[Board] = relationship(lazy="raise")
    author: Mapped[User] = relationship(foreign_keys=[author_id], lazy="raise")
    merged_into: Mapped[Idea | None] = relationship(
        foreign_keys=[merged_into_id], remote_side=[id], lazy="raise"
    )
    # How many ideas stand merged into this one: loaded by get_idea() in its own statement
    # (services/merges.py merged_count_expression); None where not loaded.
    merged_count: Mapped[int | None] = query_expression()
    # The community thread the idea was promoted from (services/promotion.py), kept on the
    # idea so that its page never reads a community table: such a read would keep the page
    # out of the cache (perf/scopes.py). GET /t/<id> checks the thread when followed.
    from_thread_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    def __repr__(self) -> str:
        return f"<Idea {self.id} {self.status}>"


class Vote(CreatedMixin, Base):
    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("idea_id", "user_id", name="uq_votes_idea_user"),
        Index("ix_votes_user_idea", "user_id", "idea_id"),
        # The idea page lists its latest voters: without this, a hot idea sorts them all.
        Index("ix_votes_idea_created", "idea_id", "created_at", "id"),
        page_content(True),  # a member's pages show their votes; idea pages the voters
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class Comment(CreatedMixin, Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_idea_created", "idea_id", "created_at", "id"),
        Index("ix_comments_author", "author_id", "created_at"),
        page_content(True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    body: Mapped[str] = mapped_column(Text)
    is_official: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    # Hidden after reports (or kept hidden by staff resolving them): shown only to its
    # author and staff, and not counted in ideas.comment_count while hidden.
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    hidden_reason: Mapped[str | None] = mapped_column(Text, default=None)

    author: Mapped[User] = relationship(lazy="raise")

    @property
    def edited(self) -> bool:
        return self.edited_at is not None

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None


class StatusChange(CreatedMixin, Base):
    __tablename__ = "status_changes"
    __table_args__ = (
        Index("ix_status_changes_idea_created", "idea_id", "created_at", "id"),
        # The changelog and its feed walk the moves to shipped, newest first, and count
        # those of the last 12 months (services/changelog.py); the changes feed walks all.
        Index("ix_status_changes_to_created", "to_status", "created_at", "id"),
        Index("ix_status_changes_created", "created_at", "id"),
        page_content(True),  # an idea's history
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    note: Mapped[str] = mapped_column(Text, default="")

    by: Mapped[User] = relationship(lazy="raise")


class Merge(CreatedMixin, Base):
    """One idea (`merged_id`, B) merged into another (`into_id`, A) by staff, and what it
    moved: the rows it inserted on A are its MergeMove rows, so undo removes exactly those.
    """

    __tablename__ = "merges"
    __table_args__ = (
        # A's history lists the merges into it that stand (not undone).
        Index("ix_merges_into_undone", "into_id", "undone_at", "id"),
        Index("ix_merges_merged_id", "merged_id", "id"),
        page_content(True),  # A's page shows "N ideas merged into this"
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    into_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # B's status before the merge, restored by undo.
    previous_status: Mapped[str] = mapped_column(String(16))
    votes_moved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    follows_moved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    undone_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, default=None
    )

    merged: Mapped[Idea] = relationship(foreign_keys=[merged_id], lazy="raise")
    by: Mapped[User | None] = relationship(foreign_keys=[by_id], lazy="raise")


class MergeMove(Base):
    """One row a merge inserted on the target idea: a vote (`votes.id`) or a follow
    (`follows.id`). Plain ids, no foreign keys: the row may be gone later (a member took
    the vote back), and undo then has nothing to remove for it."""

    __tablename__ = "merge_moves"
    __table_args__ = (page_content(False),)  # bookkeeping for undo; no page shows it

    merge_id: Mapped[int] = mapped_column(
        ForeignKey("merges.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "vote" | "follow"
    row_id: Mapped[int] = mapped_column(Integer, primary_key=True)
