"""A cached page depends only on what its key names (perf/pagecache.py, perf/rows.py):
inputs that change URLs are in the key or refused, the key's content coding is the one the
body has, and no content can spell a stand-in that is replaced per viewer."""

from __future__ import annotations

import ast
import gzip
import http.client
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import request_started, url_for
from markupsafe import escape

from ideaboard.models.base import MAX_INT
from ideaboard.perf import fastvote, rows

from .conftest import TEST_REDIS, _reset, redis_or_skip
from .factories import login_as, make_board, make_comment, make_idea, make_user
from .servers import ROOT, gunicorn


def _http_get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _gunicorn(tmp_path: Path, database_url: str, **env):
    """The app under gunicorn with the production settings, on a free loopback port, once
    it answers /healthz."""

    def healthy(port: int, _log: str) -> bool:
        try:
            return _http_get(port, "/healthz")[0] == 200
        except OSError:
            return False

    return gunicorn(
        "wsgi:app",
        ROOT,
        tmp_path / "gunicorn.log",
        healthy,
        GUNICORN_WORKERS="1",
        DATABASE_URL=database_url,
        SECRET_KEY="test-secret-key",
        IDEABOARD_INSTANCE=str(tmp_path),
        RATELIMIT_ENABLED="false",
        **env,
    )


def test_a_script_name_from_the_proxy_cannot_poison_anyones_links(app, tmp_path):
    """Through gunicorn and Redis, a proxy-sent SCRIPT_NAME is refused and poisons no links."""
    redis_or_skip()
    make_idea(title="Poison target")
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    with _gunicorn(tmp_path, url, REDIS_URL=TEST_REDIS) as port:
        attacks = [
            _http_get(port, "//evil.example/ideas?sort=top", {"SCRIPT_NAME": "//evil.example"})
            for _ in range(3)
        ]
        for encoding in ("identity", "gzip"):
            status, body = _http_get(port, "/ideas?sort=top", {"Accept-Encoding": encoding})
            body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
            assert status == 200 and b"Poison target" in body
            assert b"evil.example" not in body, encoding
    assert [status for status, _ in attacks] == [404, 404, 404]
    assert all(b"evil.example" not in body for _, body in attacks)


_TOKEN_VALUE = re.compile(r'(name="csrf_token" value="|"X-CSRFToken": ")[^"]+')

# Inputs a request may carry that its page key does not name (the key names the version,
# the session, the locale, the script root, path and query, HX-Request, history restore and
# the content coding). Each must leave the page as it is, or be refused.
OUTSIDE_THE_KEY = {
    "script root": {"environ_overrides": {"SCRIPT_NAME": "//evil.example"}},
    "script root /": {"environ_overrides": {"SCRIPT_NAME": "/"}},
    "host": {"headers": {"Host": "evil.test:8443"}},
    "scheme": {"environ_overrides": {"wsgi.url_scheme": "https"}},
    "forwarded": {
        "headers": {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.test",
            "X-Forwarded-Prefix": "/evil",
            "X-Forwarded-Port": "8443",
            "Forwarded": "host=evil.test;proto=https",
        }
    },
    "htmx headers": {
        "headers": {
            "HX-Target": "evil",
            "HX-Trigger": "evil",
            "HX-Trigger-Name": "evil",
            "HX-Current-URL": "http://evil.test/x",
            "HX-Boosted": "true",
            "HX-Prompt": "evil",
            "HX-Request": "false",
        }
    },
    "other headers": {
        "headers": {
            "Referer": "http://evil.test/",
            "Origin": "http://evil.test",
            "Accept": "application/json",
            "Cookie": "other=1",
            "Sec-Fetch-Site": "cross-site",
            "Cache-Control": "no-cache",
        }
    },
}


def _pages(idea, board) -> list[str]:
    return [
        "/",
        "/ideas?sort=top",
        f"/b/{board.slug}",
        f"/ideas/{idea.id}",
        "/roadmap",
        "/api/v1/ideas",
        f"/api/v1/ideas/{idea.id}",
    ]


@pytest.mark.parametrize("who", ["visitor", "member"])
def test_inputs_outside_the_page_key_leave_every_page_unchanged_or_are_refused(make_app, who):
    """Each input outside the page key leaves every cacheable page's bytes alone, or is refused."""
    app = make_app(PAGE_CACHE_ENABLED=False, PROXY_HOPS=1)
    _reset(app)
    with app.app_context():
        board = make_board()
        idea = make_idea(title="Keyed idea", board=board)
        make_comment(idea)
        member = make_user()
        pages = _pages(idea, board)
    session = ""
    if who == "member":
        browser = app.test_client()
        login_as(browser, member)
        browser.get("/")  # the session's CSRF token, part of a member's key
        session = f"session={browser.get_cookie('session').value}"
    # The session is sent by hand: a test client's cookie jar would not send it to
    # another Host, and the member would turn into a visitor.
    client = app.test_client(use_cookies=False)

    def get(path, headers=None, **request):
        headers = dict(headers or {})
        cookie = "; ".join(c for c in (session, headers.pop("Cookie", "")) if c)
        return client.get(path, headers={**headers, "Cookie": cookie}, **request)

    def body(resp) -> str:
        return _TOKEN_VALUE.sub(r"\1T", resp.get_data(as_text=True))

    for path in pages:
        base = get(path)
        assert base.status_code == 200, path
        for name, request in OUTSIDE_THE_KEY.items():
            resp = get(path, **request)
            if resp.status_code in (400, 404):
                continue  # refused
            assert (resp.status_code, body(resp)) == (200, body(base)), (path, name)


ENCODINGS = [
    "",
    "identity",
    "gzip",
    "GZIP",
    "Gzip, deflate",
    "*",
    "gzip;q=0",
    "x-gzip",
    "br",
    "deflate, gzip;q=0.5",
    "identity;q=0, *",
    "gzip;q=0.001, identity",
]


def test_each_accept_encoding_gets_the_coding_flask_compress_chooses(make_app):
    """Whoever came first, each client gets Flask-Compress's coding for it, and cached."""
    oracle = make_app(PAGE_CACHE_ENABLED=False)
    app = make_app()
    _reset(app)
    with app.app_context():
        make_idea(title="Encoded idea")
    flask_requests = []
    request_started.connect(lambda sender, **_: flask_requests.append(1), app, weak=False)
    want = {}
    for header in ENCODINGS:
        resp = oracle.test_client().get("/ideas", headers={"Accept-Encoding": header})
        want[header] = resp.headers.get("Content-Encoding", "identity")
    page = oracle.test_client().get("/ideas", headers={"Accept-Encoding": ""}).data
    assert b"Encoded idea" in page and set(want.values()) == {"gzip", "identity"}
    client = app.test_client()
    for first in ENCODINGS:
        with app.app_context():
            app.extensions["ideaboard_cache"].versions.bump()  # an empty cache, then `first`
        client.get("/ideas", headers={"Accept-Encoding": first})
        for header in ENCODINGS:
            before = len(flask_requests)
            resp = client.get("/ideas", headers={"Accept-Encoding": header})
            repeat = client.get("/ideas", headers={"Accept-Encoding": header})
            coding = resp.headers.get("Content-Encoding", "identity")
            assert coding == want[header], (first, header)
            assert (gzip.decompress(resp.data) if coding == "gzip" else resp.data) == page
            assert repeat.data == resp.data and len(flask_requests) - before <= 1, (first, header)


class _Texts(HTMLParser):
    """The text of each element with one of the given classes."""

    def __init__(self, classes: set[str]) -> None:
        super().__init__()
        self.classes, self.open, self.found = classes, [], []

    def handle_starttag(self, tag, attrs):
        names = set((dict(attrs).get("class") or "").split())
        self.open.append((tag, names & self.classes, []))

    def handle_endtag(self, tag):
        while self.open:
            name, wanted, text = self.open.pop()
            if self.open:
                self.open[-1][2].extend(text)
            if wanted:
                self.found.append("".join(text))
            if name == tag:
                break

    def handle_data(self, data):
        if self.open:
            self.open[-1][2].append(data)


def _texts(html: str, *classes: str) -> list[str]:
    parser = _Texts(set(classes))
    parser.feed(html)
    return parser.found


def test_placeholder_text_in_titles_and_names_is_shown_as_typed(app):
    """Titles and names spelling a row's stand-ins, old or current, are shown as typed."""
    with app.test_request_context("/ideas"):
        signin_href = str(escape(url_for("auth.login", next=rows._BACK)))
    shapes = [
        "ROWTOKEN0idearows0ROWTOKEN",
        "ROWBACK0idearows0ROWBACK",
        str(rows._TOKEN),
        str(rows._BACK),
        signin_href,
        f'href="{signin_href}"',
    ]
    for shape in shapes:
        author = make_user(name=shape[:60])
        make_idea(author=author, title=f"Shape {shape}")
    member = make_user()
    for who in ("visitor", "member"):
        client = app.test_client()
        if who == "member":
            login_as(client, member)
        for _ in range(2):  # rendered, then cached
            html = client.get("/ideas?sort=new").get_data(as_text=True)
            titles = _texts(html, "idea-title")
            names = _texts(html, "author")
            assert sorted(titles) == sorted(f"Shape {s}" for s in shapes), who
            assert sorted(names) == sorted(s[:60] for s in shapes), who


def test_stand_ins_are_drawn_per_process_and_escaped_text_cannot_spell_them():
    """Every stand-in is drawn per process, and escaped text or real numbers cannot spell one."""
    code = (
        "from ideaboard.perf import fastvote, rows, shared; "
        "print(repr([str(rows._TOKEN), str(rows._BACK), fastvote._ID, fastvote._COUNT, "
        "str(shared.TOKEN)]))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    first, second = (ast.literal_eval(run) for run in runs)
    assert all(a != b for a, b in zip(first, second, strict=True)), (first, second)
    for stand_in in (rows._TOKEN, rows._BACK):
        assert str(escape(str(stand_in))) != str(stand_in)
    for number in (fastvote._ID, fastvote._COUNT):
        assert number.isdigit() and len(number) > len(str(MAX_INT))
