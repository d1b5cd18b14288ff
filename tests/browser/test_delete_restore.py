"""Deleting one's own idea asks first, says so, and can be undone from the idea's page:
in a real browser, with and without JavaScript, at desktop and phone widths."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..factories import make_idea, make_user
from .test_core_flow import sign_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_delete_confirm_then_restore(new_page, js):
    """Delete → confirm page → deleted, marked, with Restore → restored, each step said."""
    author = make_user(name="Dana")
    idea = make_idea(author=author, title="Undo-able idea", body="Line one\nline two")
    page = new_page(java_script_enabled=js)
    page.goto("/login")
    sign_in(page, author.email)
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"/ideas/{idea.id}")
    expect(page.locator(".idea-body br")).to_have_count(1)  # single line breaks kept

    page.locator(".idea-actions a", has_text="Delete").click()
    page.wait_for_url(re.compile(rf"/ideas/{idea.id}/delete$"))
    expect(page.locator("h1")).to_have_text("Delete this idea?")
    page.locator("main form button[type=submit]").click()

    page.wait_for_url(re.compile(rf"/ideas/{idea.id}(-[\w-]+)?$"))
    expect(page.locator("#flash")).to_contain_text("Your idea was deleted.")
    notice = page.locator("#deleted-notice")
    expect(notice).to_contain_text("You deleted this idea")
    notice.get_by_role("button", name="Restore").click()

    page.wait_for_url(re.compile(rf"/ideas/{idea.id}(-[\w-]+)?$"))
    expect(page.locator("#flash")).to_contain_text("The idea was restored.")
    expect(page.locator("#deleted-notice")).to_have_count(0)
    page.goto("/ideas")
    expect(page.locator("main")).to_contain_text("Undo-able idea")


@pytest.mark.parametrize("width", [1280, 390])
def test_staff_controls_come_first(new_page, width):
    """Staff find the status form at the top of the sidebar (desktop) or right under the
    title (phone), above the discussion either way."""
    staff = make_user("staff")
    idea = make_idea(title="Where does it go", body="A body\n\nwith two paragraphs")
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/login")
    sign_in(page, staff.email)
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"/ideas/{idea.id}")
    staff_box = page.locator("#staff-controls").bounding_box()
    title = page.locator("h1.idea-heading").bounding_box()
    body = page.locator(".idea-body").bounding_box()
    voters = page.locator(".sidebar").bounding_box()
    discussion = page.locator(".discussion").bounding_box()
    if width >= 800:
        assert staff_box["x"] >= discussion["x"] + discussion["width"]  # the sidebar column
        assert abs(staff_box["y"] - discussion["y"]) < 2  # at its top, level with the talk
        assert staff_box["y"] < voters["y"]  # above the rest of the sidebar
    else:
        assert title["y"] < staff_box["y"] < body["y"] < discussion["y"]  # under the title
