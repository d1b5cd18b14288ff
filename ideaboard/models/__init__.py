"""Typed SQLAlchemy models, by area."""

from .base import Base, utcnow
from .board import Board
from .idea import ROADMAP, Comment, Idea, Kind, Status, StatusChange, Vote
from .user import Role, User

__all__ = [
    "ROADMAP",
    "Base",
    "Board",
    "Comment",
    "Idea",
    "Kind",
    "Role",
    "Status",
    "StatusChange",
    "User",
    "Vote",
    "utcnow",
]
