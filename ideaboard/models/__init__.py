"""Typed SQLAlchemy models, by area."""

from .base import PAGE_CONTENT, TABLES_WITHOUT_MODEL, Base, page_content, utcnow
from .board import Board
from .community import (
    AuditEntry,
    Community,
    CommunityBan,
    CommunityMember,
    CommunityModerator,
    Reply,
    Report,
    ReportReason,
    ReportTarget,
    Thread,
    ThreadFollow,
)
from .follow import Follow
from .idea import ROADMAP, Comment, Idea, Kind, Merge, MergeMove, Status, StatusChange, Vote
from .mail import MailSettings, OutboxMessage, OutboxStatus
from .notification import (
    Delivery,
    Event,
    EventKind,
    Notification,
    NotificationPreference,
)
from .site import ContentVersion
from .user import AccountToken, Role, User

__all__ = [
    "PAGE_CONTENT",
    "ROADMAP",
    "TABLES_WITHOUT_MODEL",
    "AccountToken",
    "AuditEntry",
    "Base",
    "Board",
    "Comment",
    "Community",
    "CommunityBan",
    "CommunityMember",
    "CommunityModerator",
    "ContentVersion",
    "Delivery",
    "Event",
    "EventKind",
    "Follow",
    "Idea",
    "Kind",
    "MailSettings",
    "Merge",
    "MergeMove",
    "Notification",
    "NotificationPreference",
    "OutboxMessage",
    "OutboxStatus",
    "Reply",
    "Report",
    "ReportReason",
    "ReportTarget",
    "Role",
    "Status",
    "StatusChange",
    "Thread",
    "ThreadFollow",
    "User",
    "Vote",
    "page_content",
    "utcnow",
]
