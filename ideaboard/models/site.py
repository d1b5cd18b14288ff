"""Site-wide state shared by every process."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, page_content


class ContentVersion(Base):
    """One row whose value grows after every committed write: the key of cached pages."""

    __tablename__ = "content_version"
    __table_args__ = page_content(False)  # the key of pages, not what they show

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=1)
