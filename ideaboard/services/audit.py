"""The audit log: every moderation and staff action, written in the action's transaction.

`record()` adds one row (who, what, on what, in which community, before and after, why)
to the session the action itself uses, so the entry commits or rolls back with it: there
is never an action without its entry, nor an entry for an action that did not happen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.models import AuditEntry, utcnow

PER_PAGE = 50


def _json(value: Mapping[str, Any] | None) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat(timespec="seconds")
        return v

    return json.dumps({k: plain(v) for k, v in (value or {}).items()}, ensure_ascii=False)


def record(
    actor: Any,
    action: str,
    target_kind: str,
    target_id: int | None,
    *,
    community_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """Add one audit entry for an action the caller is making in this transaction."""
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None),
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        community_id=community_id,
        before=_json(before),
        after=_json(after),
        reason=reason or "",
        created_at=utcnow(),
    )
    db.session.add(entry)
    return entry


def entries(
    *,
    community_ids: list[int] | None = None,
    action: str | None = None,
    actor_id: int | None = None,
    before_id: int | None = None,
    limit: int = PER_PAGE,
) -> list[AuditEntry]:
    """Newest first, filtered; `community_ids` limits to those communities (a moderator's
    view), `before_id` pages back."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if community_ids is not None:
        stmt = stmt.where(AuditEntry.community_id.in_(community_ids))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if actor_id:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if before_id:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(db.session.scalars(stmt))


def decoded(entry: AuditEntry) -> tuple[dict, dict]:
    """The entry's before and after as dicts."""
    return json.loads(entry.before or "{}"), json.loads(entry.after or "{}")
