"""render_markdown and its sanitiser: allowlisted output, safe links, hostile input made inert."""

from __future__ import annotations

import pytest

from ideaboard.markup import ALLOWED_TAGS, render_markdown, sanitize_html

from .conftest import sqlite_pass_only
from .oracle import (
    REQUIRED_REL,
    SAFE_SCHEMES,
    assert_inert,
    inert_problems,
    page_problems,
    parse,
    payload_params,
    url_scheme,
)

#: render_markdown and the sanitiser are pure functions of their text: once is enough.
pytestmark = sqlite_pass_only

SAMPLE = """\
# Heading

Some **bold**, *emphasis*, ~~gone~~ and `inline code`.

- one
- two

1. first
2. second

> quoted

```python
print("hi")
```

| Left | Right |
|:-----|------:|
| 1    | 2     |

[a link](https://a.test/page "title") and ![a picture](https://a.test/p.png)
"""


def tags(html: str) -> set[str]:
    return {n.tag for n in parse(html).descendants()}


def rel_tokens(node) -> set[str]:
    return set((node.get("rel") or "").split())


# --- ordinary Markdown --------------------------------------------------------------------


def test_ordinary_markdown_renders_to_allowlisted_tags():
    """Headings, emphasis, lists, code, quotes, tables, links and images use allowlisted tags."""
    html = render_markdown(SAMPLE)
    expected = {"h1", "strong", "em", "s", "code", "pre", "ul", "ol", "li", "blockquote"}
    expected |= {"table", "thead", "tbody", "tr", "th", "td", "a", "img", "p"}
    assert expected <= tags(html), f"missing {expected - tags(html)} in {html}"
    assert tags(html) <= ALLOWED_TAGS
    assert_inert(html, fragment=True)


def test_markdown_keeps_text_and_code_verbatim():
    """Code spans and blocks keep their characters as text, escaped."""
    tree = parse(render_markdown("`<b>x</b>`\n\n```\n<script>alert(1)</script>\n```"))
    assert [n.text for n in tree.select("code")] == ["<b>x</b>", "<script>alert(1)</script>\n"]
    assert not tree.select("b") and not tree.select("script")


# --- links --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, href",
    [
        ("[x](https://a.test)", "https://a.test"),
        ("<https://a.test>", "https://a.test"),
        ("[mail](mailto:someone@a.test)", "mailto:someone@a.test"),
        ("see https://example.com/page now", "https://example.com/page"),
    ],
    ids=["inline", "angle-autolink", "mailto", "bare-autolink"],
)
def test_user_links_get_nofollow_ugc_noopener(source, href):
    """Every user link, written or auto-linked, carries rel nofollow, ugc and noopener."""
    links = parse(render_markdown(source)).select("a")
    assert [a.get("href") for a in links] == [href]
    assert rel_tokens(links[0]) >= REQUIRED_REL


def test_bare_autolink_on_test_domain_is_never_a_link_without_rel():
    """A bare https://a.test in text is either left as text or linked with the full rel."""
    html = render_markdown("see https://a.test now")
    assert "https://a.test" in parse(html).text
    for a in parse(html).select("a"):
        assert rel_tokens(a) >= REQUIRED_REL, html


@pytest.mark.parametrize(
    "source",
    [
        "[a](javascript:alert(1))",
        "[a](JaVaScRiPt:alert(1))",
        "[a](&#106;avascript:alert(1))",
        "[a](<javascript:alert(1)>)",
        "[a](vbscript:msgbox(1))",
        "[a](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "![a](data:image/png;base64,iVBORw0KGgo=)",
        "![a](javascript:alert(1))",
        "[a][ref]\n\n[ref]: javascript:alert(1)",
        "<javascript:alert(1)>",
        "<vbscript:msgbox(1)>",
        "[a](java\tscript:alert(1))",
        "[a](\x01javascript:alert(1))",
    ],
)
def test_dangerous_link_schemes_lose_their_url(source):
    """javascript:, vbscript: and data: URLs never reach an href or src."""
    html = render_markdown(source)
    for node in parse(html).descendants():
        for name in ("href", "src"):
            if node.has(name):
                assert url_scheme(node.get(name)) in (None, *SAFE_SCHEMES), html
    assert_inert(html, fragment=True)


@pytest.mark.parametrize(
    "source",
    [
        "[a](ftp://a.test/file)",
        "[a](tel:5550100)",
        "[a](sms:5550100)",
        "[a](ms-settings:1)",
        "[a](search-ms:123)",
        "[a](intent:1)",
        "![a](cid:123)",
    ],
)
def test_link_schemes_outside_the_allowlist_are_dropped(source):
    """Only http, https and mailto (or relative) URLs survive, whatever follows the colon."""
    assert_inert(render_markdown(source), fragment=True)


@pytest.mark.parametrize(
    "fragment",
    [
        '<a href="javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href="&#x6A;avascript&colon;alert(1)">x</a>',
        '<a href=" vbscript:msgbox(1)">x</a>',
        '<img src="data:text/html;base64,PHNjcmlwdD4=">',
        '<img src="javascript:alert(1)" alt="x">',
        # A scheme followed by digits only: bleach's vendored urlparse reads it as a path.
        '<a href="javascript:1">x</a>',
        '<a href="jav&#x09;ascript:1">x</a>',
    ],
)
def test_sanitiser_drops_dangerous_urls_in_raw_html(fragment):
    """The sanitiser alone (raw HTML, no Markdown) removes unsafe URLs, however encoded."""
    assert_inert(sanitize_html(fragment), fragment=True)


# --- raw HTML and active attributes -------------------------------------------------------


def test_raw_html_in_markdown_is_text():
    """HTML typed into Markdown shows as text; no element comes from it."""
    source = '<b>bold</b> <script>alert(1)</script> <img src=x onerror=alert(1)> <a href="/x">a</a>'
    tree = parse(render_markdown(source))
    assert tags(render_markdown(source)) == {"p"}
    assert tree.text.strip() == source


@pytest.mark.parametrize("render", [render_markdown, sanitize_html], ids=["markdown", "sanitiser"])
def test_htmx_attributes_never_survive(render):
    """hx-* and data-hx-* attributes (which would fire requests) are always stripped."""
    source = (
        '<a href="/ok" hx-get="/x" data-hx-post="/y" hx-trigger="load" hx-on:click="x">a</a>'
        '<p data-hx-get="/z" hx-swap-oob="true">p</p>'
    )
    for node in parse(render(source)).descendants():
        assert not [k for k, _ in node.attrs if k.startswith(("hx-", "data-hx-"))]
    assert_inert(render(source), fragment=True)


MUTATION_XSS = [
    "<svg><script>alert(1)</script></svg>",
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    "<svg><p><style><img src=x onerror=alert(1)>",
    "<style>*{color:red}</style><style><img src=x onerror=alert(1)></style>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><img src=x onerror=alert(1)></template>",
    "<xmp><img src=x onerror=alert(1)></xmp>",
    "<noembed><img src=x onerror=alert(1)></noembed>",
    "<title><img src=x onerror=alert(1)></title>",
]
RAW_TEXT_TAGS = {"svg", "math", "style", "iframe", "noscript", "template", "xmp", "noembed"}


@pytest.mark.parametrize("render", [render_markdown, sanitize_html], ids=["markdown", "sanitiser"])
@pytest.mark.parametrize("source", MUTATION_XSS)
def test_svg_math_style_iframe_noscript_template_never_appear(render, source):
    """Namespace and raw-text elements (the mutation-XSS families) never come out as tags."""
    html = render(source)
    assert not tags(html) & (RAW_TEXT_TAGS | {"title", "script"}), html
    assert_inert(html, fragment=True)


# --- the shared corpus --------------------------------------------------------------------


@pytest.mark.parametrize("payload", payload_params())
def test_corpus_payload_renders_inert(payload):
    """Every shared payload, rendered as Markdown, passes the oracle."""
    assert_inert(render_markdown(payload.text), fragment=True, context=f"line {payload.line}")


@pytest.mark.parametrize("payload", payload_params())
def test_corpus_payload_sanitised_as_raw_html_is_inert(payload):
    """Every shared payload, sanitised as raw HTML (no Markdown step), passes the oracle."""
    assert_inert(sanitize_html(payload.text), fragment=True, context=f"line {payload.line}")


# --- the oracle itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        "<svg></svg>",
        '<img src="x" onerror="alert(1)">',
        '<p style="color:red">x</p>',
        '<p class="x">x</p>',
        '<p hx-get="/x">x</p>',
        '<p data-hx-post="/x">x</p>',
        '<a href="javascript:alert(1)" rel="nofollow ugc noopener">x</a>',
        '<a href="jav&#x09;ascript:alert(1)" rel="nofollow ugc noopener">x</a>',
        '<a href="&#x0A;JaVaScRiPt&colon;alert(1)" rel="nofollow ugc noopener">x</a>',
        '<a href="vbscript:x" rel="nofollow ugc noopener">x</a>',
        '<img src="data:text/html,x">',
        '<a href="https://a.test">no rel</a>',
    ],
)
def test_oracle_rejects_active_fragments(html):
    """The oracle is not a rubber stamp: each of these is reported."""
    assert inert_problems(html, fragment=True)


@pytest.mark.parametrize(
    "html",
    [
        '<p><a href="https://a.test" rel="nofollow ugc noopener">x</a> <img src="/p.png" alt="">',
        '<a href="mailto:a@a.test" rel="nofollow noopener ugc">m</a>',
        '<a href="/relative?a=1&amp;b=2" rel="nofollow ugc noopener">r</a>',
        # Decoded once, as a browser does, this is the relative URL "&#x6A;avascript:x".
        '<a href="&amp;#x6A;avascript:x" rel="nofollow ugc noopener">r</a>',
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
    ],
)
def test_oracle_accepts_inert_fragments(html):
    """Sanitised output, relative URLs and escaped markup pass."""
    assert inert_problems(html, fragment=True) == []


def test_oracle_scopes_pages_to_user_content_and_checks_scripts():
    """Pages: only data-user-content is allowlisted; scripts and handlers are checked anywhere."""
    ours = (
        '<html><body hx-headers="{}"><script src="/static/js/app.js" defer></script>'
        '<form method="post"><input name="q"></form>'
        "<div data-user-content><p>fine</p></div></body></html>"
    )
    assert inert_problems(ours) == [] and page_problems(ours) == []
    assert inert_problems(ours.replace("<p>fine</p>", "<form></form>"))
    assert page_problems(ours.replace("<form", '<form onsubmit="x()"'))
    assert page_problems(ours.replace('src="/static/js/app.js"', 'src="//evil.test/x.js"'))
    assert page_problems(ours.replace("</body>", "<script>alert(1)</script></body>"))


def test_concurrent_renders_stay_correct():
    """Many threads sanitising at once each get their own, correct result (no shared parser)."""
    import threading

    from ideaboard.markup import sanitize_html

    docs = [
        f"<p>doc {n} <b>bold</b> <a href='https://x.test/{n}'>l</a></p>" * 40 for n in range(16)
    ]
    expected = [str(sanitize_html(d)) for d in docs]
    barrier = threading.Barrier(len(docs))
    results, errors = [None] * len(docs), []

    def work(i):
        barrier.wait()
        try:
            for _ in range(20):
                results[i] = str(sanitize_html(docs[i]))
                assert results[i] == expected[i]
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(docs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and results == expected


# --- cost: linear in the input ----------------------------------------------------------

#: Shapes that made a parser or linkifier scan the same characters again and again: `(`
#: after a URL (bleach's linkifier: 1.2 s at 10 KB, 4.8 s at 20 KB), `a-a-a-…` (the same
#: pattern, from every hyphen), deep emphasis (html5lib walks every open element again).
ADVERSARIAL = {
    "url-then-open-parens": lambda n: "http://a.b/" + "(" * (n - 11),
    "open-parens-then-url": lambda n: "(" * (n - 13) + "http://a.com/",
    "url-then-close-parens": lambda n: "http://a.com/" + ")" * (n - 13),
    "url-then-commas": lambda n: "http://a.com/" + "," * (n - 13),
    "hyphenated-word": lambda n: "a-" * (n // 2),
    "dotted-word": lambda n: "a." * (n // 2),
    "www-then-dots": lambda n: "www." + "a." * (n // 2 - 2),
    "dots-after-host": lambda n: "http://a" + "." * (n - 8),
    "underscores": lambda n: "a" + "_" * (n - 1),
    "at-signs": lambda n: "a" + "@" * (n - 1),
    "open-brackets": lambda n: "[" * n,
    "unclosed-links": lambda n: "[a](" * (n // 4),
    "unclosed-images": lambda n: "![" * (n // 2),
    "nested-emphasis": lambda n: "*" * (n // 2 - 1) + "a" + "*" * (n // 2 - 1),
    "unclosed-strong": lambda n: "**a" * (n // 3),
    "backticks-and-letters": lambda n: "`a" * (n // 2),
    "angle-brackets": lambda n: "<" * n,
    "ampersands": lambda n: "&" * n,
    "schemes": lambda n: "http://" * (n // 7),
    "wide-table": lambda n: "|a" * (n // 4) + "\n" + "|-" * (n // 4 - 1),
}


def _render_cpu_seconds(text: str, rounds: int = 5) -> float:
    """The least process CPU time of a few uncached renders (others' load barely moves it).

    As timeit does, the cyclic garbage collector is off while timing: when it runs depends
    on what earlier tests left, not on the text.
    """
    import gc
    import time

    from ideaboard.markup import _render_cached

    best = float("inf")
    for _ in range(rounds):
        _render_cached.cache_clear()
        gc.collect()
        gc.disable()
        try:
            started = time.process_time()
            render_markdown(text)
            best = min(best, time.process_time() - started)
        finally:
            gc.enable()
    return best


@pytest.mark.parametrize("shape", list(ADVERSARIAL), ids=list(ADVERSARIAL))
def test_rendering_hostile_text_costs_time_linear_in_its_length(shape):
    """10 KB of a hostile shape renders in well under a second, and 20 KB costs at most
    three times as much (a quadratic scan costs four)."""
    make = ADVERSARIAL[shape]
    small, large = make(10_000), make(20_000)
    assert 9_000 <= len(small) <= 10_000 and len(large) >= 1.9 * len(small)
    t_small = _render_cpu_seconds(small)
    t_large = _render_cpu_seconds(large)
    assert t_small < 0.5, f"{shape}: 10 KB took {t_small:.3f} s of CPU"
    # A few milliseconds of slack: tiny timings are dominated by the clock and the allocator.
    assert t_large <= 3 * t_small + 0.005, (
        f"{shape}: 10 KB {t_small * 1000:.1f} ms, 20 KB {t_large * 1000:.1f} ms of CPU"
    )


def test_deep_inline_nesting_is_kept_as_typed_text():
    """Emphasis nested past the limit shows its asterisks instead of more elements."""
    from ideaboard.markup import MAX_INLINE_NESTING

    tree = parse(render_markdown("*" * 200 + "deep" + "*" * 200))
    assert len(tree.select("strong")) + len(tree.select("em")) == MAX_INLINE_NESTING
    assert "deep" in tree.text and "*" in tree.text
