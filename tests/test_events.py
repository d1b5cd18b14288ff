"""Events: each write that others should hear about records exactly one event, by its actor,
in the write's own transaction; writes nobody is told about record none.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from __future__ import annotations

from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.models import Board, Event, EventKind
from ideaboard.services import comments as comment_service
from ideaboard.services import events, roadmap
from ideaboard.services import ideas as idea_service

from .factories import make_idea, make_user


def _events(idea) -> list[tuple[str, int | None, dict]]:
    db.session.commit()
    rows = db.session.scalars(select(Event).where(Event.idea_id == idea.id).order_by(Event.id))
    return [(e.kind, e.actor_id, events.data_of(e)) for e in rows]


def test_status_change_records_one_event_with_its_note(app):
    staff = make_user(role="staff")
    idea = make_idea()
    roadmap.change_status(staff, idea, "planned", "Next sprint")
    [(kind, actor, data)] = _events(idea)
    assert (kind, actor) == (EventKind.STATUS_CHANGED, staff.id)
    assert data["from"] == "heard" and data["to"] == "planned"
    assert data["note"] == "Next sprint"


def test_comments_and_official_responses_are_events(app):
    staff = make_user(role="staff")
    member = make_user()
    idea = make_idea()
    comment_service.add_comment(member, idea, "Me too")
    official = comment_service.add_comment(staff, idea, "We are on it", official=True)
    plain = comment_service.add_comment(staff, idea, "Thanks")
    comment_service.set_official(staff, plain, True)
    comment_service.set_official(staff, plain, True)  # already official: nothing new
    kinds = [(k, a, d["comment_id"]) for k, a, d in _events(idea)]
    assert kinds == [
        (EventKind.COMMENT, member.id, kinds[0][2]),
        (EventKind.OFFICIAL_RESPONSE, staff.id, official.id),
        (EventKind.COMMENT, staff.id, plain.id),
        (EventKind.OFFICIAL_RESPONSE, staff.id, plain.id),
    ]


def test_staff_edit_and_hide_are_events_but_the_authors_own_are_not(app):
    staff = make_user(role="staff")
    author = make_user()
    board = db.session.get(Board, make_idea().board_id)
    idea = make_idea(author=author)
    idea_service.update_idea(
        author,
        idea,
        title="Own edit",
        body="b",
        kind=idea.kind,
        board=board,
        version=idea.version,
    )
    assert _events(idea) == []
    idea_service.update_idea(
        staff,
        idea,
        title="Staff edit",
        body="b",
        kind=idea.kind,
        board=board,
        version=idea.version,
    )
    idea_service.delete_idea(staff, idea, "Off topic")
    assert [(k, a) for k, a, _ in _events(idea)] == [
        (EventKind.IDEA_EDITED, staff.id),
        (EventKind.IDEA_HIDDEN, staff.id),
    ]
    assert _events(idea)[1][2] == {"reason": "Off topic"}


def test_a_failed_write_leaves_no_event(app):
    staff = make_user(role="staff")
    idea = make_idea()
    try:
        roadmap.change_status(staff, idea, "heard")  # already heard: refused
    except Exception:
        db.session.rollback()
    assert _events(idea) == []
