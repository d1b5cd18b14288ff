"""Moderator tools: pin, lock, hide a thread or reply, move a thread, edit its title, ban a
member from a community and lift the ban.

Staff and admins act everywhere; a community's moderators (and owner) only where
permissions.can_moderate() says so. Every action that changes something writes exactly
one audit entry (services/audit.py) in the same transaction; an action that changes
nothing (pinning a pinned thread) writes none and returns False.

Counts stay exact (what they count is what everyone sees):
- `thread.reply_count`: the thread's visible replies;
- `community.thread_count`: its visible threads;
- `community.reply_count`: the visible replies of its visible threads. So hiding a thread
  takes its replies out of its community's count too, and showing it brings them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ideaboard import clock, permissions
from ideaboard.extensions import db
from ideaboard.models import Community, CommunityBan, Reply, Thread, User, utcnow
from ideaboard.models.community import Report
from ideaboard.models.user import search_name_of

from . import audit
from .errors import NotAllowed, ValidationError
from .text import check_text, clean_line
from .threads import _check_title

REASON_MAX = 500
#: Ban lengths a moderator chooses from, in days (None: until lifted).
BAN_DAYS = (1, 7, 30, 365)
BANS_PER_PAGE = 50


def _require(actor: User, community: Community) -> None:
    if not permissions.can_moderate(actor, community):
        raise NotAllowed(_("Only this community's moderators can do that."))


def _reason(reason: str, required: bool) -> str:
    reason = clean_line(reason or "")
    errors: dict[str, str] = {}
    check_text(
        errors,
        "reason",
        reason,
        minimum=1 if required else 0,
        maximum=REASON_MAX,
        label=_("Reason"),
    )
    if errors:
        raise ValidationError(errors)
    return reason


def _move_community(community_id: int, threads: int, replies: int) -> tuple[int, int]:
    row = db.session.execute(
        update(Community)
        .where(Community.id == community_id)
        .values(
            thread_count=Community.thread_count + threads,
            reply_count=Community.reply_count + replies,
        )
        .returning(Community.thread_count, Community.reply_count)
        .execution_options(synchronize_session=False)
    ).one()
    community = db.session.identity_map.get(db.session.identity_key(Community, community_id))
    if community is not None:
        set_committed_value(community, "thread_count", row[0])
        set_committed_value(community, "reply_count", row[1])
    return row[0], row[1]


def _move_thread_replies(thread: Thread, delta: int) -> None:
    count = db.session.execute(
        update(Thread)
        .where(Thread.id == thread.id)
        .values(reply_count=Thread.reply_count + delta)
        .returning(Thread.reply_count)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(thread, "reply_count", count)


# --- pin, lock ---------------------------------------------------------------------


def set_pinned(actor: User, thread: Thread, community: Community, pinned: bool) -> bool:
    """Pin a thread on top of its community's list, or unpin it."""
    _require(actor, community)
    if thread.is_pinned == pinned:
        return False
    thread.pinned = 1 if pinned else 0
    audit.record(
        actor,
        "thread.pin" if pinned else "thread.unpin",
        "thread",
        thread.id,
        community_id=community.id,
        before={"pinned": not pinned},
        after={"pinned": pinned},
    )
    return True


def set_locked(actor: User, thread: Thread, community: Community, locked: bool) -> bool:
    """Lock a thread (only moderators reply to it) or open it again."""
    _require(actor, community)
    if thread.is_locked == locked:
        return False
    thread.locked_at = utcnow() if locked else None
    audit.record(
        actor,
        "thread.lock" if locked else "thread.unlock",
        "thread",
        thread.id,
        community_id=community.id,
        before={"locked": not locked},
        after={"locked": locked},
    )
    return True


# --- hide, show --------------------------------------------------------------------


def hide_thread(actor: User, thread: Thread, community: Community, reason: str) -> bool:
    """Hide a thread (soft): its author and the moderators still see it, marked, with the
    reason; it leaves the community's list and counts, with its replies."""
    _require(actor, community)
    reason = _reason(reason, required=True)
    if thread.deleted_at is not None:
        return False
    counted = permissions.is_visible_post(thread)
    thread.soft_delete(actor.id, reason)
    if counted:
        _move_community(community.id, -1, -thread.reply_count)
    audit.record(
        actor,
        "thread.hide",
        "thread",
        thread.id,
        community_id=community.id,
        before={"hidden": False},
        after={"hidden": True},
        reason=reason,
    )
    return True


def unhide_thread(actor: User, thread: Thread, community: Community, reason: str = "") -> bool:
    """Show a hidden thread again, with its replies back in the counts."""
    _require(actor, community)
    reason = _reason(reason, required=False)
    if thread.deleted_at is None:
        return False
    before_reason = thread.deleted_reason or ""
    thread.restore()
    if permissions.is_visible_post(thread):
        _move_community(community.id, 1, thread.reply_count)
    audit.record(
        actor,
        "thread.unhide",
        "thread",
        thread.id,
        community_id=community.id,
        before={"hidden": True, "reason": before_reason},
        after={"hidden": False},
        reason=reason,
    )
    return True


def hide_reply(
    actor: User, thread: Thread, reply: Reply, community: Community, reason: str
) -> bool:
    """Hide a reply (soft): its author and the moderators see it marked with the reason."""
    _require(actor, community)
    reason = _reason(reason, required=True)
    if reply.deleted_at is not None:
        return False
    counted = permissions.is_visible_post(reply)
    reply.soft_delete(actor.id, reason)
    if counted:
        _move_thread_replies(thread, -1)
        if permissions.is_visible_post(thread):
            _move_community(community.id, 0, -1)
    audit.record(
        actor,
        "reply.hide",
        "reply",
        reply.id,
        community_id=community.id,
        before={"hidden": False},
        after={"hidden": True},
        reason=reason,
    )
    return True


def unhide_reply(
    actor: User, thread: Thread, reply: Reply, community: Community, reason: str = ""
) -> bool:
    """Show a hidden reply again."""
    _require(actor, community)
    reason = _reason(reason, required=False)
    if reply.deleted_at is None:
        return False
    before_reason = reply.deleted_reason or ""
    reply.restore()
    if permissions.is_visible_post(reply):
        _move_thread_replies(thread, 1)
        if permissions.is_visible_post(thread):
            _move_community(community.id, 0, 1)
    audit.record(
        actor,
        "reply.unhide",
        "reply",
        reply.id,
        community_id=community.id,
        before={"hidden": True, "reason": before_reason},
        after={"hidden": False},
        reason=reason,
    )
    return True


# --- move, retitle -----------------------------------------------------------------


def move_thread(
    actor: User, thread: Thread, community: Community, to: Community | None, reason: str = ""
) -> Community:
    """Move a thread (and its replies, and open reports on them) to another community
    the actor moderates; both communities' counts stay exact. Its old address redirects."""
    _require(actor, community)
    reason = _reason(reason, required=False)
    if to is None:
        raise ValidationError({"to": _("Choose a community to move the thread to.")})
    if to.id == community.id:
        raise ValidationError({"to": _("The thread is already in this community.")})
    if not permissions.can_moderate(actor, to):
        raise NotAllowed(_("You can only move threads to communities you moderate."))
    if to.is_archived:
        raise ValidationError({"to": _("This community is archived: it takes no new posts.")})
    thread.community_id = to.id
    db.session.execute(
        update(Reply)
        .where(Reply.thread_id == thread.id)
        .values(community_id=to.id)
        .execution_options(synchronize_session=False)
    )
    reply_ids = select(Reply.id).where(Reply.thread_id == thread.id).scalar_subquery()
    db.session.execute(
        update(Report)
        .where(
            or_(
                (Report.target_kind == "thread") & (Report.target_id == thread.id),
                (Report.target_kind == "reply") & Report.target_id.in_(reply_ids),
            )
        )
        .values(community_id=to.id)
        .execution_options(synchronize_session=False)
    )
    if permissions.is_visible_post(thread):
        _move_community(community.id, -1, -thread.reply_count)
        _move_community(to.id, 1, thread.reply_count)
    thread.community = to
    audit.record(
        actor,
        "thread.move",
        "thread",
        thread.id,
        community_id=community.id,
        before={"community": community.slug},
        after={"community": to.slug},
        reason=reason,
    )
    return to


def retitle_thread(actor: User, thread: Thread, community: Community, title: str) -> bool:
    """A moderator changes a thread's title."""
    _require(actor, community)
    title = clean_line(title or "")
    errors: dict[str, str] = {}
    _check_title(errors, title)
    if errors:
        raise ValidationError(errors)
    if title == thread.title:
        return False
    before = thread.title
    thread.title = title
    audit.record(
        actor,
        "thread.title",
        "thread",
        thread.id,
        community_id=community.id,
        before={"title": before},
        after={"title": title},
    )
    return True


def move_targets(actor: User, community: Community) -> list[Community]:
    """Where the actor may move this community's threads: other open communities they
    moderate."""
    from .communities import moderated_by

    return [c for c in moderated_by(actor) if c.id != community.id and not c.is_archived]


# --- bans ----------------------------------------------------------------------------


def find_member(query: str) -> User | None:
    """A member by their exact email or display name (any case); None if not exactly one."""
    from .accounts import email_key

    query = clean_line(query or "")[:254]
    if not query:
        return None
    if "@" in query:
        return db.session.scalar(select(User).where(User.email_key == email_key(query)))
    rows = list(
        db.session.scalars(select(User).where(User.search_name == search_name_of(query)).limit(2))
    )
    return rows[0] if len(rows) == 1 else None


def ban_expiry(days: str | int | None) -> datetime | None:
    """When a ban of `days` days (from BAN_DAYS; empty: until lifted) ends."""
    if days in (None, "", "0"):
        return None
    try:
        n = int(days)
    except (TypeError, ValueError):
        n = -1
    if n not in BAN_DAYS:
        raise ValidationError({"days": _("Choose how long the ban lasts.")})
    return clock.now() + timedelta(days=n)


def _ban_in_force(community: Community, user: User) -> CommunityBan | None:
    now = clock.now()
    return db.session.scalar(
        select(CommunityBan)
        .where(
            CommunityBan.community_id == community.id,
            CommunityBan.user_id == user.id,
            CommunityBan.lifted_at.is_(None),
            or_(CommunityBan.expires_at.is_(None), CommunityBan.expires_at > now),
        )
        .order_by(CommunityBan.id.desc())
        .limit(1)
    )


def ban_member(
    actor: User,
    community: Community,
    user: User | None,
    reason: str,
    expires_at: datetime | None = None,
) -> CommunityBan:
    """Ban a member from posting in the community (they still read it), with a reason and
    an optional end. Banning someone already banned changes that ban's terms."""
    _require(actor, community)
    if user is None:
        raise ValidationError({"member": _("No member has this exact name or email.")})
    reason = _reason(reason, required=True)
    if permissions.can_moderate(user, community):
        raise ValidationError({"member": _("This member moderates this community.")})
    ban = _ban_in_force(community, user)
    before: dict = {"banned": False}
    if ban is not None:
        before = {"banned": True, "expires_at": ban.expires_at, "reason": ban.reason}
        ban.reason, ban.expires_at, ban.banned_by_id = reason, expires_at, actor.id
    else:
        ban = CommunityBan(
            community_id=community.id,
            user_id=user.id,
            reason=reason,
            banned_by_id=actor.id,
            expires_at=expires_at,
            created_at=utcnow(),
        )
        db.session.add(ban)
    db.session.flush()
    audit.record(
        actor,
        "member.ban",
        "user",
        user.id,
        community_id=community.id,
        before=before,
        after={"banned": True, "expires_at": expires_at, "ban_id": ban.id},
        reason=reason,
    )
    permissions.forget_standing(user)
    return ban


def lift_ban(actor: User, community: Community, ban: CommunityBan, reason: str = "") -> bool:
    """Lift a ban: the member may post in the community again."""
    _require(actor, community)
    if ban.community_id != community.id:
        raise NotAllowed(_("Only this community's moderators can do that."))
    reason = _reason(reason, required=False)
    if ban.lifted_at is not None:
        return False
    ban.lifted_at, ban.lifted_by_id = utcnow(), actor.id
    audit.record(
        actor,
        "member.unban",
        "user",
        ban.user_id,
        community_id=community.id,
        before={"banned": True, "expires_at": ban.expires_at, "ban_id": ban.id},
        after={"banned": False},
        reason=reason,
    )
    return True


@dataclass
class BanRow:
    ban: CommunityBan
    member: User | None
    by: User | None
    in_force: bool


def list_bans(actor: User, community: Community) -> list[BanRow]:
    """The community's bans, newest first: those in force, then ended ones."""
    _require(actor, community)
    bans = list(
        db.session.scalars(
            select(CommunityBan)
            .where(CommunityBan.community_id == community.id)
            .order_by(CommunityBan.id.desc())
            .limit(BANS_PER_PAGE)
        )
    )
    ids = {b.user_id for b in bans} | {b.banned_by_id for b in bans if b.banned_by_id}
    people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}
    now = clock.now()
    rows = [
        BanRow(
            b,
            people.get(b.user_id),
            people.get(b.banned_by_id),
            b.lifted_at is None and (b.expires_at is None or b.expires_at > now),
        )
        for b in bans
    ]
    return sorted(rows, key=lambda r: (not r.in_force, -r.ban.id))


def get_ban(community: Community, ban_id: int) -> CommunityBan | None:
    from ideaboard.models.base import MAX_INT

    if ban_id > MAX_INT:
        return None
    return db.session.scalar(
        select(CommunityBan).where(
            CommunityBan.id == ban_id, CommunityBan.community_id == community.id
        )
    )


# --- checks --------------------------------------------------------------------------


def count_mismatches() -> list[str]:
    """Threads and communities whose counts differ from what they count (should be none)."""
    problems = []
    visible_replies = (
        select(Reply.thread_id, func.count().label("n"))
        .where(Reply.deleted_at.is_(None), Reply.held_at.is_(None))
        .group_by(Reply.thread_id)
        .subquery()
    )
    for tid, have, want in db.session.execute(
        select(Thread.id, Thread.reply_count, func.coalesce(visible_replies.c.n, 0))
        .outerjoin(visible_replies, visible_replies.c.thread_id == Thread.id)
        .where(Thread.reply_count != func.coalesce(visible_replies.c.n, 0))
    ):
        problems.append(f"thread {tid}: reply_count {have}, visible replies {want}")
    live = (Thread.deleted_at.is_(None)) & (Thread.held_at.is_(None))
    for community in db.session.scalars(select(Community)):
        threads, replies = db.session.execute(
            select(func.count(), func.coalesce(func.sum(Thread.reply_count), 0)).where(
                Thread.community_id == community.id, live
            )
        ).one()
        if (community.thread_count, community.reply_count) != (threads, replies):
            problems.append(
                f"community {community.slug}: {community.thread_count}/{community.reply_count}"
                f" counted, {threads}/{replies} visible"
            )
    return problems
