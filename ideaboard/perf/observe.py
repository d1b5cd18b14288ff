"""Every answer the app gives, observable in one place: Flask's requests and the fast paths.

The visitor page cache and the vote fast path answer some requests before Flask builds a
request (pagecache.VisitorFastPath, fastvote.VoteFastPath), so Flask's own signals and
hooks never see those answers. A feature that must see every answer (view counts, audit,
metrics, access logs) subscribes to `request_answered`: it is sent once per answer, by
whichever layer gave it, with the same fields. With no subscriber it costs one check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from blinker import Namespace
from flask import Flask, g, request, request_finished, request_started, session

_signals = Namespace()

#: Sent with `answer=Answer(...)` after each answer, with the app as sender.
request_answered = _signals.signal("request-answered")

VIA_FLASK = "flask"
VIA_VISITOR_CACHE = "visitor-cache"
VIA_VOTE_FAST_PATH = "vote-fast-path"
VIA_LIVE_FAST_PATH = "live-fast-path"  # a visitor's unchanged live poll (perf/livepoll.py)


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: which layer gave it, to what, and how long it took."""

    via: str  # VIA_FLASK, VIA_VISITOR_CACHE, VIA_VOTE_FAST_PATH or VIA_LIVE_FAST_PATH
    method: str
    path: str
    endpoint: str | None  # the URL rule's endpoint ("ideas.show"), None if none matched
    status: int
    user_id: int | None  # the signed-in member, None for a visitor
    seconds: float


def listening() -> bool:
    """Whether anyone subscribes: the fast paths build an Answer only then."""
    return bool(request_answered.receivers)


def answered(app: Flask, answer: Answer) -> None:
    """Tell the subscribers about one answer."""
    request_answered.send(app, answer=answer)


def _session_user_id() -> int | None:
    """The member named by the session's login id, without loading the user."""
    claimed = str(session.get("_user_id") or "").partition(":")[0]
    return int(claimed) if claimed.isascii() and claimed.isdigit() else None


def _started(_app: Flask, **_extra) -> None:
    if listening():
        g.answer_started = time.perf_counter()


def _finished(app: Flask, response, **_extra) -> None:
    started = g.pop("answer_started", None)
    if started is None or not listening():
        return
    answered(
        app,
        Answer(
            via=VIA_FLASK,
            method=request.method,
            path=request.path,
            endpoint=request.endpoint,
            status=response.status_code,
            user_id=_session_user_id(),
            seconds=time.perf_counter() - started,
        ),
    )


def init_app(app: Flask) -> None:
    request_started.connect(_started, app)
    request_finished.connect(_finished, app)
