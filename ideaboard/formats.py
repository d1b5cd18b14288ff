"""Numbers and dates as the reader's language writes them.

Counts are grouped per locale (10,000 in English, 10 000 in Russian) by the `number`
filter. Dates are rendered absolute on the server, in UTC, inside
`<time class="when" datetime="...Z">`: a cached page stays true however old it gets, and a
reader without JavaScript sees the date. static/js/app.js then rewrites each one as
relative text ("3 days ago") in the page's language, with the exact local date and time as
its title, in the reader's own time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from babel.dates import format_date, format_time
from babel.numbers import format_decimal
from flask import Flask
from flask_babel import get_locale


def _locale():
    return get_locale() or "en"


def number(value) -> str:
    """A count grouped as the current language writes it: 10,000 or 10 000."""
    if value is None:
        return ""
    return number_in(value, _locale())


def number_in(value, locale) -> str:
    """number() in a given locale (the vote fast path answers outside a request)."""
    return format_decimal(value, locale=locale)


def grouped(text: str, value: int) -> str:
    """`text` (a message formatted with %(num)d) with its number grouped: plurals keep
    their %(num)d placeholders, which cannot group, and the sentence holds the number once.
    """
    if value is None or -1000 < value < 1000:
        return text
    return text.replace(str(value), number(value), 1)


class When(NamedTuple):
    """What the `when` macro (templates/_macros/ideas.html) writes into its <time>."""

    iso: str  #: the datetime attribute, in UTC
    day: str  #: the text: the date, in UTC
    exact: str  #: the title: date and time, in UTC, said so


def when(dt: datetime) -> When:
    """The parts of a date's <time> element, for a stored (naive UTC) datetime; the page's
    script replaces the text and title with the reader's own."""
    locale = _locale()
    day = format_date(dt, "medium", locale=locale)
    return When(
        iso=dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        day=day,
        exact=f"{day}, {format_time(dt, 'short', locale=locale)} UTC",
    )


def init_app(app: Flask) -> None:
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["grouped"] = grouped
    app.jinja_env.globals["time_parts"] = when
