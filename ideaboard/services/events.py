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
from ideaboard.models import Event, EventKind, Idea, User, utcnow

#: Where the session keeps the ids of events recorded in its transaction (read after commit).
RECORDED_KEY = "events_recorded"


def record(kind: str, idea: Idea, actor: User | None, **data: Any) -> Event:
    """Add one event about `idea` by `actor` to the current transaction (flushes)."""
    if kind not in EventKind.ALL:
        raise ValueError(f"unknown event kind {kind!r}")
    event = Event(
        kind=kind,
        idea_id=idea.id,
        actor_id=actor.id if actor is not None else None,
        data=json.dumps(data, ensure_ascii=False, sort_keys=True, default=str),
        created_at=utcnow(),
    )
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
