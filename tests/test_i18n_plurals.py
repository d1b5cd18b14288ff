"""Every Russian message with a number uses a plural form.

Russian has three plural forms (1 and 21 «символ», 3 and 22 «символа», 5 and 11
«символов»): a message that puts a number into one fixed sentence reads wrong for most
numbers. So a message with an integer placeholder (`%(name)d` or `%d`) must be an
ngettext entry, with `%(num)d` for the number:

    ngettext("%(num)d vote", "%(num)d votes", count)

The only exceptions are in ALLOWED below, each with the reason no noun follows the number.
An allowed message the code no longer uses fails the test, so the list stays short.
"""

from __future__ import annotations

import re

from .conftest import sqlite_pass_only
from .test_i18n import _catalog, _extracted

pytestmark = sqlite_pass_only

# printf integer conversions, named or not (not %% and not %s).
NUMBER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*[di]")

#: msgid -> why a single form reads right for any number.
ALLOWED = {
    "Page %(n)d": "«Страница 3»: the number names the page, no noun is counted",
    "%(n)d+": "a bare count on a roadmap column («1000+»)",
    "All %(n)d": "«Все 120»: the number follows «все» and counts no noun",
    "Idea #%(id)d": "«Идея №12»: the number names the idea, no noun is counted",
    "idea #%(id)d": "«идея №12» (a thread's link to its idea): a name, not a count",
    "The thread became idea #%(id)d.": "«Обсуждение стало идеей №12»: a name, not a count",
}


def _singular(message_id) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def _with_number_not_plural() -> dict[str, str]:
    """msgid -> where it comes from, for every non-plural message holding an integer."""
    found: dict[str, str] = {}
    for message in _catalog("ru"):
        if message.id and not message.pluralizable and NUMBER.search(message.id):
            found[message.id] = "ru catalog"
    # Messages in the code but not (yet) in the catalog count too.
    for key, places in _extracted().items():
        msgid = key.rpartition("\x04")[2]
        if NUMBER.search(msgid):
            found.setdefault(msgid, places[0])
    return found


def _plural_ids() -> set[str]:
    ids = {_singular(m.id) for m in _catalog("ru") if m.id and m.pluralizable}
    return ids


def test_every_russian_message_with_a_number_is_a_plural_entry():
    """No ru message puts a number into one fixed sentence, apart from the allowlist."""
    plural = _plural_ids()
    offenders = {
        msgid: where
        for msgid, where in _with_number_not_plural().items()
        if msgid not in plural and msgid not in ALLOWED
    }
    assert not offenders, (
        "Messages with a number must use ngettext('... %(num)d thing', '... %(num)d things', n) "
        "and have three Russian forms (1/21, 3/22, 5/11); or, if no noun is counted, be added "
        "to ALLOWED with the reason:\n"
        + "\n".join(f"  {msgid!r} ({where})" for msgid, where in sorted(offenders.items()))
    )


def test_every_plural_entry_has_three_russian_forms_with_the_number():
    """Each plural entry has the one/few/many forms, each showing the same number."""
    catalog = _catalog("ru")
    assert catalog.num_plurals == 3
    problems = []
    for message in catalog:
        if not message.id or not message.pluralizable:
            continue
        forms = list(message.string)
        numbers = {tuple(NUMBER.findall(form)) for form in forms}
        if len(forms) != 3 or not all(forms) or len(numbers) != 1 or numbers == {()}:
            problems.append(f"{_singular(message.id)!r}: {forms}")
    assert not problems, "\n".join(problems)


def test_the_allowlist_names_only_messages_still_in_use():
    """Each allowed message is still used by the code and still holds a number."""
    used = {key.rpartition("\x04")[2] for key in _extracted()}
    stale = [msgid for msgid in ALLOWED if msgid not in used or not NUMBER.search(msgid)]
    assert not stale, f"remove from ALLOWED (no longer used as written): {stale}"


def test_the_check_finds_a_fixed_sentence_with_a_number():
    """The scan itself would catch a message like the old «Минимум %(n)d символов.»."""
    assert NUMBER.search("Use at least %(n)d characters.")
    assert NUMBER.search("%d minutes")
    assert not NUMBER.search("100%% sure: %(name)s")
    assert "Use at least %(n)d characters." not in _plural_ids()
