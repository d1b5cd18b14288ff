"""In headless Chromium: the header's unread count changes without a reload when news
arrives, and marking a notification read inline updates the item and the count."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from ideaboard.extensions import db
from ideaboard.services import notifications, roadmap

from ..conftest import BACKEND
from ..factories import make_idea, make_user, vote_for
from .conftest import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BACKEND == "postgres", reason="checks the pages; the SQLite run covers it"),
]


def test_the_unread_count_changes_without_a_reload(live_app, page: Page):
    live_app.config["NOTIFY_POLL_SECONDS"] = 1
    member, staff = make_user(), make_user("staff")
    idea = make_idea(title="Dark mode")
    vote_for(idea, member)
    sign_in(page, member.email, "/ideas")
    link = page.locator("#nav-notifications")
    expect(link).to_have_accessible_name("Notifications")
    roadmap.change_status(staff, idea, "planned", "Next sprint")
    db.session.commit()
    notifications.fan_out_pending()
    expect(link).to_have_accessible_name("Notifications, 1 unread", timeout=5000)
    expect(link.locator(".unread-badge")).to_have_text("1")
    assert urlsplit(page.url).path == "/ideas"  # no navigation happened

    link.click()
    page.wait_for_url("**/notifications")
    item = page.locator(".notification").first
    expect(item).to_contain_text("Dark mode moved to Planned")
    expect(item).to_contain_text("Next sprint")
    expect(item).to_have_class("notification is-unread")
    item.get_by_role("button", name="Mark as read").click()
    expect(page.locator(".notification").first).to_have_class("notification")
    expect(page.locator(".notifications-summary")).to_have_text("All read")
    expect(page.locator(".notifications-summary")).to_be_focused()  # not lost to the body
    expect(page.locator("#nav-notifications")).to_have_accessible_name("Notifications")
    assert urlsplit(page.url).path == "/notifications"


def test_without_javascript_marking_read_goes_back_to_the_centre(new_page):
    page = new_page(java_script_enabled=False)
    member, staff = make_user(), make_user("staff")
    idea = make_idea(title="Offline mode")
    vote_for(idea, member)
    roadmap.change_status(staff, idea, "planned", "")
    db.session.commit()
    notifications.fan_out_pending()
    sign_in(page, member.email, "/notifications")
    expect(page.locator(".notifications-summary")).to_have_text("1 unread")
    with page.expect_navigation():
        page.get_by_role("button", name="Mark all as read").click()
    assert urlsplit(page.url).path == "/notifications"
    expect(page.locator(".notifications-summary")).to_have_text("All read")
