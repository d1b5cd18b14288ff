"""Live updates: what an open idea page or roadmap shows, as a stamp to compare.

An open page polls its live URL (`/ideas/<id>/live`, `/roadmap/live`) with the stamp of
what it shows as `If-None-Match`; while the stamp is the same the answer is an empty 304.
A stamp is derived from the page's own state, never from the shared content version
(which moves on every write anywhere and would turn every poll into a 200):

- an idea's stamp is read from its own row, one primary-key read: its status, vote and
  comment counts, whether it is deleted and when it last moved (a status change there and
  back still changes it), plus what the polling page says it shows;
- the roadmap's stamp is a digest of its columns (ids, titles, votes, totals, shipped
  dates), computed once per content version and board per process, so a write elsewhere
  costs one recomputation per process, and a poll between writes a dictionary lookup.

Both come from the database (and the content version: Redis when REDIS_URL is set, the
file beside the database otherwise), so every worker on every host answers alike.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ideaboard.extensions import db
from ideaboard.models import Board, Comment, Idea, Status, StatusChange

from .roadmap import history

#: At most this many new comments in one live answer (the rest come with the next poll).
MAX_NEW_COMMENTS = 50
#: Roadmap stamps kept per process (content version × board).
_ROADMAP_MEMO_SIZE = 64
_STATUSES = frozenset(s.value for s in Status)


class BadState(ValueError):
    """The polling page's query does not describe a page we made: 400."""


@dataclass(frozen=True)
class Shown:
    """What the polling idea page shows, from its live URL's query.

    `after` is the last comment shown (None: the page is not the discussion's last page,
    so nothing is appended there), `event` the last status change shown, `votes`,
    `comments` and `status` the figures on the page."""

    after: int | None
    event: int
    votes: int
    comments: int
    status: str

    @classmethod
    def parse(cls, args) -> Shown:
        """From the live URL's query; a figure left out is unknown (-1: sent again), a
        malformed one is refused (BadState)."""

        def number(name: str) -> int | None:
            raw = args.get(name)
            if raw is None or raw == "":
                return None
            if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
                raise BadState(name)
            return int(raw)

        status = args.get("st", "")
        if status and status not in _STATUSES:
            raise BadState("st")
        votes, comments, event = number("v"), number("n"), number("s")
        return cls(
            after=number("c"),
            event=-1 if event is None else event,
            votes=-1 if votes is None else votes,
            comments=-1 if comments is None else comments,
            status=status,
        )

    def query(self) -> dict:
        """The live URL's query for a page showing this."""
        q = {"s": self.event, "v": self.votes, "n": self.comments, "st": self.status}
        if self.after is not None:
            q["c"] = self.after
        return q


@dataclass(frozen=True)
class IdeaStamp:
    """An idea's live state, from its row."""

    status: str
    votes: int
    comments: int
    deleted: bool
    moved: str

    @classmethod
    def of(cls, idea: Idea) -> IdeaStamp:
        return cls(
            idea.status,
            idea.vote_count,
            idea.comment_count,
            idea.is_deleted,
            str(idea.last_activity_at),
        )


_STAMP = select(
    Idea.status, Idea.vote_count, Idea.comment_count, Idea.deleted_at, Idea.last_activity_at
)


def _stamp_of(row) -> IdeaStamp | None:
    if row is None:
        return None
    return IdeaStamp(row[0], row[1], row[2], row[3] is not None, str(row[4]))


def read_stamp(idea_id: int) -> IdeaStamp | None:
    """The idea's stamp: one primary-key read (None if there is no such row)."""
    return _stamp_of(db.session.execute(_STAMP.where(Idea.id == idea_id)).first())


def read_stamp_on(conn, idea_id: int) -> IdeaStamp | None:
    """read_stamp() on a connection of the engine (perf/livepoll.py: no Flask request)."""
    return _stamp_of(conn.execute(_STAMP.where(Idea.id == idea_id)).first())


def _etag(kind: str, *parts) -> str:
    digest = hashlib.sha1(repr(parts).encode()).hexdigest()[:20]
    return f'W/"{kind}-{digest}"'


def idea_etag(stamp: IdeaStamp, shown: Shown, locale: str) -> str:
    """The ETag of an idea's live answer to a page showing `shown`: it changes when the
    idea changes, or when the page's own query does."""
    return _etag("idea", stamp, shown, locale)


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks
    for If-None-Match)."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def shown_on_page(idea: Idea, comments, timeline, last_page: bool) -> Shown:
    """What an idea page rendered from these rows shows (no query)."""
    conversation = [c.id for c in comments]
    events = [c.id for c in timeline]
    return Shown(
        after=(max(conversation) if conversation else 0) if last_page else None,
        event=max(events) if events else 0,
        votes=idea.vote_count,
        comments=idea.comment_count,
        status=idea.status,
    )


def new_comments(idea: Idea, after: int) -> list[Comment]:
    """Comments posted after comment `after`, oldest first (at most MAX_NEW_COMMENTS)."""
    stmt = (
        select(Comment)
        .options(joinedload(Comment.author))
        .where(Comment.idea_id == idea.id, Comment.id > after)
        .order_by(Comment.id)
        .limit(MAX_NEW_COMMENTS)
    )
    return list(db.session.scalars(stmt))


def new_events(timeline: list[StatusChange], after: int) -> list[StatusChange]:
    """Status changes (not the post itself) after change `after`, from the history."""
    return [c for c in timeline if c.id > after and c.from_status is not None]


@dataclass(frozen=True)
class IdeaUpdate:
    """What a live answer sends a page that showed `shown` of `idea` as it is now."""

    now: Shown  # what the page shows once the answer is swapped in
    items: list  # new ("comment" | "event", row) pairs for the discussion, in time order
    new_comments: int
    timeline: list[StatusChange]
    votes_changed: bool  # the vote button (its count, or closed by the status)
    voters_changed: bool
    status_changed: bool
    count_changed: bool
    timeline_changed: bool


def idea_update(idea: Idea, shown: Shown) -> IdeaUpdate:
    """The pieces of the idea page that differ from `shown`: two or three statements
    (the status history, the comments after the last shown when the page is the
    discussion's last)."""
    timeline = history(idea)
    last_page = shown.after is not None
    events = new_events(timeline, shown.event) if last_page else []
    fresh = new_comments(idea, shown.after) if last_page else []
    items = sorted(
        [("comment", c) for c in fresh] + [("event", e) for e in events],
        key=lambda pair: (pair[1].created_at, pair[0] == "comment", pair[1].id),
    )
    now = shown_on_page(idea, fresh, timeline, last_page=last_page)
    if last_page:
        now = Shown(
            max(now.after or 0, shown.after), now.event, now.votes, now.comments, now.status
        )
    return IdeaUpdate(
        now=now,
        items=items,
        new_comments=len(fresh),
        timeline=timeline,
        votes_changed=idea.vote_count != shown.votes or idea.status != shown.status,
        voters_changed=idea.vote_count != shown.votes,
        status_changed=idea.status != shown.status,
        count_changed=idea.comment_count != shown.comments,
        timeline_changed=now.event != shown.event,
    )


# --- the roadmap -----------------------------------------------------------------------


def roadmap_digest(columns: dict) -> str:
    """A digest of everything the roadmap's columns show (not who voted: each viewer's
    own buttons change when they vote, and a vote changes the count anyway)."""
    parts = []
    for status in sorted(columns):
        column = columns[status]
        parts.append(
            (
                status,
                column["total"],
                column["capped"],
                tuple(
                    (i.id, i.title, i.vote_count, i.board_id, str(column["shipped_at"].get(i.id)))
                    for i in column["ideas"]
                ),
            )
        )
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:20]


_memo_lock = threading.Lock()


def roadmap_stamp(memo: dict, version, board: Board | None, compute) -> str:
    """The roadmap's digest under content version `version`, computed by `compute()`
    once per version and board and kept in `memo` (the app's: one per process and
    database); with no version, computed each time."""
    if version is None:
        return compute()
    key = (version, board.id if board is not None else None)
    found = memo.get(key)
    if found is not None:
        return found
    found = compute()
    with _memo_lock:
        if len(memo) >= _ROADMAP_MEMO_SIZE:
            memo.clear()
        memo[key] = found
    return found


def roadmap_etag(stamp: str, locale: str) -> str:
    return _etag("roadmap", stamp, locale)
