"""Typed SQLAlchemy models, by area."""

from .base import Base, utcnow
from .board import Board
from .idea import ROADMAP, Comment, Idea, Kind, Status, StatusChange, Vote
from .mail import OutboxMessage, OutboxStatus
from .site import ContentVersion
from .user import AccountToken, Role, User

__all__ = [
    "ROADMAP",
    "AccountToken",
    "Base",
    "Board",
    "Comment",
    "ContentVersion",
    "Idea",
    "Kind",
    "OutboxMessage",
    "OutboxStatus",
    "Role",
    "Status",
    "StatusChange",
    "User",
    "Vote",
    "utcnow",
]
