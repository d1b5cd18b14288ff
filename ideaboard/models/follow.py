"""Who follows which idea: the list a notification fan-out reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedMixin, page_content


class Follow(CreatedMixin, Base):
    """One member's standing with one idea: following (`active`) or, once they unfollowed,
    not following, kept so that voting or commenting later never subscribes them again.

    The followers of an idea are its active rows; `ideas.follower_count` counts them
    exactly (services/follows.py moves it by what each statement actually wrote).
    """

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("user_id", "idea_id", name="uq_follows_user_idea"),
        # The fan-out's read: an idea's active followers.
        Index("ix_follows_idea_active", "idea_id", "active", "user_id"),
        # The idea page shows the count and the member's own button.
        page_content(True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # Set when the member unfollowed (explicitly); NULL while following.
    unfollowed_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
