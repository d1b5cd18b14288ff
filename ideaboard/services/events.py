"""Recording what happened to an idea, in the transaction that made it happen.

`record` is the one way a write announces itself to the people who care (authors,
voters, followers): it adds one `Event` row and nothing else, so a status change on an
idea with 50,000 followers still writes one row in the request. Turning events into
notifications and mail (the fan-out) reads them afterwards: services/notifications.py.
"""

from __future__ import annotations

import json
from typing import Any

from ideaboard.extensions import db
from ideaboard.models import Event, EventKind, Idea, Thread, User, utcnow

#: Where the session keeps the ids of events recorded in its transaction (read after commit).
RECORDED_KEY = "events_recorded"


def record(kind: str, idea: Idea, actor: User | None, **data: Any) -> Event:
    """Add one event about `idea` by `actor` to the current transaction (flushes)."""
    if kind not in EventKind.ALL or kind in EventKind.THREAD:
        raise ValueError(f"unknown event kind {kind!r}")
    return _add(Event(kind=kind, idea_id=idea.id), actor, data)


def record_thread(kind: str, thread: Thread, actor: User | None, **data: Any) -> Event:
    """Add one event about a community `thread` by `actor` (flushes); kinds in
    EventKind.THREAD only (a new reply)."""
    if kind not in EventKind.THREAD:
        raise ValueError(f"unknown thread event kind {kind!r}")
    return _add(Event(kind=kind, thread_id=thread.id), actor, data)


def encode(data: dict[str, Any]) -> str:
    """An event's data as stored (sorted keys: equal data, equal text)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def _add(event: Event, actor: User | None, data: dict[str, Any]) -> Event:
    event.actor_id = actor.id if actor is not None else None
    event.data = encode(data)
    event.created_at = utcnow()
    db.session.add(event)
    db.session.flush()
    db.session.info.setdefault(RECORDED_KEY, []).append(event.id)
    return event


def data_of(event: Event) -> dict[str, Any]:
    """An event's data as a dict ({} when it cannot be read)."""
    try:
        value = json.loads(event.data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
