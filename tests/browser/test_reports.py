"""In headless Chromium: a member reports a reply inline (htmx, no reload, the outcome
announced), and the community's moderator finds it in the queue and resolves it inline;
axe-core finds nothing on the report form and the queue pages."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ideaboard.extensions import db
from ideaboard.models import Reply
from ideaboard.models.community import Report

from ..conftest import BACKEND
from ..factories import (
    make_community,
    make_moderator,
    make_reply,
    make_thread,
    make_user,
)
from .conftest import sign_in
from .test_accessibility import assert_no_findings, axe_findings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BACKEND == "postgres", reason="checks the pages; the SQLite run covers it"),
]


def test_a_member_reports_a_reply_and_the_moderator_resolves_it(new_page):
    community = make_community(name="Niva owners")
    mod = make_moderator(community, make_user(name="Mo Moderator"))
    author = make_user(name="Olga Author")
    thread = make_thread(community, author, title="Winter tyres")
    reply = make_reply(thread, author, body="Cheap watches at spam dot example")
    member = make_user(name="Rita Reporter")
    path = f"/c/{community.slug}/t/{thread.id}"

    page = new_page()
    sign_in(page, member.email, path)
    page.evaluate("window.__stillHere = true")
    reply_box = page.locator(f"#reply-{reply.id}")
    reply_box.get_by_role("link", name="Report this reply").click()
    form = page.locator(f"form#report-reply-{reply.id}")
    expect(form).to_be_visible()
    assert_no_findings(axe_findings(page, "thread page with the report form open"), 1)
    form.get_by_label("Spam or advertising").check()
    form.get_by_label("Anything moderators should know (optional)").fill("Selling watches")
    form.get_by_role("button", name="Send report").click()
    status = page.locator(f"#report-reply-{reply.id}[role=status]")
    expect(status).to_contain_text("your report was sent to the moderators")
    assert page.evaluate("window.__stillHere") is True  # no reload
    db.session.rollback()  # a new snapshot: what the server committed since...
    db.session.expire_all()  # ...and no object kept from before
    assert db.session.query(Report).filter_by(target_id=reply.id).count() == 1

    moderator = new_page()
    sign_in(moderator, mod.email, f"/c/{community.slug}/mod/queue")
    entry = moderator.locator(f"#queue-reply-{reply.id}")
    expect(entry).to_contain_text("Cheap watches at spam dot example")
    expect(entry).to_contain_text("Selling watches")
    expect(entry).to_contain_text("1 report")
    assert_no_findings(axe_findings(moderator, "community moderation queue"), 1)
    moderator.evaluate("window.__stillHere = true")
    entry.get_by_label("Reason (shown to the author if you hide it)").fill("Advertising")
    entry.get_by_role("button", name="Hide it").click()
    expect(moderator.locator(f"#queue-reply-{reply.id} [role=status]")).to_contain_text(
        "the item stays hidden"
    )
    assert moderator.evaluate("window.__stillHere") is True
    db.session.rollback()  # a new snapshot: what the server committed since...
    db.session.expire_all()  # ...and no object kept from before
    assert db.session.get(Reply, reply.id).deleted_reason == "Advertising"


def test_the_staff_queue_and_the_report_page_have_no_axe_violations(new_page):
    community = make_community(name="Lada club")
    author = make_user(name="Olga Author")
    thread = make_thread(community, author, title="Summer tyres")
    reply = make_reply(thread, author, body="Words someone disliked")
    community.require_approval = True
    db.session.commit()
    make_reply(thread, make_user(name="Nina Newcomer"), body="My first words")
    from ideaboard.services import reports

    reports.file_report(make_user(), reports.load_item("reply", reply.id), "abuse", "Rude")
    db.session.commit()
    staff = make_user("staff", name="Sue Staff")
    page = new_page()
    sign_in(page, staff.email, "/mod/queue")
    expect(page.locator(f"#queue-reply-{reply.id}")).to_be_visible()
    expect(page.get_by_text("My first words")).to_be_visible()
    assert_no_findings(axe_findings(page, "staff moderation queue"), 1)
    page.set_viewport_size({"width": 390, "height": 800})
    assert_no_findings(axe_findings(page, "staff moderation queue, 390 px"), 1)
    form_page = new_page()
    sign_in(form_page, make_user().email, f"/c/{community.slug}/t/{thread.id}/r/{reply.id}/report")
    expect(form_page.get_by_role("heading", name="Report to the moderators")).to_be_visible()
    assert_no_findings(axe_findings(form_page, "report page"), 1)
