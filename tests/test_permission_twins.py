"""Every rule is decided once: SQL twins say what their predicates say, in every state.

permissions.TWINS (and the vote fast path's own composite) are run in the database and as
Python over every combination of the states the models allow: each role, each value of
every enumerated column (an idea's status and kind), every nullable timestamp set or not
(an idea deleted; a ban or lock column added later joins by itself), the user the idea's
author or not, and a visitor. The predicate is asked about the ORM objects and about the
facts the fast path builds on SQLite (permissions.facts()), so those facts are shown to
be enough. Runs on the suite's database: SQLite, or PostgreSQL with IDEABOARD_TEST_BACKEND.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask_login import AnonymousUserMixin

from ideaboard import permissions
from ideaboard.extensions import db
from ideaboard.models import Board, Community, Idea, Thread, User
from ideaboard.services import votes

from .factories import general_board

_IN = re.compile(r"^\s*(\w+)\s+IN\s*\((.*)\)\s*$", re.I | re.S)
_SET = datetime(2026, 1, 2, 3, 4, 5)


def state_domains(table: sa.Table) -> dict[str, list]:
    """The values each state column of `table` can take, read from the schema: a column a
    CHECK constraint limits to a list, a boolean, or a nullable timestamp (set or not)."""
    domains: dict[str, list] = {}
    for constraint in table.constraints:
        if isinstance(constraint, sa.CheckConstraint):
            match = _IN.match(str(constraint.sqltext))
            if match and match.group(1) in table.c:
                domains[match.group(1)] = re.findall(r"'([^']*)'", match.group(2))
    for column in table.columns:
        if column.primary_key or column.foreign_keys or column.name in domains:
            continue
        if isinstance(column.type, sa.Boolean):
            domains[column.name] = [False, True]
        elif isinstance(column.type, sa.DateTime) and column.nullable:
            domains[column.name] = [None, _SET]
    return domains


def combinations(domains: dict[str, list]) -> list[dict]:
    names = sorted(domains)
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(domains[n] for n in names))
    ]


_USER_BASE = {"email": "", "email_key": "", "display_name": "Someone", "password_hash": "x"}
_IDEA_BASE = {"title": "An idea", "body": "", "kind": "idea"}


def _world() -> tuple[list[User], list[Idea]]:
    """One user per combination of user states; one idea per combination of idea states
    by each of them (so every user is the author of some of each kind, and not of others)."""
    users_t, ideas_t = User.__table__, Idea.__table__
    user_states = combinations(state_domains(users_t))
    idea_states = combinations(state_domains(ideas_t))
    assert {u["role"] for u in user_states} == {"member", "moderator", "staff", "admin"}
    assert {i["status"] for i in idea_states} >= {"heard", "shipped", "declined"}
    assert {i["deleted_at"] for i in idea_states} == {None, _SET}
    board = general_board().id
    db.session.rollback()  # the reads below must see what this writes
    with db.engine.begin() as conn:
        # One more board per combination of board states (an archived one, and so on).
        boards_t = Board.__table__
        for n, state in enumerate(combinations(state_domains(boards_t))):
            conn.execute(
                sa.insert(boards_t).values(
                    slug=f"twin-{n}", name=f"Twin {n}", description="", **state
                )
            )
        for n, state in enumerate(user_states):
            email = f"twin{n}@example.com"
            conn.execute(
                sa.insert(users_t).values(
                    **{**_USER_BASE, "email": email, "email_key": email}, **state
                )
            )
        user_ids = conn.execute(sa.select(users_t.c.id).order_by(users_t.c.id)).scalars().all()
        conn.execute(
            sa.insert(ideas_t),
            [
                # Each its own title: one live idea per title on a board.
                {**_IDEA_BASE, "title": f"An idea {n}", "board_id": board, "author_id": a, **st}
                for n, (a, st) in enumerate(itertools.product(user_ids, idea_states))
            ],
        )
    users = list(db.session.scalars(sa.select(User).order_by(User.id)))
    ideas = list(db.session.scalars(sa.select(Idea).order_by(Idea.id)))
    return users, ideas


def _community_world() -> tuple[list[Thread], dict[int, Community]]:
    """One community per combination of community states (archived, holding first posts),
    and in each one thread per combination of thread states (hidden, held, locked...)."""
    communities_t, threads_t = Community.__table__, Thread.__table__
    author = db.session.scalar(sa.select(User.id).order_by(User.id).limit(1))
    db.session.rollback()
    with db.engine.begin() as conn:
        for n, state in enumerate(combinations(state_domains(communities_t))):
            community_id = conn.execute(
                sa.insert(communities_t)
                .values(slug=f"twin-{n}", name=f"Twin {n}", description="", rules="", **state)
                .returning(communities_t.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(threads_t),
                [
                    {"community_id": community_id, "author_id": author, "title": "T", **st}
                    for st in combinations(state_domains(threads_t))
                ],
            )
    communities = {c.id: c for c in db.session.scalars(sa.select(Community))}
    assert {c.archived_at is None for c in communities.values()} == {True, False}
    threads = list(db.session.scalars(sa.select(Thread).order_by(Thread.id)))
    assert {(t.deleted_at is None, t.held_at is None) for t in threads} == {
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    }
    return threads, communities


def _thread_cases(name, sql, models, users) -> list[tuple[tuple, bool]]:
    """(arguments, the twin's answer in the database) for the community rules' twins."""
    users_t, threads_t, communities_t = User.__table__, Thread.__table__, Community.__table__
    threads, communities = _community_world()
    by_id = {t.id: t for t in threads}
    users_by_id = {u.id: u for u in users}
    visitor = users_t.alias("visitor")
    with db.engine.connect() as conn:
        if models == (Thread,):
            rows = conn.execute(
                sa.select(threads_t.c.id, sa.case((sql(threads_t), True), else_=False))
            )
            return [((by_id[tid],), bool(ok)) for tid, ok in rows]
        if models == (Thread, Community):
            rows = conn.execute(
                sa.select(
                    threads_t.c.id,
                    communities_t.c.id,
                    sa.case((sql(threads_t, communities_t), True), else_=False),
                ).select_from(threads_t.join(communities_t, sa.true()))
            )
            return [((by_id[tid], communities[cid]), bool(ok)) for tid, cid, ok in rows]
        assert models == (User, Thread), models
        rows = conn.execute(
            sa.select(
                users_t.c.id, threads_t.c.id, sa.case((sql(users_t, threads_t), True), else_=False)
            ).select_from(users_t.join(threads_t, sa.true()))
        )
        cases = [((users_by_id[uid], by_id[tid]), bool(ok)) for uid, tid, ok in rows]
        rows = conn.execute(
            sa.select(
                threads_t.c.id, sa.case((sql(visitor, threads_t), True), else_=False)
            ).select_from(threads_t.outerjoin(visitor, sa.false()))
        )
        return cases + [((AnonymousUserMixin(), by_id[tid]), bool(ok)) for tid, ok in rows]


def _describe(arg) -> str:
    if isinstance(arg, AnonymousUserMixin):
        return "visitor"
    return f"{type(arg).__name__.lower()} {_state(arg, type(arg).__table__)}"


def _state(obj, table: sa.Table) -> str:
    shown = []
    for name in sorted(state_domains(table)):
        value = getattr(obj, name)
        shown.append(f"{name}={'set' if isinstance(value, datetime) else value}")
    return " ".join(shown)


def _facts(obj):
    """What the SQLite fast path hands the predicates for `obj`'s row."""
    columns = permissions.fact_columns(type(obj).__table__)
    return permissions.facts(type(obj), [getattr(obj, c.key) for c in columns])


def mismatches(name: str, predicate, sql, models, users, ideas) -> list[str]:
    """Every case where `sql` (evaluated in the database) and `predicate` (asked about the
    ORM objects, and about the fast path's facts) disagree, described."""
    users_t, ideas_t = User.__table__, Idea.__table__
    visitor = users_t.alias("visitor")
    by_id = {("u", u.id): u for u in users} | {("i", i.id): i for i in ideas}
    found = []
    if Thread in models:
        for args, in_sql in _thread_cases(name, sql, models, users):
            in_python = bool(predicate(*args))
            on_facts = bool(
                predicate(*[a if isinstance(a, AnonymousUserMixin) else _facts(a) for a in args])
            )
            if not in_python == in_sql == on_facts:
                found.append(
                    f"{name}({', '.join(_describe(a) for a in args)}): "
                    f"predicate {in_python}, on facts {on_facts}, SQL {in_sql}"
                )
        return found
    with db.engine.connect() as conn:
        if models == (User,):
            rows = conn.execute(sa.select(users_t.c.id, sa.case((sql(users_t), True), else_=False)))
            cases = [((by_id["u", uid],), bool(ok)) for uid, ok in rows]
            rows = conn.execute(
                sa.select(sa.case((sql(visitor), True), else_=False))
                .select_from(ideas_t.outerjoin(visitor, sa.false()))
                .limit(1)
            )
            cases.append(((AnonymousUserMixin(),), bool(rows.scalar_one())))
        elif models == (Idea, Board):
            boards_t = Board.__table__
            boards = {b.id: b for b in db.session.scalars(sa.select(Board))}
            assert {b.archived_at is None for b in boards.values()} == {True, False}
            rows = conn.execute(
                sa.select(
                    ideas_t.c.id,
                    boards_t.c.id,
                    sa.case((sql(ideas_t, boards_t), True), else_=False),
                ).select_from(ideas_t.join(boards_t, sa.true()))
            )
            cases = [((by_id["i", iid], boards[bid]), bool(ok)) for iid, bid, ok in rows]
        else:
            assert models == (User, Idea), models
            rows = conn.execute(
                sa.select(
                    users_t.c.id, ideas_t.c.id, sa.case((sql(users_t, ideas_t), True), else_=False)
                ).select_from(users_t.join(ideas_t, sa.true()))
            )
            cases = [((by_id["u", uid], by_id["i", iid]), bool(ok)) for uid, iid, ok in rows]
            rows = conn.execute(
                sa.select(
                    ideas_t.c.id, sa.case((sql(visitor, ideas_t), True), else_=False)
                ).select_from(ideas_t.outerjoin(visitor, sa.false()))
            )
            cases += [((AnonymousUserMixin(), by_id["i", iid]), bool(ok)) for iid, ok in rows]
    for args, in_sql in cases:
        in_python = bool(predicate(*args))
        on_facts = bool(
            predicate(*[a if isinstance(a, AnonymousUserMixin) else _facts(a) for a in args])
        )
        if in_python == in_sql == on_facts:
            continue
        if isinstance(args[0], Idea):
            idea, board = args
            found.append(
                f"{name}(idea {_state(idea, ideas_t)}, board {_state(board, Board.__table__)}): "
                f"predicate {in_python}, on facts {on_facts}, SQL {in_sql}"
            )
            continue
        user = args[0]
        who = "visitor" if isinstance(user, AnonymousUserMixin) else _state(user, users_t)
        what = ""
        if len(args) > 1:
            idea = args[1]
            owner = not isinstance(user, AnonymousUserMixin) and idea.author_id == user.id
            what = f", {'own' if owner else 'other'} idea {_state(idea, ideas_t)}"
        found.append(
            f"{name}({who}{what}): predicate {in_python}, on facts {on_facts}, SQL {in_sql}"
        )
    return found


#: The twins, looked up by name when the test runs (so a predicate replaced at run time is
#: the one checked), plus the vote fast path's composite, which its statement runs.
CHECKED = [(t.predicate.__name__, t.models) for t in permissions.TWINS]


def _predicate(name):
    return getattr(permissions, name)


def _sql(name):
    return getattr(permissions, f"{name}_sql")


@pytest.mark.parametrize("name, models", CHECKED, ids=[n for n, _ in CHECKED])
def test_sql_twin_agrees_with_its_predicate_in_every_state(app, name, models):
    """The twin and its predicate (on objects and on the fast path's facts) agree for every
    role, ownership and row state the models allow, and for a visitor."""
    users, ideas = _world()
    assert len(users) >= 4 and len(ideas) >= 4 * 36
    found = mismatches(name, _predicate(name), _sql(name), models, users, ideas)
    assert not found, "\n".join(found)


def test_the_vote_fast_paths_rule_agrees_in_every_state(app):
    """What the fast path's one statement runs (can_vote and not exempt, in SQL) says what
    the predicates say, in every state."""
    users, ideas = _world()
    found = mismatches(
        "fast_path_may_vote",
        votes.fast_path_may_vote,
        votes.fast_path_may_vote_sql,
        (User, Idea),
        users,
        ideas,
    )
    assert not found, "\n".join(found)


def test_every_twin_is_checked():
    """A twin (a `*_sql` function in permissions.py) not listed in TWINS is never checked."""
    twins = {name[: -len("_sql")] for name in vars(permissions) if name.endswith("_sql")}
    assert twins == {name for name, _ in CHECKED}


def test_a_changed_predicate_is_named_by_the_truth_table(app, monkeypatch):
    """Make can_vote refuse moderators: the check names every case its twin now gets wrong."""
    users, ideas = _world()
    original = permissions.can_vote
    monkeypatch.setattr(
        permissions,
        "can_vote",
        lambda user, idea: original(user, idea) and user.role != "moderator",
    )
    found = mismatches(
        "can_vote", _predicate("can_vote"), _sql("can_vote"), (User, Idea), users, ideas
    )
    assert found and all("role=moderator" in line for line in found)
    assert len(found) == sum(1 for u in users if u.role == "moderator") * sum(
        1 for i in ideas if i.deleted_at is None and not permissions.voting_closed(i)
    )
