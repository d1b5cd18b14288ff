"""Lists and the roadmap as a newcomer meets them (issue 12, items 5, 6, 8 and 10).

The default list shows open ideas, shipped and declined one filter away; an empty filtered
list says so and offers to clear; the pager says where you are with a capped count;
numbers are grouped per language and dates are <time> elements the page's script makes
relative; the roadmap leads with planned, in progress and shipped.
"""

from __future__ import annotations

import re
from functools import partial

import pytest
from sqlalchemy import update

from ideaboard.extensions import db
from ideaboard.models import Idea
from ideaboard.services import ideas, roadmap

from .factories import login_as, make_board, make_comment, make_idea, make_user
from .test_fastvote import handled_by_flask, make_fast_app, sign_in, vote  # noqa: F401 (fixture)

NBSP = "\xa0"


def _html(client, url, lang="en") -> str:
    resp = client.get(url, headers={"Accept-Language": lang})
    assert resp.status_code == 200, url
    return resp.get_data(as_text=True)


def _titles(html: str) -> list[str]:
    return re.findall(r'class="idea-title"[^>]*>([^<]*)<', html)


def _move(idea, status):
    roadmap.change_status(make_user("staff"), idea, status)
    db.session.commit()


@pytest.fixture
def statuses(app):
    """One idea in each of heard, planned, shipped and declined."""
    made = {}
    for status in ("heard", "planned", "shipped", "declined"):
        made[status] = make_idea(title=f"Idea {status}")
        if status != "heard":
            _move(made[status], status)
    return made


def test_the_default_list_shows_open_ideas(client, statuses):
    """/ideas and /b/<slug> leave shipped and declined ideas out unless asked."""
    for url in ("/ideas", "/b/general"):
        assert sorted(_titles(_html(client, url))) == ["Idea heard", "Idea planned"]
        assert sorted(_titles(_html(client, url + "?status=open"))) == [
            "Idea heard",
            "Idea planned",
        ]


@pytest.mark.parametrize(
    "status, expected",
    [
        ("all", ["Idea declined", "Idea heard", "Idea planned", "Idea shipped"]),
        ("shipped", ["Idea shipped"]),
        ("declined", ["Idea declined"]),
        ("planned", ["Idea planned"]),
        ("bogus", ["Idea heard", "Idea planned"]),  # unknown: the default
    ],
)
def test_status_filters(client, statuses, status, expected):
    """status=all lists every status; one status lists only it; anything else is the default."""
    assert sorted(_titles(_html(client, f"/ideas?status={status}"))) == expected


def test_the_api_still_lists_every_status_by_default(client, statuses):
    """The JSON API's default is its contract: all statuses, as before."""
    items = client.get("/api/v1/ideas").get_json()["items"]
    assert {i["status"] for i in items} == {"heard", "planned", "shipped", "declined"}
    items = client.get("/api/v1/ideas?status=open").get_json()["items"]
    assert {i["status"] for i in items} == {"heard", "planned"}


def test_links_keep_a_chosen_status_and_leave_the_default_out(client, app):
    """Pager links carry status=all when chosen, and no status for the default view."""
    for n in range(3):
        make_idea(title=f"Paged {n}")
    html = _html(client, "/ideas?per_page=2&status=all")
    assert re.search(r'rel="next" href="/ideas\?status=all&amp;page=2', html)
    html = _html(client, "/ideas?per_page=2")
    assert 'rel="next" href="/ideas?page=2' in html


def test_status_select_offers_open_all_and_each_status(client, app):
    """The status filter offers Open (chosen by default), All and every status."""
    html = _html(client, "/ideas")
    select = re.search(r'<select name="status">(.*?)</select>', html, re.S).group(1)
    values = re.findall(r'<option value="([^"]*)"', select)
    assert values[:2] == ["open", "all"] and "shipped" in values and "declined" in values
    assert re.search(r'<option value="open" selected>', select)


def test_a_filtered_empty_list_offers_to_clear_filters(client, statuses):
    """No matches under a filter: say so, offer Clear filters, never 'be the first'."""
    html = _html(client, "/ideas?status=under_review&sort=top")
    assert "No ideas match these filters." in html
    assert "Be the first" not in html
    clear = re.search(r'href="([^"]*)">Clear filters<', html).group(1)
    assert clear == "/ideas?sort=top"  # the sort stays, the filter goes
    assert "Clear search" not in html
    assert "Idea heard" in _html(client, clear)


def test_a_board_filter_is_cleared_too(client, statuses):
    """On /ideas a chosen board is a filter: Clear filters drops it; a board page keeps it."""
    empty = make_board(slug="empty-board", name="Empty board")
    html = _html(client, f"/ideas?board={empty.slug}")
    assert "No ideas match these filters." in html
    assert 'href="/ideas">Clear filters<' in html
    html = _html(client, f"/b/{empty.slug}?kind=problem")
    assert f'href="/b/{empty.slug}">Clear filters<' in html


def test_a_search_with_filters_offers_both(client, statuses):
    """A filtered search with nothing found offers Clear filters and Clear search."""
    html = _html(client, "/ideas?q=nothingmatches&kind=problem")
    assert "No ideas match these filters." in html
    assert 'href="/ideas?q=nothingmatches">Clear filters<' in html
    assert 'href="/ideas?kind=problem">Clear search<' in html


def test_a_search_alone_offers_to_clear_it(client, statuses):
    """A plain search with nothing found says so and offers Clear search."""
    html = _html(client, "/ideas?q=nothingmatches")
    assert "No ideas match your search." in html
    assert 'href="/ideas">Clear search<' in html
    assert "Clear filters" not in html


def test_an_empty_default_list_points_to_closed_ideas(client, app):
    """A board with only shipped ideas: no open ideas, a link to see the others."""
    _move(make_idea(title="Done already"), "shipped")
    html = _html(client, "/ideas")
    assert "No open ideas here yet." in html
    assert 'href="/ideas?status=all"' in html
    assert "Done already" in _html(client, "/ideas?status=all")


def test_the_pager_says_where_you_are(client, app):
    """Page 2 of 3 and the number of ideas the list holds."""
    for n in range(45):
        make_idea(title=f"Many {n}")
    assert "Page 2 of 3 · 45 ideas" in _html(client, "/ideas?page=2")
    assert "Страница 2 из 3 · 45 идей" in _html(client, "/ideas?page=2", "ru")
    assert "Страница 1 из 9 · 45 идей" in _html(client, "/ideas?per_page=5", "ru")
    # One page: just how many.
    assert re.search(r'class="pager-where">\s*45 ideas', _html(client, "/ideas?per_page=50"))
    # Past the end: the count is still known, and the way back offered.
    html = _html(client, "/ideas?page=9")
    assert "past the end" in html and "Page 9 of 3 · 45 ideas" in html


def test_russian_pager_counts_use_plural_forms(client, app):
    """21 идея, 22 идеи, 25 идей."""
    for n in range(25):
        make_idea(title=f"Plural {n}")
        count = n + 1
        if count in (21, 22, 25):
            word = {21: "идея", 22: "идеи", 25: "идей"}[count]
            assert f"{count} {word}" in _html(client, "/ideas?per_page=50", "ru")


def test_the_count_is_capped(client, app, monkeypatch):
    """Past the cap the list counts no further and says "N+"."""
    monkeypatch.setattr(ideas, "COUNT_CAP", 10)
    for n in range(14):
        make_idea(title=f"Capped {n}")
    page = ideas.list_ideas(ideas.IdeaQuery(per_page=5))
    assert page.total == 11 and page.capped and page.shown_total == 10 and page.pages == 2
    html = _html(client, "/ideas?per_page=5")
    assert "Page 1 of 2+ · 10+ ideas" in html


def test_searches_and_kinds_are_counted_only_on_their_last_page(client, app):
    """A search or a kind filter would read rows to count: it says "Page 1" while more
    follow, and the exact number on its last page, where it is known for free."""
    assert ideas.counted_in_sql(ideas.IdeaQuery(status="all"))
    assert not ideas.counted_in_sql(ideas.IdeaQuery(q="export"))
    assert not ideas.counted_in_sql(ideas.IdeaQuery(kind="problem"))
    for n in range(7):
        make_idea(title=f"Lamp {n}", kind="problem")
    html = _html(client, "/ideas?q=lamp&per_page=5")
    assert re.search(r'class="pager-where">Page 1</span>', html) and "7 ideas" not in html
    assert "Page 2 of 2 · 7 ideas" in _html(client, "/ideas?q=lamp&per_page=5&page=2")
    assert re.search(r'class="pager-where">\s*7 ideas', _html(client, "/ideas?kind=problem"))


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"status": "open"},
        {"status": "shipped"},
        {"status": "open", "kind": "problem"},
        {"status": "open", "q": "lamp"},
        {"status": "all", "q": "lamp"},
    ],
)
def test_the_count_matches_the_list(app, statuses, query):
    """The count counts exactly the ideas the list pages through, whatever the filters."""
    other = make_board()
    make_idea(title="Desk lamp", kind="problem", board=other)
    _move(make_idea(title="Lamp shade", kind="problem"), "shipped")
    for board in (None, other):
        q = ideas.IdeaQuery(board=board, per_page=100, **query)
        page = ideas.list_ideas(q)
        assert page.total == len(page.items), (query, board)


def test_the_trending_sort_is_explained(client, app):
    """A hint beside the sort control says what Trending means."""
    html = _html(client, "/ideas")
    assert 'aria-describedby="sort-hint"' in html
    assert re.search(r'id="sort-hint">Trending: [^<]+<', html)
    assert "Популярные:" in _html(client, "/ideas", "ru")


def test_filters_fold_behind_one_control(client, statuses):
    """One "Filter" <details> holds sort, status, kind and board; open when filtering."""
    html = _html(client, "/ideas")
    fold = re.search(r'<details class="filter-fold"( open)?>(.*?)</details>', html, re.S)
    assert fold and fold.group(1) is None
    assert "<summary" in fold.group(2) and ">Filter</summary>" in fold.group(2)
    for name in ("sort", "status", "kind", "board"):
        assert f'name="{name}"' in fold.group(2)
    assert '<details class="filter-fold" open>' in _html(client, "/ideas?status=all")


def _with_counts(idea, votes=None, comments=None):
    values = {}
    if votes is not None:
        values["vote_count"] = votes
    if comments is not None:
        values["comment_count"] = comments
    db.session.execute(update(Idea).where(Idea.id == idea.id).values(**values))
    db.session.commit()


def test_numbers_are_grouped_per_language(client, app):
    """12,345 votes and 1,234 comments in English; 12 345 and 1 234 in Russian."""
    idea = make_idea(title="Popular")
    make_comment(idea)
    _with_counts(idea, votes=12345, comments=1234)
    en = _html(client, "/ideas")
    assert '<span class="vote-count">12,345</span>' in en
    assert "1,234 comments" in en
    ru = _html(client, "/ideas", "ru")
    assert f'<span class="vote-count">12{NBSP}345</span>' in ru
    assert f"1{NBSP}234 комментария" in ru
    home = _html(client, "/")
    assert ">12,345</span>" in home and "1,234 comments" in home
    assert '<span id="comment-count">1,234 comments</span>' in _html(client, f"/ideas/{idea.id}")
    _move(idea, "planned")
    assert '<span class="vote-count">12,345</span>' in _html(client, "/roadmap")
    assert f'<span class="vote-count">12{NBSP}345</span>' in _html(client, "/roadmap", "ru")


def test_roadmap_totals_are_counted_and_capped(client, app, monkeypatch):
    """A column shows its total, or the cap and "+" past it; grouped like every count."""
    app.extensions["ideaboard_cache"].enabled = False  # the cap is no content
    for n in range(2):
        _move(make_idea(title=f"Planned {n}"), "planned")
    html = _html(client, "/roadmap")
    assert re.search(r'id="col-planned">.*?<span class="count"[^>]*>2</span>', html, re.S)
    monkeypatch.setattr(roadmap, "COUNT_CAP", 1)
    html = _html(client, "/roadmap")
    assert re.search(r'id="col-planned">.*?<span class="count"[^>]*>1\+</span>', html, re.S)


def test_the_number_filters_group_per_locale(app):
    """number(): 1,000 / 1 000; grouped() groups the number inside a formatted message."""
    from flask_babel import force_locale

    from ideaboard.formats import grouped, number

    with app.test_request_context("/"):
        with force_locale("en"):
            assert number(1000) == "1,000" and number(999) == "999"
            assert grouped("1000+", 1000) == "1,000+" and grouped("21 votes", 21) == "21 votes"
        with force_locale("ru"):
            assert number(100000) == f"100{NBSP}000"
            assert grouped("100000+ идей", 100000) == f"100{NBSP}000+ идей"


def test_the_fast_vote_groups_its_count_as_the_template_does(make_fast_app):  # noqa: F811
    """The vote fast path's fragment shows 12,346 / 12 346 exactly as Flask renders it."""
    answers = {}
    for fast in (True, False):
        app = make_fast_app(VOTE_FAST_PATH=fast)
        with app.app_context():
            idea = make_idea()
            _with_counts(idea, votes=12345)
            client, token = sign_in(app, make_user())
            for lang in ("en", "ru"):
                client.set_cookie("lang", lang)
                via_flask, resp = handled_by_flask(
                    app, partial(vote, client, idea.id, token, intent="vote")
                )
                assert via_flask is not fast
                html = resp.get_data(as_text=True)
                token = re.search(r'name="csrf_token" value="([^"]*)"', html).group(1)
                answers[(fast, lang)] = re.sub(r'value="[^"]{20,}"', 'value=""', html).strip()
                # Vote back to 12,345 for the next language.
                handled_by_flask(app, partial(vote, client, idea.id, token, intent="unvote"))
    assert '<span class="vote-count">12,346</span>' in answers[(True, "en")]
    assert f'<span class="vote-count">12{NBSP}346</span>' in answers[(True, "ru")]
    for lang in ("en", "ru"):
        assert answers[(True, lang)] == answers[(False, lang)]


def test_dates_are_time_elements(client, app):
    """Every date is <time class="when" datetime="…Z" title="… UTC">date</time>."""
    idea = make_idea(title="Dated")
    make_comment(idea)
    html = _html(client, f"/ideas/{idea.id}")
    tags = re.findall(r'<time class="when" datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', html)
    assert len(tags) >= 3  # the idea, its history, its comment
    for iso, title, text in tags:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso)
        assert title.endswith(" UTC") and text in title
    assert "<time" in _html(client, f"/ideas/{idea.id}", "ru")


def test_roadmap_leads_with_the_active_stages(client, app):
    """Planned, in progress and shipped first as columns; under review, heard and declined
    follow folded; tabs link to every stage."""
    html = _html(client, "/roadmap")
    order = [m for m in re.findall(r'id="stage-(\w+)"', html)]
    assert order == ["planned", "in_progress", "shipped", "under_review", "heard", "declined"]
    for status in ("under_review", "heard", "declined"):
        assert re.search(rf'<details class="[^"]*" id="stage-{status}">', html)
    tabs = re.search(r'<nav class="roadmap-tabs"[^>]*>(.*?)</nav>', html, re.S).group(1)
    assert re.findall(r'href="#stage-(\w+)"', tabs) == order


def test_roadmap_cards_show_votes_a_vote_button_and_the_shipping_date(client, app):
    """A member gets a vote form posting an intent; a shipped card says when it shipped
    and, its votes frozen, offers no vote."""
    idea = make_idea(title="Shipped thing")
    _move(idea, "shipped")
    planned = make_idea(title="Planned thing")
    _move(planned, "planned")
    visitor = _html(client, "/roadmap")
    assert 'name="csrf_token"' not in visitor  # cacheable for visitors
    assert f'href="/login?next=/roadmap&amp;vote={planned.id}"' in visitor
    card = re.search(rf'id="roadmap-idea-{idea.id}">(.*?)</li>', visitor, re.S).group(1)
    assert re.search(r'shipped <time class="when" datetime="[^"]+Z"', card)
    assert "/login" not in card  # voting is closed on a shipped idea

    member = make_user()
    login_as(client, member)
    html = _html(client, "/roadmap")
    form = re.search(rf'<form id="vote-{planned.id}".*?</form>', html, re.S).group(0)
    assert f'action="/ideas/{planned.id}/vote"' in form
    assert 'name="intent" value="vote"' in form
    resp = client.post(
        f"/ideas/{planned.id}/vote",
        data={"intent": "vote", "next": "/roadmap"},
    )
    assert resp.status_code == 303 and "/roadmap" in resp.headers["Location"]
    html = _html(client, "/roadmap")
    form = re.search(rf'<form id="vote-{planned.id}".*?</form>', html, re.S).group(0)
    assert 'name="intent" value="unvote"' in form and 'aria-pressed="true"' in form


def test_members_get_a_compact_menu_visitors_their_links(client, app):
    """The member's links sit in one <details> menu (CSS folds it at 640 px)."""
    html = _html(client, "/ideas")
    assert 'class="nav-menu"' not in html and ">Sign in<" in html
    login_as(client, make_user(name="Menu Person"))
    html = _html(client, "/ideas")
    menu = re.search(r'<details class="nav-menu">(.*?)</details>', html, re.S).group(1)
    assert ">Menu</summary>" in menu and "Menu Person" in menu and "Sign out" in menu
    assert 'href="/ideas"' in menu and 'href="/roadmap"' in menu
