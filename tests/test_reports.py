"""Reports (issue 14 item 4), the moderation queues, first posts held for approval and
the abuse limits of item 7: one report per member per item; the threshold hides (and a
visitor no longer sees it); resolving restores or keeps hidden as chosen; each step leaves
one audit entry; a moderator of another community can neither see the queue nor resolve;
reports, and posts with links by new accounts, answer 429 with a retry time."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import AuditEntry, Comment, Community, Idea, Reply, Thread, utcnow
from ideaboard.models.community import CommunityMember, Report
from ideaboard.services import reports

from .conftest import TEST_REDIS, _reset, redis_or_skip
from .factories import (
    login_as,
    make_comment,
    make_community,
    make_idea,
    make_moderator,
    make_reply,
    make_thread,
    make_user,
)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _audit(action: str | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(db.session.scalars(stmt))


def _report_actions() -> list[str]:
    return [
        e.action for e in _audit() if e.action.startswith(("report.", "post.approve", "post.rej"))
    ]


def _as(app, user):
    client = app.test_client()
    login_as(client, user)
    return client


def _reply_path(community, thread, reply) -> str:
    return f"/c/{community.slug}/t/{thread.id}/r/{reply.id}/report"


@pytest.fixture
def club():
    """A community with a moderator, a thread and a reply by its author."""
    community = make_community(name="Niva owners")
    mod = make_moderator(community)
    author = make_user(name="Olga Author")
    thread = make_thread(community, author, title="Winter tyres")
    reply = make_reply(thread, author, body="Buy cheap watches at spam.example")
    return community, mod, author, thread, reply


def test_a_member_reports_an_item_once(app, club):
    """The second report of the same reply answers "you already reported this"; one row,
    one audit entry."""
    community, _mod, _author, thread, reply = club
    member = make_user()
    client = _as(app, member)
    path = _reply_path(community, thread, reply)
    first = client.post(path, data={"reason": "spam", "note": "Selling watches"})
    assert first.status_code == 303
    second = client.post(path, data={"reason": "abuse", "note": ""}, follow_redirects=True)
    assert "You already reported this" in second.get_data(as_text=True)
    rows = list(db.session.scalars(select(Report)))
    assert [(r.reporter_id, r.reason, r.community_id) for r in rows] == [
        (member.id, "spam", community.id)
    ]
    assert _report_actions() == ["report.file"]


def test_nobody_reports_what_they_wrote_and_a_reason_is_needed(app, club):
    """Their own reply: no Report link, 403; no reason, or "other" without a note: 422 with
    the message beside the field, nothing written."""
    community, _mod, author, thread, reply = club
    client = _as(app, author)
    page = client.get(f"/c/{community.slug}/t/{thread.id}").get_data(as_text=True)
    assert _reply_path(community, thread, reply) not in page
    assert client.get(_reply_path(community, thread, reply)).status_code == 403
    assert (
        client.post(_reply_path(community, thread, reply), data={"reason": "spam"}).status_code
        == 403
    )
    other = _as(app, make_user())
    resp = other.post(_reply_path(community, thread, reply), data={"reason": ""})
    assert resp.status_code == 422 and "Choose a reason." in resp.get_data(as_text=True)
    resp = other.post(_reply_path(community, thread, reply), data={"reason": "other", "note": ""})
    assert resp.status_code == 422 and "Say what is wrong." in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Report)) == 0
    assert _report_actions() == []


def test_the_threshold_hides_a_reply_until_reviewed(app, client, club):
    """Three members report the reply: it disappears for visitors, the counts drop, its
    author sees it marked; three filing entries and one hiding entry."""
    community, _mod, author, thread, reply = club
    assert reply.body in client.get(f"/c/{community.slug}/t/{thread.id}").get_data(as_text=True)
    for n in range(3):
        resp = _as(app, make_user()).post(
            _reply_path(community, thread, reply), data={"reason": "spam", "note": f"n{n}"}
        )
        assert resp.status_code == 303
    db.session.expire_all()
    hidden = db.session.get(Reply, reply.id)
    assert hidden.deleted_at is not None and hidden.deleted_by_id is None
    assert hidden.deleted_reason == reports.AUTO_HIDE_REASON
    assert db.session.get(Thread, thread.id).reply_count == 0
    assert db.session.get(Community, community.id).reply_count == 0
    assert reply.body not in client.get(f"/c/{community.slug}/t/{thread.id}").get_data(as_text=True)
    own = _as(app, author).get(f"/c/{community.slug}/t/{thread.id}").get_data(as_text=True)
    assert reply.body in own and "Hidden by a moderator" in own
    assert _report_actions() == ["report.file"] * 3 + ["report.auto_hide"]
    # A fourth member cannot report what is hidden already (they do not see it).
    late = _as(app, make_user()).post(
        _reply_path(community, thread, reply), data={"reason": "spam"}
    )
    assert late.status_code == 404


def test_the_threshold_follows_the_setting(make_app):
    """REPORT_HIDE_THRESHOLD=1: the first report hides the thread."""
    app = make_app(REPORT_HIDE_THRESHOLD=1)
    with app.app_context():
        from .conftest import _reset as reset

        reset(app)
        community = make_community()
        thread = make_thread(community, make_user(), title="Buy now")
        resp = _as(app, make_user()).post(
            f"/c/{community.slug}/t/{thread.id}/report", data={"reason": "spam"}
        )
        assert resp.status_code == 303
        db.session.expire_all()
        assert db.session.get(Thread, thread.id).deleted_at is not None
        assert db.session.get(Community, community.id).thread_count == 0
        assert app.test_client().get(f"/c/{community.slug}/t/{thread.id}").status_code == 404


def test_a_reported_comment_hides_from_visitors_and_stays_for_author_and_staff(app, client):
    """Comments have no soft delete of their own: hidden_at hides one; the comment count
    drops; the author and staff still see it, marked."""
    idea = make_idea(make_user())
    author = make_user(name="Carl Commenter")
    comment = make_comment(idea, author, body="A rude remark here")
    page = f"/ideas/{idea.id}"
    assert "A rude remark here" in client.get(page).get_data(as_text=True)
    for _ in range(3):
        resp = _as(app, make_user()).post(
            f"/ideas/{idea.id}/comments/{comment.id}/report", data={"reason": "abuse"}
        )
        assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Comment, comment.id).hidden_at is not None
    assert db.session.get(Idea, idea.id).comment_count == 0
    assert "A rude remark here" not in client.get(page).get_data(as_text=True)
    own = _as(app, author).get(page).get_data(as_text=True)
    assert "A rude remark here" in own and "Hidden after reports" in own
    staff = _as(app, make_user("staff")).get(page).get_data(as_text=True)
    assert "A rude remark here" in staff


def test_report_links_show_only_to_members_who_may_even_in_the_shared_comments(app, client):
    """A visitor's page has no Report link; a member gets one beside others' comments and
    the idea, none beside their own comment (the shared fragment asks per comment)."""
    owner, member = make_user(), make_user()
    idea = make_idea(owner)
    theirs = make_comment(idea, owner)
    mine = make_comment(idea, member)
    page = f"/ideas/{idea.id}"
    visitor = client.get(page).get_data(as_text=True)
    assert "/report" not in visitor
    seen = _as(app, member).get(page).get_data(as_text=True)
    assert f"/ideas/{idea.id}/comments/{theirs.id}/report" in seen
    assert f"/ideas/{idea.id}/comments/{mine.id}/report" not in seen
    assert f"/ideas/{idea.id}/report" in seen
    seen_by_owner = _as(app, owner).get(page).get_data(as_text=True)
    assert f"/ideas/{idea.id}/report" not in seen_by_owner
    assert f"/ideas/{idea.id}/comments/{mine.id}/report" in seen_by_owner


def test_reporting_with_htmx_answers_the_form_then_a_status_message(app, club):
    """htmx: GET gives the inline form (no page), POST a status message in its place."""
    community, _mod, _author, thread, reply = club
    client = _as(app, make_user())
    headers = {"HX-Request": "true"}
    path = _reply_path(community, thread, reply)
    form = client.get(path, headers=headers).get_data(as_text=True)
    assert "<html" not in form and f'id="report-reply-{reply.id}"' in form
    done = client.post(path, data={"reason": "spam"}, headers=headers)
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and 'role="status"' in body and "<html" not in body
    assert "your report was sent" in body


def _hide_by_reports(app, community, thread, reply, n=3):
    for _ in range(n):
        _as(app, make_user()).post(_reply_path(community, thread, reply), data={"reason": "spam"})


def test_resolving_restores_or_keeps_hidden_as_chosen(app, client, club):
    """Restore: shown again and counted; hide: stays hidden with the moderator's reason;
    each closes every open report of the item and writes one audit entry."""
    community, mod, author, thread, reply = club
    _hide_by_reports(app, community, thread, reply)
    moderator = _as(app, mod)
    resp = moderator.post(f"/mod/reports/reply/{reply.id}", data={"resolution": "restore"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Reply, reply.id).deleted_at is None
    assert db.session.get(Thread, thread.id).reply_count == 1
    assert db.session.get(Community, community.id).reply_count == 1
    assert reply.body in client.get(f"/c/{community.slug}/t/{thread.id}").get_data(as_text=True)
    open_ = select(func.count()).select_from(Report).where(Report.resolved_at.is_(None))
    assert db.session.scalar(open_) == 0
    resolved = _audit("report.resolve")
    assert len(resolved) == 1 and resolved[0].actor_id == mod.id
    # Reported again, and this time kept hidden, with a reason.
    _hide_by_reports(app, community, thread, reply)
    resp = moderator.post(
        f"/mod/reports/reply/{reply.id}",
        data={"resolution": "hide", "reason": "Advertising"},
        headers={"HX-Request": "true"},
    )
    assert resp.status_code == 200 and f'id="queue-reply-{reply.id}"' in resp.get_data(as_text=True)
    db.session.expire_all()
    kept = db.session.get(Reply, reply.id)
    assert kept.deleted_at is not None
    assert (kept.deleted_by_id, kept.deleted_reason) == (mod.id, "Advertising")
    assert db.session.get(Thread, thread.id).reply_count == 0
    own = _as(app, author).get(f"/c/{community.slug}/t/{thread.id}").get_data(as_text=True)
    assert "Advertising" in own
    assert len(_audit("report.resolve")) == 2
    # A second resolution of the same (now closed) reports changes nothing.
    again = moderator.post(f"/mod/reports/reply/{reply.id}", data={"resolution": "restore"})
    assert again.status_code == 303
    db.session.expire_all()
    assert db.session.get(Reply, reply.id).deleted_at is not None
    assert len(_audit("report.resolve")) == 2


def test_dismissing_leaves_the_item_as_it_is(app, club):
    """One report, dismissed: the reply stays shown, the report is closed as dismissed."""
    community, mod, _author, thread, reply = club
    _hide_by_reports(app, community, thread, reply, n=1)
    resp = _as(app, mod).post(f"/mod/reports/reply/{reply.id}", data={"resolution": "dismiss"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Reply, reply.id).deleted_at is None
    assert db.session.scalar(select(Report.resolution)) == "dismiss"
    assert _report_actions() == ["report.file", "report.resolve"]


def test_a_moderator_of_another_community_cannot_see_the_queue_or_resolve(app, club):
    """403 for the queue and for resolving, nothing written; members likewise; a
    community's moderator cannot resolve reports of ideas and comments (staff can)."""
    community, mod, _author, thread, reply = club
    _hide_by_reports(app, community, thread, reply, n=1)
    other_mod = make_moderator(make_community(name="Lada club"))
    stranger = _as(app, other_mod)
    before = _report_actions()
    assert stranger.get(f"/c/{community.slug}/mod/queue").status_code == 403
    assert stranger.get("/mod/queue").status_code == 403
    for data in ({"resolution": "hide"}, {"resolution": "restore"}):
        assert stranger.post(f"/mod/reports/reply/{reply.id}", data=data).status_code == 403
    member = _as(app, make_user())
    assert member.get(f"/c/{community.slug}/mod/queue").status_code == 403
    assert (
        member.post(f"/mod/reports/reply/{reply.id}", data={"resolution": "hide"}).status_code
        == 403
    )
    db.session.expire_all()
    assert db.session.scalar(select(Report.resolved_at)) is None
    assert _report_actions() == before
    idea = make_idea(make_user())
    reports.file_report(make_user(), reports.load_item("idea", idea.id), "spam", "")
    db.session.commit()
    moderator = _as(app, mod)
    assert (
        moderator.post(f"/mod/reports/idea/{idea.id}", data={"resolution": "hide"}).status_code
        == 403
    )
    staff = _as(app, make_user("staff"))
    assert (
        staff.post(f"/mod/reports/idea/{idea.id}", data={"resolution": "hide"}).status_code == 303
    )
    db.session.expire_all()
    assert db.session.get(Idea, idea.id).deleted_at is not None


def test_the_queues_show_reports_per_item_with_context(app, club):
    """The community queue: the reply once, with its count, reasons, notes, author and
    link, and none of another community's or of ideas; the staff queue: everything."""
    community, mod, _author, thread, reply = club
    for reason, note in (("spam", "Watches again"), ("abuse", "")):
        reports.file_report(make_user(), reports.load_item("reply", reply.id), reason, note)
    elsewhere = make_community(name="Lada club")
    far = make_thread(elsewhere, make_user(), title="Far away thread")
    reports.file_report(make_user(), reports.load_item("thread", far.id), "spam", "")
    idea = make_idea(make_user(), title="An idea someone reported")
    reports.file_report(make_user(), reports.load_item("idea", idea.id), "off_topic", "")
    db.session.commit()
    resp = _as(app, mod).get(f"/c/{community.slug}/mod/queue")
    assert resp.status_code == 200 and "no-store" in resp.headers["Cache-Control"]
    text = _text(resp.get_data(as_text=True))
    assert "2 reports" in text and "Watches again" in text and "Olga Author" in text
    assert "Spam or advertising: 1 member" in text and "Abusive or harassing: 1 member" in text
    assert "Far away thread" not in text and "An idea someone reported" not in text
    assert f"#reply-{reply.id}" in resp.get_data(as_text=True)
    staff = _as(app, make_user("staff")).get("/mod/queue")
    every = _text(staff.get_data(as_text=True))
    assert "Far away thread" in every and "An idea someone reported" in every
    assert "Winter tyres" in every


def test_a_held_first_post_waits_in_the_queue_until_approved(app, client):
    """A community that holds first posts: the newcomer's reply waits (not counted, not
    shown); approving it shows and counts it like a new reply, approves the member (the
    next reply is not held) and writes one audit entry; rejecting hides one."""
    community = make_community(require_approval=True)
    mod = make_moderator(community)
    thread = make_thread(community, mod, title="Welcome")
    newcomer = make_user(name="Nina Newcomer")
    held = make_reply(thread, newcomer, body="Hello everyone")
    assert held.held_at is not None
    assert db.session.get(Thread, thread.id).reply_count == 0
    queue = _as(app, mod).get(f"/c/{community.slug}/mod/queue").get_data(as_text=True)
    assert "Hello everyone" in queue and "Nina Newcomer" in queue
    resp = _as(app, mod).post(
        f"/mod/held/reply/{held.id}", data={"decision": "approve"}, headers={"HX-Request": "true"}
    )
    assert resp.status_code == 200 and "Approved" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Reply, held.id).held_at is None
    assert db.session.get(Thread, thread.id).reply_count == 1
    assert db.session.get(Community, community.id).reply_count == 1
    assert "Hello everyone" in client.get(f"/c/{community.slug}/t/{thread.id}").get_data(
        as_text=True
    )
    member = db.session.scalars(
        select(CommunityMember).where(CommunityMember.user_id == newcomer.id)
    ).one()
    assert member.approved_at is not None
    assert db.session.get(Community, community.id).member_count == 1
    newcomer = db.session.get(type(newcomer), newcomer.id)
    permissions.forget_standing(newcomer)
    assert make_reply(thread, newcomer, body="Second words").held_at is None
    assert [e.actor_id for e in _audit("post.approve")] == [mod.id]
    # Another newcomer's first thread, rejected: hidden, never counted.
    other = make_user()
    rejected = make_thread(community, other, title="Buy my stuff")
    assert rejected.held_at is not None
    resp = _as(app, mod).post(f"/mod/held/thread/{rejected.id}", data={"decision": "reject"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Thread, rejected.id).deleted_at is not None
    assert db.session.get(Community, community.id).thread_count == 1
    assert len(_audit("post.reject")) == 1
    # Someone else's moderator cannot decide.
    late = make_thread(community, make_user(), title="Another first")
    outsider = make_moderator(make_community())
    assert (
        _as(app, outsider)
        .post(f"/mod/held/thread/{late.id}", data={"decision": "approve"})
        .status_code
        == 403
    )


# --- abuse limits ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def limited(request, make_app):
    """make(**settings): an app with rate limits on, in memory or in Redis."""
    storage = {}
    if request.param == "redis":
        redis_or_skip().flushdb()
        storage = {"RATELIMIT_STORAGE_URI": TEST_REDIS}

    def make(**settings):
        app = make_app(RATELIMIT_ENABLED=True, **storage, **settings)
        _reset(app)
        return app

    return make


def test_reports_are_limited_with_a_retry_time(limited):
    """REPORT_LIMIT 2 a minute: the third report is 429 with Retry-After; nothing written."""
    app = limited(REPORT_LIMIT="2 per minute")
    with app.app_context():
        community = make_community()
        thread = make_thread(community, make_user())
        replies = [make_reply(thread, make_user()) for _ in range(3)]
        client = _as(app, make_user())
        codes = [
            client.post(_reply_path(community, thread, r), data={"reason": "spam"}).status_code
            for r in replies
        ]
        assert codes[:2] == [303, 303] and codes[2] == 429
        resp = client.post(
            _reply_path(community, thread, replies[2]),
            data={"reason": "spam"},
            headers={"HX-Request": "true"},
        )
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
        assert b"<html" not in resp.data
        assert db.session.scalar(select(func.count()).select_from(Report)) == 2


def test_links_from_new_accounts_get_a_lower_limit(limited):
    """An account younger than a day posts 2 replies with links, then 429 (one budget with
    comments); posts without links and an older account are not held back by it."""
    app = limited(NEW_ACCOUNT_LINK_LIMIT="2 per hour", REPLY_LIMIT="100 per minute")
    with app.app_context():
        community = make_community()
        thread = make_thread(community, make_user())
        fresh = make_user()
        old = make_user()
        old.created_at = utcnow() - timedelta(days=2)
        db.session.commit()
        path = f"/c/{community.slug}/t/{thread.id}/replies"
        client = _as(app, fresh)
        link = {"body": "See https://example.com/deal"}
        codes = [client.post(path, data=link).status_code for _ in range(2)]
        assert codes == [303, 303]
        refused = client.post(path, data=link)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        idea = make_idea(make_user())
        comment = client.post(f"/ideas/{idea.id}/comments", data={"body": "[x](http://a.test)"})
        assert comment.status_code == 429  # the same budget
        assert client.post(path, data={"body": "No link here"}).status_code == 303
        elder = _as(app, old)
        assert [elder.post(path, data=link).status_code for _ in range(3)] == [303] * 3
        assert permissions.is_new_account(fresh) and not permissions.is_new_account(old)
