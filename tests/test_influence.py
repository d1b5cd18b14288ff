"""My influence (issue 13, item 8): the member's own ideas, posted and voted for, where
each stands now, and how many of those they backed shipped."""

from __future__ import annotations

import re

from ideaboard.extensions import db
from ideaboard.services import ideas as ideas_service
from ideaboard.services import influence, roadmap

from .factories import login_as, make_board, make_idea, make_user, vote_for
from .oracle import parse


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _titles(html: str) -> list[str]:
    return re.findall(r'<a class="idea-title" href="[^"]*">([^<]*)</a>', html)


def _world():
    """Mia posted one idea (planned) and voted for five others: two shipped, one in
    progress, one declined, one heard. Others' votes and an idea she never touched must
    not show; a deleted idea she voted for must not either."""
    staff = make_user("staff")
    mia = make_user(name="Mia")
    other = make_user(name="Otto")
    own = make_idea(mia, title="Mine, planned")
    roadmap.change_status(staff, own, "planned")
    voted = {}
    for title, status in (
        ("Shipped one", "shipped"),
        ("Shipped two", "shipped"),
        ("Being built", "in_progress"),
        ("Said no", "declined"),
        ("Just heard", None),
    ):
        idea = make_idea(other, title=title)
        vote_for(idea, mia)
        if status:
            roadmap.change_status(staff, idea, status)
        voted[title] = idea
    make_idea(other, title="Not hers")
    gone = make_idea(other, title="Deleted later")
    vote_for(gone, mia)
    ideas_service.delete_idea(staff, gone)
    db.session.commit()
    return mia, other, own, voted


def test_the_page_shows_what_she_backed_and_where_it_stands(client):
    """Headline, shipped first, each row's status badge, votes and her part; nothing she
    did not post or vote for; a link to her public profile."""
    mia, _other, _own, _voted = _world()
    login_as(client, mia)
    resp = client.get("/account/influence")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    text = _text(html)
    # Backed = voted for: her own idea (an idea starts with its author's vote) and five.
    assert "You backed 6 ideas; 2 shipped" in text
    assert "1 idea posted" in text
    titles = _titles(html)
    assert titles[:2] == ["Shipped two", "Shipped one"]  # shipped first, newest first
    assert titles[2:] == ["Being built", "Mine, planned", "Just heard", "Said no"]
    assert "Not hers" not in html and "Deleted later" not in html
    assert 'class="badge status-shipped"' in html or "status-shipped" in html
    assert "You posted it and voted" in text and text.count("You voted") >= 5
    assert f'href="/u/{mia.id}"' in html
    assert "no-store" in resp.headers["Cache-Control"]


def test_the_breakdown_is_a_bar_and_a_table_with_the_same_numbers(client):
    """The SVG bar has one rect per status present, widths in proportion; the table beside
    it says the numbers, each linking to the filtered list."""
    mia, *_ = _world()
    login_as(client, mia)
    html = client.get("/account/influence").get_data(as_text=True)
    svg = re.search(r"<svg class=\"influence-bar\".*?</svg>", html, re.S)[0]
    assert 'aria-hidden="true"' in svg  # the table says it for screen readers
    rects = dict(re.findall(r'<rect class="status-(\w+)" x="[^"]+" y="0" width="([^"]+)"', svg))
    assert set(rects) == {"shipped", "in_progress", "planned", "heard", "declined"}
    assert abs(float(rects["shipped"]) - 2 * 100 / 6) < 0.01
    assert abs(sum(float(w) for w in rects.values()) - 100) < 0.01
    rows = {
        status: int(n)
        for status, n in re.findall(
            r'status=(\w+)"[^>]*>[^<]*</a></th><td class="num">(\d+)</td>', html
        )
    }
    assert rows == {"heard": 1, "planned": 1, "in_progress": 1, "shipped": 2, "declined": 1}
    assert re.search(r'<tfoot><tr><th scope="row">All</th><td class="num">6</td>', html)


def test_filter_by_status_and_pages(client, monkeypatch):
    """?status=shipped lists only shipped ideas; a bad status lists all; pages of
    PER_PAGE keep the order and the filter."""
    mia, *_ = _world()
    login_as(client, mia)
    html = client.get("/account/influence?status=shipped").get_data(as_text=True)
    assert _titles(html) == ["Shipped two", "Shipped one"]
    assert "You backed 6 ideas; 2 shipped" in _text(html)  # the headline stays whole
    assert len(_titles(client.get("/account/influence?status=bogus").get_data(as_text=True))) == 6

    monkeypatch.setattr(influence, "PER_PAGE", 4)
    first = client.get("/account/influence").get_data(as_text=True)
    second = client.get("/account/influence?page=2").get_data(as_text=True)
    assert _titles(first) == ["Shipped two", "Shipped one", "Being built", "Mine, planned"]
    assert _titles(second) == ["Just heard", "Said no"]
    assert 'rel="next" href="/account/influence?page=2"' in first
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert client.get("/account/influence?page=x").status_code == 200


def test_only_her_own_and_only_signed_in(client, app):
    """A visitor is sent to sign in; another member sees their own, never hers; the URL
    names nobody, so there is nothing to swap."""
    mia, other, *_ = _world()
    resp = client.get("/account/influence")
    assert resp.status_code in (302, 303) and "/login" in resp.headers["Location"]
    login_as(client, other)
    text = _text(client.get("/account/influence").get_data(as_text=True))
    assert "You voted" not in text  # Otto only posted: his own votes are his ideas'
    assert "Mine, planned" not in text
    assert (
        client.get(f"/account/influence?user_id={mia.id}")
        .get_data(as_text=True)
        .count("Mine, planned")
        == 0
    )


def test_an_empty_page_says_what_to_do(client):
    login_as(client, make_user())
    html = client.get("/account/influence").get_data(as_text=True)
    assert "You backed 0 ideas; 0 shipped" in _text(html)
    assert "You have not posted or voted for any idea yet" in html and "<svg" not in html


def test_the_headline_speaks_russian_with_plural_forms(client):
    """«Вы поддержали 14 идей; 3 реализованы», and 1 / 2 / 21 take their own forms."""
    staff = make_user("staff")
    member = make_user()
    board = make_board()
    made = [make_idea(title=f"Идея {n}", board=board) for n in range(14)]
    for idea in made:
        vote_for(idea, member)
    for idea in made[:3]:
        roadmap.change_status(staff, idea, "shipped")
    db.session.commit()
    login_as(client, member)
    ru = {"Accept-Language": "ru"}
    text = _text(client.get("/account/influence", headers=ru).get_data(as_text=True))
    assert "Вы поддержали 14 идей; 3 реализованы" in text
    assert "Моё влияние" in text
    from flask_babel import force_locale, ngettext

    with client.application.test_request_context(), force_locale("ru"):
        for n, form in ((1, "идею"), (2, "идеи"), (5, "идей"), (21, "идею")):
            assert f"Вы поддержали {n} {form};" in ngettext(
                "You backed %(num)d idea; %(shipped)s",
                "You backed %(num)d ideas; %(shipped)s",
                n,
                shipped="",
            )


def test_linked_from_the_header_menu_and_the_account_page(client):
    login_as(client, make_user())
    for path in ("/ideas", "/account"):
        doc = parse(client.get(path).get_data(as_text=True))
        hrefs = [n.get("href") for n in doc.descendants() if n.tag == "a"]
        assert "/account/influence" in hrefs, path
