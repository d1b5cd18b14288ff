"""Translations: complete catalogs, intact placeholders, and pages in the chosen language.

When a catalog test fails after new strings were added, refresh the catalogs:

    make messages                                 # re-extract, merge into ru/ and en/
    (translate the new entries in ru/LC_MESSAGES/messages.po)
    .venv/bin/python scripts/fill_en_catalog.py   # English mirrors the msgids
    .venv/bin/pybabel compile -d ideaboard/translations --statistics
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale, ngettext

from ideaboard.config import Config

from .factories import make_comment, make_idea, make_user

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "ideaboard" / "translations"
LOCALES = tuple(Config.LANGUAGES)
# The same keywords as `make messages`: Babel's defaults (gettext, ngettext, pgettext…)
# plus the lazy forms.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_pgettext": ((1, "c"), 2)}
# printf conversions, named or not, including a literal %% (Jinja formats every string).
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")


def _extracted() -> dict[str, list[str]]:
    """Every msgid the code uses now (singular id for plurals) -> where it is used."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(ROOT / "babel.cfg"))
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, directory_filter=_not_hidden
    ):
        msgid = message[0] if isinstance(message, tuple | list) else message
        if msgid:
            found.setdefault(_key(msgid, context), []).append(f"{filename}:{lineno}")
    return found


def _not_hidden(path) -> bool:
    # As `make messages` (--ignore-dirs ".*"): Babel's default also skips "_" folders,
    # which dropped every string of templates/_macros/ from the catalogs.
    return not Path(path).name.startswith(".")


def test_every_template_with_strings_is_extracted():
    """Each template that marks a string for translation gives the catalogs at least one."""
    extracted = {where.split(":")[0] for places in _extracted().values() for where in places}
    marked = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "templates").rglob("*.html")
        if re.search(r"\b(?:_|gettext|ngettext)\(", path.read_text(encoding="utf-8"))
    }
    assert marked - extracted == set()


def _key(msgid: str, context: str | None) -> str:
    return f"{context}\x04{msgid}" if context else msgid


def _catalog(locale: str):
    path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing; run pybabel init -l {locale}")
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _forms(message) -> list[str]:
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string]


def _text(value: str | bytes | None) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _msgid(value) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def _page(client, path: str, accept: str) -> str:
    """GET `path` with Accept-Language `accept` and return the HTML."""
    resp = client.get(path, headers={"Accept-Language": accept})
    assert resp.status_code == 200, path
    return resp.get_data(as_text=True)


@pytest.fixture(scope="module")
def extracted():
    return _extracted()


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_covers_every_extracted_message(extracted, locale):
    """Every message in the code is in the catalog, translated in every plural form, not fuzzy."""
    assert extracted, "the extractor found no messages: check babel.cfg"
    catalog = _catalog(locale)
    problems = []
    for key, places in sorted(extracted.items()):
        context, _sep, msgid = key.rpartition("\x04")
        message = catalog.get(msgid, context or None)
        if message is None:
            problems.append(f"missing: {msgid!r} ({places[0]})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({places[0]})")
        elif not all(_forms(message)) or (
            message.pluralizable and len(_forms(message)) != catalog.num_plurals
        ):
            problems.append(f"untranslated: {msgid!r} ({places[0]})")
    assert not problems, (
        f"{locale} catalog is behind the code ({len(problems)}); see this file's docstring:\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_placeholders(locale):
    """Each translation carries exactly the placeholders of its msgid (and no stray %)."""
    catalog = _catalog(locale)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        expected = set().union(*(_placeholders(i) for i in ids))
        for n, form in enumerate(_forms(message)):
            if form and _placeholders(form) != expected:
                problems.append(f"{ids[0]!r} form {n}: {form!r} (expected {sorted(expected)})")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_po(locale):
    """The .mo the app loads holds the same translations as the .po (it was recompiled)."""
    po = _catalog(locale)
    mo_path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
    assert mo_path.exists(), f"run: pybabel compile -d {TRANSLATIONS.relative_to(ROOT)}"
    with mo_path.open("rb") as fh:
        mo = read_mo(fh)
    # Babel's read_mo leaves a message's context (pgettext) as bytes: key by its text.
    compiled_by_key = {(_msgid(m.id), _text(m.context)): m for m in mo if m.id}
    stale = []
    for message in po:
        if not message.id or message.fuzzy:
            continue
        compiled = compiled_by_key.get((_msgid(message.id), message.context))
        if compiled is None or _forms(compiled) != _forms(message):
            stale.append(repr(message.id))
    assert not stale, f"{mo_path.relative_to(ROOT)} is stale; recompile. Differs: " + ", ".join(
        stale[:20]
    )


def test_accept_language_picks_the_page_language(client):
    """Accept-Language: ru renders Russian with lang="ru"; en renders English with lang="en"."""
    ru = _page(client, "/", "ru-RU,ru;q=0.9")
    assert '<html lang="ru">' in ru
    assert "Дорожная карта" in ru
    assert "Предложить идею" in ru
    assert ">Roadmap<" not in ru

    en = _page(client, "/", "en-GB,en;q=0.9")
    assert '<html lang="en">' in en
    assert "Roadmap" in en
    assert "Post an idea" in en
    assert "Дорожная карта" not in en


def test_language_switch_cookie_overrides_browser(client):
    """POST /lang with lang=ru sets a cookie; pages stay Russian under Accept-Language: en."""
    resp = client.post("/lang", data={"lang": "ru", "next": "/roadmap"})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/roadmap")
    assert any(c.startswith("lang=ru") for c in resp.headers.getlist("Set-Cookie"))

    for path in ("/", "/roadmap", "/ideas"):
        page = _page(client, path, "en")
        assert '<html lang="ru">' in page, path
        assert "Дорожная карта" in page, path

    client.post("/lang", data={"lang": "en", "next": "/"})
    page = _page(client, "/", "ru")
    assert '<html lang="en">' in page
    assert "Roadmap" in page


def test_language_switch_ignores_unknown_language(client):
    """POST /lang with an unsupported language sets no cookie and keeps the browser's choice."""
    resp = client.post("/lang", data={"lang": "xx", "next": "/"})
    assert resp.status_code == 303
    assert not any(c.startswith("lang=") for c in resp.headers.getlist("Set-Cookie"))
    page = _page(client, "/", "ru")
    assert '<html lang="ru">' in page


def test_russian_plural_forms_on_pages(client):
    """Ideas with 1, 3 and 5 comments show «комментарий», «комментария», «комментариев»."""
    commenter = make_user()
    expected = {}
    for count, word in ((1, "комментарий"), (3, "комментария"), (5, "комментариев")):
        idea = make_idea(title=f"Plural check {count}")
        for _ in range(count):
            make_comment(idea, author=commenter)
        expected[idea.id] = f"{count} {word}"

    listing = _page(client, "/ideas", "ru")
    for text in expected.values():
        assert text in listing
    for wrong in ("1 комментария", "1 комментариев", "3 комментариев", "5 комментария"):
        assert wrong not in listing

    for idea_id, text in expected.items():
        page = _page(client, f"/ideas/{idea_id}", "ru")
        assert f'<span id="comment-count">{text}</span>' in page


@pytest.mark.parametrize(
    ("n", "comments", "votes"),
    [
        (1, "1 комментарий", "1 голос"),
        (2, "2 комментария", "2 голоса"),
        (5, "5 комментариев", "5 голосов"),
        (11, "11 комментариев", "11 голосов"),
        (12, "12 комментариев", "12 голосов"),
        (21, "21 комментарий", "21 голос"),
        (22, "22 комментария", "22 голоса"),
        (111, "111 комментариев", "111 голосов"),
    ],
)
def test_russian_plural_rule(app, n, comments, votes):
    """The ru catalog's plural rule picks the right form for numbers ending in 1, 2-4, 11-14."""
    with app.test_request_context("/"), force_locale("ru"):
        assert ngettext("%(num)d comment", "%(num)d comments", n) == comments
        assert ngettext("%(num)d vote", "%(num)d votes", n) == votes


def test_template_strings_follow_the_locale_within_one_request(app):
    """Templates keep their catalog per request, yet force_locale (mail in the reader's
    language) switches it and switching back restores it."""
    from flask_babel import force_locale

    template = app.jinja_env.from_string("{{ _('Heard') }}")
    # Each request in its own app context (and so its own `g`), as in production.
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert template.render() == "Heard"
        with force_locale("ru"):
            russian = template.render()
        assert template.render() == "Heard"
    assert russian not in ("", "Heard")
    with app.app_context(), app.test_request_context("/", headers={"Accept-Language": "ru"}):
        assert template.render() == russian


@pytest.mark.parametrize(
    ("language", "message"), [("ru", "Неверное целое число."), ("en", "Not a valid integer value.")]
)
def test_wtforms_own_messages_come_in_the_requests_language(app, language, message):
    """A field's built-in message is in the visitor's language (the forms' base reads
    WTForms' catalogue once per language, not once per request)."""
    from werkzeug.datastructures import MultiDict

    from ideaboard.community.forms import ReplyForm

    for _ in range(2):  # the second form reads the kept catalogue
        with app.test_request_context("/", headers={"Accept-Language": language}):
            form = ReplyForm(formdata=MultiDict({"body": "x", "quote_of": "abc"}))
            form.validate()
            assert form.quote_of.errors == [message]
