"""Fill the English catalog: every msgstr becomes its msgid (plural forms: singular/plural).

English is the source language, so its catalog only mirrors the msgids; having it complete
keeps `en` an explicit, testable locale. Safe to re-run after `make messages`:

    .venv/bin/python scripts/fill_en_catalog.py [path/to/en/messages.po]

Entries are overwritten (the English text is always the msgid) and fuzzy flags dropped;
obsolete entries left by `pybabel update` are removed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PO = ROOT / "ideaboard" / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def fill(path: Path) -> int:
    """Mirror msgids into msgstrs in the catalog at `path`; return the number of messages."""
    with path.open("rb") as fh:
        catalog = read_po(fh, locale="en")
    count = 0
    for message in catalog:
        if not message.id:
            continue  # the header
        if message.pluralizable:
            singular, plural = message.id[0], message.id[1]
            forms = catalog.num_plurals
            message.string = tuple([singular] + [plural] * (forms - 1))
        else:
            message.string = message.id
        message.flags.discard("fuzzy")
        count += 1
    catalog.obsolete.clear()
    with path.open("wb") as fh:
        write_po(fh, catalog)
    return count


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_PO
    if not path.exists():
        print(f"{path} does not exist; run `pybabel init ... -l en` first", file=sys.stderr)
        return 1
    print(f"{path}: {fill(path)} messages filled")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
