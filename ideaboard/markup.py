"""User Markdown to safe HTML: the only module that imports bleach or marks text safe.

Order matters (security.md 1.4): render Markdown with raw HTML disabled, then sanitise the
result against an allowlist of tags, attributes and URL schemes, then add link relations.
"""

from __future__ import annotations

import html
import re
import threading
from functools import lru_cache, partial

import bleach
from bleach.linkifier import LinkifyFilter
from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4",
        "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title", "rel"],
    "abbr": ["title"],
    "img": ["src", "alt", "title"],
    "ol": ["start"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener"

_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_URL_ATTRIBUTES = frozenset({"href", "src"})


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    """Allowlisted attributes only; a URL keeps an allowlisted scheme, or none (relative).

    bleach's own scheme check reads "tel:123" as a relative path (digits after the colon
    look like a port), so URLs are judged here, decoded once as a browser would.
    """
    if name not in ALLOWED_ATTRIBUTES.get(tag, ()):
        return False
    if name in _URL_ATTRIBUTES:
        match = _SCHEME.match(_URL_NOISE.sub("", html.unescape(value)))
        return match is None or match[1].lower() in ALLOWED_PROTOCOLS
    return True


_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def _set_rel(attrs: dict, new: bool = False) -> dict:
    """Give every user link the relations that deny it our reputation and our window."""
    attrs[(None, "rel")] = LINK_REL
    return attrs


# bleach's parser keeps state while it works and is not thread-safe: one Cleaner shared by
# gunicorn's threads garbled concurrent renders (IndexError, 500s). One per thread.
_local = threading.local()


def _cleaner() -> bleach.sanitizer.Cleaner:
    cleaner = getattr(_local, "cleaner", None)
    if cleaner is None:
        cleaner = _local.cleaner = bleach.sanitizer.Cleaner(
            tags=ALLOWED_TAGS,
            attributes=_allowed_attribute,
            protocols=ALLOWED_PROTOCOLS,
            strip=True,
            strip_comments=True,
            filters=[partial(LinkifyFilter, callbacks=[_set_rel], skip_tags=["pre", "code"])],
        )
    return cleaner


def sanitize_html(html: str) -> Markup:
    """Clean an HTML fragment against the allowlist and mark it safe."""
    return Markup(_cleaner().clean(html))  # noqa: S704 - this is the sanitiser


def render_markdown(text: str | None) -> Markup:
    """Render user Markdown to sanitised HTML."""
    if not text:
        return Markup("")
    return _render_cached(text)


@lru_cache(maxsize=8192)
def _render_cached(text: str) -> Markup:
    # The output is a pure function of the text, so a memo needs no invalidation; it
    # spares a hot idea page re-rendering its 50 comments on every request.
    return sanitize_html(_md.render(text))


def init_app(app) -> None:
    app.jinja_env.filters["markdown"] = render_markdown
