"""Boards."""

from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.models import Board
from ideaboard.models.base import MAX_INT

from .errors import ValidationError
from .text import check_text, clean_line

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$|^[a-z0-9]$")


def list_boards(include: Board | None = None) -> list[Board]:
    """The boards open for ideas, by name (archived ones are left out of every public list
    and choice; `include` keeps one in, such as the archived board an idea is on)."""
    stmt = select(Board).order_by(Board.name, Board.id)
    if include is not None:
        return list(
            db.session.scalars(stmt.where((Board.archived_at.is_(None)) | (Board.id == include.id)))
        )
    return list(db.session.scalars(stmt.where(Board.archived_at.is_(None))))


def get_board_by_slug(slug: str) -> Board | None:
    if not SLUG_RE.match(slug or ""):
        return None  # also keeps NUL and other junk away from the database
    return db.session.scalar(select(Board).where(Board.slug == slug))


def create_board(slug: str, name: str, description: str = "") -> Board:
    """Add a board; the slug is its stable address."""
    errors: dict[str, str] = {}
    slug = (slug or "").strip().lower()
    name = clean_line(name)
    if not SLUG_RE.match(slug):
        errors["slug"] = _("Use lowercase letters, digits and dashes (1-60 characters).")
    elif get_board_by_slug(slug):
        errors["slug"] = _("A board with this address already exists.")
    check_text(errors, "name", name, minimum=2, maximum=100, label=_("Board name"))
    if errors:
        raise ValidationError(errors)
    board = Board(slug=slug, name=name, description=description or "")
    db.session.add(board)
    db.session.flush()
    return board


def get_board(board_id: int | None) -> Board | None:
    """The board with this id, if any."""
    if not board_id or not 0 < board_id <= MAX_INT:
        return None
    return db.session.get(Board, board_id)


def find_board(value: str | None) -> Board | None:
    """A board named in a query string by slug or by id."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit(), not to int()
        return get_board(int(value))
    return get_board_by_slug(value)
