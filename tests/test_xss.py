"""Hostile input end to end (security.md items 1, 2, 7, 10): every shared payload, stored in
every user field, renders inert on every page that shows it, and plain text shows as itself.

Each test builds the data for the whole corpus once (through the factories) and checks every
payload, collecting failures that name the payload's line in the shared file.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Comment, Idea, User
from ideaboard.services import ideas as idea_service
from ideaboard.services.accounts import NAME_MAX
from ideaboard.services.ideas import TITLE_MAX, TITLE_MIN
from ideaboard.services.roadmap import COLUMN_LIMIT

from .factories import general_board, login_as, make_comment, make_idea, make_user
from .oracle import Payload, inert_problems, load_payloads, page_problems, parse

PAGES = ("idea", "list", "home", "roadmap", "api")
ONE_LINE_FIELDS = ("title", "display_name")
NAME_MIN = 2
# Pages that show only the newest few ideas: data is built and checked in slices this big.
VISIBLE = {
    "home": inspect.signature(idea_service.most_active).parameters["limit"].default,
    "roadmap": COLUMN_LIMIT,
}
# The control characters the app refuses (all but tab, LF and CR), as services/text.py says.
FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Not in the shared file, so the refusal path is always exercised.
CONTROL_PAYLOADS = [
    Payload(0, "A\x00B <script>alert(1)</script>"),
    Payload(0, "<img src=x onerror=alert(1)>\x00"),
    Payload(0, "\x1b[2J<svg onload=alert(1)>"),
    Payload(0, "jav\x01ascript:alert(1) [a](jav\x01ascript:alert(1))"),
    Payload(0, "del\x7f<b>x</b>"),
    # Python counts VT, FF and \x1c-\x1f as whitespace: one-line fields fold them to spaces
    # (accepted), multi-line fields keep them and must refuse.
    Payload(0, "<b>\x0bx</b>\x0c<img src=x onerror=alert(1)>"),
]
FAST_HASH = "pbkdf2:sha256:1"  # test users never sign in with a password here


def one_line(value: str) -> str:
    """The app's folding of one-line fields (titles, names): trim, fold inner whitespace."""
    return " ".join(value.split())


def stored_form(field: str, value: str) -> str:
    """What the app makes of `value` before checking it."""
    return one_line(value) if field in ONE_LINE_FIELDS else value.strip()


def refused(field: str, value: str) -> bool:
    """Whether the app must refuse `value` in `field` (control characters left after folding)."""
    return bool(FORBIDDEN.search(stored_form(field, value)))


def fit(value: str, low: int, high: int) -> str:
    """`value` folded and cut to a one-line field's length limits, so the app must take it."""
    value = one_line(value)[:high].rstrip()
    return value.ljust(low, "_")


def storable(field: str) -> list[Payload]:
    return [p for p in load_payloads() if not refused(field, p.text)]


@dataclass
class Case:
    """One payload stored in every field it may go in: one idea, its author, one comment."""

    payload: Payload
    idea_id: int
    title: str  # as stored; the page must show exactly this text
    name: str  # the author's display name, as stored
    commented: bool

    def at(self, where: str) -> str:
        return f"payload line {self.payload.line} on {where}"


def seed(payload: Payload) -> tuple[Case, list[str]]:
    """Store `payload` as title, body, comment and author name through the domain layer.

    A field that must refuse the payload (control characters) gets a neutral value instead.
    Returns the case and any sign that the app altered what it stored.
    """
    text, line = payload.text, payload.line
    title = f"Neutral title {line}" if refused("title", text) else fit(text, TITLE_MIN, TITLE_MAX)
    name = (
        f"Neutral name {line}" if refused("display_name", text) else fit(text, NAME_MIN, NAME_MAX)
    )
    body = "" if refused("body", text) else text
    user = make_user(name=name)
    idea = make_idea(user, title=title, body=body)
    commented = not refused("comment", text)
    if commented:
        make_comment(idea, user, body=text)
    case = Case(payload, idea.id, idea.title, user.display_name, commented)
    stored = {
        "title": (idea.title, title),
        "name": (case.name, name),
        "body": (idea.body, body.strip()),
    }
    altered = [
        f"{case.at('the database')}: {what} stored as {got!r}, expected {want!r}"
        for what, (got, want) in stored.items()
        if got != want
    ]
    return case, altered


# --- page checks: each returns a list of problems naming the payload line --------------------


def part_of(node) -> str:
    """Which stored field an offending element sits in, as far as the markup tells."""
    while node is not None:
        if node.matches("article.comment"):
            return "comment"
        if node.matches("div.idea-body"):
            return "body"
        node = node.parent
    return "title or name"


def owner(node, cases: dict[int, Case]) -> Case | None:
    """The case whose idea row (the nearest <li> linking to /ideas/<id>) holds `node`."""
    while node is not None:
        if node.tag == "li":
            for a in [node, *node.select("a")]:
                m = re.match(r"/ideas/(\d+)", a.get("href") or "")
                if m and int(m[1]) in cases:
                    return cases[int(m[1])]
        node = node.parent
    return None


def oracle(tree) -> list:
    """Both oracle checks on a page or template fragment (not a bare Markdown fragment)."""
    return [*inert_problems(tree, fragment=False), *page_problems(tree)]


def problems_on(tree, where: str, cases: Case | dict[int, Case]) -> list[str]:
    """Oracle problems on a page, each labelled with the payload it comes from."""
    found = []
    for problem in oracle(tree):
        case = cases if isinstance(cases, Case) else owner(problem.node, cases)
        label = case.at(where) if case else f"payloads on {where} (row unknown)"
        found.append(f"{label} ({part_of(problem.node)}): {problem}")
    return found


def expect_text(label: str, what: str, got: str | None, want: str) -> list[str]:
    return [] if got == want else [f"{label}: {what} shows {got!r}, expected {want!r}"]


def first_text(tree, selector: str) -> str | None:
    found = tree.select(selector)
    return found[0].text if found else None


def get_html(client, url: str, **kw) -> tuple[object, list[str]]:
    resp = client.get(url, **kw)
    if resp.status_code != 200:
        return None, [f"{url}: HTTP {resp.status_code}"]
    return parse(resp.get_data(as_text=True)), []


def check_idea_page(client, cases: list[Case]) -> list[str]:
    found = []
    for case in cases:
        url = f"/ideas/{case.idea_id}"
        label = case.at(url)
        tree, errors = get_html(client, url)
        found += [f"{label}: {e}" for e in errors]
        if tree is None:
            continue
        found += problems_on(tree, url, case)
        found += expect_text(
            label, "<title>", first_text(tree, "title"), f"{case.title} · Ideaboard"
        )
        found += expect_text(label, "heading", first_text(tree, "h1.idea-heading"), case.title)
        found += expect_text(
            label, "author", first_text(tree, "article.idea span.author"), case.name
        )
        comments = tree.select("article.comment")
        if len(comments) != case.commented:
            found.append(f"{label}: {len(comments)} comments shown, expected {case.commented:d}")
        for comment in comments:
            found += expect_text(
                label, "comment author", first_text(comment, "span.author"), case.name
            )
    return found


def check_list_page(client, cases: list[Case]) -> list[str]:
    found = []
    by_id = {c.idea_id: c for c in cases}
    url = f"/ideas?sort=new&per_page={len(cases) + 1}"
    for headers, where in (({}, url), ({"HX-Request": "true"}, f"{url} (htmx fragment)")):
        tree, errors = get_html(client, url, headers=headers)
        found += errors
        if tree is None:
            continue
        found += problems_on(tree, where, by_id)
        for case in cases:
            label = case.at(where)
            row = tree.select(f"li#idea-{case.idea_id}")
            if not row:
                found.append(f"{label}: the idea is not listed")
                continue
            found += expect_text(label, "title", first_text(row[0], "a.idea-title"), case.title)
            found += expect_text(label, "author", first_text(row[0], "span.author"), case.name)
    return found


def _check_linked_titles(client, cases, url, selector) -> list[str]:
    by_id = {c.idea_id: c for c in cases}
    tree, found = get_html(client, url)
    if tree is None:
        return found
    found += problems_on(tree, url, by_id)
    shown = {}
    for a in tree.select(selector):
        m = re.match(r"/ideas/(\d+)", a.get("href") or "")
        if m:
            shown[int(m[1])] = a.text
    for case in cases:
        if case.idea_id not in shown:
            found.append(f"{case.at(url)}: the idea is not shown")
        else:
            found += expect_text(case.at(url), "title", shown[case.idea_id], case.title)
    return found


def check_home_page(client, cases: list[Case]) -> list[str]:
    return _check_linked_titles(client, cases, "/", "a.idea-title")


def check_roadmap_page(client, cases: list[Case]) -> list[str]:
    return _check_linked_titles(client, cases, "/roadmap", "li.roadmap-card a")


def check_api(client, cases: list[Case]) -> list[str]:
    found = []
    for case in cases:
        url = f"/api/v1/ideas/{case.idea_id}"
        label = case.at(url)
        resp = client.get(url)
        if resp.status_code != 200 or resp.mimetype != "application/json":
            found.append(f"{label}: HTTP {resp.status_code} {resp.mimetype}")
            continue
        data = resp.get_json()
        found += expect_text(label, "JSON title", data["title"], case.title)
        found += expect_text(label, "JSON author", data["author"], case.name)
        found += [
            f"{label}: body_html {p}" for p in inert_problems(data["body_html"], fragment=True)
        ]
    return found


CHECKS = {
    "idea": check_idea_page,
    "list": check_list_page,
    "home": check_home_page,
    "roadmap": check_roadmap_page,
    "api": check_api,
}


def report(found: list[str]) -> str:
    return f"{len(found)} problem(s):\n" + "\n".join(found)


# --- stored payloads ------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_stored_payloads_render_inert(app, client, page):
    """Every payload stored as title, body, comment and author name shows inert on the page."""
    app.config["PASSWORD_HASH_METHOD"] = FAST_HASH  # one user per payload; none signs in
    payloads = load_payloads()
    found = []
    step = VISIBLE.get(page, len(payloads))
    for start in range(0, len(payloads), step):
        seeded = [seed(p) for p in payloads[start : start + step]]
        found += [problem for _, altered in seeded for problem in altered]
        found += CHECKS[page](client, [case for case, _ in seeded])
    assert not found, report(found)


def test_payload_ideas_posted_through_the_form_are_stored_verbatim(app, client):
    """The create form stores a payload title (folded) and body exactly as typed."""
    login_as(client, make_user())
    board_id = general_board().id
    found = []
    for payload in storable("title"):
        if refused("body", payload.text):
            continue
        title = fit(payload.text, TITLE_MIN, TITLE_MAX)
        data = {"title": title, "body": payload.text, "board": board_id, "kind": "idea"}
        resp = client.post("/ideas/new", data=data)
        label = f"payload line {payload.line} posted to /ideas/new"
        m = re.match(r"/ideas/(\d+)", resp.headers.get("Location", ""))
        if resp.status_code != 303 or not m:
            found.append(f"{label}: HTTP {resp.status_code} {resp.headers.get('Location')}")
            continue
        idea = db.session.get(Idea, int(m[1]))
        found += expect_text(label, "stored title", idea.title, title)
        found += expect_text(label, "stored body", idea.body, payload.text.strip())
    assert not found, report(found)


def test_payload_comments_posted_with_htmx_return_inert_fragments(app, htmx):
    """A payload comment posted with htmx comes back as an inert fragment."""
    author = make_user()
    idea = make_idea(author)
    login_as(htmx, author)
    found = []
    for payload in storable("comment"):
        resp = htmx.post(f"/ideas/{idea.id}/comments", data={"body": payload.text})
        label = f"payload line {payload.line} posted as an htmx comment"
        if resp.status_code != 200:
            found.append(f"{label}: HTTP {resp.status_code}")
            continue
        tree = parse(resp.get_data(as_text=True))
        if len(tree.select("div[data-user-content]")) != 1:
            found.append(f"{label}: the fragment has no user-content container")
        found += [f"{label}: {p}" for p in oracle(tree)]
    assert not found, report(found)


# --- control characters are refused, not stored ---------------------------------------------


def control_payloads() -> list[Payload]:
    corpus = [p for p in load_payloads() if FORBIDDEN.search(p.text)]
    return corpus + CONTROL_PAYLOADS


def counts() -> tuple[int, int, int]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(m)) for m in (Idea, Comment, User)
    )


def test_control_characters_are_refused_with_422(app, client):
    """Titles, bodies, comments and names with control characters get a 422, store nothing."""
    app.config["PASSWORD_HASH_METHOD"] = FAST_HASH
    author = make_user()
    idea = make_idea(author)
    login_as(client, author)
    board_id = general_board().id
    found = []
    for n, payload in enumerate(control_payloads()):
        text, line = payload.text, payload.line or "synthetic"
        attempts = {
            "title": (
                "/ideas/new",
                {"title": text, "body": "ok", "board": board_id, "kind": "idea"},
            ),
            "body": (
                "/ideas/new",
                {"title": "Fine title", "body": text, "board": board_id, "kind": "idea"},
            ),
            "comment": (f"/ideas/{idea.id}/comments", {"body": text}),
            "display_name": (
                "/register",
                {
                    "email": f"new{n}@example.com",
                    "display_name": text,
                    "password": "a fresh passphrase",
                },
            ),
        }
        for field, (url, data) in attempts.items():
            label = f"payload line {line} {text!r} as {field} posted to {url}"
            if not refused(field, text):
                continue  # folded away in a one-line field: nothing left to refuse
            before = counts()
            resp = client.post(url, data=data)
            if resp.status_code != 422:
                found.append(f"{label}: HTTP {resp.status_code}, expected 422")
            if counts() != before:
                found.append(f"{label}: something was stored")
            found += [f"{label}: {p}" for p in oracle(parse(resp.get_data(as_text=True)))]
        login_as(client, author)
    assert not found, report(found)


# --- reflected input ------------------------------------------------------------------------


def test_search_box_echo_is_escaped(app, client):
    """/ideas?q=<payload> shows the payload only as the search input's value."""
    make_idea(title="Something to find")
    found = []
    for payload in load_payloads():
        label = f"payload line {payload.line} in /ideas?q="
        tree, errors = get_html(client, "/ideas", query_string={"q": payload.text})
        found += [f"{label}: {e}" for e in errors]
        if tree is None:
            continue
        found += [f"{label}: {p}" for p in page_problems(tree)]
        box = tree.select("input#q")
        want = payload.text[:200].replace("\x00", "")
        found += expect_text(label, "search box", box[0].get("value") if box else None, want)
    assert not found, report(found)


@pytest.mark.parametrize("url", ["/login", "/register"])
def test_next_parameter_echo_is_escaped(app, client, url):
    """?next=<payload> on the sign-in pages is kept only as the hidden input's value."""
    found = []
    for payload in load_payloads():
        label = f"payload line {payload.line} in {url}?next="
        tree, errors = get_html(client, url, query_string={"next": payload.text})
        found += [f"{label}: {e}" for e in errors]
        if tree is None:
            continue
        found += [f"{label}: {p}" for p in page_problems(tree)]
        hidden = tree.select("input[name=next]")
        got = hidden[0].get("value") if hidden else None
        found += expect_text(label, "hidden next", got, payload.text)
    assert not found, report(found)
