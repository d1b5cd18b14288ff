"""Fill the en catalog (msgstr = msgid) and the ru catalog from a JSON file of translations.

Usage: python fill_po.py REPO translations.json
JSON: {"msgid": "перевод", "singular msgid": ["форма1", "форма2", "форма3"], ...}
(a plural entry is keyed by its singular msgid). Prints ru messages still untranslated.
"""
import json
import sys

from babel.messages.pofile import read_po, write_po

repo, path = sys.argv[1], sys.argv[2]
tr = json.load(open(path, encoding="utf-8"))
for loc in ("en", "ru"):
    po = f"{repo}/ideaboard/translations/{loc}/LC_MESSAGES/messages.po"
    with open(po, "rb") as fh:
        cat = read_po(fh, locale=loc)
    missing = []
    for m in cat:
        if not m.id:
            continue
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        if loc == "en":
            if isinstance(m.id, tuple):
                if not all(m.string):
                    m.string = (m.id[0], m.id[1])
            elif not m.string:
                m.string = m.id
            m.flags.discard("fuzzy")
            continue
        done = all(m.string) if isinstance(m.string, tuple) else bool(m.string)
        if key in tr:
            val = tr[key]
            if isinstance(m.id, tuple):
                assert isinstance(val, list) and len(val) == 3, key
                m.string = tuple(val)
            else:
                assert isinstance(val, str), key
                m.string = val
            m.flags.discard("fuzzy")
        elif not done or "fuzzy" in m.flags:
            missing.append(key)
    with open(po, "wb") as fh:
        write_po(fh, cat, width=76)
    if loc == "ru":
        for k in missing:
            print("MISSING:", k)
