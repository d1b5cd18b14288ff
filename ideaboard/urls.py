"""Addresses of ideas and boards, for every blueprint, template and service alike.

Built by hand rather than with url_for: a list page needs dozens of them, and the result
is the same (`request.script_root` in front). A module of its own, importing no
blueprint, so any view can use them without a lazy import.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import request, url_for

_SLUG_WORD = re.compile(r"\w+", re.UNICODE)


def slugify(title: str) -> str:
    """The readable part of an idea's address: the title's words, joined by hyphens."""
    return "-".join(_SLUG_WORD.findall(title.lower()))[:60].strip("-") or "idea"


def idea_url(idea, action: str | None = None, **kw) -> str:
    """The idea's address (or one of its actions'); with keywords, through url_for."""
    if action:
        return f"{request.script_root}/ideas/{idea.id}/{action}"
    if kw:
        return url_for("ideas.show", idea_id=idea.id, slug=slugify(idea.title), **kw)
    return f"{request.script_root}/ideas/{idea.id}-{quote(slugify(idea.title))}"


def board_url(board) -> str:
    """The board's list of ideas."""
    return f"{request.script_root}/b/{quote(board.slug)}"


def profile_url(user_id: int) -> str:
    """A member's public profile."""
    return f"{request.script_root}/u/{int(user_id)}"
