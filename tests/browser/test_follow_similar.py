"""In headless Chromium: similar ideas appear while a title is typed, and the follow
button toggles through htmx with focus kept and the change announced."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from ideaboard.extensions import db

from ..conftest import BACKEND
from ..factories import make_idea, make_user, reload
from .conftest import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BACKEND == "postgres", reason="checks the pages; the SQLite run covers it"),
]


def test_similar_ideas_appear_while_typing_and_one_click_votes(page: Page):
    wanted = make_idea(title="Dark mode for reports")
    make_idea(title="Export reports as PDF")
    member = make_user()
    sign_in(page, member.email, "/ideas/new")
    region = page.locator("#similar")
    expect(region).to_have_attribute("aria-live", "polite")
    title = page.locator("input[name=title]")
    title.press_sequentially("da", delay=30)
    page.wait_for_timeout(700)
    expect(region.locator("li")).to_have_count(0)  # under 3 characters: nothing
    title.press_sequentially("rk mode", delay=30)
    expect(region.get_by_role("heading", name="Similar ideas")).to_be_visible()
    expect(region.locator("li")).to_have_count(1)
    expect(region.get_by_role("link", name="Dark mode for reports")).to_be_visible()
    # Enter in the title still posts the new idea's form, not a suggestion's vote.
    default = page.evaluate(
        "() => [...document.querySelector(\"form[action='/ideas/new'].card\").elements]"
        ".find(e => e.type === 'submit').textContent.trim()"
    )
    assert default == "Post idea"
    with page.expect_navigation():
        region.get_by_role("button", name="Vote for this instead").click()
    assert urlsplit(page.url).path.startswith(f"/ideas/{wanted.id}")
    db.session.expire_all()
    assert reload(wanted).vote_count >= 1
    assert reload(wanted).title == "Dark mode for reports"


def test_follow_toggles_with_htmx_and_keeps_focus(page: Page):
    idea = make_idea()
    member = make_user()
    path = f"/ideas/{idea.id}"
    sign_in(page, member.email, path)
    button = page.locator(f"#follow-button-{idea.id}")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#follower-count-{idea.id}")).to_have_text("2 people follow this idea")
    expect(page.locator(f"#follow-status-{idea.id}")).to_have_text("You now follow this idea.")
    assert page.evaluate("document.activeElement.id") == f"follow-button-{idea.id}"
    assert urlsplit(page.url).path == path  # no navigation: htmx swapped the fragment
    # The new form is htmx's once it is processed (at settle): a key pressed before that
    # would post it natively (a full page load), which a person cannot do that fast.
    page.wait_for_function(
        "id => { const f = document.getElementById(id);"
        " return f && f['htmx-internal-data'] && !document.querySelector('.htmx-settling'); }",
        arg=f"follow-{idea.id}",
    )
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", "false")
    expect(page.locator(f"#follow-status-{idea.id}")).to_have_text(
        "You no longer follow this idea."
    )
    assert page.evaluate("document.activeElement.id") == f"follow-button-{idea.id}"
    assert reload(idea).follower_count == 1


def test_follow_works_without_javascript(new_page):
    page = new_page(java_script_enabled=False)
    idea = make_idea()
    member = make_user()
    path = f"/ideas/{idea.id}"
    sign_in(page, member.email, path)
    with page.expect_navigation():
        page.locator(f"#follow-button-{idea.id}").click()
    expect(page.locator(f"#follow-button-{idea.id}")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#follower-count-{idea.id}")).to_have_text("2 people follow this idea")
