"""The benchmark's look inside the app, run as a subprocess with the database's environment.

    python bench/appside.py info [--vote-ideas N] [--hot IDEA_ID]
    python bench/appside.py mint --sessions N --out FILE [--user-agent UA]
    python bench/appside.py mismatches
    python bench/appside.py fanout-setup --followers N
    python bench/appside.py fanout-run --idea IDEA_ID

Each prints one JSON object on stdout. It imports the app with the same environment as the
server under test (IDEABOARD_INSTANCE or DATABASE_URL, SECRET_KEY), so the session cookies it
mints are the ones that server accepts. Nothing here writes to the database but the two
fan-out steps: `fanout-setup` makes (once) the idea N members follow, adding
`fanout{i}@bench.test` members when the seed has fewer, and `fanout-run` fans out the
measured status change, counts its rows, then deletes them (notifications are not page
content) so that runs do not pile them up.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMBER_EMAIL = "bench{}@bench.test"
MEMBER_LIKE = "bench%@bench.test"
STAFF_EMAIL = "bench-staff@bench.test"
ADMIN_EMAIL = "bench-admin@bench.test"


def _app():
    from ideaboard import create_app

    return create_app({"RATELIMIT_ENABLED": False})


def _bench_members(limit: int | None = None):
    """Bench members (not staff), lowest id first."""
    from sqlalchemy import select

    from ideaboard.extensions import db
    from ideaboard.models import User

    stmt = (
        select(User)
        .where(User.email_key.like(MEMBER_LIKE), User.email_key != STAFF_EMAIL)
        .where(User.role == "member")
        .order_by(User.id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


def _first_page_ids() -> list[int]:
    """The ids on the anonymous board page (trending, first page), as the app lists them."""
    from ideaboard.services import ideas

    with_args = ideas.IdeaQuery.parse({})
    return [i.id for i in ideas.list_ideas(with_args).items]


def _choose_members(n: int) -> list:
    """n bench members: half of them among those who voted on the first board page, so the
    signed-in board page shows voted state; the rest spread over all members."""
    from sqlalchemy import func, select

    from ideaboard.extensions import db
    from ideaboard.models import User, Vote

    page_ids = _first_page_ids()
    voters = list(
        db.session.scalars(
            select(User)
            .join(Vote, Vote.user_id == User.id)
            .where(Vote.idea_id.in_(page_ids), User.email_key.like(MEMBER_LIKE))
            .where(User.role == "member")
            .group_by(User.id)
            .order_by(func.min(Vote.id))
            .limit(n // 2)
        )
    )
    chosen = {u.id: u for u in voters}
    total = db.session.scalar(
        select(func.count()).select_from(User).where(User.email_key.like(MEMBER_LIKE))
    )
    stride = max(int(total or 1) // max(n, 1), 1)
    for i, user in enumerate(_bench_members(limit=stride * n + n)):
        if len(chosen) >= n:
            break
        if i % stride == 0:
            chosen.setdefault(user.id, user)
    for user in _bench_members(limit=2 * n):
        if len(chosen) >= n:
            break
        chosen.setdefault(user.id, user)
    return list(chosen.values())[:n]


def info(vote_ideas: int, hot_id: int | None) -> dict:
    """What is in the database: sizes, the hot idea, the ideas to vote on."""
    from sqlalchemy import func, select

    from ideaboard.extensions import db
    from ideaboard.models import Comment, Idea, User, Vote
    from ideaboard.permissions import VOTING_CLOSED_STATUSES

    app = _app()
    with app.app_context():
        started = time.perf_counter()
        count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
        # The hot idea: the seed's record, else (as the seed picks it) the most voted one.
        top = db.session.execute(
            select(Idea.id, Idea.title, Idea.comment_count, Idea.vote_count)
            .where(Idea.deleted_at.is_(None))
            .order_by(Idea.vote_count.desc(), Idea.id)
            .limit(5)
        ).all()
        hot = top[0] if top else None
        if hot_id is not None:
            hot = db.session.execute(
                select(Idea.id, Idea.title, Idea.comment_count, Idea.vote_count).where(
                    Idea.id == hot_id
                )
            ).first()
        members = db.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.email_key.like(MEMBER_LIKE), User.role == "member")
        )
        vote_ids = list(
            db.session.scalars(
                select(Idea.id)
                # Votes are frozen on decided ideas (permissions.voting_closed): 403 there.
                .where(Idea.deleted_at.is_(None), Idea.status.not_in(VOTING_CLOSED_STATUSES))
                .order_by(Idea.trending_score.desc(), Idea.id.desc())
                .limit(vote_ideas)
            )
        )
        dialect = db.engine.dialect.name
        if dialect == "postgresql":
            server = db.session.scalar(select(func.version()))
        else:
            server = "SQLite " + db.session.scalar(select(func.sqlite_version()))
        page_ids = _first_page_ids()
        return {
            "community": _community_info(),
            "dialect": dialect,
            "server_version": server,
            "database": _describe_url(str(db.engine.url)),
            "ideas": count(Idea),
            "live_ideas": db.session.scalar(
                select(func.count()).select_from(Idea).where(Idea.deleted_at.is_(None))
            ),
            "votes": count(Vote),
            "comments": count(Comment),
            "users": count(User),
            "bench_members": members,
            "staff": db.session.scalar(select(User.id).where(User.email_key == STAFF_EMAIL)),
            "hot_idea_id": hot.id if hot else None,
            "hot_idea_comments": hot.comment_count if hot else 0,
            "hot_idea_votes": hot.vote_count if hot else 0,
            "hot_candidates": [row.id for row in top],
            "vote_idea_ids": vote_ids,
            "first_page_ids": page_ids,
            "seconds": round(time.perf_counter() - started, 3),
        }


def _community_info() -> dict | None:
    """The seeded club (bench-club-1), a thread of an ordinary size and its big thread,
    with the big thread's last page; None before the communities are seeded."""
    from sqlalchemy import select

    from ideaboard.extensions import db
    from ideaboard.models import Community, Thread
    from ideaboard.services.threads import REPLIES_PER_PAGE

    club = db.session.scalar(select(Community).where(Community.slug == "bench-club-1"))
    if club is None:
        return None
    by_size = (
        select(Thread.id, Thread.reply_count)
        .where(Thread.community_id == club.id, Thread.deleted_at.is_(None))
        .order_by(Thread.reply_count.desc(), Thread.id)
    )
    big = db.session.execute(by_size.limit(1)).one()
    ordinary = db.session.execute(by_size.offset(1).limit(1)).first() or big
    return {
        "slug": club.slug,
        "communities": db.session.query(Community).count(),
        "thread_id": ordinary.id,
        "big_thread_id": big.id,
        "big_thread_replies": big.reply_count,
        "big_thread_last_page": max(1, -(-big.reply_count // REPLIES_PER_PAGE)),
    }


def _describe_url(url: str) -> str:
    """The database URL without a password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def mint(sessions: int, out: Path, user_agent: str, remote_addr: str, admin: bool = False) -> dict:
    """Session cookies for `sessions` members, signed with the app's SECRET_KEY.

    The same thing a sign-in leaves in the session (Flask-Login's user id, freshness and the
    client identifier for session protection), plus a CSRF token, without paying for a
    password hash per member. The file holds "cookie<TAB>X-CSRFToken<TAB>user id<TAB>name".
    """
    from flask import session
    from flask_login import login_user
    from flask_wtf.csrf import generate_csrf
    from sqlalchemy import select

    from ideaboard.extensions import db
    from ideaboard.models import Vote

    app = _app()
    serializer = app.session_interface.get_signing_serializer(app)
    lines = []
    with app.app_context():
        if admin:  # the admin-area scenarios: the bench admin's session only
            from ideaboard.models import User

            members = list(db.session.scalars(select(User).where(User.email_key == ADMIN_EMAIL)))
            if not members:
                raise SystemExit(f"no {ADMIN_EMAIL} in the database: seed it again")
        else:
            members = _choose_members(sessions)
        page_ids = _first_page_ids()
        voted_members = set(
            db.session.scalars(
                select(Vote.user_id).where(
                    Vote.idea_id.in_(page_ids), Vote.user_id.in_([m.id for m in members])
                )
            )
        )
        users = [(m, m.get_id(), m.display_name) for m in members]
    for user, _login_id, name in users:
        # A fresh app context per member: Flask-WTF caches the token in `g`, which belongs
        # to the app context, so a shared one would hand every member the first one's token.
        with (
            app.app_context(),
            app.test_request_context(
                "/",
                environ_base={"REMOTE_ADDR": remote_addr},
                headers={"User-Agent": user_agent},
            ),
        ):
            login_user(user)
            token = generate_csrf()
            assert session.get("csrf_token"), "generate_csrf() did not store its token"
            cookie = serializer.dumps(dict(session))
        lines.append(f"{cookie}\t{token}\t{user.id}\t{name}")
    out.write_text("\n".join(lines) + "\n")
    first_voter = next((m for m in members if m.id in voted_members), None)
    return {
        "sessions": len(lines),
        "with_votes_on_first_page": len(voted_members),
        "check_user": {
            "id": (first_voter or members[0]).id,
            "display_name": (first_voter or members[0]).display_name,
            "voted_on_first_page": first_voter is not None,
            "line": members.index(first_voter or members[0]),
        }
        if members
        else None,
    }


def mismatches() -> dict:
    """ideaboard.services.votes.count_mismatches(): ideas whose count differs from its rows."""
    from sqlalchemy import func, select

    from ideaboard.extensions import db
    from ideaboard.models import Vote
    from ideaboard.services.votes import count_mismatches

    app = _app()
    with app.app_context():
        started = time.perf_counter()
        found = count_mismatches()
        return {
            "count_mismatches": found[:100],
            "mismatch_count": len(found),
            "votes": db.session.scalar(select(func.count()).select_from(Vote)),
            "seconds": round(time.perf_counter() - started, 3),
        }


FANOUT_TITLE = "Bench fan-out: an idea everyone follows"
FANOUT_LIKE = "fanout%@bench.test"


def fanout_setup(followers: int) -> dict:
    """The idea `followers` members follow (besides its author, the bench admin, who is
    the actor of the measured status changes): made once, topped up to exactly that many
    active follows, all set-based."""
    from sqlalchemy import func, insert, literal, or_, select, update

    from ideaboard.extensions import db
    from ideaboard.models import Board, Follow, Idea, User, utcnow
    from ideaboard.services import ideas

    app = _app()
    started = time.perf_counter()
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.email_key == ADMIN_EMAIL))
        if admin is None:
            raise SystemExit(f"no {ADMIN_EMAIL} in the database: seed it again")
        idea = db.session.scalar(
            select(Idea).where(Idea.title == FANOUT_TITLE, Idea.deleted_at.is_(None))
        )
        if idea is None:
            board = db.session.scalar(select(Board).order_by(Board.id))
            idea = ideas.create_idea(admin, board, "idea", FANOUT_TITLE, "Measured by make bench.")
            db.session.commit()
        members = or_(
            (User.email_key.like(MEMBER_LIKE)) & (User.role == "member"),
            User.email_key.like(FANOUT_LIKE),
        )
        have = db.session.scalar(select(func.count()).select_from(User).where(members))
        now = utcnow()
        missing = max(followers - have, 0)
        if missing:
            start = db.session.scalar(
                select(func.count()).select_from(User).where(User.email_key.like(FANOUT_LIKE))
            )
            rows = [
                {
                    "email": f"fanout{n}@bench.test",
                    "email_key": f"fanout{n}@bench.test",
                    "display_name": f"Fan-out {n}",
                    "search_name": f"fan-out {n}",
                    "password_hash": "!",  # no password: these never sign in
                    "role": "member",
                    "session_token": f"{n:032x}",
                    "created_at": now,
                }
                for n in range(start, start + missing)
            ]
            for chunk in range(0, len(rows), 5000):
                db.session.execute(insert(User.__table__), rows[chunk : chunk + 5000])
            db.session.commit()
        wanted = (
            select(User.id).where(members, User.id != admin.id).order_by(User.id).limit(followers)
        )
        follows = Follow.__table__
        db.session.execute(
            update(follows)
            .where(follows.c.idea_id == idea.id, follows.c.user_id != admin.id)
            .values(active=follows.c.user_id.in_(wanted))
        )
        have_rows = select(follows.c.user_id).where(follows.c.idea_id == idea.id)
        fresh = wanted.subquery()
        db.session.execute(
            insert(follows).from_select(
                ["user_id", "idea_id", "active", "created_at"],
                select(fresh.c.id, literal(idea.id), literal(True), literal(now)).where(
                    fresh.c.id.not_in(have_rows)
                ),
            )
        )
        active = select(func.count()).where(follows.c.idea_id == idea.id, follows.c.active)
        db.session.execute(
            update(Idea).where(Idea.id == idea.id).values(follower_count=active.scalar_subquery())
        )
        db.session.commit()
        count = db.session.scalar(active)
        return {
            "idea_id": idea.id,
            "followers": count,
            "expected_notifications": db.session.scalar(
                active.where(follows.c.user_id != admin.id)
            ),
            "seconds": round(time.perf_counter() - started, 2),
        }


def fanout_run(idea_id: int) -> dict:
    """Fan out the idea's newest pending event (the last measured status change), timed;
    the earlier ones of the same run are marked done without rows (bookkeeping: one
    fan-out is the figure). Then its rows are counted and deleted."""
    from sqlalchemy import delete, func, select, update

    from ideaboard.extensions import db
    from ideaboard.models import Event, Notification, utcnow
    from ideaboard.services import notifications

    app = _app()
    with app.app_context():
        pending = list(
            db.session.scalars(
                select(Event.id)
                .where(Event.idea_id == idea_id, Event.fanned_out_at.is_(None))
                .order_by(Event.id)
            )
        )
        if not pending:
            raise SystemExit("no pending event on the fan-out idea: did the POSTs succeed?")
        last = pending[-1]
        db.session.execute(
            update(Event).where(Event.id.in_(pending[:-1])).values(fanned_out_at=utcnow())
        )
        db.session.commit()
        started = time.perf_counter()
        written = notifications.fan_out(last)
        db.session.commit()
        seconds = time.perf_counter() - started
        rows = db.session.scalar(
            select(func.count()).select_from(Notification).where(Notification.event_id == last)
        )
        again = notifications.fan_out(last)
        db.session.commit()
        db.session.execute(delete(Notification).where(Notification.event_id == last))
        db.session.commit()
        return {
            "event_id": last,
            "events_marked_without_rows": len(pending) - 1,
            "written": written,
            "rows": rows,
            "second_fan_out_wrote": again,
            "seconds": round(seconds, 3),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info")
    p_info.add_argument("--vote-ideas", type=int, default=1000)
    p_info.add_argument("--hot", type=int, default=None)
    p_mint = sub.add_parser("mint")
    p_mint.add_argument("--sessions", type=int, default=200)
    p_mint.add_argument("--out", type=Path, required=True)
    p_mint.add_argument("--user-agent", required=True)
    p_mint.add_argument("--remote-addr", default="127.0.0.1")
    p_mint.add_argument("--admin", action="store_true", help="the bench admin's session only")
    sub.add_parser("mismatches")
    p_setup = sub.add_parser("fanout-setup")
    p_setup.add_argument("--followers", type=int, default=50_000)
    p_run = sub.add_parser("fanout-run")
    p_run.add_argument("--idea", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "info":
        result = info(args.vote_ideas, args.hot)
    elif args.command == "mint":
        result = mint(args.sessions, args.out, args.user_agent, args.remote_addr, args.admin)
    elif args.command == "fanout-setup":
        result = fanout_setup(args.followers)
    elif args.command == "fanout-run":
        result = fanout_run(args.idea)
    else:
        result = mismatches()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
