"""Locale choice and the labels of fixed values (statuses, kinds, roles)."""

from __future__ import annotations

from functools import lru_cache

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import get_locale, get_translations
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from ideaboard import formats

LOCALE_COOKIE = "lang"
#: The request headers a page's language comes from (the cookie, else Accept-Language):
#: every answer whose language was chosen names them in Vary, so no shared cache hands
#: one reader's language to another.
VARY = ("Accept-Language", "Cookie")

STATUS_LABELS = {
    "heard": _l("Heard"),
    "under_review": _l("Under review"),
    "planned": _l("Planned"),
    "in_progress": _l("In progress"),
    "shipped": _l("Shipped"),
    "declined": _l("Declined"),
    "merged": _l("Merged"),
}
KIND_LABELS = {
    "idea": _l("Idea"),
    "problem": _l("Problem"),
    "product": _l("New product"),
}
SORT_LABELS = {
    "trending": _l("Trending"),
    "top": _l("Top"),
    "new": _l("New"),
}
#: Labels for form fields echoed back on the "form expired" page.
FIELD_LABELS = {
    "title": _l("Title"),
    "body": _l("Text"),
    "note": _l("Note"),
    "email": _l("Email"),
    "display_name": _l("Name others will see"),
    "status": _l("Status"),
    "kind": _l("Kind"),
    "board": _l("Board"),
}
ROLE_LABELS = {
    "member": _l("Member"),
    "moderator": _l("Moderator"),
    "staff": _l("Staff"),
    "admin": _l("Admin"),
}


def _label(kind: str, table: dict, value: str) -> str:
    """A fixed value's label, translated once per request (lists show dozens)."""
    cache = g.setdefault("_labels", {})
    key = (kind, value)
    if key not in cache:
        cache[key] = str(table.get(value, value))
    return cache[key]


def status_label(value: str) -> str:
    return _label("status", STATUS_LABELS, value)


def kind_label(value: str) -> str:
    return _label("kind", KIND_LABELS, value)


def select_locale() -> str:
    """The person's chosen language, else their browser's, else the site default."""
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    g.locale_negotiated = True  # the answer now depends on the headers named in VARY
    return locale_of(request, current_app.config)


def locale_of(req, config) -> str:
    """select_locale() for any werkzeug request (the page cache asks before Flask does)."""
    return locale_from(
        req.cookies.get(LOCALE_COOKIE), req.headers.get("Accept-Language", ""), config
    )


def locale_from(chosen: str | None, accept_language: str, config) -> str:
    """The chosen language (the cookie's), else the browser's best, else the default."""
    languages = tuple(config["LANGUAGES"])
    if chosen in languages:
        return chosen
    return _browser_language(accept_language, languages) or config["BABEL_DEFAULT_LOCALE"]


@lru_cache(maxsize=512)
def _browser_language(header: str, languages: tuple[str, ...]) -> str | None:
    # Browsers send a handful of distinct headers; parsing one costs more than the lookup.
    return parse_accept_header(header, LanguageAccept).best_match(languages)


def _translations():
    """The catalog for this request's locale, found once per request and locale.

    Flask-Babel's own template callables look the catalog up again for every string (a
    dozen context lookups each; a board page has about fifty strings). The catalog depends
    only on the locale, which Flask-Babel keeps per request (and force_locale() swaps for
    another Locale object), so it is kept beside it. Without that state (no request, or
    another Flask-Babel version) this is exactly get_translations().
    """
    state = g.get("_flask_babel") if g else None
    locale = getattr(state, "babel_locale", None)
    if locale is None:
        return get_translations()
    kept = getattr(state, "ideaboard_translations", None)
    if kept is not None and kept[0] is locale:
        return kept[1]
    translations = get_translations()
    state.ideaboard_translations = (locale, translations)
    return translations


def init_app(app: Flask) -> None:
    formats.init_app(app)  # numbers and dates per locale, beside the catalogs
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.globals.update(
        STATUS_LABELS=STATUS_LABELS,
        KIND_LABELS=KIND_LABELS,
        SORT_LABELS=SORT_LABELS,
        ROLE_LABELS=ROLE_LABELS,
        FIELD_LABELS=FIELD_LABELS,
        status_label=status_label,
        kind_label=kind_label,
    )

    # Registered after the page cache's hooks, so this runs before the cache stores the
    # response: cached pages and the visitor fast path replay the same Vary.
    @app.after_request
    def _vary_on_language(resp):
        if g.get("locale_negotiated"):
            for header in VARY:
                resp.vary.add(header)
        return resp

    @app.context_processor
    def _locale():
        return {"current_locale": str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"])}
