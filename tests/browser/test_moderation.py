"""In headless Chromium: a community's moderator pins a thread, hides a reply with a reason
and hides the thread, each inline (htmx swaps the part, no reload), with the confirmation
step for the destructive ones; the author then sees the reply hidden with the reason; axe
finds nothing on the moderator's thread page (desktop and mobile, en and ru)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from ideaboard.extensions import db
from ideaboard.models import AuditEntry, Community, Reply, Thread

from ..conftest import BACKEND
from ..factories import make_community, make_moderator, make_reply, make_thread, make_user
from .conftest import sign_in
from .test_accessibility import assert_no_findings, axe_findings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BACKEND == "postgres", reason="checks the pages; the SQLite run covers it"),
]


def _htmx_owns(page: Page, selector: str) -> None:
    """Wait until htmx has processed the (swapped-in) element, so a click goes through it."""
    page.wait_for_function(
        "s => { const e = document.querySelector(s); return !!(e && e['htmx-internal-data']); }",
        arg=selector,
    )


def test_a_moderator_pins_and_hides_inline_without_reload(new_page):
    community = make_community(name="Niva owners")
    mod = make_moderator(community, make_user(name="Mo Moderator"))
    author = make_user(name="Olga Author")
    thread = make_thread(community, author, title="Winter tyres")
    reply = make_reply(thread, author, body="Cheap watches at spam dot example")
    path = f"/c/{community.slug}/t/{thread.id}"

    page = new_page()
    sign_in(page, mod.email, path)
    page.evaluate("window.__stillHere = true")

    # Pin: one click, the badge appears and the button turns into Unpin.
    _htmx_owns(page, "#thread-mod form")
    page.locator("#mod-pin").click()
    expect(page.locator("#thread .badge", has_text="Pinned")).to_be_visible()
    expect(page.locator("#mod-pin")).to_have_text("Unpin")

    # Hide a reply: the disclosure asks for a reason first (the confirmation step).
    box = page.locator(f"#reply-{reply.id}")
    box.locator(f"#mod-reply-hide-{reply.id}").click()
    box.get_by_label("Reason (the author sees it)").fill("Advertising")
    _htmx_owns(page, f"#reply-{reply.id} form")
    box.get_by_role("button", name="Hide reply").click()
    expect(page.locator(f"#reply-{reply.id} .alert")).to_contain_text(
        "Hidden by a moderator: Advertising"
    )
    expect(page.locator(f"#mod-reply-hide-{reply.id}")).to_have_text("Show reply again")
    assert_no_findings(axe_findings(page, "moderator's thread page"), 1)
    page.set_viewport_size({"width": 390, "height": 800})
    assert_no_findings(axe_findings(page, "moderator's thread page, 390 px"), 1)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Hide the thread, with an empty reason first: the message stands next to the field.
    _htmx_owns(page, "#thread-mod form")
    page.locator("#mod-hide").click()
    reason = page.locator("#thread-hide-reason")
    reason.evaluate("e => e.removeAttribute('required')")  # let the server say it
    page.locator("#mod-hide-confirm").click()
    expect(page.locator("#thread-hide-reason-error")).to_be_visible()
    expect(page.locator("#thread-hide-reason")).to_have_attribute("aria-invalid", "true")
    _htmx_owns(page, "#thread-mod form")
    page.locator("#thread-hide-reason").fill("Off topic")
    page.locator("#mod-hide-confirm").click()
    expect(page.locator("#thread .alert-warning")).to_contain_text(
        "Hidden by a moderator: Off topic"
    )
    expect(page.locator("#mod-hide")).to_have_text("Show again")
    assert page.evaluate("window.__stillHere") is True  # never reloaded

    db.session.rollback()  # a new snapshot: what the server committed since...
    db.session.expire_all()  # ...and no object kept from before
    assert db.session.get(Thread, thread.id).is_pinned
    assert db.session.get(Reply, reply.id).deleted_reason == "Advertising"
    assert db.session.get(Thread, thread.id).deleted_reason == "Off topic"
    assert db.session.get(Community, community.id).thread_count == 0
    entries = db.session.query(AuditEntry).filter(AuditEntry.actor_id == mod.id)
    actions = [e.action for e in entries.order_by(AuditEntry.id)]
    assert actions == ["thread.pin", "reply.hide", "thread.hide"], actions  # one each

    # The author sees both hidden, with the reasons, and no moderator tools.
    author_page = new_page()
    sign_in(author_page, author.email, path)
    expect(author_page.locator("#thread .alert-warning")).to_contain_text("Off topic")
    expect(author_page.locator(f"#reply-{reply.id} .alert")).to_contain_text("Advertising")
    expect(author_page.locator(".mod-tools")).to_have_count(0)


def test_the_moderator_thread_page_in_russian_has_no_axe_violations(new_page):
    community = make_community(name="Клуб владельцев Нивы")
    mod = make_moderator(community, make_user(name="Мария Модератор"))
    thread = make_thread(community, make_user(name="Олег"), title="Зимняя резина")
    make_reply(thread, make_user(name="Ольга"), body="Ставлю шипы каждый ноябрь")
    page = new_page(locale="ru-RU")
    sign_in(page, mod.email, f"/c/{community.slug}/t/{thread.id}")
    expect(page.locator("#thread-mod")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "ru"
    assert_no_findings(axe_findings(page, "moderator's thread page (ru)"), 1)
    page.set_viewport_size({"width": 390, "height": 800})
    assert_no_findings(axe_findings(page, "moderator's thread page (ru), 390 px"), 1)
