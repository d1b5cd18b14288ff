"""Bulk benchmark data: `python bench/seed.py` (or `make bench-seed`) fills a database in minutes.

    python bench/seed.py [--ideas N --votes N --comments N --members N ...] [--state FILE]
    python bench/seed.py --app 'ideaboard:create_app({"PASSWORD_HASH_METHOD": "..."})' ...

The database is the one the app is configured with (DATABASE_URL, else SQLite in
IDEABOARD_INSTANCE), exactly as for `flask --app wsgi`; `--app` takes the same values as
flask's. `make bench`, `make loadtest` and the tests run it; it is no part of the app.

Nothing here goes through the per-row services: rows are generated in Python and written
with bulk Core inserts (executemany) in chunks, committed chunk by chunk so memory stays
flat; on PostgreSQL the large tables go through COPY. The denormalised counts are then made
exact from the rows with one UPDATE ... FROM per table, as the services would have kept them.

Every member (`bench{i}@bench.test`) and the staff user `bench-staff@bench.test` share the
password BENCH_PASSWORD, hashed once, so a load test can sign any of them in.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import click
from flask.cli import ScriptInfo, with_appcontext
from sqlalchemy import Connection, Table, bindparam, func, insert, select, text, update

from ideaboard import create_app
from ideaboard.extensions import db
from ideaboard.models import (
    SCOPE,
    Board,
    Comment,
    Community,
    CommunityMember,
    Idea,
    Kind,
    Reply,
    Role,
    Status,
    StatusChange,
    Thread,
    ThreadFollow,
    User,
    Vote,
    utcnow,
)
from ideaboard.models.idea import title_key
from ideaboard.models.user import new_session_token
from ideaboard.perf.freshness import content_changed
from ideaboard.services import accounts
from ideaboard.services.ideas import trending_score

BENCH_PASSWORD = "bench password 123"
STAFF_EMAIL = "bench-staff@bench.test"
ADMIN_EMAIL = "bench-admin@bench.test"  # for the admin-area scenarios
DEFAULT_STATE = Path(__file__).resolve().parent / "state.json"
SPAN = timedelta(days=730)  # ideas are spread over the last two years

# Rows per executemany / COPY and per commit.
CHUNK = {"users": 10_000, "ideas": 5_000, "votes": 50_000, "comments": 20_000}

# Final statuses: most ideas are only heard, fewer get further along the roadmap.
STATUS_WEIGHTS = {
    Status.HEARD: 55,
    Status.UNDER_REVIEW: 15,
    Status.PLANNED: 10,
    Status.IN_PROGRESS: 7,
    Status.SHIPPED: 8,
    Status.DECLINED: 5,
}
KIND_WEIGHTS = {Kind.IDEA: 65, Kind.PROBLEM: 25, Kind.PRODUCT: 10}
RUSSIAN_SHARE = 0.15
THREAD_MAX = 500  # comments on one idea, other than the hot one

# --- word lists ------------------------------------------------------------------------

FIRST_LATIN = (
    "Anna Ben Carla David Elena Farid Grace Hiro Ines Jonas Kemal Lena Maria Noah Olga "
    "Paul Rosa Sam Tomás Uma Victor Wen Yusuf Zoe Agnieszka Björn Chloé Diego Emeka Fatima"
).split()
LAST_LATIN = (
    "Smith Novak García Müller Kim Silva Brown Rossi Nowak Jensen Okafor Dubois Tanaka "
    "Costa Fischer Hansen Kowalski Martin Nguyen O'Brien Petrov Schmidt Walker Yilmaz"
).split()
RU_MEN = (("Иван", "Смирнов"), ("Алексей", "Кузнецов"), ("Дмитрий", "Соколов"),
          ("Сергей", "Козлов"), ("Павел", "Новиков"), ("Андрей", "Морозов"),
          ("Михаил", "Волков"), ("Никита", "Лебедев"))  # fmt: skip
RU_WOMEN = (("Мария", "Иванова"), ("Ольга", "Попова"), ("Анна", "Лебедева"),
            ("Елена", "Новикова"), ("Наталья", "Козлова"), ("Татьяна", "Морозова"),
            ("Ксения", "Соколова"), ("Дарья", "Волкова"))  # fmt: skip
HANDLE_WORDS = "pixel nova quiet rapid amber delta maple orbit cedar lumen".split()

EN_VERBS = (
    "Add Improve Allow Support Export Show Hide Sync Share Schedule Customize Filter Sort "
    "Import Archive Pin Mute Group Print Translate"
).split()
EN_OBJECTS = (
    "reports|tasks|invoices|comments|projects|notifications|attachments|contacts|"
    "calendar events|dashboards|templates|tags|files|photos|timesheets|orders|tickets|"
    "labels|charts|messages"
).split("|")
EN_CONTEXTS = (
    "in the mobile app|on the web dashboard|in dark mode|to CSV|to PDF|via the API|"
    "for admins|for guests|on tablets|when offline|from Slack|by email|in bulk|per team|"
    "with keyboard shortcuts|on Android|on iOS|in the calendar|by due date|from Excel"
).split("|")
EN_ISSUES = (
    "do not load|are slow to open|crash the app|show the wrong time zone|"
    "disappear after sync|are duplicated|fail to export|look broken in dark mode|"
    "cannot be searched|ignore my settings|are cut off on mobile|freeze the browser"
).split("|")
EN_PRODUCTS = (
    "desktop app|browser extension|Linux client|Apple Watch app|smart TV app|CLI tool|"
    "Zapier connector|Outlook add-in|public API|self-hosted edition|mobile scanner"
).split("|")
EN_AUDIENCES = (
    "small teams|freelancers|schools|field workers|accountants|agencies|nonprofits|"
    "support teams|warehouses|clinics"
).split("|")
EN_ROLES = "finance sales support design marketing operations legal warehouse".split()
EN_SENTENCES = (
    "Right now {obj} {issue}, which slows the whole team down.",
    "Our {role} team asks for this every week.",
    "It would save us about {n} hours a month.",
    "We tried a workaround with spreadsheets but it breaks all the time.",
    "Competitors already offer {obj} {ctx}.",
    "Please make it possible to {verb} {obj} {ctx}.",
    "This matters most for our {role} people on the road.",
    "Happy to test an early version.",
    "We have {n} people using this every day.",
    "The current way takes {n} clicks for something simple.",
    "Ideally this would also work {ctx}.",
    "Our customers keep asking why {obj} {issue}.",
    "A setting per workspace would be enough for us.",
    "This is the main reason our {role} team still uses another tool.",
    "Would love to see this on the roadmap.",
    "Related: being able to {verb} {obj} would be nice as well.",
    "We are on the yearly plan with {n} seats.",
    "It worked fine until the last update.",
)

RU_VERBS = (
    "Добавить Улучшить Разрешить Показывать Экспортировать Синхронизировать Скрывать "
    "Настроить Группировать Печатать"
).split()
RU_OBJECTS = (
    "отчёты задачи счета комментарии проекты уведомления вложения контакты шаблоны метки"
).split()
RU_CONTEXTS = (
    "в мобильном приложении|в тёмной теме|в CSV|в PDF|через API|для администраторов|"
    "на планшете|без интернета|по почте|в календаре|с экспортом в Excel"
).split("|")
RU_SENTENCES = (
    "Сейчас {obj} приходится выгружать вручную, это долго.",
    "Наша команда {role} просит об этом каждую неделю.",
    "Это сэкономит нам примерно {n} часов в месяц.",
    "Очень не хватает уведомления о новых комментариях.",
    "В мобильном приложении это особенно неудобно.",
    "Готовы протестировать раннюю версию.",
    "Экспорт в Excel тоже подойдёт.",
    "У конкурентов это уже есть.",
    "Пользуемся сервисом {n} месяцев, в остальном всё отлично.",
    "Хотелось бы одну настройку для всей команды.",
    "После последнего обновления стало хуже.",
    "Просим добавить это в план.",
)
RU_ROLES = "продаж поддержки бухгалтерии дизайна маркетинга склада".split()

COMMENTS_EN = (
    "+1, we need this too.",
    "Any update on this?",
    "This would help our team a lot.",
    "Same problem here on Android 14.",
    "We would pay extra for this.",
    "Is there a workaround until then?",
    "Still happening after the last update.",
    "Exactly what we need for the mobile app.",
    "Please also support export to CSV.",
    "Dark mode would make this much nicer.",
)
COMMENTS_RU = (
    "Поддерживаю!",
    "Мы тоже ждём.",
    "Есть новости?",
    "Очень нужно для мобильного приложения.",
    "Та же проблема, Android 14.",
)
OFFICIAL_COMMENTS = (
    "Thanks for all the votes: this is on our radar.",
    "We are looking into it and will post an update here.",
    "Спасибо! Мы уже работаем над этим.",
)
STEP_NOTES = ("", "", "", "Thanks, we are looking at it.", "Scheduled for next quarter.")


# --- plumbing --------------------------------------------------------------------------


class Progress:
    """One line per chunk: `votes: 400,000/1,000,000 (123k/s)`."""

    def __init__(self, label: str, total: int, echo: Callable[[str], object]) -> None:
        self.label, self.total, self.echo = label, total, echo
        self.done = 0
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def add(self, n: int) -> None:
        self.done += n
        self.echo(f"{self.label}: {self.done:,}/{self.total:,} ({_rate(self.done, self.seconds)})")

    def finish(self) -> float:
        seconds = self.seconds
        self.echo(f"{self.label}: done, {self.done:,} in {seconds:.1f} s")
        return seconds


def _rate(n: int, seconds: float) -> str:
    per_s = n / seconds if seconds > 0 else float("inf")
    if per_s >= 1_000_000:
        return f"{per_s / 1_000_000:.1f}M/s"
    if per_s >= 1_000:
        return f"{per_s / 1_000:.0f}k/s"
    return f"{per_s:.0f}/s"


class Writer:
    """Bulk writes on one connection, committed per chunk.

    SQLite: executemany through Core. PostgreSQL: COPY, about 1.5 times as fast as
    SQLAlchemy's batched INSERTs for votes here (the server's foreign-key and index work
    is most of what is left); the users go through Core.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def insert(self, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            self._copy(table, columns, rows)
        else:
            self.conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        self.conn.commit()

    def _copy(self, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
        if not self.conn.in_transaction():
            self.conn.begin()  # so that commit() below ends the driver's transaction too
        raw = self.conn.connection.driver_connection
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        # Around SQLAlchemy: counted with this transaction.
        content_changed(self.conn, community=bool(table.info.get(SCOPE)))


def _chunks(items: Iterable, size: int) -> Iterable[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the plan --------------------------------------------------------------------------


def allocate_votes(total: int, n: int, cap: int, rng: random.Random) -> list[int]:
    """How many votes each of n ideas gets: Pareto-skewed, each at most `cap`, sum `total`.

    The weights are the expected order statistics of a Pareto law (alpha 1.5), jittered a
    little and dealt out to the ideas at random. With 100,000 ideas and a million votes the
    top idea gets about 10,000 votes, the tenth about 2,000 and the median idea 3 or 4.
    """
    if total > n * cap:
        raise ValueError(f"{total:,} votes need more than {n:,} ideas x {cap:,} members")
    weights = [((n / r) ** (1 / 1.5) - 0.9) * rng.uniform(0.85, 1.15) for r in range(1, n + 1)]
    rng.shuffle(weights)
    counts = [0] * n
    remaining = total
    active = list(range(n))
    while remaining > 0:
        active = [i for i in active if counts[i] < cap]
        scale = remaining / sum(weights[i] for i in active)
        given = 0
        fractions = []
        for i in active:
            share = weights[i] * scale
            add = min(int(share), cap - counts[i])
            counts[i] += add
            given += add
            if counts[i] < cap:
                fractions.append((share - int(share), i))
        remaining -= given
        # Rounding left fewer votes than open ideas: largest remainders get one more each.
        if 0 < remaining <= len(fractions):
            fractions.sort(reverse=True)
            for _, i in fractions[:remaining]:
                counts[i] += 1
            remaining = 0
    return counts


def allocate_comments(
    total: int, votes: list[int], hot: int, hot_comments: int, rng: random.Random
) -> list[int]:
    """Comments per idea: `hot_comments` on the hot idea, the rest skewed over the others
    (busier where there are more votes, with plenty of noise), no thread above
    THREAD_MAX unless there are too many comments to spread."""
    n = len(votes)
    counts = [0] * n
    counts[hot] = min(hot_comments, total)
    rest = total - counts[hot]
    if n == 1:
        counts[hot] += rest
    if not rest or n == 1:
        return counts
    cap = max(THREAD_MAX, math.ceil(2 * rest / (n - 1)))
    weights = [(v + 1) ** 0.7 * rng.paretovariate(2.0) for v in votes]
    weights[hot] = 0.0
    cum_weights = list(itertools.accumulate(weights))
    while rest:  # draws that land on a full thread are simply drawn again
        for i in rng.choices(range(n), cum_weights=cum_weights, k=rest):
            if counts[i] < cap:
                counts[i] += 1
                rest -= 1
    return counts


def roadmap_path(final: str, rng: random.Random) -> list[str]:
    """The statuses an idea went through to reach `final`, starting with heard."""
    line = [s.value for s in (Status.HEARD, Status.UNDER_REVIEW, Status.PLANNED)]
    line += [Status.IN_PROGRESS.value, Status.SHIPPED.value]
    if final == Status.DECLINED:
        middle = [Status.UNDER_REVIEW.value] if rng.random() < 0.5 else []
        return [Status.HEARD.value, *middle, Status.DECLINED.value]
    return line[: line.index(final) + 1]


def _moments(rng: random.Random, start: float, end: float, k: int, skew: float) -> list[float]:
    """k sorted moments in [start, end], bunched towards the start when skew > 1."""
    return sorted(start + (end - start) * rng.random() ** skew for _ in range(k))


def display_name(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return f"{rng.choice(FIRST_LATIN)} {rng.choice(LAST_LATIN)}"
    if r < 0.9:
        first, last = rng.choice(RU_MEN if rng.random() < 0.5 else RU_WOMEN)
        return f"{first} {last}"
    return f"{rng.choice(HANDLE_WORDS)}_{rng.choice(FIRST_LATIN).lower()}{rng.randrange(100)}"


def idea_text(kind: str, rng: random.Random) -> tuple[str, str]:
    """A title and a Markdown body made from the word lists."""
    if rng.random() < RUSSIAN_SHARE:
        obj, ctx = rng.choice(RU_OBJECTS), rng.choice(RU_CONTEXTS)
        title = f"{rng.choice(RU_VERBS)} {obj} {ctx}"
        sentences = [
            sentence.format(obj=obj, role=rng.choice(RU_ROLES), n=rng.randint(2, 40))
            for sentence in rng.sample(RU_SENTENCES, rng.randint(1, 4))
        ]
        return title, " ".join(sentences)
    obj, ctx = rng.choice(EN_OBJECTS), rng.choice(EN_CONTEXTS)
    if kind == Kind.PROBLEM:
        title = f"{obj.capitalize()} {rng.choice(EN_ISSUES)} {ctx}"
    elif kind == Kind.PRODUCT:
        title = f"A {rng.choice(EN_PRODUCTS)} for {rng.choice(EN_AUDIENCES)}"
    else:
        title = f"{rng.choice(EN_VERBS)} {obj} {ctx}"
    sentences = [
        sentence.format(
            obj=rng.choice(EN_OBJECTS),
            issue=rng.choice(EN_ISSUES),
            role=rng.choice(EN_ROLES),
            n=rng.randint(2, 40),
            ctx=rng.choice(EN_CONTEXTS),
            verb=rng.choice(EN_VERBS).lower(),
        )
        for sentence in rng.sample(EN_SENTENCES, rng.randint(1, 5))
    ]
    if rng.random() < 0.2:
        sentences.append(f"\n\n**Steps:**\n\n1. Open {obj}\n2. Try it {ctx}\n3. Nothing happens")
    return title, " ".join(sentences)


def comment_text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return rng.choice(COMMENTS_EN)
    if r < 0.65:
        return rng.choice(COMMENTS_RU)
    return (
        f"{rng.choice(COMMENTS_EN)} "
        f"{rng.choice(EN_VERBS)} {rng.choice(EN_OBJECTS)} {rng.choice(EN_CONTEXTS)} please."
    )


# --- the run ---------------------------------------------------------------------------


@dataclass
class SeedResult:
    hot_idea_id: int
    ideas: int
    votes: int
    comments: int
    members: int
    database: str
    seconds: float


def _reserve_ids(conn: Connection, table: Table, n: int) -> int:
    """The first of n consecutive ids for rows written with explicit ids.

    On PostgreSQL the sequence is moved past them first, so the app's own inserts never
    collide with them, even if the seeding stops half-way. (SQLite hands out max(id) + 1:
    seed a database nobody else writes to meanwhile.)
    """
    first = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one() + 1
    if conn.dialect.name == "postgresql" and n:
        seq = f"pg_get_serial_sequence('{table.name}', 'id')"
        first = max(first, conn.exec_driver_sql(f"SELECT nextval({seq})").scalar_one())
        conn.exec_driver_sql(f"SELECT setval({seq}, {first + n - 1})")
    conn.commit()
    return first


def _make_users(
    w: Writer, members: int, rng: random.Random, now: datetime, echo
) -> tuple[int, list[int]]:
    """The staff user and `members` members (reused if a previous run made them)."""
    users = User.__table__
    conn = w.conn
    existing = dict(
        conn.execute(
            select(users.c.email_key, users.c.id).where(users.c.email_key.like("%@bench.test"))
        ).all()
    )
    password_hash = accounts.hash_password(BENCH_PASSWORD)  # once: scrypt is slow on purpose
    columns = ("id", "email", "email_key", "display_name", "password_hash", "role")
    columns += ("session_token", "created_at")
    wanted = [(STAFF_EMAIL, "Bench Staff", Role.STAFF.value)]
    wanted += [(f"bench{i}@bench.test", None, Role.MEMBER.value) for i in range(1, members + 1)]
    wanted += [(ADMIN_EMAIL, "Bench Admin", Role.ADMIN.value)]
    next_id = _reserve_ids(
        conn, users, sum(accounts.email_key(e) not in existing for e, *_ in wanted)
    )
    ids: list[int] = []
    new_rows: list[tuple] = []
    start = now - SPAN - timedelta(days=60)
    for email, name, role in wanted:
        key = accounts.email_key(email)
        if key in existing:
            ids.append(existing[key])
            continue
        ids.append(next_id)
        joined = start + timedelta(seconds=rng.random() * 60 * 86400)
        name = name or display_name(rng)
        new_rows.append(
            (next_id, email, key, name, password_hash, role, new_session_token(), joined)
        )
        next_id += 1
    progress = Progress("members", len(new_rows), echo)
    for batch in _chunks(new_rows, CHUNK["users"]):
        w.conn.execute(insert(users), [dict(zip(columns, row, strict=True)) for row in batch])
        w.conn.commit()
        progress.add(len(batch))
    progress.finish()
    return ids[0], ids[1:-1]  # the admin, last, is neither staff nor a voting member


def _make_boards(conn: Connection, count: int, now: datetime) -> list[int]:
    """bench-1 ... bench-N (reused if present), plus `general`."""
    boards = Board.__table__
    ids = []
    for i in range(1, count + 1):
        slug = f"bench-{i}"
        board_id = conn.execute(select(boards.c.id).where(boards.c.slug == slug)).scalar()
        if board_id is None:
            board_id = conn.execute(
                insert(boards)
                .values(
                    slug=slug,
                    name=f"Bench board {i}",
                    description="Generated by bench/seed.py.",
                    created_at=now - SPAN,
                )
                .returning(boards.c.id)
            ).scalar_one()
        ids.append(board_id)
    general = conn.execute(select(boards.c.id).where(boards.c.slug == "general")).scalar()
    if general is not None:
        ids.append(general)
    conn.commit()
    return ids or _make_boards(conn, 1, now)  # ideas need a board


def _fix_counts(conn: Connection) -> list[int]:
    """Make vote_count and comment_count equal their rows: one UPDATE ... FROM per table;
    then the follows the app would have written, and follower_count.

    The counts were written with the ideas already, so normally nothing changes; only rows
    that differ are touched. Returns the ids whose vote count changed.
    """
    changed = conn.execute(
        text(
            "UPDATE ideas SET vote_count = c.n FROM ("
            "SELECT ideas.id AS idea_id, count(votes.id) AS n FROM ideas "
            "LEFT JOIN votes ON votes.idea_id = ideas.id GROUP BY ideas.id) AS c "
            "WHERE ideas.id = c.idea_id AND ideas.vote_count <> c.n RETURNING ideas.id"
        )
    ).scalars()
    changed_ids = list(changed)
    conn.execute(
        text(
            "UPDATE ideas SET comment_count = c.n FROM ("
            "SELECT ideas.id AS idea_id, count(comments.id) AS n FROM ideas "
            "LEFT JOIN comments ON comments.idea_id = ideas.id GROUP BY ideas.id) AS c "
            "WHERE ideas.id = c.idea_id AND ideas.comment_count <> c.n"
        )
    )
    # Authors, voters and commenters follow their ideas, as the app's own writes make them
    # (services/follows.py): the fan-out and the follower counts see real sizes.
    conn.execute(
        text(
            "INSERT INTO follows (user_id, idea_id, active, created_at) "
            "SELECT user_id, idea_id, true, CURRENT_TIMESTAMP FROM ("
            "SELECT author_id AS user_id, id AS idea_id FROM ideas "
            "UNION SELECT user_id, idea_id FROM votes "
            "UNION SELECT author_id, idea_id FROM comments) AS involved WHERE true "
            "ON CONFLICT (user_id, idea_id) DO NOTHING"
        )
    )
    conn.execute(
        text(
            "UPDATE ideas SET follower_count = c.n FROM ("
            "SELECT idea_id, count(*) AS n FROM follows WHERE active GROUP BY idea_id) AS c "
            "WHERE ideas.id = c.idea_id AND ideas.follower_count <> c.n"
        )
    )
    conn.commit()
    return changed_ids


def _rescore(conn: Connection, idea_ids: list[int]) -> None:
    """Recompute trending_score in Python (same function as the app; SQLite may lack log10)."""
    ideas = Idea.__table__
    for batch in _chunks(idea_ids, 5_000):
        rows = conn.execute(
            select(ideas.c.id, ideas.c.vote_count, ideas.c.created_at).where(ideas.c.id.in_(batch))
        ).all()
        conn.execute(
            update(ideas)
            .where(ideas.c.id == bindparam("_id"))
            .values(trending_score=bindparam("_score")),
            [{"_id": r.id, "_score": trending_score(r.vote_count, r.created_at)} for r in rows],
        )
        conn.commit()


def _analyze(dialect: str) -> None:
    """Give the planner statistics for the new data."""
    if dialect == "postgresql":
        # VACUUM cannot run inside a transaction block.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        return
    # On SQLite a plain transaction: the app's "begin" hook issues BEGIN even on an
    # AUTOCOMMIT connection, which would then roll ANALYZE back.
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def seed_database(
    *,
    ideas: int,
    votes: int,
    comments: int,
    members: int,
    boards: int = 6,
    seed: int = 1,
    hot_comments: int = 200,
    echo: Callable[[str], object] = print,
) -> SeedResult:
    """Fill the database with benchmark data; see the module docstring."""
    started = time.perf_counter()
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    origin = now - SPAN
    span_s = SPAN.total_seconds()
    idea_t, vote_t, comment_t, change_t = (
        Idea.__table__,
        Vote.__table__,
        Comment.__table__,
        StatusChange.__table__,
    )

    with db.engine.connect() as conn:
        w = Writer(conn)
        dialect = w.dialect
        if dialect == "sqlite":
            # A big page cache for the index updates; sorting for ANALYZE in memory.
            conn.exec_driver_sql("PRAGMA cache_size = -262144")
            conn.exec_driver_sql("PRAGMA temp_store = MEMORY")
            conn.commit()
        echo(f"database: {dialect}")

        staff_id, member_ids = _make_users(w, members, rng, now, echo)
        board_ids = _make_boards(conn, boards, now)
        echo(f"boards: {len(board_ids)} ({boards} bench boards + general)")

        # The plan: per idea its creation moment, votes, comments and final status.
        created = sorted(span_s * rng.random() ** 0.8 for _ in range(ideas))  # growing site
        vote_counts = allocate_votes(votes, ideas, len(member_ids), rng)
        hot = max(range(ideas), key=vote_counts.__getitem__)
        comment_counts = allocate_comments(comments, vote_counts, hot, hot_comments, rng)
        statuses = rng.choices(
            [s.value for s in STATUS_WEIGHTS], weights=list(STATUS_WEIGHTS.values()), k=ideas
        )
        if ideas >= len(STATUS_WEIGHTS):  # every status at least once, even in small runs
            for i, status in zip(
                rng.sample(range(ideas), len(STATUS_WEIGHTS)), STATUS_WEIGHTS, strict=True
            ):
                statuses[i] = status.value
        kinds = rng.choices(
            [k.value for k in KIND_WEIGHTS], weights=list(KIND_WEIGHTS.values()), k=ideas
        )
        board_weights = [1 / (j + 1) ** 0.5 for j in range(len(board_ids))]
        last_comment = [
            created[i] + (span_s - created[i]) * rng.random() ** 0.5 if comment_counts[i] else 0.0
            for i in range(ideas)
        ]
        first_id = _reserve_ids(conn, idea_t, ideas)
        hot_id = first_id + hot

        # Ideas, each with its status history (None -> heard, then one row per step).
        idea_cols = ("id", "board_id", "author_id", "kind", "title", "title_key", "body")
        idea_cols += ("status",)
        idea_cols += ("vote_count", "comment_count", "trending_score", "updated_at")
        idea_cols += ("last_activity_at", "version", "created_at")
        change_cols = ("idea_id", "from_status", "to_status", "by_id", "note", "created_at")
        progress = Progress("ideas", ideas, echo)
        changes_made = 0
        # One live idea per title on a board: the titles already there (a --force run) too.
        titles_seen: set[tuple[int, str]] = {
            (board_id, key)
            for board_id, key in conn.execute(
                select(idea_t.c.board_id, idea_t.c.title_key).where(
                    idea_t.c.deleted_at.is_(None), idea_t.c.title_key.is_not(None)
                )
            )
        }
        for lo in range(0, ideas, CHUNK["ideas"]):
            idea_rows, change_rows = [], []
            for i in range(lo, min(lo + CHUNK["ideas"], ideas)):
                idea_id = first_id + i
                author = member_ids[int(len(member_ids) * rng.random() ** 2)]  # some post a lot
                born = origin + timedelta(seconds=created[i])
                path = roadmap_path(statuses[i], rng)
                steps = _moments(rng, created[i], span_s, len(path) - 1, 1.5)
                change_rows.append((idea_id, None, path[0], author, "", born))
                for prev, status, at in zip(path[:-1], path[1:], steps, strict=True):
                    moment = origin + timedelta(seconds=at)
                    change_rows.append(
                        (idea_id, prev, status, staff_id, rng.choice(STEP_NOTES), moment)
                    )
                active = max([created[i], last_comment[i], *steps])
                title, body = idea_text(kinds[i], rng)
                board_id = rng.choices(board_ids, weights=board_weights)[0]
                key = title_key(title)
                if (board_id, key) in titles_seen:
                    title = f"{title} ({idea_id})"
                    key = title_key(title)
                titles_seen.add((board_id, key))
                idea_rows.append(
                    (
                        idea_id,
                        board_id,
                        author,
                        kinds[i],
                        title,
                        key,
                        body,
                        statuses[i],
                        vote_counts[i],
                        comment_counts[i],
                        trending_score(vote_counts[i], born),
                        born,
                        origin + timedelta(seconds=active),
                        1,
                        born,
                    )
                )
            w.insert(idea_t, idea_cols, idea_rows)
            w.insert(change_t, change_cols, change_rows)
            changes_made += len(change_rows)
            progress.add(len(idea_rows))
        progress.finish()
        echo(f"status changes: {changes_made:,}")

        # Votes: for each idea k distinct members (no duplicate pairs by construction).
        vote_cols = ("idea_id", "user_id", "created_at")

        def vote_rows():
            for i, k in enumerate(vote_counts):
                if not k:
                    continue
                idea_id, start = first_id + i, created[i]
                for user_id in sorted(rng.sample(member_ids, k)):
                    at = start + (span_s - start) * rng.random() ** 3  # most votes come early
                    yield (idea_id, user_id, origin + timedelta(seconds=at))

        progress = Progress("votes", votes, echo)
        for batch in _chunks(vote_rows(), CHUNK["votes"]):
            w.insert(vote_t, vote_cols, batch)
            progress.add(len(batch))
        progress.finish()

        # Comments, each idea's last one at its last_activity moment; some official ones.
        comment_cols = ("idea_id", "author_id", "body", "is_official", "created_at")

        def comment_rows():
            for i, k in enumerate(comment_counts):
                if not k:
                    continue
                idea_id = first_id + i
                moments = _moments(rng, created[i], last_comment[i], k - 1, 1.0)
                for at in [*moments, last_comment[i]]:
                    when = origin + timedelta(seconds=at)
                    if rng.random() < 0.02:
                        yield (idea_id, staff_id, rng.choice(OFFICIAL_COMMENTS), True, when)
                    else:
                        author = member_ids[rng.randrange(len(member_ids))]
                        yield (idea_id, author, comment_text(rng), False, when)

        progress = Progress("comments", comments, echo)
        for batch in _chunks(comment_rows(), CHUNK["comments"]):
            w.insert(comment_t, comment_cols, batch)
            progress.add(len(batch))
        progress.finish()

        # Exact counts from the rows, and scores for any count that moved.
        phase = time.perf_counter()
        changed = _fix_counts(conn)
        _rescore(conn, changed)
        echo(f"counts: checked, {len(changed)} corrected ({time.perf_counter() - phase:.1f} s)")

    phase = time.perf_counter()
    _analyze(dialect)
    echo(f"analyze: {time.perf_counter() - phase:.1f} s")
    return SeedResult(
        hot_idea_id=hot_id,
        ideas=ideas,
        votes=votes,
        comments=comments,
        members=members,
        database=dialect,
        seconds=round(time.perf_counter() - started, 1),
    )


# --- communities (issue 14) -------------------------------------------------------------

CLUB_SLUG = "bench-club-{n}"  # bench-club-1 holds the big thread
# Triggers that move community stamps (migration 14e0a1b2c3d4), off during PostgreSQL's
# bulk COPY: each would update the community's row once per reply, and PostgreSQL walks
# every earlier version of a row its own transaction updated. The counts' UPDATE at the
# end moves every seeded community's stamp (and the directory's) once.
_PG_STAMP_TRIGGERS = ("threads", "replies", "community_members", "thread_follows")


@dataclass
class CommunityResult:
    communities: int
    threads: int
    replies: int
    big_thread_id: int
    seconds: float


def seed_communities(
    *,
    communities: int = 20,
    threads: int = 2_000,
    replies: int = 50_000,
    big_thread: int = 10_000,
    seed: int = 1,
    echo: Callable[[str], object] = print,
) -> CommunityResult:
    """Communities bench-club-1..N with threads, replies and members; bench-club-1 has a
    thread of `big_thread` replies (beside the `replies` spread over the others). Reuses
    what a previous run made (by the first club's slug)."""
    started = time.perf_counter()
    rng = random.Random(seed + 14)
    now = utcnow().replace(microsecond=0)
    community_t, thread_t, reply_t = Community.__table__, Thread.__table__, Reply.__table__
    member_t, follow_t = CommunityMember.__table__, ThreadFollow.__table__
    with db.engine.connect() as conn:
        w = Writer(conn)
        first = conn.execute(
            select(community_t.c.id).where(community_t.c.slug == CLUB_SLUG.format(n=1))
        ).scalar()
        if first is not None:
            big = conn.execute(
                select(thread_t.c.id)
                .where(thread_t.c.community_id == first)
                .order_by(thread_t.c.reply_count.desc(), thread_t.c.id)
                .limit(1)
            ).scalar_one()
            conn.commit()
            echo(f"communities: already seeded (big thread {big})")
            return CommunityResult(0, 0, 0, big, 0.0)
        member_ids = list(
            conn.execute(
                select(User.__table__.c.id)
                .where(User.__table__.c.email_key.like("bench%@bench.test"))
                .where(User.__table__.c.role == Role.MEMBER.value)
            ).scalars()
        )
        if not member_ids:
            raise click.ClickException("seed the members first (bench{i}@bench.test)")
        if w.dialect == "postgresql":
            for table in _PG_STAMP_TRIGGERS:
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_stamp")
            conn.commit()
        try:
            cols = ("slug", "name", "description", "rules", "accent", "last_activity_at")
            cols += ("created_at",)
            rows = [
                (
                    CLUB_SLUG.format(n=n),
                    f"Bench club {n}",
                    f"Owners of product {n} talk among themselves.",
                    "Be kind.",
                    f"#{rng.randrange(0x1000000):06x}",
                    now,
                    now - SPAN,
                )
                for n in range(1, communities + 1)
            ]
            conn.execute(insert(community_t), [dict(zip(cols, r, strict=True)) for r in rows])
            conn.commit()
            club_ids = list(
                conn.execute(
                    select(community_t.c.id)
                    .where(community_t.c.slug.like("bench-club-%"))
                    .order_by(community_t.c.id)
                ).scalars()
            )
            echo(f"communities: {len(club_ids)}")

            # Members: a share of the bench members join each club.
            progress = Progress("community members", 0, echo)
            joined = min(len(member_ids), 500)
            member_rows = [
                (club, user, now - SPAN)
                for club in club_ids
                for user in sorted(rng.sample(member_ids, joined))
            ]
            progress.total = len(member_rows)
            for batch in _chunks(member_rows, 20_000):
                w.insert(member_t, ("community_id", "user_id", "created_at"), batch)
                progress.add(len(batch))
            progress.finish()

            # Threads: explicit ids, spread over the clubs; the first is the big thread.
            first_id = _reserve_ids(conn, thread_t, threads)
            thread_club = [club_ids[0]] + [rng.choice(club_ids) for _ in range(threads - 1)]
            thread_author = [rng.choice(member_ids) for _ in range(threads)]
            tcols = ("id", "community_id", "author_id", "title", "body", "pinned")
            tcols += ("last_activity_at", "created_at")
            span_s = SPAN.total_seconds()
            thread_rows = []
            for i in range(threads):
                born = now - SPAN + timedelta(seconds=span_s * rng.random())
                title, body = idea_text("idea", rng)
                pinned = 1 if i % 97 == 1 else 0
                thread_rows.append(
                    (first_id + i, thread_club[i], thread_author[i], title[:140], body,
                     pinned, born, born)
                )  # fmt: skip
            progress = Progress("threads", threads, echo)
            for batch in _chunks(thread_rows, 5_000):
                w.insert(thread_t, tcols, batch)
                progress.add(len(batch))
            progress.finish()
            w.insert(
                follow_t,
                ("user_id", "thread_id", "active", "created_at"),
                [(thread_author[i], first_id + i, True, now) for i in range(threads)],
            )

            # Replies: the big thread's, then the rest spread over the other threads.
            def reply_rows():
                for _ in range(big_thread):
                    yield (first_id, club_ids[0], rng.choice(member_ids), comment_text(rng), now)
                for _ in range(replies):
                    i = 1 + rng.randrange(max(threads - 1, 1)) if threads > 1 else 0
                    author = rng.choice(member_ids)
                    yield (first_id + i, thread_club[i], author, comment_text(rng), now)

            rcols = ("thread_id", "community_id", "author_id", "body", "created_at")
            progress = Progress("replies", big_thread + replies, echo)
            for batch in _chunks(reply_rows(), 20_000):
                w.insert(reply_t, rcols, batch)
                progress.add(len(batch))
            progress.finish()
        finally:
            if w.dialect == "postgresql":
                conn.rollback()
                for table in _PG_STAMP_TRIGGERS:
                    conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {table}_stamp")
                conn.commit()

        # Exact counts from the rows (and, through the triggers, every club's stamp).
        phase = time.perf_counter()
        conn.exec_driver_sql(
            "UPDATE threads SET reply_count = (SELECT count(*) FROM replies r "
            "WHERE r.thread_id = threads.id AND r.deleted_at IS NULL AND r.held_at IS NULL), "
            "follower_count = (SELECT count(*) FROM thread_follows f "
            "WHERE f.thread_id = threads.id AND f.active) "
            f"WHERE id >= {first_id}"
        )
        conn.execute(
            text(
                "UPDATE communities SET "
                "member_count = (SELECT count(*) FROM community_members m "
                "WHERE m.community_id = communities.id), "
                "thread_count = (SELECT count(*) FROM threads t "
                "WHERE t.community_id = communities.id "
                "AND t.deleted_at IS NULL AND t.held_at IS NULL), "
                "reply_count = (SELECT count(*) FROM replies r "
                "WHERE r.community_id = communities.id "
                "AND r.deleted_at IS NULL AND r.held_at IS NULL) "
                "WHERE slug LIKE :clubs"  # a bound pattern: psycopg reads a bare % as a marker
            ),
            {"clubs": CLUB_SLUG.format(n="%")},
        )
        conn.commit()
        echo(f"community counts: {time.perf_counter() - phase:.1f} s")
    _analyze(db.engine.dialect.name)
    return CommunityResult(
        communities=communities,
        threads=threads,
        replies=big_thread + replies,
        big_thread_id=first_id,
        seconds=round(time.perf_counter() - started, 1),
    )


# --- the command -----------------------------------------------------------------------


def _use_app(ctx: click.Context, _param: click.Parameter, spec: str | None) -> str | None:
    """--app: seed the app that `flask --app SPEC` would load instead of create_app()."""
    if spec:
        info = ctx.ensure_object(ScriptInfo)
        info.create_app, info.app_import_path = None, spec
    return spec


@click.command("seed")
@click.option(
    "--app",
    callback=_use_app,
    is_eager=True,
    expose_value=False,
    metavar="SPEC",
    help="The app to seed, as flask's --app takes it (default: create_app(), as wsgi.py).",
)
@click.option("--ideas", default=100_000, type=click.IntRange(min=1), show_default=True)
@click.option("--votes", default=1_000_000, type=click.IntRange(min=0), show_default=True)
@click.option("--comments", default=200_000, type=click.IntRange(min=0), show_default=True)
@click.option("--members", default=20_000, type=click.IntRange(min=1), show_default=True)
@click.option("--boards", default=6, type=click.IntRange(min=0), show_default=True)
@click.option("--seed", default=1, show_default=True, help="Random seed, for repeatable data.")
@click.option(
    "--hot-comments",
    default=200,
    type=click.IntRange(min=0),
    show_default=True,
    help="Comments on the idea with the most votes.",
)
@click.option("--communities", default=20, type=click.IntRange(min=1), show_default=True)
@click.option("--threads", default=2_000, type=click.IntRange(min=1), show_default=True)
@click.option(
    "--replies",
    default=50_000,
    type=click.IntRange(min=0),
    show_default=True,
    help="Replies spread over the threads, beside the big thread's.",
)
@click.option(
    "--big-thread",
    default=10_000,
    type=click.IntRange(min=0),
    show_default=True,
    help="Replies in bench-club-1's first thread (the thread-page scenarios).",
)
@click.option(
    "--communities-only",
    is_flag=True,
    help="Only add the communities (to a database seeded before issue 14).",
)
@click.option("--force", is_flag=True, help="Add the data even if the database has ideas.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE,
    show_default=True,
    help="Where to write what was made (hot idea id, counts, timing) as JSON.",
)
@with_appcontext
def seed_command(
    ideas: int,
    votes: int,
    comments: int,
    members: int,
    boards: int,
    seed: int,
    hot_comments: int,
    communities: int,
    threads: int,
    replies: int,
    big_thread: int,
    communities_only: bool,
    force: bool,
    state_path: Path,
) -> None:
    """Fill the database with benchmark data in minutes (bulk inserts, not services)."""
    club_sizes = dict(
        communities=communities,
        threads=threads,
        replies=replies,
        big_thread=big_thread,
        seed=seed,
        echo=click.echo,
    )
    if communities_only:
        db.session.commit()
        made = seed_communities(**club_sizes)
        click.echo(f"Communities: big thread {made.big_thread_id} ({made.seconds:.1f} s).")
        return
    existing = db.session.scalar(select(func.count()).select_from(Idea))
    db.session.commit()  # end this read: the bulk writes use their own connection
    if existing and not force:
        click.echo(
            f"The database already has {existing:,} ideas; use --force to add the "
            "benchmark data anyway.",
            err=True,
        )
        sys.exit(1)
    if votes > ideas * members:
        click.echo(f"--votes {votes:,} is more than --ideas x --members allows.", err=True)
        sys.exit(1)
    result = seed_database(
        ideas=ideas,
        votes=votes,
        comments=comments,
        members=members,
        boards=boards,
        seed=seed,
        hot_comments=hot_comments,
        echo=click.echo,
    )
    made = seed_communities(**club_sizes)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(asdict(result), indent=2) + "\n")
    click.echo(
        f"Seeded {result.database} in {result.seconds:.1f} s: {ideas:,} ideas, {votes:,} votes, "
        f"{comments:,} comments, {members:,} members (+1 staff), {boards} boards + general."
    )
    click.echo(
        f"Hot idea: {result.hot_idea_id}. Sign in as bench1@bench.test ... "
        f"bench{members}@bench.test, {STAFF_EMAIL} or {ADMIN_EMAIL} with the password "
        f"{BENCH_PASSWORD!r}."
    )
    click.echo(
        f"Communities: {made.communities} (bench-club-1 ...), {made.threads:,} threads, "
        f"{made.replies:,} replies; the big thread is {made.big_thread_id}."
    )
    click.echo(f"State written to {state_path}.")


def main(argv: list[str] | None = None) -> None:
    """Run the command with the app create_app() builds from the environment (or --app)."""
    info = ScriptInfo(create_app=create_app, set_debug_flag=False)
    seed_command.main(argv, prog_name="python bench/seed.py", obj=info)


if __name__ == "__main__":
    main()
