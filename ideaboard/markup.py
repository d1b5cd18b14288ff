"""User Markdown to safe HTML: the only module that imports bleach or marks text safe.

Order matters (security.md 1.4): render Markdown with raw HTML disabled, then sanitise the
result against an allowlist of tags, attributes and URL schemes, then add link relations.

Bare URLs in text become links while the Markdown is parsed (markdown-it's linkify, with
linkify-it-py), not afterwards by bleach's LinkifyFilter, whose URL pattern begins with
"any number of `(`" and so rescans a run of `(` (or of `a-a-a-…`) from each of its
positions: a 10 KB comment of `http://a.b/` and 9,980 `(` cost 1.2 s of CPU, 20 KB 4.8 s.
linkify-it's scan is linear, and the links it makes are sanitised like any other, since
they exist before the sanitiser runs. tests/test_markup.py times adversarial shapes.
"""

from __future__ import annotations

import html
import re
import threading
from functools import lru_cache

import bleach
from bleach.html5lib_shim import Filter
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


#: Bumped whenever the same text renders differently (v2: single line breaks kept as <br>),
#: so caches that outlive a process (the shared page store) never serve the old HTML.
MARKUP_VERSION = 2

# breaks: a single line break is kept (<br>), as people type lists and addresses that way.
_md = MarkdownIt(
    "commonmark", {"html": False, "linkify": True, "typographer": False, "breaks": True}
).enable(["table", "strikethrough", "linkify"])
# As bleach's linkifier did: web addresses (with or without a scheme), not email addresses;
# no ftp:// or scheme-relative //host links, which the sanitiser would leave without href.
_md.linkify.set({"fuzzy_email": False, "fuzzy_ip": False})
_md.linkify.add("ftp:", None)
_md.linkify.add("//", None)

#: Inline elements (emphasis, strong, strikethrough, links) nested deeper than this are
#: left as the text that was typed. html5lib, under bleach, walks every open formatting
#: element again for each new one, so `*` × 5,000 + `a` + `*` × 5,000 (5,000 nested
#: <strong>) cost 0.1 s at 10 KB and 0.8 s at 40 KB; markdown-it's own maxNesting bounds
#: only blocks (quotes, lists).
MAX_INLINE_NESTING = 20


def _cap_inline_nesting(state) -> None:
    """Turn the open and close tokens past MAX_INLINE_NESTING back into their markup."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        depth, kept = 0, []  # kept: for each open token, whether it stayed an element
        for token in block.children:
            if token.nesting == 1:
                kept.append(depth < MAX_INLINE_NESTING)
                if kept[-1]:
                    depth += 1
                    continue
            elif token.nesting == -1 and kept:
                if kept.pop():
                    depth -= 1
                    continue
            else:
                continue
            token.type, token.tag, token.nesting, token.content = "text", "", 0, token.markup


_md.core.ruler.push("cap_inline_nesting", _cap_inline_nesting)


class _LinkRel(Filter):
    """Give every user link the relations that deny it our reputation and our window."""

    def __iter__(self):
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token["name"] == "a":
                token["data"] = {**token["data"], (None, "rel"): LINK_REL}
            yield token


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
            filters=[_LinkRel],  # after the allowlist: only kept links get the relations
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
