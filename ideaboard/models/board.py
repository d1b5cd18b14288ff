"""Boards: one place for ideas, e.g. one per product line."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedMixin, page_content


class Board(CreatedMixin, Base):
    __tablename__ = "boards"
    __table_args__ = page_content(True)  # names and descriptions head every list

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # Archived by an admin: takes no new ideas and leaves the public board lists; its
    # ideas and its own page stay readable.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def __repr__(self) -> str:
        return f"<Board {self.slug}>"
