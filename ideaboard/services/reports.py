"""Reports of ideas, comments, threads and replies; the moderation queues; approving or
rejecting posts held for approval.

A member reports an item once (the unique constraint decides, in the INSERT itself). An
item with open reports from REPORT_HIDE_THRESHOLD distinct members is hidden until a
moderator reviews it: threads, replies and ideas by their soft-delete columns (no
`deleted_by_id`: nobody hid it by hand), comments by `hidden_at`. Resolving closes every
open report of the item at once: "restore" shows it again, "hide" keeps it hidden with a
reason, "dismiss" leaves it as it is. Filing, hiding at the threshold, resolving,
approving and rejecting each write exactly one audit entry in the same transaction.

Counts stay exact: hiding a visible item takes it out of what counts it (a reply out of
its thread's and community's reply counts, a thread out of its community's thread count,
a comment out of its idea's comment count), and showing it again puts it back. Every
hide and show is a compare-and-set on the row, so two requests at once move a count once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import Comment, Community, Idea, Reply, Thread, User, utcnow
from ideaboard.models.base import MAX_INT
from ideaboard.models.community import CommunityMember, Report, ReportReason, ReportTarget

from . import audit
from .errors import Conflict, NotAllowed, NotFound, ValidationError
from .text import check_text
from .threads import reply_became_visible

NOTE_MAX = 1000
REASON_MAX = 500
QUEUE_MAX = 200  # open reports read per queue page (oldest first)
HELD_MAX = 100
#: Stored as the reason of an item hidden at the threshold (templates translate it).
AUTO_HIDE_REASON = "Hidden after reports"
MODERATOR_HIDE_REASON = "Hidden by a moderator"
REJECT_REASON = "Not approved by a moderator"

RESOLUTIONS = ("restore", "hide", "dismiss")
HELD_DECISIONS = ("approve", "reject")

_MODELS: dict[str, type] = {
    ReportTarget.IDEA: Idea,
    ReportTarget.COMMENT: Comment,
    ReportTarget.THREAD: Thread,
    ReportTarget.REPLY: Reply,
}


def reason_labels() -> dict[str, str]:
    """Each report reason and how it reads, in the request's language."""
    return {
        ReportReason.SPAM: _("Spam or advertising"),
        ReportReason.ABUSE: _("Abusive or harassing"),
        ReportReason.OFF_TOPIC: _("Off topic"),
        ReportReason.PERSONAL_DATA: _("Shares someone's personal data"),
        ReportReason.OTHER: _("Something else (say what)"),
    }


# --- items -------------------------------------------------------------------------


@dataclass
class Item:
    """A reportable item and what places it: its community (threads and replies), its idea
    (comments), its thread (replies)."""

    kind: str
    row: Any
    community: Community | None = None
    idea: Idea | None = None
    thread: Thread | None = None

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def author_id(self) -> int | None:
        return self.row.author_id

    @property
    def community_id(self) -> int | None:
        return self.community.id if self.community is not None else None

    @property
    def hidden(self) -> bool:
        return is_hidden(self.kind, self.row)


def is_hidden(kind: str, row: Any) -> bool:
    if kind == ReportTarget.COMMENT:
        return row.hidden_at is not None
    return row.deleted_at is not None


def _held(kind: str, row: Any) -> bool:
    return kind in (ReportTarget.THREAD, ReportTarget.REPLY) and row.held_at is not None


def load_item(kind: str, item_id: int) -> Item:
    """The item of that kind and id, with its places; NotFound if there is none."""
    if kind not in _MODELS or item_id > MAX_INT or item_id < 1:
        raise NotFound(_("This item does not exist."))
    model = _MODELS[kind]
    row = db.session.scalar(
        select(model).options(joinedload(model.author)).where(model.id == item_id)
    )
    if row is None:
        raise NotFound(_("This item does not exist."))
    item = Item(kind, row)
    if kind == ReportTarget.COMMENT:
        item.idea = db.session.get(Idea, row.idea_id)
    elif kind == ReportTarget.THREAD:
        item.community = db.session.get(Community, row.community_id)
        set_committed_value(row, "community", item.community)
    elif kind == ReportTarget.REPLY:
        item.thread = db.session.get(Thread, row.thread_id)
        item.community = db.session.get(Community, row.community_id)
        set_committed_value(item.thread, "community", item.community)
    return item


def can_see(user: Any, item: Item) -> bool:
    """Whether `user` sees the item where it is shown (the views answer 404 otherwise)."""
    if item.kind == ReportTarget.IDEA:
        return permissions.can_view_idea(user, item.row)
    if item.kind == ReportTarget.COMMENT:
        return permissions.can_view_idea(user, item.idea) and permissions.can_view_comment(
            user, item.row
        )
    if item.kind == ReportTarget.REPLY and not permissions.can_view_post(
        user, item.thread, item.community
    ):
        return False
    return permissions.can_view_post(user, item.row, item.community)


def is_reportable(item: Item) -> bool:
    """Shown to everyone (not hidden, not held, and for a comment its idea not deleted)."""
    if item.kind == ReportTarget.IDEA:
        return not item.row.is_deleted
    if item.kind == ReportTarget.COMMENT:
        return item.row.hidden_at is None and not item.idea.is_deleted
    if item.kind == ReportTarget.REPLY and not permissions.is_visible_post(item.thread):
        return False
    return permissions.is_visible_post(item.row)


def check_can_report(actor: User, item: Item) -> None:
    """Raise NotAllowed saying why the actor may not report the item, if not."""
    if not permissions.can_report(actor, item.author_id):
        if permissions.is_member(actor) and item.author_id == actor.id:
            raise NotAllowed(_("You cannot report what you wrote yourself."))
        raise NotAllowed(_("Sign in to report."))
    if not is_reportable(item):
        raise NotAllowed(_("This is hidden already: moderators are looking at it."))


# --- hiding and showing, with exact counts -------------------------------------------


def _thread_counted(thread_id: int) -> bool:
    thread = db.session.get(Thread, thread_id)
    return thread is not None and permissions.is_visible_post(thread)


def _move_counts(item: Item, delta: int) -> None:
    """Move what counts a visible item by `delta` (its row must be otherwise visible), by
    the rule services/moderation.py states: a community's reply count holds the visible
    replies of its visible threads, so a thread takes its replies with it."""
    row = item.row
    if item.kind == ReportTarget.REPLY:
        db.session.execute(
            update(Thread)
            .where(Thread.id == row.thread_id)
            .values(reply_count=Thread.reply_count + delta)
            .execution_options(synchronize_session=False)
        )
        if _thread_counted(row.thread_id):
            db.session.execute(
                update(Community)
                .where(Community.id == row.community_id)
                .values(reply_count=Community.reply_count + delta)
                .execution_options(synchronize_session=False)
            )
    elif item.kind == ReportTarget.THREAD:
        db.session.execute(
            update(Community)
            .where(Community.id == row.community_id)
            .values(
                thread_count=Community.thread_count + delta,
                reply_count=Community.reply_count + delta * row.reply_count,
            )
            .execution_options(synchronize_session=False)
        )
    elif item.kind == ReportTarget.COMMENT:
        db.session.execute(
            update(Idea)
            .where(Idea.id == row.idea_id)
            .values(comment_count=Idea.comment_count + delta)
            .execution_options(synchronize_session=False)
        )


def _set_hidden(item: Item, hide: bool, by_id: int | None = None, reason: str = "") -> bool:
    """Hide the item if it is shown (`hide`), or show it if it is hidden; True if this
    statement changed it. Its community's or idea's counts follow (a held item counts in
    none either way)."""
    model, row = _MODELS[item.kind], item.row
    if item.kind == ReportTarget.COMMENT:
        column = model.hidden_at
        values = {"hidden_at": None, "hidden_reason": None}
        if hide:
            values = {"hidden_at": utcnow(), "hidden_reason": reason}
    else:
        column = model.deleted_at
        values = {"deleted_at": None, "deleted_by_id": None, "deleted_reason": None}
        if hide:
            values = {"deleted_at": utcnow(), "deleted_by_id": by_id, "deleted_reason": reason}
    done = db.session.execute(
        update(model)
        .where(model.id == row.id, column.is_(None) if hide else column.is_not(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done:
        for name, value in values.items():
            setattr(row, name, value)
        if not _held(item.kind, row):
            _move_counts(item, -1 if hide else 1)
        db.session.flush()
    return bool(done)


def _keep_hidden(item: Item, by_id: int, reason: str) -> None:
    """An item hidden already stays hidden, now by the moderator, with their reason."""
    if item.kind == ReportTarget.COMMENT:
        item.row.hidden_reason = reason
    else:
        item.row.deleted_by_id, item.row.deleted_reason = by_id, reason


# --- filing ------------------------------------------------------------------------


@dataclass
class Filed:
    """What filing a report did: `filed` false when the member had reported it already;
    `hidden` when this report hid the item (the threshold was reached)."""

    filed: bool
    hidden: bool = False


def threshold() -> int:
    return max(1, int(current_app.config.get("REPORT_HIDE_THRESHOLD", 3)))


def _insert_report(values: dict) -> int | None:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = (
        insert(Report)
        .values(values)
        .on_conflict_do_nothing(index_elements=["target_kind", "target_id", "reporter_id"])
        .returning(Report.id)
    )
    return db.session.execute(stmt).scalar()


def open_reporters(kind: str, item_id: int) -> int:
    """Distinct members with an open report of the item (one report each: the unique
    constraint)."""
    return db.session.scalar(
        select(func.count()).where(
            Report.target_kind == kind,
            Report.target_id == item_id,
            Report.resolved_at.is_(None),
        )
    )


def file_report(actor: User, item: Item, reason: str, note: str) -> Filed:
    """Report an item once; the report that brings the open reports to the threshold
    hides it until a moderator reviews it."""
    check_can_report(actor, item)
    note = (note or "").strip()
    errors: dict[str, str] = {}
    if reason not in ReportReason.ALL:
        errors["reason"] = _("Choose a reason.")
    check_text(errors, "note", note, minimum=0, maximum=NOTE_MAX, label=_("Note"))
    if reason == ReportReason.OTHER and not note and "note" not in errors:
        errors["note"] = _("Say what is wrong.")
    if errors:
        raise ValidationError(errors)
    report_id = _insert_report(
        {
            "target_kind": item.kind,
            "target_id": item.id,
            "community_id": item.community_id,
            "reporter_id": actor.id,
            "reason": reason,
            "note": note,
            "created_at": utcnow(),
        }
    )
    if report_id is None:
        return Filed(filed=False)
    audit.record(
        actor,
        "report.file",
        item.kind,
        item.id,
        community_id=item.community_id,
        after={"report": report_id, "reason": reason},
        reason=note,
    )
    reporters = open_reporters(item.kind, item.id)
    hidden = False
    if reporters >= threshold() and _set_hidden(item, True, None, AUTO_HIDE_REASON):
        hidden = True
        audit.record(
            None,
            "report.auto_hide",
            item.kind,
            item.id,
            community_id=item.community_id,
            before={"hidden": False},
            after={"hidden": True, "reporters": reporters},
            reason=AUTO_HIDE_REASON,
        )
    return Filed(filed=True, hidden=hidden)


# --- resolving ---------------------------------------------------------------------


def check_can_resolve(actor: User, item: Item) -> None:
    if not permissions.can_resolve_reports(actor, item.community):
        raise NotAllowed(_("Only this community's moderators and staff review its reports."))


def resolve_reports(actor: User, item: Item, resolution: str, reason: str = "") -> int:
    """Close every open report of the item with the moderator's decision: restore (show
    it again), hide (keep it hidden, with the reason) or dismiss (leave it as it is).
    Returns how many reports it closed."""
    check_can_resolve(actor, item)
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if resolution not in RESOLUTIONS:
        errors["resolution"] = _("Choose restore, hide or dismiss.")
    check_text(errors, "reason", reason, minimum=0, maximum=REASON_MAX, label=_("Reason"))
    if errors:
        raise ValidationError(errors)
    closed = db.session.execute(
        update(Report)
        .where(
            Report.target_kind == item.kind,
            Report.target_id == item.id,
            Report.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow(), resolved_by_id=actor.id, resolution=resolution)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not closed:
        raise Conflict(_("These reports were resolved already."))
    before = {"hidden": item.hidden}
    if resolution == "restore":
        _set_hidden(item, False)
    elif resolution == "hide":
        why = reason or MODERATOR_HIDE_REASON
        if not _set_hidden(item, True, actor.id, why):
            _keep_hidden(item, actor.id, why)
    audit.record(
        actor,
        "report.resolve",
        item.kind,
        item.id,
        community_id=item.community_id,
        before=before,
        after={"hidden": item.hidden, "resolution": resolution, "reports": closed},
        reason=reason,
    )
    return closed


# --- posts held for approval ---------------------------------------------------------


def _approve_member(community: Community, user_id: int) -> None:
    """Mark the member approved in the community (joining them if they were not in it):
    their later posts skip the queue."""
    now = utcnow()
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    added = db.session.execute(
        insert(CommunityMember)
        .values(community_id=community.id, user_id=user_id, created_at=now, approved_at=now)
        .on_conflict_do_nothing(index_elements=["community_id", "user_id"])
    ).rowcount
    if added:
        db.session.execute(
            update(Community)
            .where(Community.id == community.id)
            .values(member_count=Community.member_count + 1)
            .execution_options(synchronize_session=False)
        )
    else:
        db.session.execute(
            update(CommunityMember)
            .where(
                CommunityMember.community_id == community.id,
                CommunityMember.user_id == user_id,
                CommunityMember.approved_at.is_(None),
            )
            .values(approved_at=now)
            .execution_options(synchronize_session=False)
        )


def _count_new_post(item: Item, now) -> None:
    """Move the counts as a new visible post does (services/threads.py)."""
    row = item.row
    if item.kind == ReportTarget.REPLY:
        db.session.execute(
            update(Thread)
            .where(Thread.id == row.thread_id)
            .values(reply_count=Thread.reply_count + 1, last_activity_at=now)
            .execution_options(synchronize_session=False)
        )
        counted = _thread_counted(row.thread_id)
        db.session.execute(
            update(Community)
            .where(Community.id == row.community_id)
            .values(reply_count=Community.reply_count + int(counted), last_activity_at=now)
            .execution_options(synchronize_session=False)
        )
    else:
        db.session.execute(
            update(Thread)
            .where(Thread.id == row.id)
            .values(last_activity_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            update(Community)
            .where(Community.id == row.community_id)
            .values(
                thread_count=Community.thread_count + 1,
                reply_count=Community.reply_count + row.reply_count,
                last_activity_at=now,
            )
            .execution_options(synchronize_session=False)
        )


def decide_held_post(actor: User, item: Item, decision: str, reason: str = "") -> None:
    """Approve a held thread or reply (shown, counted as a new post, its author approved
    in the community) or reject it (hidden, with the reason)."""
    if item.kind not in (ReportTarget.THREAD, ReportTarget.REPLY):
        raise NotFound(_("Only threads and replies wait for approval."))
    check_can_resolve(actor, item)
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if decision not in HELD_DECISIONS:
        errors["decision"] = _("Choose approve or reject.")
    check_text(errors, "reason", reason, minimum=0, maximum=REASON_MAX, label=_("Reason"))
    if errors:
        raise ValidationError(errors)
    model, row, now = _MODELS[item.kind], item.row, utcnow()
    if decision == "approve":
        done = db.session.execute(
            update(model)
            .where(model.id == row.id, model.held_at.is_not(None))
            .values(held_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            raise Conflict(_("This post was decided already."))
        row.held_at = None
        if row.deleted_at is None:
            _count_new_post(item, now)
        if row.author_id is not None:
            _approve_member(item.community, row.author_id)
        if item.kind == ReportTarget.REPLY:
            db.session.flush()
            # Its thread's followers hear of it now, as of any new reply (once, ever).
            reply_became_visible(actor, row)
    else:
        why = reason or REJECT_REASON
        done = db.session.execute(
            update(model)
            .where(model.id == row.id, model.held_at.is_not(None), model.deleted_at.is_(None))
            .values(deleted_at=now, deleted_by_id=actor.id, deleted_reason=why)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            raise Conflict(_("This post was decided already."))
        row.deleted_at, row.deleted_by_id, row.deleted_reason = now, actor.id, why
    db.session.flush()
    audit.record(
        actor,
        f"post.{decision}",
        item.kind,
        item.id,
        community_id=item.community_id,
        before={"held": True},
        after={"held": decision != "approve", "hidden": decision == "reject"},
        reason=reason,
    )


# --- the queues --------------------------------------------------------------------


@dataclass
class QueueEntry:
    """One reported item with its open reports."""

    item: Item
    count: int = 0
    reasons: Counter = field(default_factory=Counter)
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # (who, reason, note)
    first_at: Any = None


@dataclass
class Queue:
    reported: list[QueueEntry]
    held: list[Item]


def _load_many(kind: str, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    model = _MODELS[kind]
    rows = db.session.scalars(
        select(model).options(joinedload(model.author)).where(model.id.in_(ids))
    )
    return {r.id: r for r in rows}


def _places(items: list[Item]) -> None:
    """Fill in each item's community, idea and thread (a few queries for the whole page)."""
    idea_ids = {i.row.idea_id for i in items if i.kind == ReportTarget.COMMENT}
    thread_ids = {i.row.thread_id for i in items if i.kind == ReportTarget.REPLY}
    community_ids = {
        i.row.community_id for i in items if i.kind in (ReportTarget.THREAD, ReportTarget.REPLY)
    }
    ideas = _load_many(ReportTarget.IDEA, idea_ids)
    threads_ = _load_many(ReportTarget.THREAD, thread_ids)
    found = {
        c.id: c
        for c in (
            db.session.scalars(select(Community).where(Community.id.in_(community_ids)))
            if community_ids
            else []
        )
    }
    for i in items:
        if i.kind == ReportTarget.COMMENT:
            i.idea = ideas.get(i.row.idea_id)
        elif i.kind in (ReportTarget.THREAD, ReportTarget.REPLY):
            i.community = found.get(i.row.community_id)
            if i.kind == ReportTarget.REPLY:
                i.thread = threads_.get(i.row.thread_id)
        if i.kind == ReportTarget.THREAD:
            set_committed_value(i.row, "community", i.community)
        if i.thread is not None:
            set_committed_value(i.thread, "community", i.community)


def queue(community: Community | None = None) -> Queue:
    """Open reports grouped per item (oldest first) and posts held for approval: of one
    community, or (None) everything, ideas and comments too (the staff queue)."""
    stmt = select(Report).where(Report.resolved_at.is_(None)).order_by(Report.id).limit(QUEUE_MAX)
    if community is not None:
        stmt = stmt.where(Report.community_id == community.id)
    reports = list(db.session.scalars(stmt))
    wanted: dict[str, set[int]] = {kind: set() for kind in _MODELS}
    for r in reports:
        wanted[r.target_kind].add(r.target_id)
    rows = {kind: _load_many(kind, ids) for kind, ids in wanted.items()}
    names = {
        u.id: u.display_name
        for u in (
            db.session.scalars(select(User).where(User.id.in_({r.reporter_id for r in reports})))
            if reports
            else []
        )
    }
    entries: dict[tuple[str, int], QueueEntry] = {}
    for r in reports:
        row = rows[r.target_kind].get(r.target_id)
        if row is None:  # the item is gone (its idea deleted for good): nothing to review
            continue
        key = (r.target_kind, r.target_id)
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = QueueEntry(Item(r.target_kind, row), first_at=r.created_at)
        entry.count += 1
        entry.reasons[r.reason] += 1
        if r.note:
            entry.notes.append((names.get(r.reporter_id, ""), r.reason, r.note))
    held: list[Item] = []
    for kind, model in ((ReportTarget.THREAD, Thread), (ReportTarget.REPLY, Reply)):
        held_stmt = (
            select(model)
            .options(joinedload(model.author))
            .where(model.held_at.is_not(None), model.deleted_at.is_(None))
            .order_by(model.id)
            .limit(HELD_MAX)
        )
        if community is not None:
            held_stmt = held_stmt.where(model.community_id == community.id)
        held.extend(Item(kind, row) for row in db.session.scalars(held_stmt))
    _places([e.item for e in entries.values()] + held)
    return Queue(list(entries.values()), held)
