"""Shared checks for text that people type."""

from __future__ import annotations

import re
import unicodedata

from flask_babel import gettext as _
from flask_babel import ngettext

# Control characters other than tab, newline and carriage return are never meaningful in
# a title or a comment, and PostgreSQL refuses NUL outright.
_FORBIDDEN = {chr(c) for c in range(32) if chr(c) not in "\t\n\r"} | {"\x7f"}


_SPACES = re.compile(r"[ \t\r\n]+")


def clean_line(value: str | None) -> str:
    """Trim a one-line value and fold runs of spaces, tabs and newlines into one space.

    Only those: other control characters must reach check_text and be refused, and
    Unicode spaces are kept as typed.
    """
    return _SPACES.sub(" ", value or "").strip()


def check_text(
    errors: dict[str, str], field: str, value: str, *, minimum: int, maximum: int, label: str
) -> None:
    """Record in `errors` why `value` is not acceptable for `field`, if it is not."""
    if any(ch in _FORBIDDEN for ch in value):
        errors[field] = _("%(label)s contains control characters.", label=label)
    elif len(value) < minimum:
        if minimum == 1:
            errors[field] = _("%(label)s is required.", label=label)
        else:
            errors[field] = ngettext(
                "%(label)s must be at least %(num)d character.",
                "%(label)s must be at least %(num)d characters.",
                minimum,
                label=label,
            )
    elif len(value) > maximum:
        errors[field] = ngettext(
            "%(label)s must be at most %(num)d character.",
            "%(label)s must be at most %(num)d characters.",
            maximum,
            label=label,
        )


def fold_key(value: str) -> str:
    """NFKC + casefold: the form in which two strings count as the same name."""
    return unicodedata.normalize("NFKC", value).casefold().strip()


# What a post's Markdown turns into a link: a URL with a scheme, a bare www. address
# (markup.py links both), a Markdown link or image, or raw HTML anchors (which the
# sanitiser would keep as links).
_LINK = re.compile(r"(?i)\b(?:https?|ftp|mailto):|\bwww\.|\]\s*\(|<a\s|<https?:")


def has_link(*texts: str | None) -> bool:
    """Whether any of `texts` (a post's title and body) holds a link."""
    return any(text and _LINK.search(text) for text in texts)
