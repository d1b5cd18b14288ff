"""Forms shared across areas. Forms parse and carry CSRF; the rules live in services."""

from __future__ import annotations

from functools import lru_cache

from babel import support
from flask import has_request_context
from flask_babel import get_locale
from flask_wtf import FlaskForm as _FlaskForm
from wtforms.i18n import messages_path

from ideaboard.services.errors import ValidationError


@lru_cache(maxsize=16)
def _wtforms_catalog(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class _WTFormsTranslations:
    """WTForms' own messages ("Not a valid integer value.") in the request's language."""

    @staticmethod
    def _catalog():
        locale = get_locale() if has_request_context() else None
        return None if locale is None else _wtforms_catalog(str(locale))

    def gettext(self, string: str) -> str:
        catalog = self._catalog()
        return string if catalog is None else catalog.gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        catalog = self._catalog()
        if catalog is None:
            return singular if n == 1 else plural
        return catalog.ngettext(singular, plural, n)


_TRANSLATIONS = _WTFormsTranslations()


class FlaskForm(_FlaskForm):
    """Every form's base: Flask-WTF's, but with WTForms' catalogue read once per language
    per process. Flask-WTF parses it from disk again in every request that renders a form
    (about 0.3 ms of each member's thread page, which carries the reply form)."""

    class Meta(_FlaskForm.Meta):
        def get_translations(self, form):
            return _TRANSLATIONS


def apply_errors(form: FlaskForm, error: ValidationError) -> None:
    """Show a service's validation messages beside the matching fields."""
    for name, message in error.errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message] if field.errors else [message]
        else:
            form.form_errors.append(message)
