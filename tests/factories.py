"""Plain factories: make_* functions that write through the domain layer and flush."""

from __future__ import annotations

import itertools
import threading
import time

from sqlalchemy import select

from ideaboard.extensions import db
from ideaboard.models import Board, Community, Idea, Reply, Thread, User
from ideaboard.security import login_id
from ideaboard.services import accounts, boards, comments, communities, ideas, threads, votes

_seq = itertools.count(1)
PASSWORD = "correct horse battery"


def make_user(role: str = "member", name: str | None = None, email: str | None = None) -> User:
    """Create a user with PASSWORD as the password."""
    n = next(_seq)
    user = accounts.register_user(
        email or f"user{n}@example.com", name or f"User {n}", PASSWORD, role=role
    )
    db.session.commit()
    return user


def general_board() -> Board:
    return db.session.scalar(select(Board).where(Board.slug == "general"))


def make_board(slug: str | None = None, name: str | None = None) -> Board:
    n = next(_seq)
    board = boards.create_board(slug or f"board-{n}", name or f"Board {n}")
    db.session.commit()
    return board


def make_idea(
    author: User | None = None,
    title: str | None = None,
    body: str = "Some words about it.",
    kind: str = "idea",
    board: Board | None = None,
) -> Idea:
    """Post an idea through the service, as a member would.

    Titles are unique on a board (one live idea per title): a title already taken there
    gets a number, so a test may make "the same" idea many times.
    """
    author = author or make_user()
    board = board or general_board()
    n = next(_seq)
    title = title or f"Idea number {n}"
    if ideas.duplicate_of(board.id, title) is not None:
        title = f"{title} #{n}"
    idea = ideas.create_idea(author, board, kind, title, body)
    db.session.commit()
    return idea


def make_comment(idea: Idea, author: User | None = None, body: str = "Nice.", official=False):
    comment = comments.add_comment(author or make_user(), idea, body, official=official)
    db.session.commit()
    return comment


def vote_for(idea: Idea, user: User) -> None:
    """The member votes for the idea (kept if already there: an idea starts with its
    author's vote, and voting for your own idea again changes nothing)."""
    votes.set_vote(user, idea, votes.VOTE)
    db.session.commit()


def confirm_sign_up(client, email: str, **request) -> User:
    """Open the confirmation link of the sign-up for `email` in `client`, as the emailed
    link would be (a fresh link: the mailed one is not read back); it signs the client in."""
    user = db.session.scalar(select(User).where(User.email_key == accounts.email_key(email)))
    token, _ = accounts.issue_verify_token(user)
    db.session.commit()
    resp = client.post(f"/verify/{token}", **request)
    assert resp.status_code == 303, resp.status_code
    db.session.expire_all()
    return user


def login_as(client, user: User, **request) -> None:
    """Sign a test client in as `user` (what a successful sign-in leaves in the session).

    `request` goes to the session transaction, e.g. base_url="http://other.test".
    """
    now = time.time()
    with client.session_transaction(**request) as sess:
        sess.clear()
        sess["_user_id"] = login_id(user, remember=False, at=now)
        sess["_seen_at"] = int(now)
        sess["_fresh"] = True


def at_once(calls):
    """Run the calls in threads released together by a barrier; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def reload(obj):
    """The object as the database has it now."""
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


#: bench/seed.py's community sizes for tests that seed for ideas.
SMALL_CLUBS = ["--communities", "2", "--threads", "20", "--replies", "100", "--big-thread", "60"]


def bench_seed(app, tmp_path, sizes: list[str]) -> dict:
    """Fill the test database with bench/seed.py at `sizes`; the state it wrote."""
    import json

    from bench.seed import seed_command

    from .conftest import _reset

    # Fresh tables, as TRUNCATE makes them: the per-test reset DELETEs, and dead rows of
    # earlier tests would be in the planner's statistics that EXPLAIN tests read.
    _reset(app, truncate=True)
    state = tmp_path / "state.json"
    if "--communities" not in sizes:  # a few clubs, not the benchmark's 60,000 replies
        sizes = [*sizes, *SMALL_CLUBS]
    result = app.test_cli_runner().invoke(seed_command, ["--state", str(state), *sizes])
    assert result.exit_code == 0, result.output
    db.session.commit()
    return json.loads(state.read_text())


def make_community(slug: str | None = None, name: str | None = None, **kw) -> Community:
    """A community, as an admin (the command line) would create it."""
    n = next(_seq)
    community = communities.create_community(None, slug or f"club-{n}", name or f"Club {n}", **kw)
    db.session.commit()
    return community


def make_thread(
    community: Community, author: User | None = None, title: str | None = None, body: str = ""
) -> Thread:
    thread = threads.start_thread(
        author or make_user(), community, title or f"Thread {next(_seq)}", body
    )
    db.session.commit()
    return thread


def make_reply(thread: Thread, author: User | None = None, body: str = "Agreed.", **kw) -> Reply:
    community = db.session.get(Community, thread.community_id)
    reply = threads.add_reply(author or make_user(), thread, community, body, **kw)
    db.session.commit()
    return reply


def make_moderator(community: Community, user: User | None = None) -> User:
    """A member appointed moderator of `community` (by an admin)."""
    user = user or make_user()
    admin = db.session.scalar(select(User).where(User.role == "admin")) or make_user("admin")
    communities.appoint_moderator(admin, community, user)
    db.session.commit()
    return user
