"""In headless Chromium: an open idea page shows a comment posted from another session, a
vote and a status change without a reload; the roadmap moves a card between columns; a
comment being typed is left alone; polls in between answer 304."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from ideaboard.extensions import db
from ideaboard.services import roadmap

from ..conftest import BACKEND
from ..factories import make_idea, make_user, vote_for
from .conftest import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BACKEND == "postgres", reason="checks the pages; the SQLite run covers it"),
]


@pytest.fixture
def live_app(app, make_app):
    """As the suite's, polling every second so the test does not wait ten."""
    return make_app(WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=False, LIVE_POLL_SECONDS=1)


def _watch_polls(page: Page) -> list[int]:
    statuses: list[int] = []
    page.on(
        "response",
        lambda r: statuses.append(r.status) if "/live" in urlsplit(r.url).path else None,
    )
    return statuses


def test_an_open_idea_page_shows_another_sessions_comment_and_a_status_change(new_page):
    idea = make_idea(title="Offline mode")
    member, staff = make_user(name="Mira Commenter"), make_user("staff", name="Sam Staff")
    path = f"/ideas/{idea.id}"

    watcher = new_page()  # a visitor with the page open
    polls = _watch_polls(watcher)
    watcher.goto(path)
    watcher.evaluate("window.__notReloaded = true")
    expect(watcher.locator("#live-news")).to_have_attribute("aria-live", "polite")
    watcher.wait_for_timeout(2500)
    assert polls and set(polls) == {304}, polls  # nothing changed: empty answers

    writer = new_page()
    sign_in(writer, member.email, path)
    writer.locator("textarea[name=body]").fill("Works on the train too, please")
    writer.get_by_role("button", name="Post comment").click()
    expect(writer.locator("#comments")).to_contain_text("Works on the train too, please")

    expect(watcher.locator("#comments")).to_contain_text("Works on the train too, please")
    expect(watcher.locator("#comments")).to_contain_text("Mira Commenter")
    expect(watcher.locator("#comment-count")).to_have_text("1 comment")
    expect(watcher.locator("#live-news")).to_have_text("1 new comment.")
    # The writer's own page shows their comment once, though its poll saw it land too.
    writer.wait_for_timeout(2500)
    expect(writer.locator("#comments article.comment")).to_have_count(1)

    vote_for(idea, make_user())
    expect(watcher.locator(f"#vote-{idea.id} .vote-count")).to_have_text("2")
    expect(watcher.locator("#voters .voters-count")).to_have_text("2 voters")

    mover = new_page()
    sign_in(mover, staff.email, path)
    form = mover.locator("#staff-controls form")
    form.locator("select[name=status]").select_option("planned")
    form.locator("textarea[name=note]").fill("Planned for the spring release")
    with mover.expect_navigation():
        form.get_by_role("button", name="Change status").click()

    expect(watcher.locator("#idea-status .badge")).to_have_text("Planned")
    expect(watcher.locator("#live-news")).to_have_text("Status changed to Planned.")
    expect(watcher.locator("#timeline")).to_contain_text("Planned for the spring release")
    expect(watcher.locator("#comments")).to_contain_text("Planned for the spring release")
    assert watcher.evaluate("window.__notReloaded") is True  # all of it without a reload
    assert 200 in polls and 304 in polls


def test_the_comment_being_typed_keeps_its_text_and_focus(new_page):
    idea = make_idea()
    reader, other = make_user(), make_user(name="Otto Other")
    path = f"/ideas/{idea.id}"
    page = new_page()
    sign_in(page, reader.email, path)
    box = page.locator("textarea[name=body]")
    box.click()
    box.press_sequentially("Half a thought", delay=10)

    from ideaboard.services import comments

    comments.add_comment(other, idea, "Meanwhile, elsewhere")
    db.session.commit()
    expect(page.locator("#comments")).to_contain_text("Meanwhile, elsewhere")
    assert box.input_value() == "Half a thought"
    assert page.evaluate("document.activeElement.name") == "body"
    box.press_sequentially(", continued", delay=10)
    assert box.input_value() == "Half a thought, continued"


def test_the_roadmap_moves_a_card_without_a_reload(new_page):
    staff = make_user("staff")
    idea = make_idea(title="Calendar sync")
    page = new_page()
    page.goto("/roadmap")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#stage-planned")).not_to_contain_text("Calendar sync")
    roadmap.change_status(staff, idea, "planned")
    db.session.commit()
    expect(page.locator("#stage-planned")).to_contain_text("Calendar sync")
    expect(page.locator("#count-planned")).to_have_text("1")
    expect(page.locator("#live-news")).to_have_text("The roadmap was updated.")
    assert page.evaluate("window.__notReloaded") is True


def test_a_hidden_tab_does_not_poll(new_page):
    idea = make_idea()
    page = new_page()
    polls = _watch_polls(page)
    page.goto(f"/ideas/{idea.id}")
    page.wait_for_timeout(1500)
    assert polls
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    page.wait_for_timeout(1300)  # a poll already on its way may still land
    seen = len(polls)
    page.wait_for_timeout(3000)
    assert len(polls) == seen


def test_focus_stays_on_the_vote_button_the_poll_replaces(new_page):
    idea = make_idea()
    reader = make_user()
    path = f"/ideas/{idea.id}"
    page = new_page()
    sign_in(page, reader.email, path)
    button = page.locator(f"#vote-button-{idea.id}")
    button.focus()
    vote_for(idea, make_user())
    expect(page.locator(f"#vote-{idea.id} .vote-count")).to_have_text("2")
    page.wait_for_timeout(200)  # settled
    assert page.evaluate("document.activeElement.id") == f"vote-button-{idea.id}"
    page.keyboard.press("Enter")  # and it still works: the reader's own vote
    expect(page.locator(f"#vote-{idea.id} .vote-count")).to_have_text("3")
