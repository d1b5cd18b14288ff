"""Boards: one place for ideas, e.g. one per product line."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedMixin, page_content


class Board(CreatedMixin, Base):
    __tablename__ = "boards"
    __table_args__ = page_content(True)  # names and descriptions head every list

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")

    def __repr__(self) -> str:
        return f"<Board {self.slug}>"
