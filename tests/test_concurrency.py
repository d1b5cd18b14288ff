"""Votes under concurrency: counts equal rows, one row per member, never a server error.

Runs on the suite's database: SQLite in the first pass, PostgreSQL in the second.
"""

from functools import partial
from itertools import pairwise

import pytest
from sqlalchemy import func, select

from ideaboard.extensions import db
from ideaboard.models import Idea, StatusChange, User, Vote
from ideaboard.services import votes

from .factories import PASSWORD, at_once, general_board, login_as, make_idea, make_user, reload

THREADS = 16


def _run_all(app, jobs):
    """POST every job (client, path) at once; return the statuses."""
    answers = at_once([partial(client.post, path) for client, path in jobs])
    return [r.status_code for r in answers]


def _rows(idea):
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Vote).where(Vote.idea_id == idea.id))


def test_many_members_toggling_at_once_keep_count_equal_to_rows(app):
    """Sixteen members each toggle three times at once: 16 votes, 16 rows, no errors."""
    idea = make_idea()
    members = [make_user() for _ in range(THREADS)]
    jobs = []
    for member in members:
        client = app.test_client()
        login_as(client, member)
        jobs += [(client, f"/ideas/{idea.id}/vote")]
    for _round in range(3):
        statuses = _run_all(app, jobs)
        assert set(statuses) == {303}, statuses
    assert reload(idea).vote_count == _rows(idea) == THREADS + 1  # and the author's
    assert votes.count_mismatches() == []


def test_same_member_double_clicking_from_many_tabs(app):
    """One member's simultaneous toggles never make two rows, and the count matches."""
    idea = make_idea()
    member = make_user()
    jobs = []
    for _ in range(THREADS):
        client = app.test_client()  # separate tabs: separate connections
        login_as(client, member)
        jobs.append((client, f"/ideas/{idea.id}/vote"))
    statuses = _run_all(app, jobs)
    assert set(statuses) == {303}, statuses
    rows = _rows(idea)
    assert rows in (1, 2)  # the author's, and the member's at most once
    assert reload(idea).vote_count == rows
    assert votes.count_mismatches() == []


def _history(idea) -> list[tuple[str | None, str]]:
    db.session.commit()
    return [
        (c.from_status, c.to_status)
        for c in db.session.scalars(
            select(StatusChange).where(StatusChange.idea_id == idea.id).order_by(StatusChange.id)
        )
    ]


def _staff_clients(app, n):
    clients = []
    for _ in range(n):
        client = app.test_client()
        login_as(client, make_user("staff"))
        clients.append(client)
    return clients


def test_staff_moving_one_idea_at_once_leave_one_consistent_history(app):
    """Six staff change one idea's status at once: every recorded change starts where the
    previous one ended, and the idea ends where the history does; no server error."""
    idea = make_idea()
    targets = ["planned", "planned", "planned", "in_progress", "shipped", "under_review"]
    calls = [
        partial(client.post, f"/ideas/{idea.id}/status", data={"status": to, "note": to})
        for client, to in zip(_staff_clients(app, len(targets)), targets, strict=True)
    ]
    statuses = [r.status_code for r in at_once(calls)]
    assert set(statuses) <= {303, 422}, statuses
    history = _history(idea)
    assert history[0] == (None, "heard")
    for (_, before), (start, end) in pairwise(history):
        assert start == before and start != end, history
    assert len(history) - 1 == statuses.count(303), (history, statuses)
    assert reload(idea).status == history[-1][1]


def test_staff_making_the_same_move_at_once_record_it_once(app):
    """Six staff move one idea to planned at once: one heard -> planned, the others are told
    it already has that status (as they would be one after the other)."""
    idea = make_idea()
    clients = _staff_clients(app, 6)
    answers = at_once(
        [partial(c.post, f"/ideas/{idea.id}/status", data={"status": "planned"}) for c in clients]
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [303] + [422] * 5, statuses
    refused = [r for r in answers if r.status_code == 422]
    assert all(b"already has this status" in r.data for r in refused)
    assert _history(idea) == [(None, "heard"), ("heard", "planned")]
    assert reload(idea).status == "planned"


def test_one_member_double_submitting_an_idea_makes_one_idea(app):
    """Eight simultaneous submits of one new-idea form by one member make one idea, and
    every submit lands on it."""
    member = make_user()
    form = {
        "title": "Dark mode",
        "body": "Please.",
        "board": str(general_board().id),
        "kind": "idea",
    }
    clients = []
    for _ in range(8):
        client = app.test_client()
        login_as(client, member)
        clients.append(client)
    answers = at_once([partial(c.post, "/ideas/new", data=form) for c in clients])
    assert {r.status_code for r in answers} == {303}
    db.session.commit()
    ideas = db.session.scalars(select(Idea).where(Idea.author_id == member.id)).all()
    assert len(ideas) == 1
    assert {r.headers["Location"] for r in answers} == {f"/ideas/{ideas[0].id}-dark-mode"}


def test_concurrent_sign_ups_with_one_address_make_one_account(app):
    """Eight sign-ups with one address at once: one account; every answer is the one any
    sign-up gets ("check your inbox"), never a server error."""
    form = {"email": "Same@Example.com", "display_name": "Sam", "password": PASSWORD}
    answers = at_once([partial(app.test_client().post, "/register", data=form) for _ in range(8)])
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [303] * 8, statuses
    assert {r.headers["Location"] for r in answers} == {"/"}
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.serial  # the second writer must get in within a second
def test_sqlite_writers_queue_on_the_writer_gate(tmp_path):
    """A second SQLite writer waits for the first one's commit, then goes straight in."""
    import sqlite3
    import threading
    import time

    from ideaboard.perf.writergate import GatedConnection

    path = str(tmp_path / "gate.db")
    first = sqlite3.connect(path, factory=GatedConnection, isolation_level=None)
    second = sqlite3.connect(
        path, factory=GatedConnection, isolation_level=None, check_same_thread=False
    )
    first.execute("CREATE TABLE t (n INTEGER)")
    first.take_writer_gate()
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO t VALUES (1)")
    got_in = threading.Event()

    def write():
        second.take_writer_gate()
        got_in.set()
        second.execute("BEGIN IMMEDIATE")
        second.execute("INSERT INTO t VALUES (2)")
        second.commit()

    worker = threading.Thread(target=write)
    worker.start()
    assert not got_in.wait(0.3), "the second writer got past the gate while the first wrote"
    started = time.monotonic()
    first.commit()
    assert got_in.wait(2), "the second writer never got the gate after the first committed"
    worker.join(2)
    assert time.monotonic() - started < 1
    assert [n for (n,) in first.execute("SELECT n FROM t ORDER BY n")] == [1, 2]
    first.close()
    second.close()


def test_sqlite_write_transaction_with_ddl_stays_atomic(tmp_path):
    """Taking the write lock at the first write never commits a write made before it: a
    migration's CREATE TABLE and its data go in, or out, together."""
    import sqlalchemy as sa

    from ideaboard.perf.writergate import configure_sqlite, engine_options

    url = f"sqlite:///{tmp_path / 'atomic.db'}"
    engine = sa.create_engine(url, **engine_options(url, {}))
    configure_sqlite(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("the migration's next step fails")
    with engine.connect() as conn:
        assert "t" not in sa.inspect(conn).get_table_names()
    engine.dispose()


def test_sqlite_log_is_copied_into_the_database_every_so_many_writes(tmp_path):
    """Every CHECKPOINT_EVERY gated commits the write-ahead log is copied into the database
    file (after the commit has let the next writer in), not only when SQLite's own, much
    larger, threshold is crossed."""
    import os

    import sqlalchemy as sa

    from ideaboard.perf import writergate
    from ideaboard.perf.writergate import GatedConnection, configure_sqlite, engine_options

    url = f"sqlite:///{tmp_path / 'log.db'}"
    path = tmp_path / "log.db"
    engine = sa.create_engine(url, **engine_options(url, {}))
    configure_sqlite(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (body BLOB)")
    GatedConnection.commits_since_checkpoint = 0  # other tests' commits in this process
    size = os.path.getsize(path)
    blob = os.urandom(8192)
    for _ in range(writergate.CHECKPOINT_EVERY - 1):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", (blob,))
    assert os.path.getsize(path) == size, "copied before CHECKPOINT_EVERY commits"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (blob,))
    assert os.path.getsize(path) >= size + writergate.CHECKPOINT_EVERY * len(blob)
    with engine.connect() as conn:  # and nothing was lost on the way
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == writergate.CHECKPOINT_EVERY
        )
    engine.dispose()


def test_members_taking_one_new_address_at_once_get_one_change(app):
    """Four members moving to one address at once: one gets it; the others the refusal a
    later change gets (422, "already exists"), never a server error."""
    members = [make_user() for _ in range(4)]
    clients = []
    for member in members:
        client = app.test_client()
        login_as(client, member)
        clients.append((client, member))
    answers = at_once(
        [
            partial(
                client.post,
                "/account",
                data={
                    "display_name": member.display_name,
                    "email": "Taken@Example.com",
                    "current_password": PASSWORD,
                },
            )
            for client, member in clients
        ]
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [303] + [422] * 3, statuses
    refused = [r for r in answers if r.status_code == 422]
    assert all(b"An account with this email already exists" in r.data for r in refused)
    db.session.commit()
    owners = db.session.scalars(select(User).where(User.email_key == "taken@example.com")).all()
    assert len(owners) == 1
