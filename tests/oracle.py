"""The XSS oracle (security.md, "Oracle for items 1-5"): parse HTML, say what is not inert.

Stdlib only: `html.parser` builds a small tree. Attribute values come out of the parser
entity-decoded exactly once (it calls `html.unescape`), as a browser decodes them; decoding
twice would turn harmless text such as `&amp;#106;avascript:` into a false alarm.

- `inert_problems` / `assert_inert`: every element inside a `data-user-content` container
  (or every element of a bare fragment, such as the API's `body_html`) must have an
  allowlisted tag and attributes, no event/htmx/style attribute and only safe URL schemes;
  user links must carry rel="nofollow ugc noopener".
- `page_problems` / `assert_no_foreign_scripts`: page-wide, scripts only from /static/ with
  no inline code, no on* attribute and no active-content element anywhere.
- `parse`, `Node.select`, `text_of`: plain-text checks ("the title shows as this text").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ideaboard.markup import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

from .conftest import SHARED, shared_fixture

PAYLOAD_FILE = "xss-payloads.txt"
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
URL_ATTRS = frozenset(
    {"href", "src", "action", "formaction", "poster", "background", "xlink:href", "data", "cite"}
)
BANNED_ATTRS = frozenset({"style", "srcdoc", "formaction"})
BANNED_PREFIXES = ("on", "hx-", "data-hx-")
REQUIRED_REL = frozenset({"nofollow", "ugc", "noopener"})
# Elements our templates never use; one anywhere on a page came from user input.
FOREIGN_TAGS = frozenset(
    {
        "applet", "audio", "base", "embed", "frame", "frameset", "iframe", "marquee", "math",
        "noembed", "noscript", "object", "style", "svg", "template", "video", "xmp",
    }
)  # fmt: skip
VOID_TAGS = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()
)

# What a browser ignores inside a URL before reading its scheme: ASCII controls and
# whitespace (we also drop any other whitespace, to be strict).
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]|\s")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_SELECTOR = re.compile(
    r"(?P<tag>[\w-]+)?(?:#(?P<id>[\w-]+))?(?P<classes>(?:\.[\w-]+)*)"
    r"(?:\[(?P<attr>[\w:-]+)(?:=(?P<value>[^\]]*))?\])?"
)


# --- a tiny DOM ------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    tag: str
    attrs: list[tuple[str, str | None]]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return next((v or "" for k, v in self.attrs if k == name), None)

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.attrs)

    def descendants(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.descendants()

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def matches(self, simple: str) -> bool:
        m = _SELECTOR.fullmatch(simple)
        if m is None:
            raise ValueError(f"unsupported selector {simple!r}")
        classes = set((self.get("class") or "").split())
        return (
            (not m["tag"] or self.tag == m["tag"])
            and (not m["id"] or self.get("id") == m["id"])
            and set(filter(None, m["classes"].split("."))) <= classes
            and (not m["attr"] or self.has(m["attr"]))
            and (m["value"] is None or self.get(m["attr"]) == m["value"])
        )

    def select(self, selector: str) -> list[Node]:
        """Descendants matching `tag#id.class[attr=value]`, space-separated for nesting."""
        found = [self]
        for simple in selector.split():
            found = list(
                dict.fromkeys(n for root in found for n in root.descendants() if n.matches(simple))
            )
        return found

    def describe(self) -> str:
        shown = " ".join(f"{k}={v!r}" if v is not None else k for k, v in self.attrs)
        return f"<{self.tag}{' ' + shown if shown else ''}>"[:160]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", [])

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in VOID_TAGS:
            self.current = node

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:  # a stray end tag closes nothing
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(html: str | Node) -> Node:
    """The document tree of `html` (a Node is returned as it is)."""
    if isinstance(html, Node):
        return html
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def text_of(html: str | Node, selector: str) -> str | None:
    """The text content of the first element matching `selector`, or None if there is none."""
    found = parse(html).select(selector)
    return found[0].text if found else None


# --- the checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    message: str
    node: Node

    def __str__(self) -> str:
        return f"{self.message}: {self.node.describe()}"


def url_scheme(value: str) -> str | None:
    """The scheme a browser would read from an (already entity-decoded) URL, or None."""
    m = _SCHEME.match(_URL_NOISE.sub("", value))
    return m[1].lower() if m else None


def _attribute_allowed(allowed, tag: str, name: str, value: str | None) -> bool:
    """`allowed` in any of bleach's shapes: None (skip), dict, list or callable."""
    if allowed is None:
        return True
    if callable(allowed):
        return bool(allowed(tag, name, value or ""))
    if isinstance(allowed, dict):
        return name in allowed.get(tag, ()) or name in allowed.get("*", ())
    return name in allowed


def _element_problems(node: Node, allowed_tags, allowed_attributes) -> list[Problem]:
    problems = []
    if node.tag not in allowed_tags:
        problems.append(Problem(f"tag <{node.tag}> is not allowlisted", node))
    for name, value in node.attrs:
        if name.startswith(BANNED_PREFIXES) or name in BANNED_ATTRS:
            problems.append(Problem(f"attribute {name!r} survived", node))
        elif not _attribute_allowed(allowed_attributes, node.tag, name, value):
            problems.append(Problem(f"attribute {name!r} is not allowlisted", node))
        if name in URL_ATTRS and url_scheme(value or "") not in (None, *SAFE_SCHEMES):
            problems.append(Problem(f"{name} has scheme {url_scheme(value)!r}", node))
    if node.tag == "a" and node.has("href"):
        missing = REQUIRED_REL - set((node.get("rel") or "").split())
        if missing:
            problems.append(Problem(f"user link lacks rel {sorted(missing)}", node))
    return problems


def inert_problems(
    html: str | Node,
    *,
    allowed_tags=ALLOWED_TAGS,
    allowed_attributes=ALLOWED_ATTRIBUTES,
    fragment: bool | None = None,
) -> list[Problem]:
    """What is wrong with the user content in `html`.

    A page is checked inside its `data-user-content` containers; a bare fragment
    (`fragment=True`, or by default markup with neither containers nor <html>/<body>)
    is checked element by element.
    """
    tree = parse(html)
    containers = [n for n in tree.descendants() if n.has("data-user-content")]
    if fragment is None:
        fragment = not containers and not tree.select("html") and not tree.select("body")
    roots = [tree] if fragment else containers
    seen: set[int] = set()
    problems = []
    for root in roots:
        for node in root.descendants():
            if id(node) not in seen:
                seen.add(id(node))
                problems += _element_problems(node, allowed_tags, allowed_attributes)
    return problems


def assert_inert(html: str | Node, *, allowed_tags=ALLOWED_TAGS, context: str = "", **kw) -> None:
    """Fail, listing every problem, unless the user content in `html` is inert."""
    problems = inert_problems(html, allowed_tags=allowed_tags, **kw)
    assert not problems, f"{context}: " * bool(context) + "; ".join(map(str, problems))


def page_problems(html: str | Node) -> list[Problem]:
    """What on a whole page cannot have come from our templates."""
    problems = []
    for node in parse(html).descendants():
        if node.tag == "script":
            if not (node.get("src") or "").startswith("/static/"):
                problems.append(Problem("script not loaded from /static/", node))
            if node.text.strip():
                problems.append(Problem(f"inline script {node.text.strip()[:60]!r}", node))
        if node.tag in FOREIGN_TAGS:
            problems.append(Problem(f"foreign element <{node.tag}>", node))
        if node.tag == "meta" and node.has("http-equiv"):
            problems.append(Problem("meta http-equiv", node))
        for name, value in node.attrs:
            if name.startswith("on"):
                problems.append(Problem(f"event handler {name!r}", node))
            if name in URL_ATTRS and url_scheme(value or "") not in (None, *SAFE_SCHEMES):
                problems.append(Problem(f"{name} has scheme {url_scheme(value)!r}", node))
    return problems


def assert_no_foreign_scripts(html: str | Node, context: str = "") -> None:
    """Fail unless every script is ours and no element anywhere carries an event handler."""
    problems = page_problems(html)
    assert not problems, f"{context}: " * bool(context) + "; ".join(map(str, problems))


# --- the shared payload corpus -------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    line: int
    text: str


def _decode(line: str) -> str:
    codes = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t", "0": "\0"}
    return re.sub(r"\\([\\nrt0])", lambda m: codes[m[1]], line)


def read_payloads(path: Path) -> list[Payload]:
    """The decoded payloads of a corpus file (comments and blank lines skipped)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return [
        Payload(n, _decode(line))
        for n, line in enumerate(lines, 1)
        if line.strip() and not line.startswith("#")
    ]


def load_payloads() -> list[Payload]:
    """The shared corpus, inside a test (skips the test when the file is absent)."""
    return read_payloads(shared_fixture(PAYLOAD_FILE))


def payload_params() -> list:
    """The shared corpus as pytest params with ids `line27`…, for collection time."""
    path = SHARED / "fixtures" / PAYLOAD_FILE
    if not path.exists():
        reason = f"shared fixture {path} is absent (tests read ../shared/fixtures/)"
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(p, id=f"line{p.line}") for p in read_payloads(path)]
