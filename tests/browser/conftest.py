"""Browser fixtures: a live server over the test database and Debian's headless chromium.

The app runs in a thread with CSRF on (as in production), so every htmx request in these
tests proves the page sends `X-CSRFToken`. Chromium is Debian's package at
/usr/bin/chromium (`.ci/install-browser.sh`); Playwright's own browser download is not
used. Without it the tests skip locally and fail in CI (`CI` set), which must run them.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Page
from werkzeug.serving import make_server

from ..factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent

# Runs in every document before its own scripts: record CSP violations on the window and
# hand each one to Python at once, so violations on pages navigated away from still count.
CSP_LISTENER = """
(() => {
  if (window.__cspViolations) return;
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    const v = {
      directive: e.effectiveDirective || e.violatedDirective,
      blocked: e.blockedURI,
      source: e.sourceFile,
      line: e.lineNumber,
      column: e.columnNumber,
      sample: e.sample,
      document: e.documentURI,
      at: performance.timeOrigin + e.timeStamp,
    };
    window.__cspViolations.push(v);
    try { window.__ideaboardCspViolation(v); } catch (err) { /* binding not ready */ }
  }, true);
})();
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_collection_modifyitems(config, items):
    """Mark every test in this folder `browser` (a conftest's pytestmark would not)."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class BrowserLog:
    """What the pages of one test reported: console errors, CSP violations, blocked hosts."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)
    allowed_csp: set[str] = field(default_factory=set)

    def allow_csp(self, directive: str) -> None:
        """Expect violations of `directive` in this test (the detector's own test)."""
        self.allowed_csp.add(directive)

    def add_csp(self, violation: dict) -> None:
        key = json.dumps(violation, sort_keys=True)
        if all(json.dumps(v, sort_keys=True) != key for v in self.csp_violations):
            self.csp_violations.append(violation)

    def unexpected_csp(self) -> list[dict]:
        return [v for v in self.csp_violations if v.get("directive") not in self.allowed_csp]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless chromium, launched once per run (skipped locally if absent)."""
    if not os.path.exists(CHROMIUM):
        msg = f"Debian chromium not installed at {CHROMIUM} (apt-get install chromium)"
        if _in_ci():
            pytest.fail(
                f"{msg}; CI must run the browser tests: run .ci/install-browser.sh first",
                pytrace=False,
            )
        pytest.skip(f"{msg}; browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def live_app(app, make_app):
    """The app the browser talks to: CSRF on, no rate limits, over `app`'s fresh tables."""
    return make_app(WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=False)


@pytest.fixture
def live_server(live_app):
    """Serve `live_app` on a free port of 127.0.0.1 in a thread; yield its base URL."""
    server = make_server(HOST, 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def browser_log():
    """Console errors, CSP violations and blocked requests of this test's pages."""
    return BrowserLog()


def _local_only(log: BrowserLog):
    def _route(route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != HOST:
            log.blocked_requests.append(url)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    return _route


@pytest.fixture
def new_page(browser, live_server, browser_log):
    """Open a page in a new context on the live server:
    new_page(java_script_enabled=True, locale="en-US") (the locale sets Accept-Language).

    Only 127.0.0.1 is reachable. At teardown the test fails if a page hit a CSP
    violation, threw an uncaught error or tried to reach another host.
    """
    opened = []

    def _record_console_error(msg) -> None:
        if msg.type == "error":
            browser_log.console_errors.append(f"{msg.text} ({msg.location.get('url')})")

    def _new(java_script_enabled: bool = True, locale: str = "en-US"):
        context = browser.new_context(
            base_url=live_server,
            java_script_enabled=java_script_enabled,
            locale=locale,
            service_workers="block",
        )
        context.set_default_timeout(10_000)
        context.set_default_navigation_timeout(10_000)
        context.route("**/*", _local_only(browser_log))
        context.expose_binding("__ideaboardCspViolation", lambda _source, v: browser_log.add_csp(v))
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        page.on("console", _record_console_error)
        page.on("pageerror", lambda exc: browser_log.page_errors.append(str(exc)))
        opened.append((context, page, java_script_enabled))
        return page

    yield _new

    for context, page, js in opened:
        if js and not page.is_closed():
            try:  # whatever the last document recorded but did not hand over yet
                for v in page.evaluate("window.__cspViolations || []"):
                    browser_log.add_csp(v)
            except Exception:  # noqa: BLE001 - a page mid-navigation has no window to ask
                pass
        context.close()

    problems = []
    if browser_log.unexpected_csp():
        problems.append("CSP violations: " + json.dumps(browser_log.unexpected_csp(), indent=1))
    if browser_log.page_errors:
        problems.append("uncaught page errors: " + "; ".join(browser_log.page_errors))
    if browser_log.blocked_requests:
        problems.append(
            "requests to hosts other than 127.0.0.1: " + ", ".join(browser_log.blocked_requests)
        )
    if problems:
        if browser_log.console_errors:
            problems.append("console errors: " + "; ".join(browser_log.console_errors))
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def page(new_page):
    """A page with JavaScript in a fresh browser context on the live server."""
    return new_page()


def sign_in(page: Page, email: str, next_path: str) -> None:
    """Sign in through the real form (test factories' PASSWORD) and land on `next_path`."""
    page.goto(f"/login?next={quote(next_path)}")
    form = page.locator("main form[action^='/login']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("input[name=password]").press("Enter")
    assert urlsplit(page.url).path == next_path, page.url
