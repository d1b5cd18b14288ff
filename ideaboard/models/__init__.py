"""Typed SQLAlchemy models, by area."""

from .base import (
    COMMUNITY,
    PAGE_CONTENT,
    SCOPE,
    TABLES_WITHOUT_MODEL,
    Base,
    page_content,
    utcnow,
)
from .board import Board
from .community import (
    AuditEntry,
    Community,
    CommunityBan,
    CommunityDirectoryVersion,
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
    "COMMUNITY",
    "PAGE_CONTENT",
    "SCOPE",
    "ROADMAP",
    "TABLES_WITHOUT_MODEL",
    "AccountToken",
    "AuditEntry",
    "Base",
    "Board",
    "Comment",
    "Community",
    "CommunityBan",
    "CommunityDirectoryVersion",
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
