"""Lists and the roadmap in a real browser: the roadmap's first screen, the member menu and
the Filter fold at phone width, and dates made relative by the page's script."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from ideaboard.extensions import db
from ideaboard.models import Idea, utcnow
from ideaboard.services import roadmap

from ..factories import PASSWORD, make_idea, make_user

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MAIN = ("planned", "in_progress", "shipped")


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    form = page.locator("form[action^='/login']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)


def _fill_roadmap(per_stage: int = 6) -> None:
    staff = make_user("staff")
    for status in (*MAIN, "heard", "under_review", "declined"):
        for n in range(per_stage):
            idea = make_idea(title=f"{status.replace('_', ' ').title()} idea number {n}")
            if status != "heard":
                roadmap.change_status(staff, idea, status)
    db.session.commit()


def test_roadmap_active_stages_are_in_the_first_screen(app, page):
    """At 1280 × 900: planned, in progress and shipped, heading and first card, start in the
    first 900 px; heard, under review and declined are folded below."""
    _fill_roadmap()
    page.set_viewport_size(DESKTOP)
    page.goto("/roadmap")
    for status in MAIN:
        heading = page.locator(f"#col-{status}").bounding_box()
        card = page.locator(f"#stage-{status} li.roadmap-card").first.bounding_box()
        assert heading["y"] + heading["height"] <= 900, status
        assert card["y"] + card["height"] <= 900, status
    for status in ("under_review", "heard", "declined"):
        stage = page.locator(f"#stage-{status}")
        expect(stage).not_to_have_attribute("open", "")
        expect(stage.locator("li.roadmap-card").first).to_be_hidden()
    expect(page.locator(".roadmap-tabs")).to_be_hidden()  # tabs are for phones
    page.locator("#stage-heard > summary").click()
    expect(page.locator("#stage-heard li.roadmap-card").first).to_be_visible()


def test_roadmap_tabs_jump_between_stages_on_a_phone(app, page):
    """At 390 wide the stage tabs show, and a tab brings its stage into view."""
    _fill_roadmap(3)
    page.set_viewport_size(PHONE)
    page.goto("/roadmap")
    tabs = page.locator(".roadmap-tabs")
    expect(tabs).to_be_visible()
    tabs.get_by_role("link", name="Shipped").click()
    expect(page).to_have_url(re.compile(r"#stage-shipped$"))
    expect(page.locator("#col-shipped")).to_be_in_viewport()


def test_the_member_menu_folds_and_works_by_keyboard_on_a_phone(app, page):
    """At 390 wide the member's links are in one menu, opened and used by keyboard."""
    member = make_user(name="Keyboard Person")
    make_idea(title="Something to read")
    page.set_viewport_size(PHONE)
    sign_in(page, member.email)
    page.goto("/ideas")
    menu = page.locator("details.nav-menu")
    expect(menu.locator(".who")).to_be_hidden()
    header = page.locator(".site-header").bounding_box()
    assert header["height"] < 90, header  # one compact row
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    summary = menu.locator("summary")
    for _ in range(12):  # Tab along until the menu button has focus
        page.keyboard.press("Tab")
        if summary.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("the menu button is not reachable by Tab")
    page.keyboard.press("Enter")
    expect(menu.locator(".who")).to_be_visible()
    expect(menu.locator(".who")).to_have_text("Keyboard Person")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == "/ideas"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/roadmap$"))

    # The first idea starts within the first screen of the list.
    page.goto("/ideas")
    first = page.locator("#idea-list .idea-row").first.bounding_box()
    assert first["y"] < PHONE["height"], first


def test_the_member_links_are_inline_on_a_desktop(app, page):
    """Wider than 640 px there is no menu button: the links sit in the header."""
    member = make_user(name="Desk Person")
    page.set_viewport_size(DESKTOP)
    sign_in(page, member.email)
    page.goto("/ideas")
    expect(page.locator("details.nav-menu > summary")).to_be_hidden()
    expect(page.locator(".site-header .who")).to_be_visible()
    expect(page.locator(".site-header").get_by_role("button", name="Sign out")).to_be_visible()


def test_filters_fold_behind_one_control_on_a_phone(app, page):
    """At 390 wide the filters hide behind "Filter"; on a desktop they show at once."""
    make_idea(title="Open one")
    shipped = make_idea(title="Shipped one")
    roadmap.change_status(make_user("staff"), shipped, "shipped")
    db.session.commit()

    page.set_viewport_size(PHONE)
    page.goto("/ideas")
    status = page.locator("form.filters select[name=status]")
    expect(status).to_be_hidden()
    expect(page.locator("input#q")).to_be_visible()
    expect(page.locator("#idea-list .idea-title")).to_have_text(["Open one"])
    page.locator("details.filter-fold > summary").click()
    expect(status).to_be_visible()
    expect(page.locator("#sort-hint")).to_be_visible()
    with page.expect_response(lambda r: "hx-request" in r.request.headers):
        status.select_option("all")
    expect(page.locator("#idea-list .idea-title")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"status=all"))

    page.set_viewport_size(DESKTOP)
    page.goto("/ideas")
    expect(page.locator("details.filter-fold > summary")).to_be_hidden()
    expect(status).to_be_visible()
    expect(page.locator("#sort-hint")).to_be_visible()


def _three_days_old() -> Idea:
    idea = make_idea(title="Three days old")
    db.session.execute(
        update(Idea).where(Idea.id == idea.id).values(created_at=utcnow() - timedelta(days=3))
    )
    db.session.commit()
    return idea


def test_dates_read_relative_with_the_exact_time_on_hover(app, page, live_server):
    """The script turns the server's date into "3 days ago" (and «3 дня назад»), the title
    into the exact local date and time."""
    idea = _three_days_old()
    page.goto(f"/ideas/{idea.id}")
    when = page.locator(".idea-head time.when, time.when").first
    expect(when).to_have_text("3 days ago")
    title = when.get_attribute("title")
    assert title and "UTC" not in title and re.search(r"\d{4}", title), title

    page.context.add_cookies([{"name": "lang", "value": "ru", "url": live_server}])
    page.goto(f"/ideas/{idea.id}")
    expect(page.locator("time.when").first).to_have_text("3 дня назад")


def test_dates_stay_absolute_without_javascript(app, new_page):
    """Without the script a reader sees the date the server wrote."""
    idea = _three_days_old()
    page = new_page(java_script_enabled=False)
    page.goto(f"/ideas/{idea.id}")
    when = page.locator("time.when").first
    text = when.text_content()
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", text), text
    assert when.get_attribute("title").endswith(" UTC")
