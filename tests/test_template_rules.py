"""Static checks of templates and code (security.md #8, #42): read the files, render nothing.

- Every attribute value in a template is quoted, so an expression in it can never start
  a new attribute (Django's caveat: autoescaping does not help an unquoted value).
- Nothing marks text safe outside the sanitiser: no `|safe`, no `Markup(`, no
  `render_template_string`, no `{% autoescape false %}`.
- Templates carry no inline script, style or event handler, and never a CSP nonce: pages
  are cached whole, and a nonce in a cached body would be stale (the header's is fresh).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import sqlite_pass_only

pytestmark = sqlite_pass_only

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
PACKAGE = ROOT / "ideaboard"

#: Files allowed to mark text safe, and why.
MARKUP_ALLOWED = {
    "ideaboard/markup.py": "the sanitiser: bleach's output is the only HTML made from user text",
    "ideaboard/perf/pagecache.py": "fragments from our autoescaped templates, embedded whole",
    "ideaboard/perf/rows.py": "list rows rendered by our own autoescaped macro, joined",
    "ideaboard/perf/shared.py": "the CSRF stand-in: a constant of ours, replaced before sending",
}

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_TAG = re.compile(r"<([A-Za-z][^\s<>/]*)([^<>]*)>", re.S)
_ATTR = re.compile(r"""\s*([^\s"'<>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'<>]*))?|\s*/""")


def _html_templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.html"))


def unquoted_attributes(source: str) -> list[str]:
    """Attributes whose value is not in quotes, in one template's source."""
    # Expressions become a placeholder that is neither a quote nor a tag bracket, so an
    # attribute written as name={{ value }} shows up as name=@.
    flat = _JINJA.sub(lambda m: "@" if m.group(0).startswith("{{") else " ", source)
    found = []
    for name, attrs in _TAG.findall(flat):
        pos = 0
        while pos < len(attrs.rstrip()):
            match = _ATTR.match(attrs, pos)
            if match is None or match.end() == pos:
                found.append(f"<{name}{attrs[:60]}: cannot read from {attrs[pos : pos + 20]!r}")
                break
            value = match.group(2)
            if value is not None and value[:1] not in ("'", '"'):
                found.append(f"<{name} {match.group(0).strip()}>")
            pos = match.end()
    return found


def test_the_quote_check_finds_unquoted_attributes():
    """The checker itself: unquoted expressions and literals are found, quoted ones not."""
    assert unquoted_attributes("<a href={{ url }}>x</a>")
    assert unquoted_attributes('<input value={{ v }} name="x">')
    assert unquoted_attributes("<div class=big>")
    assert not unquoted_attributes("<a href=\"{{ url }}\" title='{{ t }}'>{{ a == b }}</a>")
    assert not unquoted_attributes('<p {% if x %}hidden{% endif %} class="{{ c }}">')
    assert not unquoted_attributes('{% if cpage > 1 %}<a rel="prev">{% endif %}')
    assert not unquoted_attributes('<meta name="viewport" content="width=device-width">')
    assert not unquoted_attributes('<body hx-headers=\'{"X-CSRFToken": "{{ t }}"}\'><br/>')


@pytest.mark.parametrize("path", _html_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_every_template_attribute_is_quoted(path):
    """No attribute in any HTML template takes an unquoted value."""
    assert not unquoted_attributes(path.read_text(encoding="utf-8"))


def _python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


_MARK_SAFE = re.compile(
    r"\bMarkup\s*\(|\|\s*safe\b|render_template_string|autoescape\s*(?:=\s*False|false)"
)


def test_nothing_marks_text_safe_outside_the_sanitiser():
    """`Markup(`, `|safe`, `render_template_string` and autoescape off appear only where allowed."""
    offenders = []
    for path in _python_files() + _html_templates():
        if _rel(path) in MARKUP_ALLOWED:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _MARK_SAFE.search(line):
                offenders.append(f"{_rel(path)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_allowlist_is_still_needed():
    """Each allowlisted file still exists and still marks text safe (no stale entries)."""
    for name in MARKUP_ALLOWED:
        assert _MARK_SAFE.search((ROOT / name).read_text(encoding="utf-8")), name


_INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle\s*=|\son[a-z]+\s*=|\bhx-on|\bnonce\b", re.I
)


#: Page templates: emails are not served as pages, so the CSP does not apply to them.
PAGES = [p for p in _html_templates() if p.parent.name != "email"]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_inline_script_style_handler_or_nonce(path):
    """Scripts and styles come from files: nothing inline, and no nonce in a cached body."""
    source = _JINJA.sub(" ", path.read_text(encoding="utf-8"))
    assert not _INLINE.findall(source)
