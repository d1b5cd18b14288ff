"""The mail outbox: every message is a row first, written in the transaction that caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CreatedMixin, page_content


class OutboxStatus:
    QUEUED = "queued"  # waiting for (another) delivery attempt
    SENT = "sent"  # handed to the SMTP server, or saved to a file when there is none
    FAILED = "failed"  # refused for good, or too many attempts
    DROPPED = "dropped"  # nothing to send (no such account) or superseded by a newer message
    EXPIRED = "expired"  # its link expired before it could be delivered


class OutboxMessage(CreatedMixin, Base):
    """One email. `kind` names its template; "reset_request" rows are rendered at delivery."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'sent', 'failed', 'dropped', 'expired')", name="status_known"
        ),
        Index("ix_mail_outbox_status_id", "status", "id"),
        # The instant-mail query marks notifications that got a row (and the FK's index).
        Index("ix_mail_outbox_notification_id", "notification_id"),
        page_content(False),  # mail is read in a mailbox, never on a page
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.QUEUED)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    to_addr: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str] = mapped_column(String(120), default="")
    subject: Mapped[str] = mapped_column(String(255), default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    # A message whose link dies at this time is not delivered after it.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A deliverer holds the row until then, so two of them never send it twice.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    # A "notification" row names what it tells; it is rendered at delivery, in `locale`.
    # No foreign key on purpose: the set-based queueing of 50,000 rows would pay one key
    # check per row, and a row whose notification is gone is simply dropped at delivery.
    notification_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # RFC 8058: the signed one-click address, sent as List-Unsubscribe (cleared once sent).
    unsubscribe_url: Mapped[str | None] = mapped_column(String(512), nullable=True)


class MailSettings(Base):
    """A member's mail settings beyond the per-kind choices: the language mail is written in.

    No row: the site's default language. Not page content (no page shows it).
    """

    __tablename__ = "mail_settings"
    __table_args__ = (page_content(False),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    locale: Mapped[str] = mapped_column(String(16))
