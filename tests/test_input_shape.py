"""Hostile input shapes (security.md #10, #38, #41): never a 500, nothing stored wrongly.

- #10 Any Unicode a person can send (control characters, NUL, RTL overrides, zero-width
  and combining marks) in every free-text field: a 2xx/3xx, or a 400/413/422 with a
  message, never a 500 (PostgreSQL refuses NUL in text outright). What is accepted is
  stored exactly as typed, after the documented trimming, and shown escaped.
- #38 Injection-shaped values in every list filter, the page numbers and ids, on pages and
  the API: never a 5xx, no row changes, per_page clamped to 100.
- #41 The same idea posted twice by its author within five minutes is one idea.
"""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from ideaboard.extensions import db
from ideaboard.models import Comment, Idea, User
from ideaboard.services.text import clean_line

from .conftest import fresh_app
from .factories import make_board
from .routes import CHEAP_HASH, ROUTES, World, db_snapshot, form, sign_in, snapshot_diff, url


@pytest.fixture
def app(make_app):
    """The usual fresh app, with cheap password hashing (see routes.CHEAP_HASH)."""
    with fresh_app(make_app, PASSWORD_HASH_METHOD=CHEAP_HASH) as app:
        yield app


ACCEPTED = {200, 303, 400, 413, 422}

#: Any character a client can send as UTF-8: every category but lone surrogates.
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run and backend: CI stays deterministic
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _newest(model):
    db.session.expire_all()
    return db.session.scalar(select(model).order_by(model.id.desc()).limit(1))


@pytest.fixture
def world(app) -> World:
    return World.build()


# --- #10 Unicode and input shape ----------------------------------------------------


@HYPOTHESIS
@given(title=ANY_TEXT, body=ANY_TEXT)
def test_any_text_in_a_new_idea_is_stored_as_typed_or_refused(app, world, title, body):
    """Posting an idea with arbitrary text: stored as typed (trimmed) or a 422, never a 500."""
    client = app.test_client()
    sign_in(client, world.users["a"])
    before = _count(Idea)
    data = {"title": title, "body": body, "board": world.general.id, "kind": "idea"}
    resp = client.post("/ideas/new", data=data)
    assert resp.status_code in ACCEPTED, resp.status_code
    if resp.status_code == 303:
        idea = _newest(Idea)
        assert (idea.title, idea.body) == (clean_line(title), body.strip())
    else:
        assert resp.status_code == 422 and b'class="field-error"' in resp.data
        assert _count(Idea) == before


@HYPOTHESIS
@given(body=ANY_TEXT)
def test_any_text_in_a_comment_is_stored_as_typed_or_refused(app, world, body):
    """A comment with arbitrary text: stored as typed (trimmed) or a 422, never a 500."""
    target = _shared_idea(world)
    client = app.test_client()
    sign_in(client, world.users["b"])
    resp = client.post(f"/ideas/{target.id}/comments", data={"body": body})
    assert resp.status_code in ACCEPTED, resp.status_code
    if resp.status_code == 303:
        assert _newest(Comment).body == body.strip()


def _shared_idea(world: World) -> Idea:
    if not hasattr(world, "_idea"):
        world._idea = world.target(ROUTES["ideas.comment"], owner="a").idea
    return world._idea


@HYPOTHESIS
@given(name=ANY_TEXT.filter(lambda s: len(s) < 80), note=ANY_TEXT, q=ANY_TEXT)
def test_any_text_in_names_notes_and_search_never_fails(app, world, name, note, q):
    """Display names, status notes and the search box take any text without a 500."""
    client = app.test_client()
    member = world.users["b"]
    sign_in(client, member)
    form = {"display_name": name, "email": member.email, "current_password": ""}
    resp = client.post("/account", data=form)
    assert resp.status_code in ACCEPTED, resp.status_code
    if resp.status_code == 303:
        db.session.expire_all()
        assert db.session.get(User, member.id).display_name == clean_line(name)
    staff = app.test_client()
    sign_in(staff, world.users["staff"])
    idea = _shared_idea(world)
    status = "planned" if db.session.get(Idea, idea.id).status != "planned" else "heard"
    resp = staff.post(f"/ideas/{idea.id}/status", data={"status": status, "note": note})
    assert resp.status_code in ACCEPTED, resp.status_code
    for path in ("/ideas", "/api/v1/ideas", "/b/general", "/roadmap"):
        resp = client.get(path, query_string={"q": q})
        assert resp.status_code in (200, 400), (path, resp.status_code)


#: (route, field, too long) for every free-text field with a length limit.
LIMITS = [
    ("ideas.new", "title", 151),
    ("ideas.new", "body", 10_001),
    ("ideas.edit", "title", 151),
    ("ideas.comment", "body", 10_001),
    ("ideas.edit_comment", "body", 10_001),
    ("roadmap.change_status", "note", 5_001),
    ("auth.register", "display_name", 61),
]


def test_nul_and_over_long_text_get_a_message_not_a_500(app, world):
    """NUL and over-long text answer 422 with a message by the field (PostgreSQL too)."""
    wrong = []
    for endpoint, field, length in LIMITS:
        for value in ("A\x00B title", "x" * length):
            route = ROUTES[endpoint]
            target = world.target(route, owner="a")
            client = app.test_client()
            role = {"roadmap.change_status": "staff", "auth.register": "anon"}.get(endpoint, "a")
            sign_in(client, world.user(role))
            data = {**form(endpoint, world, target, role), field: value}
            before = db_snapshot()
            resp = client.post(url(app, endpoint, target), data=data)
            message = b"control characters" if "\x00" in value else b"must be at most"
            if resp.status_code != 422 or message not in resp.data:
                wrong.append(f"{endpoint} {field} {value[:8]!r}: {resp.status_code}")
            if snapshot_diff(before, db_snapshot()):
                wrong.append(f"{endpoint} {field} {value[:8]!r}: the database changed")
    assert not wrong, "\n".join(wrong)


class _Text(HTMLParser):
    """The text of the first element with a given class."""

    def __init__(self, cls: str) -> None:
        super().__init__(convert_charrefs=True)
        self.cls, self.depth, self.text = cls, 0, None

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += 1
        elif self.text is None and self.cls in (dict(attrs).get("class") or "").split():
            self.depth, self.text = 1, ""

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text += data


def test_rtl_override_zero_width_and_combining_marks_are_kept_and_escaped(app, world, client):
    """Bidi overrides, zero-width and combining characters are stored and shown as typed."""
    title = "Abc \u202eevil\u202c \u200bzero\u200d width e\u0301 <b>&amp;"
    sign_in(client, world.users["a"])
    form = {"title": title, "body": "b\u200f\u2066x", "board": world.general.id, "kind": "idea"}
    assert client.post("/ideas/new", data=form).status_code == 303
    idea = _newest(Idea)
    assert idea.title == title and idea.body == "b\u200f\u2066x"
    html = client.get(f"/ideas/{idea.id}").get_data(as_text=True)
    parser = _Text("idea-heading")
    parser.feed(html)
    assert parser.text == title  # the same characters, and the markup stayed text
    assert "<b>&amp;" not in html
    assert client.get(f"/api/v1/ideas/{idea.id}").get_json()["title"] == title


def test_confusable_emails_are_one_account(app, client):
    """Emails are unique after NFKC and case folding: "Admin@" and "ａｄｍｉｎ@" collide.

    Display names are not unique (two people may share a name), so they are not folded.
    """
    form = {"display_name": "First", "password": "long enough pw 1"}
    assert client.post("/register", data={**form, "email": "Admin@example.com"}).status_code == 303
    other = type(client)(app, app.response_class)
    resp = other.post(
        "/register", data={**form, "email": "\uff41\uff44\uff4d\uff49\uff4e@example.com"}
    )
    assert resp.status_code == 303  # the same answer as any sign-up, and no account
    assert _count(User) == 1


# --- #38 injection-shaped query values ----------------------------------------------

PAYLOADS = [
    "' OR 1=1--",
    "1;DROP TABLE ideas",
    "title desc, (select 1)",
    "id);--",
    "%",
    "_",
    '"" * NEAR(a b) OR -x:y ^z',
    "\\",
    "-1",
    "99999999999999999999",
    "2147483648",
    "\u00b2",  # a digit to str.isdigit(), not to int()
    "\u0661\u0662",  # Arabic-Indic 12
    "1e9",
    "{{7*7}}",
]
PARAMS = {
    "ideas.index": ("q", "sort", "order", "status", "board", "kind", "page", "per_page"),
    "ideas.board": ("q", "sort", "status", "kind", "page", "per_page"),
    "api.list_ideas": ("q", "sort", "order", "status", "board", "kind", "page", "per_page"),
    "roadmap.index": ("board",),
    "ideas.show": ("cpage",),
    "main.home": ("page",),
    "admin.index": (),  # takes no query; admin.members' q and page: the test below
    "changelog.index": ("page",),
    "notifications.index": ("page",),
    "community.index": ("page",),  # a community's and a thread's: tests/test_communities.py
    "community.search_threads": ("q", "page"),
}
MEMBER_ONLY = {"notifications.index"}  # asked by a signed-in member


def test_every_filter_and_page_parameter_takes_hostile_values(app, world):
    """Injection-shaped values in q, sort, status, board, page... never cause a 5xx or a write."""
    target = world.target(ROUTES["ideas.show"], owner="a")
    assert set(PARAMS) >= {e for e, r in ROUTES.items() if e.endswith(("index", "list_ideas"))}
    from .factories import login_as

    visitor, member = app.test_client(), app.test_client()
    login_as(member, world.users["a"])
    before = db_snapshot()
    failures = []
    for endpoint, params in PARAMS.items():
        path = url(app, endpoint, target)
        client = member if endpoint in MEMBER_ONLY else visitor
        for param in params:
            for value in PAYLOADS:
                resp = client.get(path, query_string={param: value})
                if resp.status_code >= 500 or resp.status_code not in (200, 400, 404):
                    failures.append(f"{path}?{param}={value!r}: {resp.status_code}")
    assert not failures, "\n".join(failures)
    assert not snapshot_diff(before, db_snapshot())


def test_the_admin_member_search_takes_hostile_values(app, world):
    """An admin's member search with injection-shaped q or page: never a 5xx or a write;
    board and member ids too large for the database are 404."""
    client = app.test_client()
    sign_in(client, world.users["admin"])
    before = db_snapshot()
    failures = []
    for param in ("q", "page"):
        for value in PAYLOADS:
            resp = client.get("/admin/members", query_string={param: value})
            if resp.status_code != 200:
                failures.append(f"/admin/members?{param}={value!r}: {resp.status_code}")
    for path in ("/admin/boards/99999999999999999999", "/admin/boards/2147483648"):
        if client.get(path).status_code != 404:
            failures.append(f"{path}: not 404")
    assert not failures, "\n".join(failures)
    assert not snapshot_diff(before, db_snapshot())


@pytest.mark.parametrize(
    "path",
    [
        "/ideas/99999999999999999999",
        "/ideas/2147483648",
        "/ideas/2147483648/edit",
        "/api/v1/ideas/99999999999999999999",
        "/ideas/1/comments/99999999999999999999/edit",
    ],
)
def test_ids_beyond_the_database_integer_are_404(app, world, client, path):
    """An id too large for the database is simply not found (not a 500 from the driver)."""
    sign_in(client, world.users["staff"])
    assert client.get(path).status_code == 404


FORM_NUMBERS = [
    ("ideas.new", "board"),
    ("ideas.new", "kind"),
    ("ideas.edit", "board"),
    ("ideas.edit", "version"),
]


def test_hostile_numbers_in_forms_never_fail(app, world, client):
    """Posted board ids, versions and kinds out of range are input errors, not 500s."""
    target = world.target(ROUTES["ideas.edit"], owner="a")
    sign_in(client, world.users["a"])
    before = db_snapshot()
    failures = []
    for endpoint, field in FORM_NUMBERS:
        for value in ("99999999999999999999", "2147483648", "-1", "' OR 1=1--"):
            data = {**form(endpoint, world, target), field: value}
            resp = client.post(url(app, endpoint, target), data=data)
            if resp.status_code not in (409, 422):
                failures.append(f"{endpoint} {field}={value!r}: {resp.status_code}")
    assert not failures, "\n".join(failures)
    assert not snapshot_diff(before, db_snapshot())


def test_per_page_is_clamped_to_100(app, world, client):
    """per_page=10**9 gives at most 100 items (and a next page), on the API and the page."""
    from ideaboard.services import ideas

    author = world.users["a"]
    for n in range(101):
        ideas.create_idea(author, world.general, "idea", f"Bulk idea {n}", "")
    db.session.commit()
    data = client.get("/api/v1/ideas", query_string={"per_page": 10**9}).get_json()
    assert len(data["items"]) == 100 and data["next"]
    assert len(client.get("/api/v1/ideas?per_page=0").get_json()["items"]) == 1
    page = client.get("/ideas", query_string={"per_page": 10**9}).get_data(as_text=True)
    assert page.count('class="idea-row') == 100


# --- #41 duplicate submission -------------------------------------------------------


def test_double_submit_of_the_idea_form_makes_one_idea(app, world, client):
    """The same form sent twice (a double click) makes one idea; both land on it."""
    sign_in(client, world.users["a"])
    form = {"title": "Dark mode", "body": "Please", "board": world.general.id, "kind": "idea"}
    first = client.post("/ideas/new", data=form)
    second = client.post("/ideas/new", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert _count(Idea) == 1


def test_the_same_idea_again_within_five_minutes_is_one_idea(app, world, client):
    """Reposting the same title and text within 5 minutes gives the first idea back."""
    from ideaboard.services import ideas

    a, b = world.users["a"], world.users["b"]
    first = ideas.create_idea(a, world.general, "idea", "Export to CSV", "Monthly")
    db.session.commit()
    again = ideas.create_idea(a, world.general, "idea", "  Export   to CSV ", "Monthly ")
    db.session.commit()
    assert again.id == first.id and _count(Idea) == 1
    # Someone else, or other words, or the same words later: new ideas (on other boards:
    # on this one the title is taken, tests/test_i12_page.py).
    from ideaboard.services.errors import DuplicateTitle

    with pytest.raises(DuplicateTitle):
        ideas.create_idea(b, world.general, "idea", "Export to CSV", "Monthly")
    db.session.rollback()
    ideas.create_idea(b, make_board(), "idea", "Export to CSV", "Monthly")
    ideas.create_idea(a, make_board(), "idea", "Export to CSV", "Weekly")
    db.session.execute(
        update(Idea)
        .where(Idea.id == first.id)
        .values(created_at=first.created_at - timedelta(minutes=6))
    )
    db.session.commit()
    later = ideas.create_idea(a, make_board(), "idea", "Export to CSV", "Monthly")
    db.session.commit()
    assert later.id != first.id and _count(Idea) == 4
