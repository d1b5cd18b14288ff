"""The keyboard alone is enough: Tab reaches what matters, focus shows, Enter acts.

With and without JavaScript: on the home page and the idea list, Tab from the top of the
page reaches the sign-in link (a visitor) and the vote button (a member); every stop on the
way has a visible focus ring; Enter on the sign-in link opens the sign-in page, and Enter on
the vote button casts the member's vote (htmx with JavaScript, a plain form post without).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Idea, Vote

from ..conftest import BACKEND
from ..factories import make_idea, make_user
from .conftest import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BACKEND == "postgres", reason="checks the pages; the SQLite run covers it"),
]

MAX_TABS = 150

#: What document.activeElement is, and whether its focus can be seen: an outline at least
#: 2 px wide that is not transparent, or a box-shadow ring.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const css = getComputedStyle(el);
  const width = parseFloat(css.outlineWidth) || 0;
  const outline = css.outlineStyle !== "none" && width >= 2
    && !/rgba\\(.*,\\s*0\\)$/.test(css.outlineColor) && css.outlineColor !== "transparent";
  const ring = css.boxShadow && css.boxShadow !== "none";
  const label = (el.getAttribute("aria-label") || el.textContent || el.value || "")
    .replace(/\\s+/g, " ").trim().slice(0, 40);
  return {
    tag: el.tagName.toLowerCase(), label, visible: outline || ring,
    outline: `${css.outlineStyle} ${css.outlineWidth} ${css.outlineColor}`,
  };
}"""


def tab_to(page: Page, target, limit: int = MAX_TABS) -> list[dict]:
    """Press Tab from the top of the page until `target` has focus; the stops on the way.

    Fails, listing the stops, if it never does, or if any stop's focus cannot be seen.
    """
    stops: list[dict] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if stop is None:
            continue
        stops.append(stop)
        assert stop["visible"], f"focus not visible on {stop}; stops so far: {stops}"
        if target.evaluate("el => el === document.activeElement"):
            return stops
    pytest.fail(f"{limit} Tabs never reached {target}; stops: {stops}", pytrace=False)


def start(page: Page, path: str) -> None:
    """Open `path` with nothing focused, as a person arriving at the page."""
    page.goto(path)
    page.evaluate("document.activeElement && document.activeElement.blur()")


def vote_rows(idea_id: int) -> tuple[int, int]:
    """(stored count, vote rows) for the idea, read fresh."""
    db.session.expire_all()
    count = db.session.get(Idea, idea_id).vote_count
    rows = db.session.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea_id))
    db.session.commit()
    return count, rows


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("path", ["/", "/ideas"])
def test_a_visitor_tabs_to_sign_in_and_enter_opens_it(new_page, app, path, js):
    """From the top of the home page and the list, Tab reaches "Sign in" with every stop
    visibly focused; Enter on it opens the sign-in page."""
    make_idea(title="Dark mode for the board")
    page = new_page(java_script_enabled=js)
    start(page, path)
    link = page.locator("header a[href^='/login']").first
    stops = tab_to(page, link)
    assert len(stops) < 20, f"sign-in is {len(stops)} Tabs away: {stops}"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert urlsplit(page.url).path == "/login"
    expect(page.locator("main form[action^='/login'] input[name=email]")).to_be_visible()


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_a_visitor_tabs_to_an_ideas_vote_control(new_page, app, js):
    """On the list, a visitor's Tab reaches each idea's vote control, visibly focused."""
    idea = make_idea(title="Dark mode for the board")
    page = new_page(java_script_enabled=js)
    start(page, "/ideas")
    tab_to(page, page.locator(f"#vote-{idea.id}").locator("a, button").first)


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_a_member_votes_with_tab_and_enter(new_page, app, js):
    """A member tabs from the top of the list to an idea's vote button, sees it focused, and
    Enter casts the vote: stored once, and the button says so."""
    member = make_user(name="Kim Keyboard")
    make_idea(title="An idea above")
    idea = make_idea(title="Keyboard shortcuts")
    page = new_page(java_script_enabled=js)
    sign_in(page, member.email, "/ideas")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    button = page.locator(f"#vote-{idea.id} button")
    expect(button).to_have_attribute("aria-pressed", "false")
    tab_to(page, button)

    if js:
        with page.expect_response(lambda r: r.request.method == "POST" and "/vote" in r.url):
            page.keyboard.press("Enter")
    else:
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert urlsplit(page.url).path == "/ideas", page.url
    expect(page.locator(f"#vote-{idea.id} button")).to_have_attribute("aria-pressed", "true")
    assert vote_rows(idea.id) == (2, 2)  # its author's vote and the member's, once
