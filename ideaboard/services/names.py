"""Display names: what may be in one, and which names are too close to a staff member's.

A name is shown beside everything a person writes, and staff speak for the company, so a
member must not be able to pass for staff. Two rules:

- No invisible or control characters. They let a name look like another (a zero-width
  space inside "Anna"), reorder the text around it (U+202E, right-to-left override), or
  break a line (U+0085, U+2028). Refused: Unicode categories Cc, Cf, Zl, Zp, Co, Cn, Cs,
  and the characters that draw nothing although Unicode files them as letters, marks or
  symbols (Hangul fillers, the braille blank, variation selectors, the combining grapheme
  joiner…); and a name may not start with a combining mark, which would sit on the text
  before it.
- Not the name of another staff member or admin, as people read it: `name_key` folds
  width and compatibility forms (NFKC), accents, letter case, runs of white space, and
  letters that look alike across Latin, Cyrillic and Greek (and 0/o, 1/l/I, rn/m), so
  "Anna", "ＡＮＮＡ", "Аnna" (Cyrillic А) and "Ánna" are one name. A staff member may keep
  or set their own name. Templates also mark staff next to every name they show.
"""

from __future__ import annotations

import unicodedata

from flask_babel import gettext as _
from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.models import User
from ideaboard.permissions import STAFF_ROLES

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})
# Default-ignorable and blank-looking characters outside those categories.
_INVISIBLE = frozenset(
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u17b4\u17b5"  # Khmer inherent vowels
    "\u180b\u180c\u180d\u180f"  # Mongolian free variation selectors
    "\u2800"  # braille pattern blank
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))  # variation selectors
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))  # variation selectors supplement
)


def _invisible(ch: str) -> bool:
    return ch in _INVISIBLE or unicodedata.category(ch) in _REFUSED_CATEGORIES


def invisible_characters(name: str) -> list[str]:
    """The characters of `name` that are invisible or control characters."""
    return [ch for ch in name if _invisible(ch)]


# Letters that look like a Latin letter, before case folding (so an uppercase Greek eta,
# which looks like H, and a lowercase one, which looks like n, are told apart).
_LOOKALIKES = str.maketrans(
    {
        # Cyrillic capitals and small letters
        "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p",
        "С": "c", "Т": "t", "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j", "Ԛ": "q",
        "Ԝ": "w", "Ү": "y", "Һ": "h", "Ӏ": "l", "Ь": "b",
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s",
        "і": "i", "ј": "j", "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ԁ": "d",
        "ь": "b", "к": "k",
        # Greek capitals and small letters
        "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m",
        "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "υ": "u",
        "χ": "x", "γ": "y", "η": "n", "ϲ": "c", "ϳ": "j",
        # Latin letters that look like others
        "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ʏ": "y",
    }
)  # fmt: skip
# After case folding: digits and letters that pass for one another in most fonts.
_ALIKE = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l"})


def name_key(name: str) -> str:
    """The form in which two display names count as the same name (see the module doc)."""
    folded = unicodedata.normalize("NFKC", name)
    folded = "".join(ch for ch in folded if not _invisible(ch))
    folded = unicodedata.normalize("NFD", folded)
    folded = "".join(ch for ch in folded if not unicodedata.category(ch).startswith("M"))
    folded = folded.translate(_LOOKALIKES).casefold().translate(_LOOKALIKES)
    folded = folded.translate(_ALIKE).replace("rn", "m").replace("vv", "w")
    return " ".join(folded.split())


def check_display_name(
    errors: dict[str, str], field: str, name: str, *, user: User | None = None
) -> None:
    """Record in `errors` why `name` may not be `user`'s display name (None: a new user).

    Length and the other text rules are checked by the caller (services.text).
    """
    if field in errors:
        return
    if invisible_characters(name):
        errors[field] = _(
            "A name cannot contain invisible or control characters (such as zero-width "
            "spaces, direction marks or line separators)."
        )
        return
    if name[:1] and unicodedata.category(name[0]).startswith("M"):
        errors[field] = _("A name cannot start with an accent or another combining mark.")
        return
    if user is not None and name == user.display_name:
        return  # keeping one's name is always allowed
    key = name_key(name)
    staff = select(User.id, User.display_name).where(User.role.in_(STAFF_ROLES))
    if user is not None:
        staff = staff.where(User.id != user.id)
    if any(name_key(other) == key for _id, other in db.session.execute(staff)):
        errors[field] = _("This name is too close to a staff member's name. Choose another.")
