"""Atom 1.0 documents (RFC 4287), built with xml.etree: every text is escaped by the
serialiser, never by hand, and user HTML goes in only as sanitised text of a
`type="html"` element (markup.render_markdown, the one sanitiser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from flask import current_app, request

ATOM_NS = "http://www.w3.org/2005/Atom"
MIMETYPE = "application/atom+xml"
#: Characters XML 1.0 cannot carry at all (a title may hold them): dropped, not escaped.
_NOT_XML = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF], None)


def absolute(path: str) -> str:
    """`path` (as the app builds it, script root included) on BASE_URL's scheme and host:
    feeds are read elsewhere, so every link in them is absolute, and never from the
    request's Host header."""
    base = urlsplit(current_app.config["BASE_URL"])
    return f"{base.scheme}://{base.netloc}{path}"


def _clean(text: str) -> str:
    return (text or "").translate(_NOT_XML)


def _stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")  # stored times are naive UTC


@dataclass
class Entry:
    id: str
    title: str
    link: str
    published: datetime
    updated: datetime
    author: str
    html: str  #: already sanitised HTML (escaped again by the serialiser, as Atom says)


@dataclass
class Feed:
    title: str
    alternate: str  #: absolute URL of the page that lists the same
    entries: list[Entry] = field(default_factory=list)
    subtitle: str = ""

    @property
    def updated(self) -> datetime | None:
        """The newest entry's update time (None for an empty feed)."""
        return max((e.updated for e in self.entries), default=None)

    def to_xml(self, fallback_updated: datetime) -> bytes:
        """The feed as UTF-8 XML; `fallback_updated` dates a feed with no entries."""
        ET.register_namespace("", ATOM_NS)

        def sub(parent, tag, text=None, **attrs):
            el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
            if text is not None:
                el.text = _clean(text)
            return el

        self_url = absolute(request.path)
        root = ET.Element(f"{{{ATOM_NS}}}feed")
        sub(root, "id", self_url)
        sub(root, "title", self.title)
        if self.subtitle:
            sub(root, "subtitle", self.subtitle)
        sub(root, "updated", _stamp(self.updated or fallback_updated))
        sub(root, "link", rel="self", type=MIMETYPE, href=self_url)
        sub(root, "link", rel="alternate", type="text/html", href=self.alternate)
        sub(root, "generator", "Ideaboard")
        for e in self.entries:
            entry = sub(root, "entry")
            sub(entry, "id", e.id)
            sub(entry, "title", e.title)
            sub(entry, "updated", _stamp(e.updated))
            sub(entry, "published", _stamp(e.published))
            author = sub(entry, "author")
            sub(author, "name", e.author)
            sub(entry, "link", rel="alternate", type="text/html", href=e.link)
            sub(entry, "content", e.html, type="html")
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)
