"""Accessibility: axe-core finds nothing on any page, for every reader, language and screen.

Every HTML page of the route inventory (tests/routes.py: each GET route that is not the
API, a file or plain text), for visitor, member and staff (admin where no other role may
call a route), in English and Russian, at 1280x800 and 390x844, in the light and the dark
colour scheme, and once without the page's scripts, is checked by axe-core (as bundled by
`axe-playwright-python`) against the WCAG 2.0/2.1/2.2 A and AA rules: zero violations.
Besides the inventory's pages, the states a reader meets on them: forms refused with
errors, an empty board, a search with no results, page 2 of a list, an idea with its
discussion, a deleted idea (staff), the 404 page.

The page list is derived, not written: a route added to the inventory is swept by the next
run, with the roles the policy oracle (`routes.expected`) says may call it. A route whose
URL names a kind of object `routes.World` cannot build yet is skipped with the reason
shown in the run's summary, never silently.

The checker can fail: `test_the_checker_reports_a_broken_page` serves a deliberately
inaccessible page through the same code path and expects its violations reported.

One live server and one set of data serve the whole module; each page gets a new browser
context per language and width. SQLite only: this tests HTML, not the database.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import tinycss2
from axe_playwright_python.base import AxeResults
from axe_playwright_python.sync_playwright import Axe
from werkzeug.serving import make_server

from ideaboard import create_app
from ideaboard.extensions import db
from ideaboard.models import Notification
from ideaboard.services import comments, ideas, merges, roadmap, votes

from ..conftest import BACKEND, _config, _reset
from ..factories import PASSWORD, make_board
from ..routes import CHEAP_HASH, ROUTES, Route, World, expected, url
from .conftest import HOST

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BACKEND == "postgres", reason="checks HTML; the SQLite run covers it"),
]

#: WCAG 2.0, 2.1 and 2.2, levels A and AA (axe has no wcag22a tag: 2.2's A rules are 2.1's).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}

LANGS = {"en": "en-US", "ru": "ru-RU"}  # the browser's locale, hence its Accept-Language
VIEWPORTS = {1280: {"width": 1280, "height": 800}, 390: {"width": 390, "height": 844}}
#: (language, the page's own scripts run, widths): each language at each width with
#: JavaScript; once more without it (the server's HTML, as a no-JS reader gets it) on the
#: phone, where the fallbacks (menus, folded filters) differ most. axe itself needs a
#: script engine, so "without" means the page's scripts are blocked, not the engine off.
VIEWS = [("en", True, (1280, 390)), ("ru", True, (1280, 390)), ("en", False, (390,))]
CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"
#: Both schemes if the stylesheet has a dark one (it does; the check keeps this honest).
DARK = re.compile(r"prefers-color-scheme\s*:\s*dark")
SCHEMES = ("light", "dark") if DARK.search(CSS.read_text()) else ("light",)
#: The rules a colour scheme can change the outcome of. The dark scheme is checked with
#: these alone (all rules in light): test_the_dark_scheme_changes_colours_only keeps the
#: dark stylesheet to colours, so every other rule's answer is the same in both.
SCHEME_RULES = ["color-contrast", "link-in-text-block"]

#: The roles swept, by their keys in routes.World; admin only where nobody else may look.
ROLE_NAMES = {"anon": "visitor", "a": "member", "staff": "staff", "admin": "admin"}
SWEPT = ("anon", "a", "staff")

AXE = Axe()


# --- what is checked ----------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """A form on the page to submit as it is filled here, skipping the browser's own checks
    (so the server's error messages are what the reader sees)."""

    selector: str
    values: dict[str, str]


@dataclass(frozen=True)
class PageSpec:
    """One page to check: how to find its path in the site's data, and who looks at it."""

    name: str
    endpoint: str
    roles: tuple[str, ...]
    status: int = 200
    submit: Form | None = None


def _is_html_page(route: Route) -> bool:
    return (
        "GET" in route.methods
        and not route.api
        and route.target != "file"
        and route.content_type.startswith("text/html")
    )


def _roles(route: Route, deleted: bool = False) -> tuple[str, ...]:
    """Who the policy lets see the page (a member sent on from a sign-in page is not)."""
    ok = [
        role
        for role in SWEPT
        if expected(route, role, owner="a", deleted=deleted) == "ok"
        and not (role != "anon" and 302 in route.ok_get)
    ]
    if not ok and expected(route, "admin", owner="a", deleted=deleted) == "ok":
        ok = ["admin"]
    return tuple(ok)


ROUTE_PAGES = [
    PageSpec(endpoint, endpoint, _roles(route))
    for endpoint, route in sorted(ROUTES.items())
    if _is_html_page(route)
]

ALL = SWEPT
STATE_PAGES = [
    PageSpec("ideas.show:discussion", "ideas.show", ALL),
    PageSpec("ideas.show:deleted", "ideas.show", _roles(ROUTES["ideas.show"], deleted=True)),
    PageSpec("ideas.index:page-2", "ideas.index", ALL),
    PageSpec("ideas.index:no-results", "ideas.index", ALL),
    PageSpec("ideas.board:empty", "ideas.board", ALL),
    PageSpec("errors:404", "ideas.show", ALL, status=404),
    PageSpec(
        "ideas.new:errors",
        "ideas.new",
        ("a",),
        status=422,
        submit=Form("main form[action^='/ideas/new']", {"title": "", "body": ""}),
    ),
    # i13 merge: a merged idea (its notice), the idea it went into (its history lists it,
    # with Undo for staff), the confirm step, and the field's error.
    PageSpec("ideas.show:merged", "ideas.show", ALL),
    PageSpec("ideas.show:merged-into", "ideas.show", ALL),
    PageSpec("ideas.merge:confirm", "ideas.merge", _roles(ROUTES["ideas.merge"])),
    PageSpec("ideas.merge:error", "ideas.merge", _roles(ROUTES["ideas.merge"]), status=422),
    PageSpec(
        "ideas.show:comment-errors",
        "ideas.show",
        ("a",),
        status=422,
        submit=Form("#comment-form", {"body": ""}),
    ),
    # i14 moderation: a thread with its moderator tools, a hidden reply (staff moderate
    # everywhere), the ban form and the community settings refused with errors.
    PageSpec(
        "moderation.bans:errors",
        "moderation.bans",
        ("staff",),
        status=422,
        submit=Form("main form[action$='/bans']", {"member": "nobody", "reason": ""}),
    ),
    PageSpec(
        "moderation.settings:errors",
        "moderation.settings",
        ("staff",),
        status=422,
        submit=Form("main form[action$='/settings']", {"name": "", "accent": "#123456"}),
    ),
    PageSpec(
        "auth.register:errors",
        "auth.register",
        ("anon",),
        status=422,
        submit=Form(
            "main form[action^='/register']",
            {"email": "not an address", "display_name": "", "password": "short"},
        ),
    ),
    PageSpec(
        "auth.login:errors",
        "auth.login",
        ("anon",),
        status=422,
        submit=Form(
            "main form[action^='/login']",
            {"email": "nobody@example.com", "password": "not the password"},
        ),
    ),
]

CASES = [
    pytest.param(spec, role, id=f"{spec.name}-{ROLE_NAMES[role]}")
    for spec in ROUTE_PAGES + STATE_PAGES
    for role in spec.roles
]


# --- the checker --------------------------------------------------------------------------


@dataclass
class Finding:
    """One axe violation on one page as one reader saw it."""

    rule: str
    impact: str
    help: str
    targets: list[str]
    where: str
    url: str

    def __str__(self) -> str:
        shown = "; ".join(self.targets[:5])
        more = f" (+{len(self.targets) - 5} more)" if len(self.targets) > 5 else ""
        return (
            f"{self.rule} [{self.impact}] {self.help}\n"
            f"    on {self.where}\n    at {shown}{more}\n    see {self.url}"
        )


def axe_findings(page, where: str, rules: list[str] | None = None) -> list[Finding]:
    """Run axe-core over `page` as it is now: its WCAG A/AA violations (of `rules` only, if
    given) as findings.

    Does what axe-playwright-python's `Axe.run` does (inject its bundled axe-core, run it,
    wrap the answer in `AxeResults`), but injects once per document, not once per run.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.axe_script)
    options = dict(AXE_OPTIONS, runOnly={"type": "rule", "values": rules}) if rules else AXE_OPTIONS
    result = AxeResults(page.evaluate(f"axe.run(document, {json.dumps(options)})"))
    return [
        Finding(
            rule=v["id"],
            impact=v.get("impact") or "?",
            help=v.get("help", ""),
            targets=[" > ".join(map(str, n["target"])) for n in v["nodes"]],
            where=where,
            url=v.get("helpUrl", ""),
        )
        for v in result.response["violations"]
    ]


def assert_no_findings(findings: list[Finding], checks: int) -> None:
    """Fail with every finding (rule, impact, selectors, page, role, language, screen)."""
    if findings:
        pytest.fail(
            f"axe-core found {len(findings)} WCAG 2.2 A/AA violation(s) in {checks} check(s):\n"
            + "\n".join(str(f) for f in findings),
            pytrace=False,
        )


# --- one server, one world for the module ---------------------------------------------------


@dataclass
class Site:
    """The live server, each page's path, why some cannot be built, each role's session."""

    base_url: str
    paths: dict[str, str] = field(default_factory=dict)
    unbuildable: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, dict | None] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)


def _fill(app, site: Site) -> None:
    """Make the world the pages show, and the path of every page."""
    world = World.build()
    a, b, staff = world.users["a"], world.users["b"], world.users["staff"]
    general = world.general
    empty = make_board(name="Empty board")

    for endpoint, route in ROUTES.items():
        if not _is_html_page(route):
            continue
        try:
            site.paths[endpoint] = url(app, endpoint, world.target(route, owner="a"))
        except Exception as exc:  # noqa: BLE001 - any failure means "World cannot build it"
            db.session.rollback()
            site.unbuildable[endpoint] = (
                f"routes.World cannot build a {route.target!r} target for {endpoint} "
                f"({type(exc).__name__}: {exc}); teach World.target and url_args that kind"
            )

    # Enough ideas for a second page, in several statuses, some voted for by the member.
    # (Titles apart from the targets' "Idea <n>": titles are unique on a board.)
    for n in range(24):
        idea = ideas.create_idea(
            b if n % 2 else a,
            general,
            ("idea", "problem", "product")[n % 3],
            f"List idea {n:02d}",
            "",
        )
        # The member votes for some of b's ideas (their own carry their vote already),
        # before the status change that may close voting.
        if n % 4 == 1:
            votes.set_vote(a, idea, votes.VOTE)
        status = ("heard", "under_review", "planned", "in_progress", "shipped", "declined")[n % 6]
        if status != "heard":
            roadmap.change_status(staff, idea, status, "")
    # An idea with a whole discussion: Markdown, comments, an official answer, a status note.
    talk = ideas.create_idea(
        b,
        general,
        "problem",
        "Export the board to CSV",
        "We need **CSV export**:\n\n- ideas\n- votes\n\n> quoted\n\n`code` and "
        "[a link](https://example.com).",
    )
    votes.toggle_vote(a, talk)
    votes.toggle_vote(staff, talk)
    comments.add_comment(a, talk, "Yes, *please*. We copy rows by hand today.")
    comments.add_comment(b, talk, "Also the comments, ideally.")
    comments.add_comment(staff, talk, "On our list for next month.", official=True)
    roadmap.change_status(staff, talk, "planned", "Next month, with the API.")
    kept = ideas.create_idea(a, general, "idea", "Offline mode for the mobile app", "")
    dup = ideas.create_idea(b, general, "idea", "Work without a connection", "")
    merges.merge_idea(staff, dup, str(kept.id))
    candidate = ideas.create_idea(b, general, "idea", "Offline mode, again", "")
    gone = ideas.create_idea(a, general, "idea", "A deleted idea", "Gone.")
    ideas.delete_idea(a, gone)
    db.session.commit()
    # i13 notify: the member's notification centre has news to show (read and unread).
    from ideaboard.services import notifications

    notifications.fan_out_pending()
    first = db.session.scalar(
        sa.select(sa.func.min(Notification.id)).where(Notification.user_id == a.id)
    )
    notifications.mark_read(a, first)
    db.session.commit()
    # i14 moderation: a thread pinned and locked, a reply hidden, a member banned, so the
    # thread (as its moderators see it), the bans and the logs have rows.
    from ideaboard.services import moderation, threads

    club = world.community
    modded = threads.start_thread(a, club, "Tyre pressure in winter", "What do you run?")
    hidden = threads.add_reply(b, modded, club, "Buy cheap tyres at example.com")
    threads.add_reply(a, modded, club, "2.2 bar, **always**.")
    moderation.set_pinned(staff, modded, club, True)
    moderation.set_locked(staff, modded, club, True)
    moderation.hide_reply(staff, modded, hidden, club, "Advertising")
    moderation.ban_member(staff, club, b, "Spam links", moderation.ban_expiry("7"))
    db.session.commit()

    with app.test_request_context():
        from flask import url_for

        site.paths.update(
            {
                "ideas.show:discussion": url_for("ideas.show", idea_id=talk.id),
                "ideas.show:deleted": url_for("ideas.show", idea_id=gone.id),
                "ideas.index:page-2": url_for("ideas.index", page=2),
                "ideas.index:no-results": url_for("ideas.index", q="Zyxwvut"),
                "ideas.board:empty": url_for("ideas.board", slug=empty.slug),
                "errors:404": url_for("ideas.show", idea_id=987654),
                "ideas.show:merged": url_for("ideas.show", idea_id=dup.id),
                "ideas.show:merged-into": url_for("ideas.show", idea_id=kept.id),
                "ideas.merge:confirm": url_for("ideas.merge", idea_id=candidate.id, into=kept.id),
                "ideas.merge:error": url_for("ideas.merge", idea_id=candidate.id, into=dup.id),
                "ideas.new:errors": url_for("ideas.new"),
                "ideas.show:comment-errors": url_for("ideas.show", idea_id=talk.id),
                "auth.register:errors": url_for("auth.register"),
                "auth.login:errors": url_for("auth.login"),
                "community.thread:moderated": url_for(
                    "community.thread", slug=club.slug, thread_id=modded.id
                ),
            }
        )
    site.paths["moderation.bans:errors"] = site.paths["moderation.bans"]
    site.paths["moderation.settings:errors"] = site.paths["moderation.settings"]
    site.sessions["anon"] = None
    site.emails = {role: user.email for role, user in world.users.items()}


def _sign_in(browser, base_url: str, email: str) -> dict:
    """Sign in through the real form once; the session, for every context of that role."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/login")
    form = page.locator("main form[action^='/login']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert not page.url.split("?")[0].endswith("/login"), f"{email} could not sign in"
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="module")
def site(database_url, browser):
    """One live server over one world of data, with a signed-in session per role."""
    settings = {
        **_config(database_url),
        "WTF_CSRF_ENABLED": True,
        "RATELIMIT_ENABLED": False,
        "PASSWORD_HASH_METHOD": CHEAP_HASH,
    }
    app = create_app(settings)
    _reset(app)
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="a11y-server", daemon=True)
    thread.start()
    site = Site(base_url=f"http://{HOST}:{server.server_port}")
    try:
        with app.app_context():
            _fill(app, site)
            db.session.remove()
        for role in ROLE_NAMES:
            if role != "anon":
                site.sessions[role] = _sign_in(browser, site.base_url, site.emails[role])
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        _reset(app)
        with app.app_context():
            db.engine.dispose()


# --- the sweep ----------------------------------------------------------------------------


def _is_script(url: str) -> bool:
    return urlsplit(url).path.endswith(".js")  # with or without its ?v= cache buster


def _open(page, base_url: str, path: str, spec: PageSpec):
    """Load the page (submitting its form if the spec says so); the final response."""
    response = page.goto(base_url + path)
    if spec.submit is not None:
        with page.expect_navigation() as nav:
            page.eval_on_selector(
                spec.submit.selector,
                """(form, values) => {
                    form.noValidate = true;
                    for (const [name, value] of Object.entries(values)) {
                        form.elements[name].value = value;
                    }
                    form.submit();  // a plain submission, as without JavaScript
                }""",
                spec.submit.values,
            )
        response = nav.value
    return response


@pytest.mark.parametrize(("spec", "role"), CASES)
def test_page_has_no_axe_violations(browser, site, spec: PageSpec, role: str):
    """axe-core finds no WCAG 2.2 A/AA violation on the page in any language, width or
    scheme, nor without the page's scripts."""
    if spec.name in site.unbuildable:
        pytest.skip(site.unbuildable[spec.name])
    path = site.paths[spec.name]
    findings: list[Finding] = []
    checks = 0
    for lang, scripts, widths in VIEWS:
        # Reduced motion: the stylesheet then has no transitions, so a colour scheme
        # switched on a loaded page is checked at its end, not halfway through a fade.
        context = browser.new_context(
            locale=LANGS[lang],
            storage_state=site.sessions[role],
            service_workers="block",
            reduced_motion="reduce",
        )
        if not scripts:
            context.route(_is_script, lambda route: route.abort())
        try:
            page = context.new_page()
            for width in widths:
                page.set_viewport_size(VIEWPORTS[width])
                page.emulate_media(color_scheme=SCHEMES[0])
                response = _open(page, site.base_url, path, spec)  # loaded at this width
                where = f"{path} ({spec.name}) as {ROLE_NAMES[role]}, {lang}, {width}px"
                where += "" if scripts else ", no JS"
                assert response is not None and response.status == spec.status, (
                    f"{where}: status {response and response.status}, want {spec.status}"
                    f" (landed on {page.url})"
                )
                assert page.get_attribute("html", "lang") == lang, f"{where}: not in {lang}"
                if not scripts:
                    assert page.evaluate("typeof window.htmx") == "undefined", where
                for scheme in SCHEMES if scripts else SCHEMES[:1]:
                    page.emulate_media(color_scheme=scheme)
                    rules = None if scheme == SCHEMES[0] else SCHEME_RULES
                    findings += axe_findings(page, f"{where}, {scheme}", rules)
                    checks += 1
        finally:
            context.close()
    assert_no_findings(findings, checks)


def test_every_html_route_is_swept():
    """Every HTML GET route of the inventory is a page here, with at least one role."""
    html = {e for e, r in ROUTES.items() if _is_html_page(r)}
    assert html == {p.endpoint for p in ROUTE_PAGES}
    nobody = [p.endpoint for p in ROUTE_PAGES if not p.roles]
    assert not nobody, f"no swept role may call {nobody}: extend SWEPT or ROLE_NAMES"
    assert {"anon", "a", "staff"} <= {r for p in ROUTE_PAGES for r in p.roles}


#: What a colour-scheme block may set, for SCHEME_RULES alone to be enough in it.
COLOUR_PROPERTIES = {
    "color",
    "color-scheme",
    "background",
    "background-color",
    "border-color",
    "outline-color",
    "text-decoration-color",
    "caret-color",
    "accent-color",
    "box-shadow",
    "fill",
    "stroke",
}


def _dark_declarations(rules, dark: bool = False):
    """(selector, property) of every declaration under a prefers-color-scheme:dark query."""
    for rule in rules:
        if rule.type == "at-rule" and rule.content is not None:
            inner = dark or bool(DARK.search(tinycss2.serialize(rule.prelude)))
            yield from _dark_declarations(tinycss2.parse_rule_list(rule.content), inner)
        elif rule.type == "qualified-rule" and dark:
            selector = tinycss2.serialize(rule.prelude).strip()
            for decl in tinycss2.parse_declaration_list(rule.content):
                if decl.type == "declaration":
                    yield selector, decl.lower_name


def test_the_dark_scheme_changes_colours_only():
    """The dark scheme sets colours (custom properties, colour properties) and nothing that
    moves, hides or names things, so the colour rules alone can tell it apart from light."""
    sheet = tinycss2.parse_stylesheet(CSS.read_text(), skip_comments=True, skip_whitespace=True)
    declared = list(_dark_declarations(sheet))
    assert declared or SCHEMES == ("light",)
    other = [
        f"{sel} {{{prop}}}"
        for sel, prop in declared
        if not prop.startswith("--") and prop not in COLOUR_PROPERTIES
    ]
    assert not other, (
        f"the dark scheme sets more than colours: {other}; "
        "run every axe rule in it (drop SCHEME_RULES) or keep it to colours"
    )


# --- the self-check: the same checker on a deliberately broken page --------------------------

BROKEN = """<!doctype html>
<html><head><title>Broken</title>
<style>
  .faint { color: #bbb; background: #fff; }
  @media (prefers-color-scheme: dark) { body { background: #000; } .dim { color: #222; } }
  @media (max-width: 500px) { .narrow { color: #ccc; background: #fff; } }
</style></head>
<body>
  <main>
    <h1>A page that fails</h1>
    <img src="/static/css/app.css">
    <form><input type="text" name="q"><button></button></form>
    <p class="faint">Too pale to read.</p>
    <p class="dim">Fine in light, lost in the dark.</p>
    <p class="narrow">Fine on a desktop, pale on a phone.</p>
  </main>
</body></html>
"""


def test_the_checker_reports_a_broken_page(browser, site):
    """The sweep's checker fails on a page without alt text, labels, lang or contrast, and
    sees what only the dark scheme or only the narrow screen breaks."""
    context = browser.new_context(viewport=VIEWPORTS[1280])
    try:
        context.route(
            f"{site.base_url}/__broken",
            lambda route: route.fulfill(status=200, content_type="text/html", body=BROKEN),
        )
        page = context.new_page()
        page.goto(f"{site.base_url}/__broken")
        wide = axe_findings(page, "/__broken as visitor, en, 1280px, light")
        rules = {f.rule for f in wide}
        assert {"image-alt", "label", "button-name", "html-has-lang", "color-contrast"} <= rules
        pale = next(f for f in wide if f.rule == "color-contrast")
        assert pale.targets == [".faint"], pale.targets  # the dark and narrow ones pass here

        page.emulate_media(color_scheme="dark")
        dark = next(f for f in axe_findings(page, "dark") if f.rule == "color-contrast")
        assert ".dim" in dark.targets

        page.emulate_media(color_scheme="light")
        page.set_viewport_size(VIEWPORTS[390])
        narrow = next(f for f in axe_findings(page, "narrow") if f.rule == "color-contrast")
        assert ".narrow" in narrow.targets

        with pytest.raises(pytest.fail.Exception) as failed:
            assert_no_findings(wide, 1)
        message = str(failed.value)
        for part in ("image-alt [critical]", "label [critical]", "/__broken as visitor", "img"):
            assert part in message, (part, message)
    finally:
        context.close()


def test_the_checker_runs_the_wcag_22_rules():
    """The bundled axe-core knows WCAG 2.2 (4.5 and later); best practices do not count."""
    found = re.search(r"axe v(\d+)\.(\d+)\.(\d+)", AXE.axe_script[:500])
    assert found and tuple(map(int, found.groups())) >= (4, 5, 0), found
    assert "wcag22aa" in AXE_TAGS and "best-practice" not in AXE_TAGS
