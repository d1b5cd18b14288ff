"""Reading the audit log: staff see every entry, a community's moderators that
community's; filters by community, action and actor; pages by id, newest first."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import AuditEntry, Community, Reply, Thread, User

from . import audit
from .errors import NotAllowed

ACTION_RE = re.compile(r"^[a-z_]{1,20}\.[a-z_]{1,19}$")


@dataclass
class Filters:
    community: Community | None = None
    action: str = ""
    actor: User | None = None
    actor_text: str = ""
    before: int | None = None

    def args(self, **override) -> dict:
        """The query string naming these filters (for links to the next page)."""
        out = {
            "community": self.community.slug if self.community else None,
            "action": self.action or None,
            "actor": self.actor_text or None,
            "before": self.before,
        }
        out.update(override)
        return {k: v for k, v in out.items() if v not in (None, "")}


@dataclass
class Row:
    entry: AuditEntry
    actor: User | None
    community: Community | None
    before: dict
    after: dict
    thread: Thread | None = None  # the thread the entry is about (or its reply's)
    member: User | None = None  # the member it is about (bans, moderators)


@dataclass
class LogPage:
    rows: list[Row]
    older: int | None  # the `before` of the next page, if any
    filters: Filters = field(default_factory=Filters)


def parse_filters(args, viewer, community: Community | None) -> Filters | None:
    """The filters in the query string; None when one is malformed (a 400)."""
    from .communities import get_by_slug
    from .moderation import find_member

    f = Filters(community=community)
    slug = (args.get("community") or "").strip()
    if slug and community is None:
        found = get_by_slug(slug)
        if found is None:
            return None
        f.community = found
    action = (args.get("action") or "").strip()
    if action:
        if not ACTION_RE.match(action):
            return None
        f.action = action
    actor = (args.get("actor") or "").strip()[:254]
    if actor:
        f.actor_text = actor
        if actor.isdigit() and len(actor) < 11:
            f.actor = db.session.get(User, int(actor))
        else:
            f.actor = find_member(actor)
    before = (args.get("before") or "").strip()
    if before:
        if not (before.isdigit() and len(before) < 11):
            return None
        f.before = int(before)
    return f


def community_choices(viewer) -> list[Community]:
    return list(db.session.scalars(select(Community).order_by(Community.name, Community.id)))


def page(viewer, scope: list[int] | None, filters: Filters) -> LogPage:
    """One page of entries the viewer may read: all for staff (scope None), else those of
    the communities in `scope`, each of which the viewer must moderate."""
    if scope is None:
        if not permissions.can_view_moderation(viewer):
            raise NotAllowed("")
    else:
        for cid in scope:
            community = db.session.get(Community, cid)
            if community is None or not permissions.can_moderate(viewer, community):
                raise NotAllowed("")
    ids = scope
    if filters.community is not None:
        ids = [filters.community.id] if scope is None or filters.community.id in scope else []
    if filters.actor_text and filters.actor is None:
        return LogPage([], None, filters)
    entries = audit.entries(
        community_ids=ids,
        action=filters.action or None,
        actor_id=filters.actor.id if filters.actor else None,
        before_id=filters.before,
        limit=audit.PER_PAGE + 1,
    )
    older = entries[audit.PER_PAGE - 1].id if len(entries) > audit.PER_PAGE else None
    entries = entries[: audit.PER_PAGE]
    # Everything the rows name, in a few statements.
    user_ids = {e.actor_id for e in entries if e.actor_id}
    user_ids |= {e.target_id for e in entries if e.target_kind == "user" and e.target_id}
    thread_ids = {e.target_id for e in entries if e.target_kind == "thread" and e.target_id}
    reply_ids = {e.target_id for e in entries if e.target_kind == "reply" and e.target_id}
    reply_thread = {}
    if reply_ids:
        reply_thread = {
            rid: tid
            for rid, tid in db.session.execute(
                select(Reply.id, Reply.thread_id).where(Reply.id.in_(reply_ids))
            )
        }
        thread_ids |= set(reply_thread.values())
    users = (
        {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
        if user_ids
        else {}
    )
    found_threads = (
        {t.id: t for t in db.session.scalars(select(Thread).where(Thread.id.in_(thread_ids)))}
        if thread_ids
        else {}
    )
    community_ids = {e.community_id for e in entries if e.community_id}
    community_ids |= {t.community_id for t in found_threads.values()}
    found_communities = (
        {
            c.id: c
            for c in db.session.scalars(select(Community).where(Community.id.in_(community_ids)))
        }
        if community_ids
        else {}
    )
    for t in found_threads.values():
        t.community = found_communities.get(t.community_id)
    rows = []
    for e in entries:
        before, after = audit.decoded(e)
        thread = None
        if e.target_kind == "thread":
            thread = found_threads.get(e.target_id)
        elif e.target_kind == "reply":
            thread = found_threads.get(reply_thread.get(e.target_id))
        rows.append(
            Row(
                entry=e,
                actor=users.get(e.actor_id),
                community=found_communities.get(e.community_id),
                before=before,
                after=after,
                thread=thread,
                member=users.get(e.target_id) if e.target_kind == "user" else None,
            )
        )
    return LogPage(rows, older, filters)
