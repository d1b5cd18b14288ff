"""Security in a real browser (security.md items 3, 13, 16 and 42, the B parts).

- The scripted tour: a member goes home → board → idea → votes and comments with htmx →
  edits the comment → roadmap; staff moves the idea; the member signs out. No document of
  the tour reports a CSP violation, and every htmx request carries X-CSRFToken.
- Payloads never run: the shared corpus, stored through the services in every user field,
  is shown on the board, idea pages, roadmap, search results and htmx-swapped fragments;
  after load and a hover, focus and click of every element of user content, no dialog
  opened and the rewritten alert/prompt/confirm/print were never called.
- Clickjacking: a page on a second loopback origin cannot frame Ideaboard.
- Forged requests: a cross-origin fetch or auto-submitting form cannot vote, the refusal
  page offers no way to finish it, and a cross-site one does not sign the member out.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlencode, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Comment, Idea, Status, Vote
from ideaboard.services import accounts, comments, ideas, roadmap
from ideaboard.services.accounts import NAME_MAX
from ideaboard.services.errors import ValidationError
from ideaboard.services.ideas import BODY_MAX, TITLE_MAX, TITLE_MIN
from ideaboard.services.names import name_key
from ideaboard.services.roadmap import COLUMN_LIMIT

from ..factories import PASSWORD, general_board, make_comment, make_idea, make_user
from ..oracle import Payload, load_payloads
from .conftest import HOST

pytestmark = pytest.mark.browser

IDEA_PATH = re.compile(r"/ideas/(\d+)(?:-[\w-]+)?")
FAST_HASH = "pbkdf2:sha256:1"  # planted authors never sign in; the viewer is rehashed on login
SESSION_COOKIE = "session"


# --- helpers shared by the tests ----------------------------------------------------------


def on_idea_page(url: str) -> bool:
    return IDEA_PATH.fullmatch(urlsplit(url).path) is not None


def sign_in(page: Page, email: str, next_path: str = "/") -> None:
    """Sign in through the real form and wait until the app has sent us on."""
    page.goto(f"/login?next={quote(next_path)}")
    form = page.locator("form[action^='/login']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: urlsplit(url).path != "/login")


def vote_total(idea_id: int) -> tuple[int, int]:
    """(stored count, vote rows) for the idea, read fresh; the read transaction is closed."""
    db.session.expire_all()
    count = db.session.get(Idea, idea_id).vote_count
    rows = db.session.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea_id))
    db.session.commit()
    return count, rows


def csrf_of(page: Page) -> str:
    """The token htmx sends: the one in <body hx-headers>."""
    return page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")


@dataclass
class Recorded:
    method: str
    path: str
    origin: str | None
    cookie: bool
    status: int


def record_requests(live_app) -> list[Recorded]:
    """Wrap the live app so the test sees every request: origin, session cookie, status."""
    seen: list[Recorded] = []
    inner = live_app.wsgi_app

    def recorder(environ, start_response):
        def _start(status, headers, exc_info=None):
            seen.append(
                Recorded(
                    environ["REQUEST_METHOD"],
                    environ.get("PATH_INFO", ""),
                    environ.get("HTTP_ORIGIN"),
                    f"{SESSION_COOKIE}=" in environ.get("HTTP_COOKIE", ""),
                    int(status.split()[0]),
                )
            )
            return start_response(status, headers, exc_info)

        return inner(environ, _start)

    live_app.wsgi_app = recorder
    return seen


# --- a second loopback origin --------------------------------------------------------------


class OtherOrigin:
    """A tiny HTTP server on another port of 127.0.0.1: a different origin, same machine."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                body = pages.get(urlsplit(self.path).path)
                data = (body or "not here").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def serve(self, path: str, html: str) -> str:
        self.pages[path] = html
        return self.url + path


@pytest.fixture
def other_origin():
    origin = OtherOrigin()
    origin.thread.start()
    yield origin
    origin.server.shutdown()
    origin.server.server_close()
    origin.thread.join(timeout=10)


# --- 1. the scripted tour --------------------------------------------------------------------


def watch_documents(page: Page) -> list[str]:
    """Every document the page's main frame loads from now on."""
    loaded: list[str] = []
    page.on("load", lambda: loaded.append(page.url))
    return loaded


def listener_armed(page: Page) -> bool:
    """Whether this document runs the CSP violation listener (the tour's coverage)."""
    return page.evaluate("Array.isArray(window.__cspViolations)")


def test_tour_has_no_csp_violations_and_htmx_sends_the_token(app, new_page, browser_log):
    """Member and staff walk every kind of page and htmx action; no CSP violation anywhere."""
    member = make_user(name="Mira", email="mira@example.com")
    staff = make_user(role="staff", name="Sam Staff", email="sam@example.com")
    idea = make_idea(title="Printable roadmap", body="A **print** view of the roadmap.")
    page = new_page()
    documents = watch_documents(page)
    armed = []

    def check_document():
        page.wait_for_load_state("load")
        armed.append((page.url, listener_armed(page)))

    sign_in(page, member.email)
    assert urlsplit(page.url).path == "/"
    expect(page.locator(".site-header .who")).to_have_text("Mira")
    check_document()

    page.locator("a.board-name", has_text="General").click()
    page.wait_for_url(re.compile(r"/b/general"))
    expect(page.locator(f"#idea-{idea.id} a.idea-title")).to_have_text("Printable roadmap")
    check_document()

    page.locator(f"#idea-{idea.id} a.idea-title").click()
    page.wait_for_url(on_idea_page)
    expect(page.locator(".idea-body strong")).to_have_text("print")
    check_document()
    token = csrf_of(page)
    assert token

    # Vote with htmx: the count changes in place and the voters card follows (out of band).
    vote = page.locator(f"form#vote-{idea.id}")
    expect(vote.locator(".vote-count")).to_have_text("1")  # the author's own vote
    page.evaluate("window.__sameDocument = true")
    with page.expect_response(lambda r: r.url.endswith(f"/ideas/{idea.id}/vote")) as answer:
        vote.locator("button.vote-button").click()
    request = answer.value.request
    assert answer.value.status == 200
    assert request.headers.get("hx-request") == "true"
    assert request.headers.get("x-csrftoken") == token
    expect(vote.locator(".vote-count")).to_have_text("2")
    expect(vote.locator("button.vote-button")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".voters-count")).to_have_text("2 voters")
    assert vote_total(idea.id) == (2, 2)

    # Comment with htmx: appended to #comments, the count follows, the form is reset.
    form = page.locator("#comment-form")
    form.locator("textarea[name=body]").fill("Please add a *landscape* option.")
    with page.expect_response(lambda r: r.url.endswith(f"/ideas/{idea.id}/comments")) as answer:
        form.locator("button[type=submit]").click()
    request = answer.value.request
    assert answer.value.status == 200
    assert request.headers.get("hx-request") == "true"
    assert request.headers.get("x-csrftoken") == token
    comment = page.locator("#comments .comment").first
    expect(comment.locator(".prose em")).to_have_text("landscape")
    expect(page.locator("#comment-count")).to_have_text("1 comment")
    expect(page.locator("#comment-form textarea[name=body]")).to_have_value("")
    assert page.evaluate("window.__sameDocument") is True, "an htmx action reloaded the page"

    # Edit the comment: the app offers an edit page (no inline edit), a plain form post.
    comment.locator(".comment-actions a", has_text="Edit").click()
    page.wait_for_url(re.compile(r"/comments/\d+/edit"))
    check_document()
    page.locator("main textarea[name=body]").fill("Please add a *portrait* option.")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(on_idea_page)
    check_document()
    expect(comment.locator(".prose em")).to_have_text("portrait")
    expect(comment.locator(".edited")).to_have_text("(edited)")

    page.locator(".nav a", has_text="Roadmap").click()
    page.wait_for_url(re.compile(r"/roadmap"))
    check_document()
    heard = page.locator("#stage-heard li.roadmap-card a", has_text="Printable roadmap")
    expect(heard).to_have_count(1)

    # Staff, in another browser, moves the idea to planned with a note.
    staff_page = new_page()
    staff_documents = watch_documents(staff_page)
    sign_in(staff_page, staff.email, next_path=f"/ideas/{idea.id}")
    staff_page.wait_for_url(on_idea_page)
    status_form = staff_page.locator(f"form[action='/ideas/{idea.id}/status']")
    status_form.locator("select[name=status]").select_option("planned")
    status_form.locator("textarea[name=note]").fill("Coming next month.")
    with staff_page.expect_response(lambda r: r.request.method == "POST") as answer:
        status_form.locator("button[type=submit]").click()
    assert answer.value.status == 303
    staff_page.wait_for_load_state("load")
    expect(staff_page.locator("#timeline .note")).to_have_text("Coming next month.")
    armed.append((staff_page.url, listener_armed(staff_page)))

    page.reload()
    check_document()
    planned = page.locator("#stage-planned li.roadmap-card a", has_text="Printable roadmap")
    expect(planned).to_have_count(1)
    expect(heard).to_have_count(0)

    page.locator(".site-header button", has_text="Sign out").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/")
    expect(page.locator(".site-header a", has_text="Sign in")).to_be_visible()
    check_document()

    # The listener ran in every document the tour loaded, and none reported a violation.
    assert all(ok for _, ok in armed), f"documents without the CSP listener: {armed}"
    assert len(documents) >= 8 and len(staff_documents) >= 3, (documents, staff_documents)
    assert browser_log.csp_violations == []
    assert browser_log.page_errors == []


# --- 2. stored payloads never run ---------------------------------------------------------------

# Runs in every frame before any page script: a payload that runs trips the flag, here and
# (through the binding) in Python, even if the document is gone by the time we ask.
XSS_TRAP = """
(() => {
  if (window.__xssTrap) return;
  window.__xssTrap = true;
  window.__xss = 0;
  window.__xssCalls = [];
  for (const name of ["alert", "prompt", "confirm", "print"]) {
    window[name] = function (...args) {
      window.__xss += 1;
      const call = name + "(" + args.map(String).join(", ") + ")";
      window.__xssCalls.push(call);
      try { window.__ideaboardXss(call, String(location.href)); } catch (err) { /* unbound */ }
      return null;
    };
  }
})();
"""

# Where user text ends up: the Markdown containers the templates mark, and the plain-text
# fields (titles, names, notes, search echo, edit boxes). Each is swept with what is inside.
USER_CONTENT = (
    "[data-user-content]",
    ".idea-heading",
    "a.idea-title",
    ".author",
    ".site-header .who",
    ".roadmap-card-main > a",
    "#timeline .note",
    "#timeline .meta",
    "input#q",
    "main textarea",
)
SWEEP_TARGETS = ", ".join(s for sel in USER_CONTENT for s in (sel, f"{sel} *"))
# What user markup made inside them (escaped plain text makes no elements).
INNER_TARGETS = ", ".join(f"{sel} *" for sel in USER_CONTENT)

# Synthetic events reach every element, hidden ones included: hover, focus, click.
SYNTHETIC_SWEEP = """
(selector) => {
  const els = [...document.querySelectorAll(selector)];
  for (const el of els) {
    for (const type of ["pointerover", "pointerenter", "mouseover", "mouseenter", "mousemove",
                        "pointerdown", "mousedown", "pointerup", "mouseup"]) {
      el.dispatchEvent(new MouseEvent(type, {bubbles: true, cancelable: true}));
    }
    if (typeof el.focus === "function") el.focus();
    el.dispatchEvent(new FocusEvent("focusin", {bubbles: true}));
    if (typeof el.click === "function") el.click();
    if (typeof el.blur === "function") el.blur();
  }
  return els.length;
}
"""
# Where a mouse can reach each element: the centre of its first box, in page coordinates,
# or nothing when it has no box (hidden: the synthetic pass reached it).
CENTRES = """
(selector) => [...document.querySelectorAll(selector)].flatMap(el => {
  const r = [...el.getClientRects()].find(b => b.width > 0 && b.height > 0);
  if (!r) return [];
  const x = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1);
  return [[x, r.top + r.height / 2 + scrollY]];
})
"""
NOT_STATIC = re.compile(r"^(?!https?://[^/]+/static/)")  # only what a click could navigate to
SCROLL_TO = "(y) => { window.scrollTo(0, y); return window.scrollY; }"
# Whatever a payload might have left on the live page, htmx swaps included.
PAGE_STATE = """
() => [window.__xss, window.__xssCalls, window.__sweepMarker === true,
  [...document.querySelectorAll("*")].flatMap(el => [...el.attributes]
    .filter(a => /^on/i.test(a.name)).map(a => `<${el.localName} ${a.name}=${a.value}>`))]
"""


class ReportOnlyCsp:
    """WSGI middleware: serve the app's CSP as Content-Security-Policy-Report-Only.

    The policy then reports (the listener fails the test) but does not block, so a payload
    that got through escaping and sanitising would really run and trip the flag: the test
    proves the output is inert by itself, not only behind the CSP.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.converted = 0

    def __call__(self, environ, start_response):
        def _start(status, headers, exc_info=None):
            renamed = []
            for name, value in headers:
                if name.lower() == "content-security-policy":
                    self.converted += 1
                    name = "Content-Security-Policy-Report-Only"
                renamed.append((name, value))
            return start_response(status, renamed, exc_info)

        return self.inner(environ, _start)


@dataclass
class XssWatch:
    """One browser page armed against payloads: visit pages, sweep them, check the flag.

    Between the test's own navigations, any navigation of the page (a clicked link, a
    submitted form) is answered 204 No Content, so the page stays and keeps its flag.
    """

    page: Page
    calls: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    swept: dict[str, int] = field(default_factory=dict)
    moused: int = 0
    navigating: bool = True

    def arm(self) -> XssWatch:
        context = self.page.context
        context.expose_binding(
            "__ideaboardXss", lambda _source, call, url: self.calls.append(f"{call} at {url}")
        )
        context.add_init_script(XSS_TRAP)
        context.on("page", self._popup)
        self.page.on("dialog", self._dialog)
        self.page.on("domcontentloaded", self._loaded)
        self.page.route(NOT_STATIC, self._hold)
        return self

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _loaded(self, page: Page) -> None:
        if not self.navigating:  # a new document the test did not ask for
            self.strays.append(page.url)

    def _popup(self, popup) -> None:
        self.popups.append(popup.url)
        popup.close()

    def _hold(self, route) -> None:
        request = route.request
        if (
            not self.navigating
            and request.is_navigation_request()
            and request.frame == self.page.main_frame
        ):
            self.held.append(request.url)
            route.fulfill(status=204)
        else:
            route.fallback()

    @contextmanager
    def leaving(self):
        """The test itself navigates (goto, a form it submits): let it through."""
        self.navigating = True
        try:
            yield
        finally:
            self.navigating = False

    def visit(self, url: str, *, mouse: bool = True, status: int = 200) -> None:
        with self.leaving():
            response = self.page.goto(url)
        assert response is not None and response.status == status, f"{url}: {response}"
        self.sweep(url, mouse=mouse)

    def sweep(self, where: str, *, mouse: bool = True) -> None:
        """Hover, focus and click every element of user content, then check the flag.

        Synthetic events reach every element; with `mouse`, a real mouse then moves onto
        and clicks everything user markup made.
        """
        self.navigating = False
        self._run(where, "window.__sweepMarker = true")
        self.swept[where] = self._run(where, SYNTHETIC_SWEEP, SWEEP_TARGETS)
        if mouse:
            self._mouse_over(where, INNER_TARGETS)
        self.check(where, swept=True)

    def _run(self, where: str, script: str, arg=None):
        """Evaluate in the page; if a payload took the page away, say so."""
        try:
            return self.page.evaluate(script, arg)
        except PlaywrightError as err:
            raise AssertionError(
                f"{where}: the page went away ({err.message}); it was sent to {self.strays}"
            ) from err

    def _mouse_over(self, where: str, selector: str) -> None:
        """Move a real mouse onto each element and click it, scrolling a screen at a time."""
        page = self.page
        height = page.viewport_size["height"]
        scrolled = self._run(where, SCROLL_TO, 0)
        for x, y in sorted(self._run(where, CENTRES, selector), key=lambda c: c[1]):
            if not 0 <= y - scrolled < height:
                scrolled = self._run(where, SCROLL_TO, y - height // 2)
            page.mouse.click(x, y - scrolled)  # moving there hovers it, then the click
            self.moused += 1

    def check(self, where: str, *, swept: bool = False) -> None:
        flag, calls, same_document, handlers = self._run(where, PAGE_STATE)
        assert self.strays == [], f"{where}: something navigated the page to {self.strays}"
        ran = calls + self.calls
        assert (flag, ran) == (0, []), f"{where}: a payload ran: {ran}"
        assert same_document or not swept, f"{where}: the sweep left the page"
        assert self.dialogs == [], f"{where}: a dialog opened: {self.dialogs}"
        assert self.popups == [], f"{where}: a window opened: {self.popups}"
        assert handlers == [], f"{where}: event handler attributes on the page: {handlers}"


def fit(text: str, low: int, high: int) -> str:
    """A one-line field's value from `text`: folded, cut to the limit, padded to the minimum."""
    value = " ".join(text.split())[:high].rstrip()
    return value.ljust(low, "_")


def stored(service: Callable, *args):
    """Call a service; None if it refuses the payload (services check before writing)."""
    try:
        return service(*args)
    except ValidationError:
        return None


SAMPLE = 6  # single-payload pages visited (the galleries carry every payload)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Every status a status change may set (merged comes only from a merge: services/merges.py).
SPREAD = [s.value for s in Status if s != Status.MERGED]


def sections(payloads: list[Payload]) -> list[list[Payload]]:
    """The payloads in groups that each fit one idea body, a heading before each."""
    groups: list[list[Payload]] = [[]]
    size = 0
    for p in payloads:
        if CONTROL.search(p.text):
            continue  # a body refuses control characters as a whole
        part = len(section(p))
        if groups[-1] and size + part > BODY_MAX:
            groups.append([])
            size = 0
        groups[-1].append(p)
        size += part
    return groups


def section(p: Payload) -> str:
    return f"#### Payload line {p.line}\n\n{p.text}\n\n"


@dataclass
class Planted:
    payloads: list[Payload]
    ideas: dict[int, str]  # idea id -> its title as stored
    galleries: dict[int, list[Payload]]  # idea id -> the payloads in its body
    comment_gallery: int
    comments: int
    viewer_email: str
    refused: list[str]


def plant(app) -> Planted:
    """Every payload in every user field, through the services, about 50 to a page.

    Per payload: an author named with it posts an idea titled with it (bodies too, one
    each); ideas spread over the roadmap's columns. The gallery idea gathers every payload
    at once: its body (in sections), one comment per payload and a status note per payload.
    The viewer who signs in and the staff member are named with payloads too. A field that
    refuses a payload gets neutral text and is listed (only control characters may be).
    """
    app.config["PASSWORD_HASH_METHOD"] = FAST_HASH
    payloads = load_payloads()
    assert len(payloads) <= 6 * COLUMN_LIMIT, "the roadmap could not show every payload"
    refused: list[str] = []

    staff_keys: set[str] = set()  # a member may not take a staff name (services/names.py)

    def named(email: str, payload: Payload, role: str = "member"):
        name = fit(payload.text, 2, NAME_MAX)
        user = stored(accounts.register_user, email, name, PASSWORD, role)
        if user is None or user.display_name != name:
            if name_key(name) not in staff_keys:
                refused.append(f"line {payload.line} as a display name")
            user = user or accounts.register_user(email, f"Neutral {email}", PASSWORD, role=role)
        return user

    viewer = named("viewer@example.com", payloads[-1])
    staff = named("staff@example.com", payloads[-2], role="staff")
    staff_keys.add(name_key(staff.display_name))
    board = general_board()
    galleries = {}
    for n, group in enumerate(sections(payloads)):
        body = "".join(map(section, group))
        galleries[ideas.create_idea(staff, board, "idea", f"Body gallery {n}", body).id] = group
    gallery = ideas.create_idea(staff, board, "idea", "Comment gallery", "Every comment.")
    planted = Planted(payloads, {}, galleries, gallery.id, 0, viewer.email, refused)
    for n, payload in enumerate(payloads):
        text, title = payload.text, fit(payload.text, TITLE_MIN, TITLE_MAX)
        author = named(f"author{n}@example.com", payload)
        idea = (
            stored(ideas.create_idea, author, board, "idea", title, text)
            or stored(ideas.create_idea, author, board, "idea", title, "Body.")
            or ideas.create_idea(author, board, "idea", f"Neutral title {n}", "Body.")
        )
        if idea.title != title:
            refused.append(f"line {payload.line} as a title")
        if idea.body != text.strip():
            refused.append(f"line {payload.line} as a body")
        if SPREAD[n % len(SPREAD)] != idea.status:
            roadmap.change_status(staff, idea, SPREAD[n % len(SPREAD)], "")
        planted.ideas[idea.id] = idea.title
        if stored(comments.add_comment, author, gallery, text) is None:
            refused.append(f"line {payload.line} as a comment")
        else:
            planted.comments += 1
        move = "under_review" if gallery.status == "heard" else "heard"
        if stored(roadmap.change_status, staff, gallery, move, text) is None:
            refused.append(f"line {payload.line} as a status note")
    db.session.commit()
    return planted


def test_stored_payloads_never_run_in_the_browser(app, live_app, new_page, browser_log):
    """Every payload in every user field, on every page and htmx swap: nothing runs."""
    csp = ReportOnlyCsp(live_app.wsgi_app)
    live_app.wsgi_app = csp
    planted = plant(app)
    payloads = planted.payloads
    by_line = {p.line: p for p in payloads}
    wrongly = [r for r in planted.refused if not CONTROL.search(by_line[int(r.split()[1])].text)]
    assert wrongly == [], f"payloads without control characters refused or altered: {wrongly}"

    page = new_page()
    watch = XssWatch(page).arm()
    with watch.leaving():
        sign_in(page, planted.viewer_email)
    watch.check("the home page after signing in")

    # Lists: every title and author name at once, then swapped in by htmx, a status at a time.
    watch.visit("/")
    watch.visit(f"/b/general?sort=new&status=all&per_page={len(planted.ideas) + 10}")
    titles = page.locator("#idea-list a.idea-title")
    expect(titles).to_have_count(len(planted.ideas) + len(planted.galleries) + 1)
    swapped: set[str] = set()
    for status in SPREAD:
        with page.expect_response(lambda r: "hx-request" in r.request.headers):
            page.locator("form.filters select[name=status]").select_option(status)
        expect(page).to_have_url(re.compile(rf"status={status}"))
        watch.sweep(f"the board list swapped in by htmx (status {status})")
        swapped.update(titles.all_text_contents())
    assert set(planted.ideas.values()) <= swapped, "some titles never came in an htmx swap"

    watch.visit("/roadmap")
    expect(page.locator("li.roadmap-card")).to_have_count(
        len(planted.ideas) + len(planted.galleries) + 1
    )

    # The galleries: every payload as Markdown body, comment, author name and status note.
    for idea_id, group in planted.galleries.items():
        watch.visit(f"/ideas/{idea_id}")
        headings = page.locator(".idea-body h4")
        expect(headings).to_have_text([f"Payload line {p.line}" for p in group])
    watch.visit(f"/ideas/{planted.comment_gallery}")
    expect(page.locator("#comments article.comment:not(.status-event)")).to_have_count(
        planted.comments
    )
    expect(page.locator("#timeline li")).to_have_count(len(payloads) + 1)
    # Each status note is in the discussion too, as an event among the comments.
    expect(page.locator("#comments article.status-event")).to_have_count(len(payloads))

    # A spread of single-payload idea pages: the title in <title> and <h1>, a body alone.
    # (tests/test_xss.py checks every payload's own page, and the search echo, server-side.)
    sample = payloads[:: max(1, len(payloads) // SAMPLE)]
    for payload, (idea_id, title) in zip(payloads, planted.ideas.items(), strict=True):
        if payload in sample:
            watch.visit(f"/ideas/{idea_id}", mouse=False)
            assert page.evaluate("document.title") == f"{title} · Ideaboard"

    # Search with a payload as q: echoed in the search box, matching ideas listed.
    for n, payload in enumerate(sample):
        url = "/ideas?" + urlencode({"q": payload.text})
        if "\x00" in payload.text:  # refused before any page is built
            watch.visit(url, mouse=False, status=400)
            continue
        watch.visit(url, mouse=n == 0)
        expect(page.locator("input#q")).to_have_value(payload.text[:200])
    # ... and typed, with htmx swapping the results in.
    box = page.locator("input#q")
    box.fill("")
    with page.expect_response(lambda r: "hx-request" in r.request.headers):
        box.press_sequentially("alert", delay=5)
    expect(page.locator("#idea-list li.idea-row").first).to_be_visible()
    watch.sweep("search results swapped in by htmx")

    # Comments posted with htmx: every payload in one comment (in sections), then a few
    # alone; each swapped into the page (or the form re-shown with its errors, 422).
    idea = make_idea(title="Fresh idea for htmx comments")
    watch.visit(f"/ideas/{idea.id}")
    posted = 0
    texts = ["".join(map(section, group)) for group in planted.galleries.values()]
    for text in texts + [p.text for p in sample]:
        page.locator("#comment-form textarea[name=body]").fill(text)
        with page.expect_response(lambda r: r.url.endswith("/comments")) as answer:
            page.locator("#comment-form button[type=submit]").click()
        assert answer.value.status in (200, 422), f"{text[:80]!r}: {answer.value.status}"
        posted += answer.value.status == 200
        expect(page.locator("#comments article.comment")).to_have_count(posted)
    expect(page.locator("#comments .prose h4")).to_have_count(
        sum(map(len, planted.galleries.values()))
    )
    watch.sweep("comments swapped in by htmx")

    # The comment edit page (the app has no inline edit) shows every payload in its text box;
    # saved in reverse order, the idea page shows them again.
    first = db.session.scalar(select(Comment.id).where(Comment.idea_id == idea.id))
    db.session.commit()
    watch.visit(f"/ideas/{idea.id}/comments/{first}/edit")
    editor = page.locator("main textarea[name=body]")
    expect(editor).to_have_value(texts[0].strip())
    group = next(iter(planted.galleries.values()))
    editor.fill("".join(map(section, reversed(group))))
    with watch.leaving():
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(on_idea_page)
    expect(page.locator(f"#comment-{first} .edited")).to_be_visible()
    watch.sweep("the idea page after editing a comment")

    assert csp.converted > 0, "the app sent no CSP to switch to report-only"
    assert browser_log.csp_violations == [], browser_log.csp_violations
    assert sum(watch.swept.values()) > 10 * len(payloads), watch.swept
    assert watch.moused > 3 * len(payloads), f"the mouse reached only {watch.moused} elements"
    assert watch.held, "no click in user content tried to leave the page (links not clicked?)"


def test_sweep_detects_a_payload_that_runs(app, live_app, new_page, browser_log):
    """The detector's own test: a handler that fires on load, hover or click is caught."""
    for directive in ("script-src-attr", "script-src-elem", "script-src"):
        browser_log.allow_csp(directive)  # report-only: reported, then allowed to run
    live_app.wsgi_app = ReportOnlyCsp(live_app.wsgi_app)
    idea = make_idea(title="Canary", body="Plain words.")
    make_comment(idea, body="Also plain.")
    page = new_page()
    watch = XssWatch(page).arm()
    watch.visit(f"/ideas/{idea.id}", mouse=False)
    page.evaluate(
        """() => {
          const box = document.querySelector('#comments [data-user-content]');
          box.innerHTML = '<p><b onmouseover="alert(2)">hover</b> '
            + '<a href="javascript:alert(3)">click</a> <img src=x onerror="alert(1)"> '
            + '<i onmouseover="event.isTrusted && alert(4)">real hover</i> '
            + '<i onclick="event.isTrusted && alert(5)">real click</i></p>';
        }"""
    )
    page.wait_for_function("window.__xss >= 1")
    with pytest.raises(AssertionError, match=r"a payload ran"):
        watch.check("after an injected onerror")
    page.evaluate("window.__xss = 0; window.__xssCalls = []")
    watch.calls.clear()
    page.evaluate("document.querySelector('#comments img').remove()")
    with pytest.raises(AssertionError, match=r"a payload ran") as caught:
        watch.sweep("hover and click")
    ran = str(caught.value)
    assert all(f"alert({n})" in ran for n in (2, 3, 4, 5)), ran  # 4, 5: a real mouse did it
    assert page.evaluate("window.__sweepMarker") is True
    assert browser_log.csp_violations, "report-only CSP should still report the handlers"


# --- 3. clickjacking ------------------------------------------------------------------------------


def framed(page: Page, frame_id: str) -> tuple[str, str]:
    """(address, title) of the document inside <iframe id=frame_id>, as the frame has it."""
    frame = page.locator(f"iframe#{frame_id}").element_handle().content_frame()
    assert frame is not None, f"no frame {frame_id}"
    return tuple(frame.evaluate("[location.href, document.title]"))


def test_other_origin_cannot_frame_ideaboard(app, live_server, new_page, other_origin):
    """A page on another loopback port frames an idea and /login: both stay empty."""
    idea = make_idea(title="Framed idea")
    targets = {"idea": f"{live_server}/ideas/{idea.id}", "login": f"{live_server}/login"}
    # The control: the same idea page with the anti-framing headers stripped on the way.
    control = f"{live_server}/ideas/{idea.id}?unprotected=1"
    other_origin.serve("/own", "<!doctype html><title>own page</title><p>framed")
    frames = "".join(f'<iframe id="{k}" src="{v}"></iframe>' for k, v in targets.items())
    frames += f'<iframe id="control" src="{control}"></iframe><iframe id="own" src="/own"></iframe>'
    attack = other_origin.serve("/frame", f"<!doctype html><title>attacker</title>{frames}")

    page = new_page()

    def strip_headers(route):
        response = route.fetch()
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("x-frame-options", "content-security-policy")
        }
        route.fulfill(response=response, headers=headers)

    page.route(lambda url: url == control, strip_headers)
    fetched = {}
    page.on("response", lambda r: fetched.__setitem__(r.url, r.status))
    page.goto(attack)
    page.wait_for_load_state("load")

    for name, url in targets.items():
        # The browser did fetch the page, and then refused to show it: the frame holds
        # Chromium's error page, not Ideaboard's document.
        assert fetched.get(url) == 200, f"the browser never fetched {url}: {fetched}"
        address, title = framed(page, name)
        assert not address.startswith(live_server), f"{name} page loaded in a frame: {address}"
        assert "Ideaboard" not in title, f"{name} page loaded in a frame: {title!r}"
    assert framed(page, "own") == (f"{other_origin.url}/own", "own page"), "frames do load here"
    assert framed(page, "control") == (control, "Framed idea · Ideaboard"), (
        "without its headers the idea page loads in the frame (so the check can fail)"
    )


# --- 4. forged cross-origin requests -------------------------------------------------------------

FORGE_FETCH = """<!doctype html><title>forged fetch</title><script>
const target = "{target}";
window.forged = Promise.all([
  fetch(target, {{method: "POST", mode: "no-cors", credentials: "include",
    headers: {{"Content-Type": "application/x-www-form-urlencoded"}}, body: "next=%2F"}})
    .then(r => "settled", e => "settled"),
  fetch(target, {{method: "POST", mode: "cors", credentials: "include",
    headers: {{"HX-Request": "true", "X-CSRFToken": "forged"}}, body: ""}})
    .then(r => "read " + r.status, e => "blocked"),
]);
</script>"""
FORGE_FORM = """<!doctype html><title>forged form</title>
<form id="f" method="post" action="{target}"><input name="next" value="/"></form>
<script>document.getElementById("f").submit();</script>"""


def target_path(url: str) -> str:
    return urlsplit(url).path


def forge_from_other_site(page: Page, target: str) -> str:
    """Serve the self-submitting form at http://attacker.test (another site); return it."""
    evil = "http://attacker.test"
    page.route(
        f"{evil}/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body=FORGE_FORM.format(target=target)
        ),
    )
    return f"{evil}/form"


def test_forged_cross_origin_posts_cannot_vote(app, live_app, live_server, new_page, other_origin):
    """From another origin a credentialed fetch and a self-submitting form both fail.

    Neither may leave a way to finish the forgery or sign the member out.
    """
    seen = record_requests(live_app)
    member = make_user(name="Vic", email="vic@example.com")
    idea = make_idea(title="Do not vote for me")
    target = f"{live_server}/ideas/{idea.id}/vote"
    page = new_page()
    sign_in(page, member.email, next_path=f"/ideas/{idea.id}")

    # Same site (127.0.0.1, another port): the session cookie goes along; the token is missing
    # or forged. (Playwright's request interception answers CORS preflights itself, so the
    # fetch with custom headers is sent here; a plain browser would not even send it.)
    page.goto(other_origin.serve("/fetch", FORGE_FETCH.format(target=target)))
    assert page.evaluate("window.forged") == ["settled", "blocked"]
    with page.expect_response(target) as answer:
        page.goto(other_origin.serve("/form", FORGE_FORM.format(target=target)))
    assert answer.value.status == 400
    # The refusal page offers no "send again" for it: one click there would finish the
    # forgery with the member's own token.
    expect(page.locator("main form[action$='/vote']")).to_have_count(0)
    assert vote_total(idea.id) == (1, 1)  # the author's only

    # The member's own page shows no vote, and their own click does vote (the control).
    page.goto(f"/ideas/{idea.id}")
    count = page.locator(f"form#vote-{idea.id} .vote-count")
    expect(count).to_have_text("1")
    page.locator(f"form#vote-{idea.id} button.vote-button").click()
    expect(count).to_have_text("2")
    assert vote_total(idea.id) == (2, 2)

    # Cross site (another host name, served by the test): SameSite=Lax keeps the cookie home
    # even on a top-level form post, which would have taken the vote back. (Chromium keeps
    # such a site's fetches away from loopback addresses altogether: only the form is tried.)
    with page.expect_response(target) as answer:
        page.goto(forge_from_other_site(page, target))
    assert answer.value.status == 400
    assert vote_total(idea.id) == (2, 2)
    # ... and the refusal did not replace the member's session cookie (a forced sign-out).
    page.goto(f"/ideas/{idea.id}")
    expect(page.locator(".site-header .who")).to_have_text("Vic")
    expect(count).to_have_text("2")

    # Every forged POST reached the app and was refused; only the member's own click counted.
    posts = [
        (r.origin, r.cookie, r.status)
        for r in seen
        if r.method == "POST" and r.path == target_path(target)
    ]
    assert posts == [
        *[(other_origin.url, True, 400)] * 3,
        (live_server, True, 200),
        ("http://attacker.test", False, 400),
    ], posts
