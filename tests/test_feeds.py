"""The shipped changelog, the Atom feeds and members' public profiles (issue 13, items 8-10):
what they list, what they never list, how they cache, and that hostile text stays inert."""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from xml.etree import ElementTree as ET

import feedparser
import pytest
from sqlalchemy import update

from ideaboard.extensions import db
from ideaboard.models import StatusChange
from ideaboard.services import admin, changelog, roadmap

from .factories import login_as, make_board, make_idea, make_user, vote_for
from .oracle import inert_problems, load_payloads

ATOM = "{http://www.w3.org/2005/Atom}"
NOW = datetime(2026, 12, 6, 12, 0, 0)


def ship(staff, idea, note: str = "", at: datetime | None = None) -> StatusChange:
    """Move `idea` to shipped with `note`, dated `at` (the service stamps the real time)."""
    change = roadmap.change_status(staff, idea, "shipped", note)
    if at is not None:
        db.session.execute(
            update(StatusChange).where(StatusChange.id == change.id).values(created_at=at)
        )
    db.session.commit()
    return change


def get_feed(client, url: str, **headers):
    resp = client.get(url, headers=headers)
    assert resp.status_code == 200, (url, resp.status_code)
    assert resp.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(resp.data)
    assert not parsed.bozo, (url, parsed.get("bozo_exception"))
    assert parsed.version == "atom10"
    return resp, parsed


@pytest.fixture
def clocked(make_app):
    """An app whose clock reads NOW, over empty tables."""
    from .conftest import _reset

    app = make_app(CLOCK=lambda: NOW)
    _reset(app)
    return app


# --- the feeds ----------------------------------------------------------------------


def test_new_ideas_feed_is_valid_atom_with_absolute_links(app, client):
    """/feeds/ideas.atom parses as Atom 1.0: ids, titles, dates, authors, links on BASE_URL."""
    author = make_user(name="Ada")
    older = make_idea(author, title="Older idea", body="**Bold** words")
    newer = make_idea(author, title="Newer idea")
    resp, feed = get_feed(client, "/feeds/ideas.atom")
    base = app.config["BASE_URL"]
    assert feed.feed.title.startswith("New ideas")
    links = {link.rel: link.href for link in feed.feed.links}
    assert links["self"] == f"{base}/feeds/ideas.atom"
    assert links["alternate"].startswith(f"{base}/ideas")
    assert feed.feed.id == f"{base}/feeds/ideas.atom"
    assert feed.feed.updated
    titles = [e.title for e in feed.entries]
    assert titles.index("Newer idea") < titles.index("Older idea")
    entry = feed.entries[titles.index("Older idea")]
    assert entry.id == f"{base}/ideas/{older.id}"
    assert entry.link.startswith(f"{base}/ideas/{older.id}-")
    assert entry.author == "Ada"
    assert entry.published and entry.updated
    assert entry.content[0].type == "text/html"
    assert "<strong>Bold</strong>" in entry.content[0].value
    assert newer.id != older.id


def test_feeds_leave_out_deleted_ideas_and_archived_boards(app, client):
    """Deleted ideas and ideas on archived boards appear in no feed, changelog or profile."""
    staff = make_user("staff")
    boss = make_user("admin")
    author = make_user()
    kept = make_idea(author, title="Kept idea")
    gone = make_idea(author, title="Deleted idea")
    attic = make_board(slug="attic")
    archived = make_idea(author, title="Archived idea", board=attic)
    for idea in (kept, gone, archived):
        ship(staff, idea, note="done")
    from ideaboard.services import ideas as idea_service

    idea_service.delete_idea(author, gone)
    admin.set_board_archived(boss, attic, True)
    db.session.commit()
    for url in ("/feeds/ideas.atom", "/feeds/changes.atom", "/feeds/changelog.atom"):
        _resp, feed = get_feed(client, url)
        text = " ".join(e.title for e in feed.entries)
        assert "Kept idea" in text, url
        assert "Deleted idea" not in text and "Archived idea" not in text, url
    _resp, feed = get_feed(client, "/feeds/b/attic.atom")
    assert feed.entries == []
    for url in ("/changelog", f"/u/{author.id}"):
        page = client.get(url).get_data(as_text=True)
        assert "Deleted idea" not in page and "Archived idea" not in page, url
    assert "Kept idea" in client.get("/changelog").get_data(as_text=True)
    assert changelog.shipped_count() == 1


def test_board_feed_holds_only_that_board(app, client):
    """/feeds/b/<slug>.atom lists that board's new ideas; an unknown board is 404."""
    board = make_board(slug="mobile")
    make_idea(title="On mobile", board=board)
    make_idea(title="On general")
    _resp, feed = get_feed(client, "/feeds/b/mobile.atom")
    assert [e.title for e in feed.entries] == ["On mobile"]
    assert client.get("/feeds/b/nowhere.atom").status_code == 404


def test_feeds_hold_the_newest_fifty(app, client):
    """A feed carries the newest FEED_SIZE entries, newest first."""
    author = make_user()
    for n in range(changelog.FEED_SIZE + 3):
        make_idea(author, title=f"Numbered idea {n:03d}")
    _resp, feed = get_feed(client, "/feeds/ideas.atom")
    assert len(feed.entries) == changelog.FEED_SIZE
    assert feed.entries[0].title == f"Numbered idea {changelog.FEED_SIZE + 2:03d}"


def test_changes_and_changelog_feeds_carry_notes_and_votes(app, client):
    """The changes feed has each move with its staff note; the changelog feed the shipped
    ones with how many customers asked."""
    staff = make_user("staff", name="Pat")
    idea = make_idea(title="Dark mode")  # with its author's own vote, three asked
    for _ in range(2):
        vote_for(idea, make_user())
    roadmap.change_status(staff, idea, "planned", "Next quarter")
    db.session.commit()
    ship(staff, idea, note="Out in 2.0")
    _resp, changes = get_feed(client, "/feeds/changes.atom")
    assert [e.title for e in changes.entries] == ["Dark mode: Shipped", "Dark mode: Planned"]
    assert "Out in 2.0" in changes.entries[0].content[0].value
    assert "Next quarter" in changes.entries[1].content[0].value
    assert changes.entries[0].author == "Pat"
    assert changes.entries[0].id != changes.entries[1].id
    _resp, shipped = get_feed(client, "/feeds/changelog.atom")
    assert [e.title for e in shipped.entries] == ["Shipped: Dark mode"]
    assert "3 customers asked for it" in shipped.entries[0].content[0].value


def test_feeds_answer_304_to_a_reader_that_has_them(app, client):
    """ETag and Last-Modified: a conditional GET gets 304 until something changes."""
    make_idea(title="First")
    resp, _feed = get_feed(client, "/feeds/ideas.atom")
    etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    again = client.get("/feeds/ideas.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    since = client.get("/feeds/ideas.atom", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    make_idea(title="Second")
    fresh = client.get("/feeds/ideas.atom", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag


def test_a_kept_feed_answers_readers_before_flask_and_a_post_refreshes_it(app, client):
    """A feed is rendered once per change of content: a second reader and a reader's
    conditional GET are answered from the kept copy before Flask runs (no statement but
    the version), with the same ETag; a new idea is in the very next answer."""
    make_idea(title="First")
    calls = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: calls.append(1))
    first, _feed = get_feed(client, "/feeds/ideas.atom")
    again, _feed = get_feed(client, "/feeds/ideas.atom")
    assert len(calls) == 1, "the second reader ran Flask"
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"]
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    held = client.get("/feeds/ideas.atom", headers={"If-None-Match": etag})
    since = client.get("/feeds/ideas.atom", headers={"If-Modified-Since": modified})
    assert held.status_code == since.status_code == 304 and held.data == b""
    assert held.headers["ETag"] == etag and held.headers["Cache-Control"] == "public, max-age=300"
    assert len(calls) == 1, "a conditional GET ran Flask"
    # A signed-in browser goes through Flask and is answered 304 from its kept copy too.
    login_as(client, make_user())
    get_feed(client, "/feeds/ideas.atom")
    member = client.get("/feeds/ideas.atom", headers={"If-None-Match": etag})
    assert member.status_code == 304
    client.delete_cookie("session")
    make_idea(title="Second")
    fresh, parsed = get_feed(client, "/feeds/ideas.atom", **{"If-None-Match": etag})
    assert fresh.headers["ETag"] != etag
    assert [e.title for e in parsed.entries] == ["Second", "First"]


def test_empty_feeds_are_valid(app, client):
    """With nothing to list, every feed is still valid Atom with an `updated`."""
    for url in ("/feeds/ideas.atom", "/feeds/changes.atom", "/feeds/changelog.atom"):
        _resp, feed = get_feed(client, url)
        assert feed.entries == [] and feed.feed.updated


def test_pages_link_their_feeds_in_the_head(app, client):
    """Home, /ideas, /b/<slug>, /roadmap and /changelog name their feeds in <head>."""
    expected = {
        "/": ["/feeds/ideas.atom", "/feeds/changelog.atom"],
        "/ideas": ["/feeds/ideas.atom"],
        "/b/general": ["/feeds/b/general.atom"],
        "/roadmap": ["/feeds/changes.atom", "/feeds/changelog.atom"],
        "/changelog": ["/feeds/changelog.atom"],
    }
    for url, feeds in expected.items():
        page = client.get(url).get_data(as_text=True)
        head = page.split("</head>")[0]
        for feed in feeds:
            assert (
                '<link rel="alternate" type="application/atom+xml" title="' in head
                and f'href="{feed}"' in head
            ), (url, feed)


def _contents(xml: bytes) -> list[tuple[str, str]]:
    """(title, content HTML) of each entry, as the XML holds them (before any reader
    sanitises them itself)."""
    root = ET.fromstring(xml)
    return [
        (entry.findtext(f"{ATOM}title"), entry.findtext(f"{ATOM}content"))
        for entry in root.iter(f"{ATOM}entry")
    ]


def test_shared_payloads_are_inert_in_every_feed(app, client):
    """Every payload of the shared corpus, as a title, body and staff note, comes out of
    every feed as inert HTML (content) and as itself (titles, plain text)."""
    payloads = load_payloads()
    staff = make_user("staff")
    problems = []
    for chunk_start in range(0, len(payloads), changelog.FEED_SIZE // 2):
        from .conftest import _reset

        _reset(app)
        staff = make_user("staff")
        made = {}
        for p in payloads[chunk_start : chunk_start + changelog.FEED_SIZE // 2]:
            try:
                idea = make_idea(title=f"P{p.line} {p.text}"[:150], body=p.text)
            except Exception:  # noqa: BLE001 - a payload the app refuses as a title
                db.session.rollback()
                idea = make_idea(title=f"P{p.line} refused title", body=p.text)
            try:
                ship(staff, idea, note=p.text[:5000])
            except Exception:  # noqa: BLE001 - a note the app refuses (control characters)
                db.session.rollback()
                ship(staff, idea, note="")
            made[idea.id] = (p, idea.title)
        for url in ("/feeds/ideas.atom", "/feeds/changes.atom", "/feeds/changelog.atom"):
            resp = client.get(url)
            assert resp.status_code == 200
            assert not feedparser.parse(resp.data).bozo, url
            titles = set()
            for title, content in _contents(resp.data):
                titles.add(title)
                for problem in inert_problems(content or "", fragment=True):
                    problems.append(f"{url} {title[:40]!r}: {problem}")
            stored = {t for _p, t in made.values()}
            if url == "/feeds/ideas.atom":
                assert stored <= titles, "a title did not come out as itself"
    assert not problems, "\n".join(map(str, problems[:30]))
    assert staff is not None


# --- the changelog ------------------------------------------------------------------


def test_changelog_groups_by_month_newest_first_in_english_and_russian(clocked):
    """Shipped ideas under month headings, newest month first, localised (nominative)."""
    with clocked.app_context():
        staff = make_user("staff")
        ship(staff, make_idea(title="November thing"), at=datetime(2026, 11, 3, 9, 0))
        ship(staff, make_idea(title="December thing"), note="Thanks all", at=NOW)
        ship(staff, make_idea(title="May thing"), at=datetime(2026, 5, 20, 9, 0))
    client = clocked.test_client()
    page = client.get("/changelog").get_data(as_text=True)
    order = [page.index(s) for s in ("December 2026", "November 2026", "May 2026")]
    assert order == sorted(order)
    assert page.index("December thing") < page.index("November 2026") < page.index("November thing")
    assert "Thanks all" in page
    ru = client.get("/changelog", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    for month in ("Декабрь 2026", "Ноябрь 2026", "Май 2026"):
        assert month in ru


def test_headline_counts_only_the_last_twelve_months(clocked):
    """The headline counts ideas shipped in the last 12 months, once each, on the home
    page and the changelog, with the right plural form."""
    with clocked.app_context():
        staff = make_user("staff")
        ship(staff, make_idea(), at=NOW - timedelta(days=10))
        ship(staff, make_idea(), at=NOW - timedelta(days=400))  # too old
        twice = make_idea()
        ship(staff, twice, at=NOW - timedelta(days=30))
        roadmap.change_status(staff, twice, "in_progress")
        db.session.commit()
        ship(staff, twice, at=NOW - timedelta(days=5))
        reopened = make_idea()
        ship(staff, reopened, at=NOW - timedelta(days=3))
        roadmap.change_status(staff, reopened, "planned")
        db.session.commit()
        assert changelog.shipped_count() == 2
    client = clocked.test_client()
    sentence = "2 ideas shipped from customers' suggestions in the last 12 months"
    for url in ("/", "/changelog"):
        assert sentence in html.unescape(client.get(url).get_data(as_text=True)), url


@pytest.mark.parametrize(
    "n, en, ru",
    [
        (1, "1 idea shipped", "1 идея реализована"),
        (3, "3 ideas shipped", "3 идеи реализованы"),
        (5, "5 ideas shipped", "5 идей реализовано"),
        (21, "21 ideas shipped", "21 идея реализована"),
    ],
)
def test_headline_plural_forms(clocked, n, en, ru):
    """The headline's number agrees with its noun in English and in Russian's three forms."""
    with clocked.app_context():
        staff = make_user("staff")
        for _ in range(n):
            ship(staff, make_idea(), at=NOW - timedelta(days=1))
    client = clocked.test_client()
    assert en in client.get("/").get_data(as_text=True)
    assert ru in client.get("/", headers={"Accept-Language": "ru"}).get_data(as_text=True)


def test_home_headline_is_fresh_after_a_status_change(app, client):
    """The home page is cached, yet its headline follows the next status change."""
    staff = make_user("staff")
    idea = make_idea()
    assert "0 ideas shipped" in client.get("/").get_data(as_text=True)
    assert "0 ideas shipped" in client.get("/").get_data(as_text=True)  # from the cache
    ship(staff, idea)
    assert "1 idea shipped" in client.get("/").get_data(as_text=True)


def test_changelog_paginates(app, client):
    """More shipped ideas than a page holds continue on page 2."""
    staff = make_user("staff")
    base = datetime(2026, 10, 1)
    for n in range(changelog.PER_PAGE + 2):
        ship(staff, make_idea(title=f"Shipped {n:03d}"), at=base + timedelta(hours=n))
    first = client.get("/changelog").get_data(as_text=True)
    second = client.get("/changelog?page=2").get_data(as_text=True)
    assert f"Shipped {changelog.PER_PAGE + 1:03d}" in first and "Shipped 000" not in first
    assert "Shipped 000" in second and 'rel="prev"' in second
    assert client.get("/changelog?page=zzz").status_code == 200


# --- profiles -----------------------------------------------------------------------


def test_profile_shows_name_since_ideas_and_shipped_count_never_email(app, client):
    """A member's profile: display name, member since, their live ideas, how many shipped;
    never their email; deleted ideas are not listed."""
    author = make_user(name="Grace", email="grace@example.com")
    staff = make_user("staff")
    shipped = make_idea(author, title="Her shipped idea")
    make_idea(author, title="Her open idea")
    deleted = make_idea(author, title="Her deleted idea")
    make_idea(title="Someone else's idea")
    ship(staff, shipped)
    from ideaboard.services import ideas as idea_service

    idea_service.delete_idea(author, deleted)
    db.session.commit()
    for viewer in (None, author, staff):
        c = app.test_client()
        if viewer is not None:
            login_as(c, viewer)
        page = c.get(f"/u/{author.id}").get_data(as_text=True)
        assert "Grace" in page and "Member since" in page
        assert "Her shipped idea" in page and "Her open idea" in page
        assert "Her deleted idea" not in page and "Someone else" not in page
        assert "grace@example.com" not in page
        assert "2 ideas posted" in page and "1 shipped" in page


def test_profile_of_a_disabled_or_unknown_account_is_404(app, client):
    """A disabled account has no public profile; nor does an id no one has."""
    boss = make_user("admin")
    user = make_user()
    admin.set_member_access(boss, user, False)
    db.session.commit()
    assert client.get(f"/u/{user.id}").status_code == 404
    assert client.get("/u/999999").status_code == 404
    assert client.get(f"/u/{2**40}").status_code == 404


def test_profile_paginates(app, client):
    """More ideas than a page holds continue on page 2."""
    from ideaboard.services import profiles

    author = make_user()
    for n in range(profiles.PER_PAGE + 1):
        make_idea(author, title=f"Mine {n:03d}")
    first = client.get(f"/u/{author.id}").get_data(as_text=True)
    second = client.get(f"/u/{author.id}?page=2").get_data(as_text=True)
    assert "Mine 000" not in first and "Mine 000" in second
