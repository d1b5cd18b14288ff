"""Voting in a real browser (issue 12): a visitor's vote survives signing in or signing up,
and a keyboard or screen-reader user keeps their place and hears what happened."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from ..factories import PASSWORD, make_idea, make_user
from .test_core_flow import on_idea_page, sign_in

pytestmark = pytest.mark.browser


def _focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_visitor_votes_on_the_idea_page_signs_in_and_has_voted(app, page):
    idea = make_idea(title="Keyboard shortcuts")
    member = make_user(email="lin@example.com")
    page.goto(f"/ideas/{idea.id}")
    link = page.locator(f"#vote-button-{idea.id}")
    expect(link).to_have_text(re.compile(r"Vote"))
    expect(link).to_have_css("text-decoration-line", "none")  # a button, not a link
    link.click()
    page.wait_for_url(re.compile(r"/login\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["vote"] == [str(idea.id)]
    sign_in(page, member.email)
    page.wait_for_url(on_idea_page)
    assert urlsplit(page.url).fragment == f"vote-{idea.id}"
    button = page.locator(f"#vote-button-{idea.id}")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(button).to_contain_text("Voted")
    expect(page.locator(f"#vote-{idea.id} .vote-count")).to_have_text("2")


def test_visitor_votes_on_the_list_registers_and_has_voted(app, page):
    idea = make_idea(title="Bulk edit")
    other = make_idea(title="Something else")
    page.goto("/ideas?sort=new")
    page.locator(f"#vote-button-{idea.id}").click()
    page.wait_for_url(re.compile(r"/login\?"))
    page.get_by_role("link", name="Create an account").click()
    page.wait_for_url(re.compile(r"/register\?"))
    form = page.locator("form[action='/register']")
    expect(form.locator("input[name=vote]")).to_have_value(str(idea.id))
    form.locator("input[name=email]").fill("newcomer@example.com")
    form.locator("input[name=display_name]").fill("Newcomer")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/ideas\?sort=new#vote-\d+$"))
    expect(page.locator(f"#vote-button-{idea.id}")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#vote-{idea.id} .vote-count")).to_have_text("2")
    # Only the idea clicked on.
    expect(page.locator(f"#vote-button-{other.id}")).to_have_attribute("aria-pressed", "false")


def test_keyboard_vote_keeps_focus_and_is_announced(app, page):
    idea = make_idea(title="Dark mode")
    member = make_user(email="kai@example.com")
    page.goto("/login?next=/ideas")
    sign_in(page, member.email)
    page.wait_for_url(re.compile(r"/ideas$"))
    button = page.locator(f"#vote-button-{idea.id}")
    # The button's accessible name carries the idea's title.
    expect(button).to_have_accessible_name(re.compile(r"Vote.*Dark mode"))
    status = page.locator("#vote-status")
    expect(status).to_have_attribute("aria-live", "polite")

    button.focus()
    with page.expect_response(lambda r: "/vote" in r.url):
        page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(status).to_have_text("Your vote is counted.")
    assert _focused_id(page) == f"vote-button-{idea.id}"
    expect(button).to_have_accessible_name(re.compile(r"Voted.*Dark mode"))

    with page.expect_response(lambda r: "/vote" in r.url):
        page.keyboard.press("Space")
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(status).to_have_text("Your vote is taken back.")
    assert _focused_id(page) == f"vote-button-{idea.id}"


def test_mouse_vote_on_the_idea_page_keeps_focus(app, page):
    idea = make_idea(title="Export")
    member = make_user(email="mo@example.com")
    page.goto(f"/login?next=/ideas/{idea.id}")
    sign_in(page, member.email)
    page.wait_for_url(on_idea_page)
    button = page.locator(f"#vote-button-{idea.id}")
    with page.expect_response(lambda r: "/vote" in r.url):
        button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".voters-count")).to_have_text("2 voters")
    expect(page.locator("#vote-status")).to_have_text("Your vote is counted.")
    assert _focused_id(page) == f"vote-button-{idea.id}"


def test_idea_page_vote_control_does_not_stretch(app, new_page):
    idea = make_idea(title="A title that should have the room it needs on the idea page")
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/ideas/{idea.id}")
    control = page.locator(f"#vote-{idea.id}").bounding_box()
    heading = page.locator("h1.idea-heading").bounding_box()
    assert control["width"] < 120, control
    assert heading["width"] > 500, heading
