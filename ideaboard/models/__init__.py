"""Typed SQLAlchemy models, by area."""

from .base import Base, utcnow
from .board import Board
from .idea import ROADMAP, Comment, Idea, Kind, Status, StatusChange, Vote
from .site import ContentVersion
from .user import Role, User

__all__ = [
    "ROADMAP",
    "Base",
    "Board",
    "Comment",
    "ContentVersion",
    "Idea",
    "Kind",
    "Role",
    "Status",
    "StatusChange",
    "User",
    "Vote",
    "utcnow",
]
