#!/usr/bin/env python3
"""The benchmark: `make bench` (SQLite) or `make bench-postgres`. See bench/README.md.

Seeds the database if needed, serves the app with gunicorn and the production settings in
gunicorn.conf.py on a free loopback port, and drives it with wrk at 32 connections. The same
run first measures a bare Flask endpoint (bench/bare.py) under the same settings: the ceiling
for this machine, that every page is reported against. Prints a table and writes the numbers
to bench/results/<UTC time>-<backend>-<N>ideas.json.

Every load loop is bounded in time (-d) and in requests (a per-thread cap in the wrk
scripts) and targets http://127.0.0.1:<port> only. The server, the database, the CPU watch
and the quiet wait are bench/harness.py's, shared with bench/loadtest.py.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

# `python bench/run.py` puts bench/ first on the path, not the project root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench import live as live_bench
from bench.harness import BENCH, GUNICORN_CONF, LOOPBACK, RESULTS, ROOT, Database, Server, log

LUA = BENCH / "lua"
DEFAULT_INSTANCE = BENCH / "instance"
DEFAULT_PG = "postgresql://postgres@127.0.0.1/bench"
USER_AGENT = "ideaboard-bench/1 (wrk)"  # also in lua/common.lua: minted sessions are bound to it
FRONTEND_BUDGET = 60 * 1024  # "under 60 KB compressed on first load"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


# --------------------------------------------------------------------------------------
# Scenarios and targets


@dataclass
class Target:
    """What the issue asks of one scenario; None means no requirement of that kind."""

    min_ratio: float | None = None  # of the bare endpoint's req/s
    max_p99_ms: float | None = None
    max_p50_ms: float | None = None
    zero_errors: bool = True

    def describe(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f"≥{self.min_ratio:.0%} bare")
        if self.max_p50_ms is not None:
            parts.append(f"p50≤{self.max_p50_ms:g}ms")
        if self.max_p99_ms is not None:
            parts.append(f"p99≤{self.max_p99_ms:g}ms")
        if self.zero_errors:
            parts.append("0 err")
        return ", ".join(parts) or "—"


@dataclass
class Scenario:
    name: str
    title: str
    script: str  # file in bench/lua
    path: str = "/"  # filled in once the data is known
    target: Target | None = None
    accept: str | None = None
    connections: int | None = None  # None: the run's --connections (32)
    who: str = "members"  # whose sessions member_get.lua sends: members' or the bench admin's


PUBLIC = Target(min_ratio=0.40, max_p99_ms=50)
SIGNED_IN = Target(min_ratio=0.15, max_p99_ms=100)

SCENARIOS = [
    Scenario("board_anon", "board page, anonymous (/ideas)", "get.lua", "/ideas", PUBLIC),
    Scenario("board_member", "board page, signed in", "member_get.lua", "/ideas", SIGNED_IN),
    Scenario("idea_anon", "hot idea page, anonymous", "get.lua", "/ideas/{hot}", PUBLIC),
    Scenario(
        "idea_member", "hot idea page, signed in", "member_get.lua", "/ideas/{hot}", SIGNED_IN
    ),
    Scenario("roadmap_anon", "roadmap, anonymous", "get.lua", "/roadmap", PUBLIC),
    Scenario(
        "search_anon", "search, anonymous", "search.lua", "/ideas?q={word}", Target(max_p50_ms=20)
    ),
    # The same searches one at a time: what a search itself costs, without 31 others queued
    # in front of it (at 32 connections p50 is mostly that queue; see bench/README.md).
    Scenario(
        "search_alone",
        "search, one client",
        "search.lua",
        "/ideas?q={word}",
        Target(max_p50_ms=20),
        connections=1,
    ),
    Scenario(
        "api_list",
        "JSON list (/api/v1/ideas)",
        "get.lua",
        "/api/v1/ideas",
        Target(),
        accept="application/json",
    ),
    Scenario(
        "vote", "vote toggles, many members", "vote.lua", "/ideas/<id>/vote", Target(min_ratio=0.15)
    ),
]
# The admin area (/admin, /admin/members): a few admins at a time, not a crowd, so a few
# connections; the bench admin's session (bench-admin@bench.test, seeded by bench/seed.py).
ADMIN_PAGE = Target(max_p99_ms=150)
SCENARIOS += [
    Scenario(
        "admin_boards", "admin overview, admin", "member_get.lua", "/admin", ADMIN_PAGE,
        connections=4, who="admin",
    ),
    Scenario(
        "admin_members", "member search, admin", "member_get.lua", "/admin/members?q=a",
        ADMIN_PAGE, connections=4, who="admin",
    ),
]  # fmt: skip
# i13: the shipped changelog (a cached page, like the roadmap) and the changelog's Atom feed
# (rendered on every request: readers revalidate with ETag and get 304s, which a cached
# copy would not answer; so no ratio target, only errors and a p99 like a member's page).
SCENARIOS += [
    Scenario("changelog_anon", "shipped changelog, anonymous", "get.lua", "/changelog", PUBLIC),
    Scenario(
        "feed_changelog", "changelog Atom feed", "get.lua", "/feeds/changelog.atom",
        Target(max_p99_ms=100), accept="application/atom+xml",
    ),
]  # fmt: skip
# i14: fan-club communities (bench/seed.py seeds bench-club-1..20; bench-club-1's first
# thread has 10,000 replies): the directory, a club's thread list, and the big thread's
# first and last pages (50 replies a page), each cached under its community's stamp.
SCENARIOS += [
    Scenario("communities_anon", "community directory, anonymous", "get.lua", "/c", PUBLIC),
    Scenario(
        "communities_member", "community directory, signed in", "member_get.lua", "/c",
        SIGNED_IN,
    ),
    Scenario("club_anon", "a club's thread list, anonymous", "get.lua", "/c/{club}", PUBLIC),
    Scenario(
        "club_member", "a club's thread list, signed in", "member_get.lua", "/c/{club}",
        SIGNED_IN,
    ),
    Scenario(
        "thread_first_anon", "10,000-reply thread, first page, anonymous", "get.lua",
        "/c/{club}/t/{big}", PUBLIC,
    ),
    Scenario(
        "thread_last_anon", "10,000-reply thread, last page, anonymous", "get.lua",
        "/c/{club}/t/{big}?page={big_last}", PUBLIC,
    ),
    Scenario(
        "thread_first_member", "10,000-reply thread, first page, signed in",
        "member_get.lua", "/c/{club}/t/{big}", SIGNED_IN,
    ),
    Scenario(
        "thread_last_member", "10,000-reply thread, last page, signed in", "member_get.lua",
        "/c/{club}/t/{big}?page={big_last}", SIGNED_IN,
    ),
]  # fmt: skip
BARE = Scenario("bare", "bare Flask endpoint (ceiling)", "get.lua", "/", None)
# Words the seed's titles and bodies use (bench/seed.py), common and rare, English and
# Russian, whole and as prefixes; search.lua asks for one or two of them per request.
SEARCH_WORDS = (
    "export,invoices,calendar,dashboards,offline,reports,sync,tasks,pdf,android,templates,"
    "timesheets,notifications,slack,excel,desktop,crash,keyboard,inv,rep,отчёты,шаблоны"
)
GROWTH_SCENARIOS = ("board_anon", "idea_anon", "roadmap_anon")
GROWTH_TOLERANCE = 0.20


# --------------------------------------------------------------------------------------
# Settings


@dataclass
class Settings:
    seconds: int
    warmup: int
    connections: int
    threads: int
    max_requests: int
    timeout: int
    sessions: int
    vote_ideas: int
    ideas: int
    votes: int
    comments: int
    members: int
    sizes_given: bool
    only: list[str]
    growth: bool
    growth_ideas: int
    growth_target: str | None
    growth_rounds: int
    search: str | None
    seed: bool
    reseed: bool
    accept_encoding: str
    label: str
    quiet_wait: int
    quiet_threshold: float
    fanout_followers: int = 50_000
    fanout_posts: int = 200
    live_pages: int = 500
    live_interval: float = 10.0
    live_seconds: float = 30.0

    def live_wanted(self) -> bool:
        return self.live_pages > 0 and (not self.only or "live" in self.only)

    def sizes(self) -> dict:
        return {
            "ideas": self.ideas,
            "votes": self.votes,
            "comments": self.comments,
            "members": self.members,
        }


def parse_settings(argv: list[str] | None) -> Settings:
    p = argparse.ArgumentParser(
        description="Benchmark Ideaboard under gunicorn with wrk (loopback only).",
        epilog="The database is DATABASE_URL if set, else SQLite in IDEABOARD_INSTANCE "
        f"(default {DEFAULT_INSTANCE.relative_to(ROOT)}). See bench/README.md.",
    )
    p.add_argument("--seconds", type=int, default=env_int("BENCH_SECONDS", 10))
    p.add_argument("--warmup", type=int, default=env_int("BENCH_WARMUP", 2))
    p.add_argument("--connections", type=int, default=env_int("BENCH_CONNECTIONS", 32))
    p.add_argument("--threads", type=int, default=env_int("BENCH_THREADS", 2))
    p.add_argument(
        "--max-requests",
        type=int,
        default=env_int("BENCH_MAX_REQUESTS", 300_000),
        help="cap per measured scenario (each wrk thread stops after its share)",
    )
    p.add_argument("--timeout", type=int, default=env_int("BENCH_TIMEOUT", 5))
    p.add_argument("--sessions", type=int, default=env_int("BENCH_SESSIONS", 200))
    p.add_argument("--vote-ideas", type=int, default=env_int("BENCH_VOTE_IDEAS", 1000))
    p.add_argument("--ideas", type=int, default=None)
    p.add_argument("--votes", type=int, default=None)
    p.add_argument("--comments", type=int, default=None)
    p.add_argument("--members", type=int, default=None)
    p.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help="comma-separated scenario names (bare always runs): "
        + ",".join(s.name for s in SCENARIOS),
    )
    p.add_argument(
        "--growth",
        action="store_true",
        default=os.environ.get("BENCH_GROWTH", "") not in ("", "0"),
        help=f"also run {', '.join(GROWTH_SCENARIOS)} on a database of --growth-ideas ideas",
    )
    p.add_argument("--growth-ideas", type=int, default=env_int("BENCH_GROWTH_IDEAS", 10_000))
    p.add_argument(
        "--growth-target",
        default=os.environ.get("BENCH_GROWTH_TARGET") or None,
        help="the small database: an instance folder or a postgresql:// URL "
        "(default: bench/instance-<N>ideas, or <db>_<N>ideas on the same PostgreSQL)",
    )
    p.add_argument("--growth-rounds", type=int, default=env_int("BENCH_GROWTH_ROUNDS", 3))
    p.add_argument("--search", default=os.environ.get("BENCH_SEARCH") or None)
    p.add_argument("--no-seed", dest="seed", action="store_false", default=True)
    p.add_argument(
        "--reseed",
        action="store_true",
        default=os.environ.get("BENCH_RESEED", "") not in ("", "0"),
        help="allow replacing the data of a database this benchmark does not own",
    )
    p.add_argument("--label", default=os.environ.get("BENCH_LABEL", ""))
    p.add_argument(
        "--fanout-followers",
        type=int,
        default=env_int("BENCH_FANOUT_FOLLOWERS", 50_000),
        help="the fan-out step: followers of the idea staff move (0: skip the step)",
    )
    p.add_argument(
        "--fanout-posts",
        type=int,
        default=env_int("BENCH_FANOUT_POSTS", 200),
        help="status-change POSTs timed in the fan-out step",
    )
    p.add_argument(
        "--live-pages",
        type=int,
        default=env_int("BENCH_LIVE_PAGES", 500),
        help="open idea pages polling for live updates (0: skip the live scenario)",
    )
    p.add_argument("--live-interval", type=float, default=env_float("BENCH_LIVE_INTERVAL", 10.0))
    p.add_argument(
        "--live-seconds",
        type=float,
        default=env_float("BENCH_LIVE_SECONDS", 30.0),
        help="seconds of each live phase (quiet, then one vote a second)",
    )
    a = p.parse_args(argv)

    sizes = {
        "ideas": (a.ideas, "BENCH_IDEAS", 100_000),
        "votes": (a.votes, "BENCH_VOTES", 1_000_000),
        "comments": (a.comments, "BENCH_COMMENTS", 200_000),
        "members": (a.members, "BENCH_MEMBERS", 20_000),
    }
    given = any(v is not None or os.environ.get(e) for v, e, _ in sizes.values())
    resolved = {k: v if v is not None else env_int(e, d) for k, (v, e, d) in sizes.items()}
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    known = {s.name for s in SCENARIOS} | {"bare", "fanout", "live"}
    unknown = [s for s in only if s not in known]
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(unknown)}")
    for name in ("seconds", "connections", "threads", "max_requests"):
        if getattr(a, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if a.seconds > 300:
        p.error("--seconds is at most 300 (every load loop is bounded)")
    return Settings(
        seconds=a.seconds,
        warmup=max(a.warmup, 0),
        connections=a.connections,
        threads=min(a.threads, a.connections),
        max_requests=a.max_requests,
        timeout=a.timeout,
        sessions=a.sessions,
        vote_ideas=a.vote_ideas,
        sizes_given=given,
        only=only,
        growth=a.growth,
        growth_ideas=a.growth_ideas,
        growth_target=a.growth_target,
        growth_rounds=max(a.growth_rounds, 1),
        search=a.search,
        seed=a.seed,
        reseed=a.reseed,
        accept_encoding=os.environ.get("BENCH_ACCEPT_ENCODING", "gzip, br"),
        label=a.label,
        live_pages=max(a.live_pages, 0),
        live_interval=max(a.live_interval, 0.5),
        live_seconds=min(max(a.live_seconds, 1.0), 300.0),
        quiet_wait=env_int("BENCH_QUIET_WAIT", 0),
        quiet_threshold=env_float("BENCH_QUIET_THRESHOLD", 0.15),
        fanout_followers=max(a.fanout_followers, 0),
        fanout_posts=max(a.fanout_posts, 1),
        **resolved,
    )


# --------------------------------------------------------------------------------------
# Databases


def database_from_env() -> Database:
    """DATABASE_URL if set, else SQLite in IDEABOARD_INSTANCE, else bench/instance (ours)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return postgres(url, owned=False)
    instance = os.environ.get("IDEABOARD_INSTANCE", "").strip()
    path = Path(instance).resolve() if instance else DEFAULT_INSTANCE
    return Database.sqlite(path, owned=path == DEFAULT_INSTANCE)


def postgres(url: str, owned: bool) -> Database:
    """A PostgreSQL database; its files (state, cookies) in bench/instance/pg-<name>."""
    if not harness.is_postgres_url(url):
        sys.exit(f"bench: only PostgreSQL URLs are supported in DATABASE_URL, not {url!r}")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", harness.dbname_of(url))
    return Database.postgresql(url, BENCH / "instance" / f"pg-{name}", owned=owned)


def growth_sibling(db: Database, ideas: int, explicit: str | None) -> Database:
    """The database for the growth comparison at `ideas` ideas."""
    if explicit:
        if explicit.startswith("postgres"):
            return postgres(explicit, owned=True)
        return Database.sqlite(Path(explicit), owned=True)
    tag = f"{ideas // 1000}k" if ideas % 1000 == 0 else str(ideas)
    if db.backend == "postgresql":
        base, _, rest = db.url.rpartition("/")
        name, sep, query = rest.partition("?")
        return postgres(f"{base}/{name}{tag}{sep}{query}", owned=True)
    return Database.sqlite(BENCH / f"instance-{tag}", owned=True)


def app_env(db: Database, secret: str) -> dict[str, str]:
    env = db.app_env()
    env.update(
        {
            "SECRET_KEY": secret,
            "RATELIMIT_ENABLED": "false",
            "REDIS_URL": env.get("BENCH_REDIS_URL", ""),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not env["REDIS_URL"]:
        env.pop("REDIS_URL")
    env.pop("GUNICORN_BIND", None)
    return env


def appside(env: dict[str, str], *args: str, timeout: int = 900) -> dict:
    cmd = [sys.executable, str(BENCH / "appside.py"), *args]
    done = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"appside {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


SIZE_KEYS = ("ideas", "votes", "comments", "members")


def state_candidates(db: Database) -> list[Path]:
    """Where a seed record for this database may be: the benchmark's own first."""
    paths = [db.folder / "state.json"]
    if db.backend == "sqlite":
        paths.append(db.folder / "bench" / "state.json")
    paths.append(BENCH / "state.json")  # bench/seed.py's default --state
    return paths


def seed_state(db: Database, info: dict | None = None) -> dict | None:
    """The seeder's record of what it put in this database, if one can be trusted.

    The record names only the dialect, so one found outside the database's own folder
    counts only if its hot idea and sizes agree with what the database holds."""
    for i, path in enumerate(state_candidates(db)):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if state.get("database") not in (None, db.backend):
            continue
        if i > 0 and info is not None and not _state_fits(state, info):
            continue
        state["_path"] = str(path)
        return state
    return None


def _state_fits(state: dict, info: dict) -> bool:
    return (
        state.get("hot_idea_id") in info.get("hot_candidates", [])
        and info["ideas"] >= state.get("ideas", 0)
        and info["bench_members"] >= state.get("members", 0)
    )


def vacuum_if_no_autovacuum(db: Database) -> None:
    """On a PostgreSQL server with autovacuum off (as CI's), VACUUM what runs leave behind.

    Every vote toggle leaves a dead row version of its idea (the count and score are
    indexed, so the update is never HOT) and of the vote. Production servers vacuum them
    away on their own; without that, each run would start on a table bloated by the runs
    before it and report slower pages than the same code on a tidy server.
    """
    if db.backend != "postgresql":
        return
    import psycopg

    with psycopg.connect(db.libpq_url(), autocommit=True) as conn:
        if conn.execute("SHOW autovacuum").fetchone()[0] == "on":
            return
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) ideas, votes")
    took = time.perf_counter() - started
    log(f"autovacuum is off on this server: vacuumed ideas and votes ({took:.1f} s)")


def app_info(db: Database, s: Settings, env: dict[str, str], hot: int | None = None) -> dict:
    args = ["info", "--vote-ideas", str(s.vote_ideas)]
    if hot:
        args += ["--hot", str(hot)]
    return appside(env, *args)


def ensure_data(
    db: Database, s: Settings, sizes: dict, env: dict[str, str]
) -> tuple[dict, dict | None]:
    """_ensure_ideas(), then the communities (issue 14) if the data has none yet: a
    database seeded before them gets them added, its ideas kept."""
    info, state = _ensure_ideas(db, s, sizes, env)
    if info.get("community") is None and s.seed and info["bench_members"]:
        log("seeding the communities (bench-club-1 ..., a 10,000-reply thread)")
        started = time.perf_counter()
        harness.seed(env, db.folder / "state-communities.json", ["--communities-only"])
        log(f"communities seeded in {time.perf_counter() - started:.0f} s")
        info = app_info(db, s, env, hot=info["hot_idea_id"])
    return info, state


def _ensure_ideas(
    db: Database, s: Settings, sizes: dict, env: dict[str, str]
) -> tuple[dict, dict | None]:
    """Seed the database unless it already holds a bench seed of these sizes.

    Returns the app-side info (sizes, hot idea, ideas to vote on) and the seed record.
    Only the benchmark's own databases are ever emptied; another database is used as it
    is, seeded only if it is empty, or refused (BENCH_RESEED=1 overrides)."""
    created = db.ensure_exists()
    harness.migrate(env)
    info = app_info(db, s, env)
    state = seed_state(db, info)
    if state and state.get("hot_idea_id") != info["hot_idea_id"]:
        info = app_info(db, s, env, hot=state["hot_idea_id"])
    have = {k: state.get(k) for k in SIZE_KEYS} if state else None
    if have == sizes and info["bench_members"]:
        log(
            f"data: {state['_path']} records {sizes['ideas']:,} ideas, {sizes['votes']:,} votes, "
            f"{sizes['comments']:,} comments, {sizes['members']:,} members: no seeding needed"
        )
        return info, state
    empty = info["ideas"] == 0 and info["users"] == 0
    if not s.seed:
        log(
            f"--no-seed: using the data as it is ({info['ideas']:,} ideas, {info['votes']:,} votes)"
        )
        return info, state
    if not (empty or created or db.owned or s.reseed):
        if info["bench_members"] and info["hot_idea_id"] and not s.sizes_given:
            what = f"seeded with {have}" if have else "with no seed record"
            log(
                f"using {db.describe()} as it is ({what}): {info['ideas']:,} ideas, "
                f"{info['votes']:,} votes. BENCH_IDEAS=... BENCH_RESEED=1 would replace it."
            )
            return info, state
        sys.exit(
            f"bench: {db.describe()} holds {info['ideas']:,} ideas and {info['users']:,} users, "
            f"not a bench seed of {sizes}, and it is not the benchmark's own database.\n"
            "       Set BENCH_RESEED=1 to empty and seed it, or point at another database."
        )
    if not empty:
        db.recreate()
        harness.migrate(env)
    args = []
    for key in SIZE_KEYS:
        args += [f"--{key}", str(sizes[key])]
    log(f"seeding {db.describe()}: {' '.join(args)} (minutes at 100k ideas)")
    started = time.perf_counter()
    harness.seed(env, db.folder / "state.json", args)
    log(f"seeded in {time.perf_counter() - started:.0f} s")
    state = seed_state(db)
    info = app_info(db, s, env, hot=state["hot_idea_id"] if state else None)
    return info, state


# --------------------------------------------------------------------------------------
# gunicorn


def gunicorn_settings(env: dict[str, str]) -> dict:
    """gunicorn.conf.py's values as this run resolves them."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        ns: dict = {"__file__": str(GUNICORN_CONF)}
        exec(compile(GUNICORN_CONF.read_text(), str(GUNICORN_CONF), "exec"), ns)  # noqa: S102
    finally:
        os.environ.clear()
        os.environ.update(saved)
    keys = (
        "worker_class",
        "workers",
        "threads",
        "keepalive",
        "timeout",
        "graceful_timeout",
        "limit_request_line",
        "limit_request_fields",
        "limit_request_field_size",
        "max_requests",
        "max_requests_jitter",
        "backlog",
        "worker_connections",
        "switch_interval",
        "accesslog",
        "preload_app",
    )
    return {k: ns[k] for k in keys if k in ns}


# --------------------------------------------------------------------------------------
# wrk


def ensure_wrk() -> str:
    """wrk from Debian; installed with apt-get when missing (root or sudo)."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is missing: installing Debian's wrk package")
    sudo = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else None)
    if sudo is None:
        sys.exit(
            "bench: wrk is missing and there is no root or sudo to install it: apt-get install wrk"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        sys.exit("bench: wrk was installed but is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0].strip() if text else "wrk"


@dataclass
class Measure:
    name: str
    path: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    error_detail: dict
    bytes_per_response: float
    raw: dict = field(repr=False)

    def line(self) -> str:
        return (
            f"  {self.rps:,.0f} req/s  p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms  "
            f"errors {self.errors}"
        )


def run_wrk(
    wrk: str,
    s: Settings,
    base: str,
    path: str,
    script: str,
    env_extra: dict[str, str],
    seconds: int,
    cap: int,
    connections: int | None = None,
) -> dict:
    url = base + path
    connections = connections or s.connections
    threads = min(s.threads, connections)
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"refusing to load anything but {LOOPBACK}: {url}")
    per_thread = max(math.ceil(cap / threads), 1)
    env = dict(os.environ)
    env.update(
        {
            "BENCH_LUA_DIR": str(LUA),
            "BENCH_THREAD_CAP": str(per_thread),
            "BENCH_ACCEPT_ENCODING": s.accept_encoding,
            **env_extra,
        }
    )
    cmd = [
        wrk,
        "-c",
        str(connections),
        "-t",
        str(threads),
        "-d",
        f"{seconds}s",
        "--timeout",
        f"{s.timeout}s",
        "--latency",
        "-s",
        str(LUA / script),
        url,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    result = json.loads(line[len("BENCH_RESULT ") :])
    result["command"] = " ".join(cmd)
    return result


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Timeout)\b.*)$", re.MULTILINE)


def server_errors(text: str) -> dict:
    """Tracebacks in a slice of gunicorn's log: how many, and the most common last lines."""
    counts: dict[str, int] = {}
    for match in _EXC_LINE.finditer(text):
        line = match.group(1)[:200]
        counts[line] = counts.get(line, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "worker_timeouts": text.count("WORKER TIMEOUT"),
        "top": [{"line": k, "count": v} for k, v in top],
    }


def cpu_cores(c: dict, dbname: str) -> dict:
    """The cores of a measured run as the JSON has always had them: the server, wrk and
    everything else (the database server included); on PostgreSQL also its part of that."""
    cores = {
        "server": c["server"],
        "wrk": c["load_generator"],
        "other": round(c["other"] + c["database"], 2),
    }
    if dbname:
        cores["database"] = c["database"]
    return cores


def measure(
    wrk: str, s: Settings, server: Server, sc: Scenario, env_extra: dict[str, str]
) -> Measure:
    if sc.accept:
        env_extra = dict(env_extra, BENCH_ACCEPT=sc.accept)
    busy = harness.wait_for_quiet(
        s.quiet_wait,
        s.quiet_threshold,
        "  note: the machine was {busy:.0%} busy before this scenario (other processes)",
    )
    if s.warmup:
        run_wrk(
            wrk,
            s,
            server.base,
            sc.path,
            sc.script,
            env_extra,
            s.warmup,
            s.max_requests,
            sc.connections,
        )
    mark = server.log_size()
    load_before = os.getloadavg()[0]
    dbname = harness.dbname_of(server.env.get("DATABASE_URL", ""))
    cpu = harness.CpuWatch(server, dbname, load="children")
    r = run_wrk(
        wrk,
        s,
        server.base,
        sc.path,
        sc.script,
        env_extra,
        s.seconds,
        s.max_requests,
        sc.connections,
    )
    r["connections"] = sc.connections or s.connections
    r["cpu_cores"] = cpu_cores(cpu.stop(), dbname)
    r["machine_busy_before"] = busy
    r["loadavg_1m_before"] = round(load_before, 2)
    r["server_errors"] = server_errors(server.log_since(mark))
    lat = r["latency_us"]
    errs = r["errors"]
    errors = errs["connect"] + errs["read"] + errs["write"] + errs["status"] + errs["timeout"]
    secs = r["duration_us"] / 1e6
    return Measure(
        name=sc.name,
        path=sc.path,
        requests=r["requests"],
        seconds=round(secs, 3),
        rps=round(r["requests"] / secs, 1) if secs else 0.0,
        p50_ms=lat["p50"] / 1000,
        p75_ms=lat["p75"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        mean_ms=round(lat["mean"] / 1000, 3),
        errors=errors,
        error_detail={**errs, "by_status": r.get("status_errors", {})},
        bytes_per_response=round(r["bytes"] / r["requests"], 1) if r["requests"] else 0.0,
        raw=r,
    )


# --------------------------------------------------------------------------------------
# Checks through the live server


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 30):
    """GET without decoding: returns (status, headers, raw body as sent)."""
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"refusing to fetch anything but {LOOPBACK}: {url}")
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def decode(headers, body: bytes) -> bytes:
    enc = (headers.get("Content-Encoding") or "").lower()
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "br":
        try:
            import brotli  # type: ignore[import-not-found]
        except ImportError:
            return b""
        return brotli.decompress(body)
    return body


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        rel = (a.get("rel") or "").lower().split()
        if (
            tag == "link"
            and a.get("href")
            and {"stylesheet", "icon", "preload", "modulepreload"} & set(rel)
        ):
            self.urls.append(("link:" + "/".join(rel), a["href"]))
        elif tag == "script" and a.get("src"):
            self.urls.append(("script", a["src"]))
        elif tag == "img" and a.get("src"):
            self.urls.append(("img", a["src"]))


def frontend_weight(base: str) -> dict:
    """First load of the board page: the page and its same-site assets, bytes as sent."""
    headers = {
        "Accept-Encoding": "gzip, br",
        "Accept": "text/html,*/*;q=0.8",
        "Accept-Language": "en",
    }
    status, h, body = http_get(base + "/ideas", headers)
    items = [_asset_row("/ideas", "document", status, h, body)]
    parser = _Assets()
    parser.feed(decode(h, body).decode("utf-8", "replace"))
    seen = set()
    for kind, url in parser.urls:
        if url.startswith(("http://", "https://", "//", "data:")):
            items.append({"url": url, "kind": kind, "skipped": "not on this site"})
            continue
        path = url if url.startswith("/") else "/" + url
        if path in seen:
            continue
        seen.add(path)
        st, hh, bb = http_get(base + path, {**headers, "Accept": "*/*"})
        items.append(_asset_row(path, kind, st, hh, bb))
    total = sum(i.get("wire_bytes", 0) for i in items)
    return {
        "page": "/ideas",
        "accept_encoding": headers["Accept-Encoding"],
        "resources": items,
        "total_wire_bytes": total,
        "total_decoded_bytes": sum(i.get("decoded_bytes", 0) for i in items),
        "budget_bytes": FRONTEND_BUDGET,
        "pass": total < FRONTEND_BUDGET and all(i.get("status", 200) == 200 for i in items),
    }


def _asset_row(path, kind, status, headers, body) -> dict:
    length = headers.get("Content-Length")
    decoded = decode(headers, body)
    return {
        "url": path,
        "kind": kind,
        "status": status,
        "content_encoding": headers.get("Content-Encoding") or "identity",
        "cache_control": headers.get("Cache-Control"),
        "wire_bytes": int(length) if length and length.isdigit() else len(body),
        "decoded_bytes": len(decoded) if decoded else None,
    }


def check_pages(base: str, paths: dict[str, str], cookie_line: list[str], check_user: dict) -> dict:
    """Each page answers 200 anonymously; a minted session is accepted and stable."""
    out = {}
    for name, path in paths.items():
        status, _, _ = http_get(base + path, {"Accept-Encoding": "identity"})
        out[name] = status
        if status != 200:
            raise RuntimeError(f"{path} answered {status} before the load started")
    cookie, _token, _uid, name = cookie_line[:4]
    status, headers, body = http_get(
        base + "/ideas", {"Cookie": f"session={cookie}", "Accept-Encoding": "identity"}
    )
    html = body.decode("utf-8", "replace")
    from markupsafe import escape

    shown = str(escape(check_user["display_name"])) in html
    voted = "is-voted" in html
    renewed = "session=" in (headers.get("Set-Cookie") or "")
    if status != 200 or not shown:
        raise RuntimeError(
            f"a minted session cookie was not accepted: /ideas answered {status} and "
            f"{'shows' if shown else 'does not show'} {check_user['display_name']!r}"
        )
    if check_user.get("voted_on_first_page") and not voted:
        log("warning: the checked member voted on the first page but no idea shows as voted")
    out["session_check"] = {
        "member": check_user["display_name"],
        "name_shown": shown,
        "voted_state_shown": voted,
        "session_cookie_reissued": renewed,
    }
    return out


# --------------------------------------------------------------------------------------
# Machine and report


def versions() -> dict:
    out = {}
    for mod in ("flask", "gunicorn", "sqlalchemy", "werkzeug", "jinja2", "psycopg"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            out[mod] = version(mod)
    return out


def verdict(m: Measure, sc: Scenario, bare_rps: float) -> tuple[bool | None, list[str]]:
    t = sc.target
    if t is None:
        return None, []
    misses = []
    ratio = m.rps / bare_rps if bare_rps else 0
    if t.min_ratio is not None and ratio < t.min_ratio:
        misses.append(f"{ratio:.0%} of bare < {t.min_ratio:.0%}")
    if t.max_p99_ms is not None and m.p99_ms > t.max_p99_ms:
        misses.append(f"p99 {m.p99_ms:.1f} ms > {t.max_p99_ms:g}")
    if t.max_p50_ms is not None and m.p50_ms > t.max_p50_ms:
        misses.append(f"p50 {m.p50_ms:.1f} ms > {t.max_p50_ms:g}")
    if t.zero_errors and m.errors:
        misses.append(f"{m.errors} errors")
    return not misses, misses


def _cores(c: dict | None) -> str:
    """Cores used by the server / wrk / everything else during the measured run."""
    return f"{c['server']:.1f}/{c['wrk']:.1f}/{c['other']:.1f}" if c else "?"


def fmt_table(rows: list[dict]) -> str:
    head = ["scenario", "req/s", "× bare", "p50 ms", "p99 ms", "errors", "cores s/w/o", "target"]
    head.append("result")
    body = [
        [
            r["name"],
            f"{r['rps']:,.0f}",
            f"{r['ratio']:.1%}" if r["name"] != "bare" else "100%",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            str(r["errors"]),
            _cores(r.get("cpu_cores")),
            r["target"],
            r["result"],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i in (0, 7, 8) else c.rjust(w) for i, (c, w) in pairs)

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *(line(b) for b in body)])


def markdown_table(rows: list[dict]) -> str:
    out = [
        "| scenario | req/s | × bare | p50 ms | p99 ms | errors | target | result |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        ratio = "100%" if r["name"] == "bare" else f"{r['ratio']:.1%}"
        out.append(
            f"| {r['name']} | {r['rps']:,.0f} | {ratio} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['errors']} | {r['target']} | {r['result']} |"
        )
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# The run


def scenarios_for(s: Settings) -> list[Scenario]:
    picked = [sc for sc in SCENARIOS if not s.only or sc.name in s.only]
    return [Scenario(**{**asdict(sc), "target": sc.target}) for sc in picked]


def run_app_scenarios(
    wrk: str,
    s: Settings,
    db: Database,
    env: dict[str, str],
    info: dict,
    picked: list[Scenario],
    work: Path,
    label: str,
) -> dict:
    """Serve the app on `db` and run `picked`; returns measures and checks."""
    hot = info["hot_idea_id"]
    words = [w.strip() for w in (s.search or SEARCH_WORDS).split(",") if w.strip()]
    club = info.get("community") or {}
    for sc in picked:
        if "{club}" in sc.path and not club:
            raise RuntimeError(f"{sc.name}: no bench communities in the database")
        sc.path = sc.path.format(
            hot=hot,
            word=urllib.request.quote(words[0]),
            club=club.get("slug"),
            big=club.get("big_thread_id"),
            big_last=club.get("big_thread_last_page"),
        )
    needs_members = s.live_wanted() or any(
        sc.script in ("member_get.lua", "vote.lua") and sc.who == "members" for sc in picked
    )
    cookies = work / f"cookies-{label}.tsv"
    ids_file = work / f"vote-ideas-{label}.txt"
    ids_file.write_text("\n".join(str(i) for i in info["vote_idea_ids"]) + "\n")
    minted = None
    if needs_members:
        if not info["bench_members"]:
            raise RuntimeError("no bench members (bench{i}@bench.test) in the database")
        minted = appside(
            env,
            "mint",
            "--sessions",
            str(s.sessions),
            "--out",
            str(cookies),
            "--user-agent",
            USER_AGENT,
        )
        log(
            f"minted {minted['sessions']} member sessions "
            f"({minted['with_votes_on_first_page']} with votes on the first board page)"
        )
    admin_cookies = work / f"cookies-admin-{label}.tsv"
    if any(sc.who == "admin" for sc in picked):
        appside(env, "mint", "--admin", "--out", str(admin_cookies), "--user-agent", USER_AGENT)
    extra = {
        "BENCH_COOKIES": str(cookies),
        "BENCH_IDEA_IDS": str(ids_file),
        "BENCH_SEARCH_WORDS": ",".join(words),
    }
    result: dict = {"measures": {}, "search_words": words, "sessions": minted}
    with Server("wsgi:app", env, work / f"gunicorn-{label}.log") as server:
        paths = {sc.name: sc.path for sc in picked if sc.script in ("get.lua", "search.lua")}
        line = (
            cookies.read_text().splitlines()[minted["check_user"]["line"]].split("\t")
            if minted
            else None
        )
        if line:
            result["checks"] = check_pages(server.base, paths, line, minted["check_user"])
        else:
            result["checks"] = check_pages_anon(server.base, paths)
        if any(sc.name == "vote" for sc in picked):
            last = cookies.read_text().splitlines()[-1].split("\t")
            result["checks"]["vote_toggle"] = check_vote(
                server.base, last, info["vote_idea_ids"][0]
            )
        if not s.only or "board_anon" in s.only:
            result["frontend"] = frontend_weight(server.base)
        result["worker_pids"] = server.worker_pids()
        for sc in picked:
            if sc.who == "admin":
                check_admin_page(server.base, sc.path, admin_cookies)
        for sc in picked:
            log(f"{label}: {sc.name} {sc.path} ({s.warmup}s warm-up + {s.seconds}s)")
            own = dict(extra, BENCH_COOKIES=str(admin_cookies)) if sc.who == "admin" else extra
            m = measure(wrk, s, server, sc, own)
            log(m.line())
            result["measures"][sc.name] = m
        if s.live_wanted():
            # i13: open idea pages polling for live updates, quiet and with a vote a second.
            member = cookies.read_text().splitlines()[0].split("\t")
            harness.wait_for_quiet(
                s.quiet_wait,
                s.quiet_threshold,
                "  note: the machine was {busy:.0%} busy before the live scenario",
            )
            log(
                f"{label}: live, {s.live_pages} pages every {s.live_interval:g} s, "
                f"{s.live_seconds:g} s quiet + {s.live_seconds:g} s with a vote a second"
            )
            result["live"] = live_bench.measure_live(
                server,
                info["vote_idea_ids"][0],
                (member[0], member[1]),
                USER_AGENT,
                pages=s.live_pages,
                interval=s.live_interval,
                seconds=s.live_seconds,
            )
            for text in live_bench.describe(result["live"]):
                log(text)
    if any(sc.name == "vote" for sc in picked):
        result["vote_check"] = appside(env, "mismatches")
        log(
            f"count_mismatches() after the vote toggles: {result['vote_check']['count_mismatches']}"
        )
    return result


def check_admin_page(base: str, path: str, cookies: Path) -> None:
    """The bench admin's minted session gets the admin page (not a 403 or sign-in)."""
    cookie = cookies.read_text().splitlines()[0].split("\t")[0]
    status, _, body = http_get(
        base + path, {"Cookie": f"session={cookie}", "Accept-Encoding": "identity"}
    )
    if status != 200 or b"Bench Admin" not in body:
        raise RuntimeError(f"{path} answered {status} to the bench admin before the load")


def check_vote(base: str, line: list[str], idea_id: int) -> dict:
    """One member toggles one vote twice, as htmx would: both answer 200, nothing changes."""
    cookie, token = line[0], line[1]
    statuses = []
    for _ in range(2):
        req = urllib.request.Request(
            f"{base}/ideas/{idea_id}/vote",
            data=b"",
            method="POST",
            headers={
                "User-Agent": USER_AGENT,
                "Cookie": f"session={cookie}",
                "X-CSRFToken": token,
                "HX-Request": "true",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as err:
            statuses.append(err.code)
    if statuses != [200, 200]:
        raise RuntimeError(f"a vote toggle by a minted session answered {statuses}, not 200")
    return {"idea_id": idea_id, "statuses": statuses}


def check_pages_anon(base: str, paths: dict[str, str]) -> dict:
    out = {}
    for name, path in paths.items():
        status, _, _ = http_get(base + path, {"Accept-Encoding": "identity"})
        out[name] = status
        if status != 200:
            raise RuntimeError(f"{path} answered {status} before the load started")
    return out


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


#: The status-change POST's target: a member page's budget (docs/performance.md).
FANOUT_POST_P99_MS = 100.0


def measure_fanout(s: Settings, env: dict[str, str], work: Path) -> dict | None:
    """Issue 13 item 5: staff move an idea `--fanout-followers` members follow.

    The bench admin posts `--fanout-posts` status changes (alternating planned and under
    review) one after another to a gunicorn server like the main one, each timed from
    request to response: what the request costs is one event row, whatever the audience.
    That server runs with NOTIFY_AFTER_RESPONSE=false, so the timing is the request's
    alone and the machine is not busy with 40 fan-outs of 50,000 rows; the last event is
    then fanned out by the worker's code (appside fanout-run), timed, counted and checked
    to be written once, and its rows deleted again.
    """
    if not s.fanout_followers or (s.only and "fanout" not in s.only):
        return None
    setup = appside(env, "fanout-setup", "--followers", str(s.fanout_followers))
    log(
        f"fanout: idea {setup['idea_id']} has {setup['followers']:,} followers "
        f"(set up in {setup['seconds']} s)"
    )
    cookies = work / "cookies-fanout.tsv"
    appside(env, "mint", "--admin", "--out", str(cookies), "--user-agent", USER_AGENT)
    cookie, token = cookies.read_text().splitlines()[0].split("\t")[:2]
    opener = urllib.request.build_opener(_NoRedirect)
    timings, statuses = [], []
    fan_env = dict(env, NOTIFY_AFTER_RESPONSE="false")
    with Server("wsgi:app", fan_env, work / "gunicorn-fanout.log") as server:
        url = f"{server.base}/ideas/{setup['idea_id']}/status"
        for n in range(s.fanout_posts + 2):  # the first two warm the worker up
            status = ("planned", "under_review")[n % 2]
            body = urllib.parse.urlencode(
                {"status": status, "note": f"bench {n}", "csrf_token": token}
            ).encode()
            req = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "User-Agent": USER_AGENT,
                    "Cookie": f"session={cookie}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            started = time.perf_counter()
            try:
                with opener.open(req, timeout=30) as resp:
                    code = resp.status
                    resp.read()
            except urllib.error.HTTPError as err:
                code = err.code
            elapsed = (time.perf_counter() - started) * 1000
            if n >= 2:
                timings.append(elapsed)
                statuses.append(code)
    if set(statuses) != {303}:
        raise RuntimeError(
            f"fan-out step: the status-change POSTs answered {sorted(set(statuses))}"
        )
    fan = appside(env, "fanout-run", "--idea", str(setup["idea_id"]), timeout=1800)
    ordered = sorted(timings)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    exact = fan["rows"] == setup["expected_notifications"] and fan["second_fan_out_wrote"] == 0
    p99 = pct(0.99)
    result = {
        "followers": setup["followers"],
        "expected_notifications": setup["expected_notifications"],
        "posts": len(timings),
        "post_p50_ms": pct(0.50),
        "post_p99_ms": p99,
        "post_max_ms": round(ordered[-1], 1),
        "post_target_p99_ms": FANOUT_POST_P99_MS,
        "fanout_seconds": fan["seconds"],
        "fanout_rows": fan["rows"],
        "fanout_written": fan["written"],
        "second_fan_out_wrote": fan["second_fan_out_wrote"],
        "exactly_once": exact,
        "post_pass": p99 <= FANOUT_POST_P99_MS,
    }
    result["result"] = "PASS" if result["post_pass"] and exact else "FAIL"
    log(
        f"fanout: {len(timings)} status-change POSTs p50 {result['post_p50_ms']} ms, "
        f"p99 {p99} ms; fan-out {fan['rows']:,} rows in {fan['seconds']} s "
        f"({'exactly once' if exact else 'NOT exact'})"
    )
    return result


def measure_bare(wrk: str, s: Settings, env: dict[str, str], work: Path) -> Measure:
    bare_env = {k: v for k, v in env.items() if k not in ("DATABASE_URL",)}
    with Server("bench.bare:app", bare_env, work / "gunicorn-bare.log") as server:
        log(f"bare: / ({s.warmup}s warm-up + {s.seconds}s)")
        m = measure(wrk, s, server, BARE, {})
        log(m.line())
        return m


def main(argv: list[str] | None = None) -> int:
    s = parse_settings(argv)
    harness.exit_on_signals()
    try:
        return _main(s)
    finally:
        Server.stop_all()


def _main(s: Settings) -> int:
    wrk = ensure_wrk()
    db = database_from_env()
    secret = secrets.token_urlsafe(32)
    env = app_env(db, secret)
    redis = env.get("REDIS_URL")
    if redis and not harness.redis_answers(redis):
        sys.exit(f"bench: BENCH_REDIS_URL={redis} does not answer PING: start Redis or unset it")
    work = harness.WORK  # logs and minted sessions of the latest run (gitignored)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = datetime.now(UTC)
    log(
        f"database {db.describe()}; {s.connections} connections, {s.threads} wrk threads, "
        f"{s.seconds}s per scenario (+{s.warmup}s warm-up), ≤{s.max_requests:,} requests each"
    )
    info, state = ensure_data(db, s, s.sizes(), env)
    vacuum_if_no_autovacuum(db)
    log(
        f"data: {info['ideas']:,} ideas, {info['votes']:,} votes, {info['comments']:,} comments, "
        f"{info['bench_members']:,} bench members; hot idea {info['hot_idea_id']} "
        f"({info['hot_idea_votes']:,} votes, {info['hot_idea_comments']} comments)"
    )

    picked = scenarios_for(s)
    bare = measure_bare(wrk, s, env, work)
    main_run = run_app_scenarios(wrk, s, db, env, info, picked, work, "main")

    fanout = measure_fanout(s, env, work)

    growth = None
    if s.growth:
        growth = run_growth(wrk, s, db, secret, work, main_run, info)

    rows = [row_for(bare, BARE, bare.rps)]
    for sc in picked:
        rows.append(row_for(main_run["measures"][sc.name], sc, bare.rps, main_run))
    report = {
        "label": s.label,
        "date": started.isoformat(timespec="seconds"),
        "commit": harness.git_commit(),
        "machine": harness.machine(),
        "versions": versions(),
        "load": {
            "tool": wrk_version(wrk),
            "connections": s.connections,
            "threads": s.threads,
            "seconds": s.seconds,
            "warmup_seconds": s.warmup,
            "max_requests_per_scenario": s.max_requests,
            "timeout_seconds": s.timeout,
            "accept_encoding": s.accept_encoding,
            "target": f"http://{LOOPBACK}:<free port>",
        },
        "gunicorn": gunicorn_settings(env),
        "database": {
            "backend": db.backend,
            "url": db.describe(),
            "server_version": info["server_version"],
            "ideas": info["ideas"],
            "votes_before": info["votes"],
            "comments": info["comments"],
            "users": info["users"],
            "bench_members": info["bench_members"],
            "hot_idea_id": info["hot_idea_id"],
            "hot_idea_comments": info["hot_idea_comments"],
            "seed_state": state,
        },
        "search_words": main_run["search_words"],
        "sessions": main_run.get("sessions"),
        "checks": main_run.get("checks"),
        "scenarios": rows,
        "vote_check": main_run.get("vote_check"),
        "frontend": main_run.get("frontend"),
        "fanout": fanout,
        "growth": growth,
        "live": main_run.get("live"),
    }
    report["summary"] = summarize(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-{db.backend}-{info['ideas']}ideas.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(out)
    print_report(report)
    print(f"\nwritten: {out.relative_to(ROOT)}  (server logs: {work.relative_to(ROOT)}/)")
    return 0


def row_for(m: Measure, sc: Scenario, bare_rps: float, run: dict | None = None) -> dict:
    ok, misses = verdict(m, sc, bare_rps)
    if sc.name == "vote" and run and run.get("vote_check") is not None:
        mism = run["vote_check"]["count_mismatches"]
        if mism:
            ok = False
            misses.append(f"count_mismatches() = {mism[:5]}")
    row = {
        "name": sc.name,
        "title": sc.title,
        "path": "/ideas?q=<1-2 of search_words>&_=<unique>"
        if sc.script == "search.lua"
        else m.path,
        "rps": m.rps,
        "ratio": round(m.rps / bare_rps, 4) if bare_rps else 0,
        "p50_ms": m.p50_ms,
        "p75_ms": m.p75_ms,
        "p90_ms": m.p90_ms,
        "p99_ms": m.p99_ms,
        "max_ms": m.max_ms,
        "mean_ms": m.mean_ms,
        "requests": m.requests,
        "seconds": m.seconds,
        "errors": m.errors,
        "error_detail": m.error_detail,
        "bytes_per_response": m.bytes_per_response,
        "target": sc.target.describe() if sc.target else "ceiling",
        "result": "—" if ok is None else ("PASS" if ok else "FAIL"),
        "misses": misses,
        "server_errors": m.raw.get("server_errors"),
        "machine_busy_before": m.raw.get("machine_busy_before"),
        "cpu_cores": m.raw.get("cpu_cores"),
        "loadavg_1m_before": m.raw.get("loadavg_1m_before"),
        "wrk": m.raw.get("command"),
    }
    return row


def run_growth(
    wrk: str, s: Settings, db: Database, secret: str, work: Path, main_run: dict, info: dict
) -> dict:
    """The same pages at --growth-ideas ideas and at the main size, within 20%.

    Both servers run side by side (the idle one costs nothing) and each scenario is measured
    on the small and the large database alternately, `growth_rounds` times; the medians are
    compared, so a slow moment of the machine does not land on one side only."""
    small_db = growth_sibling(db, s.growth_ideas, s.growth_target)
    small_env = app_env(small_db, secret)
    large_env = app_env(db, secret)
    scale = s.growth_ideas / max(s.ideas, 1)
    log(f"growth: {s.growth_ideas:,} ideas in {small_db.describe()}")
    small_sizes = {
        "ideas": s.growth_ideas,
        "votes": round(s.votes * scale),
        "comments": round(s.comments * scale),
        "members": s.members,
    }
    small_info, _ = ensure_data(small_db, s, small_sizes, small_env)
    vacuum_if_no_autovacuum(small_db)
    names = [n for n in GROWTH_SCENARIOS if not s.only or n in s.only] or list(GROWTH_SCENARIOS)
    by_name = {sc.name: sc for sc in SCENARIOS}
    sides = {"small": small_info, "large": info}
    samples: dict[tuple[str, str], list[Measure]] = {}
    with (
        Server("wsgi:app", small_env, work / "gunicorn-growth-small.log") as small_srv,
        Server("wsgi:app", large_env, work / "gunicorn-growth-large.log") as large_srv,
    ):
        servers = {"small": small_srv, "large": large_srv}
        for rnd in range(s.growth_rounds):
            order = ("small", "large") if rnd % 2 == 0 else ("large", "small")
            for name in names:
                for side in order:
                    sc = Scenario(**{**asdict(by_name[name]), "target": by_name[name].target})
                    sc.path = sc.path.format(hot=sides[side]["hot_idea_id"], word="")
                    if rnd == 0 and side == order[0]:
                        check_pages_anon(servers[side].base, {name: sc.path})
                    log(f"growth round {rnd + 1}/{s.growth_rounds}: {side} {name} {sc.path}")
                    m = measure(wrk, s, servers[side], sc, {})
                    log(m.line())
                    samples.setdefault((side, name), []).append(m)
    rows = []
    for n in names:
        a, b = samples[("small", n)], samples[("large", n)]
        a_rps, b_rps = _median([m.rps for m in a]), _median([m.rps for m in b])
        spread = abs(a_rps - b_rps) / max(a_rps, b_rps) if max(a_rps, b_rps) else 1.0
        errors = sum(m.errors for m in a + b)
        rows.append(
            {
                "name": n,
                "small_ideas": small_info["ideas"],
                "large_ideas": info["ideas"],
                "small_rps": a_rps,
                "large_rps": b_rps,
                "large_over_small": round(b_rps / a_rps, 3) if a_rps else None,
                "small_p50_ms": _median([m.p50_ms for m in a]),
                "large_p50_ms": _median([m.p50_ms for m in b]),
                "small_p99_ms": _median([m.p99_ms for m in a]),
                "large_p99_ms": _median([m.p99_ms for m in b]),
                "small_rps_samples": [m.rps for m in a],
                "large_rps_samples": [m.rps for m in b],
                "spread": round(spread, 3),
                "errors": errors,
                "small_cpu_cores": [m.raw.get("cpu_cores") for m in a],
                "large_cpu_cores": [m.raw.get("cpu_cores") for m in b],
                "result": "PASS" if spread <= GROWTH_TOLERANCE and not errors else "FAIL",
            }
        )
    return {
        "database": small_db.describe(),
        "tolerance": GROWTH_TOLERANCE,
        "rounds": s.growth_rounds,
        "rows": rows,
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if not ordered:
        return 0.0
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(report: dict) -> dict:
    results = {r["name"]: r["result"] for r in report["scenarios"] if r["result"] != "—"}
    if report.get("frontend"):
        results["frontend_weight"] = "PASS" if report["frontend"]["pass"] else "FAIL"
    if report.get("fanout"):
        results["fanout"] = report["fanout"]["result"]
    if report.get("growth"):
        for r in report["growth"]["rows"]:
            results[f"growth_{r['name']}"] = r["result"]
    if report.get("live"):
        phases = report["live"]["phases"].values()
        results["live"] = "PASS" if all(p["errors"] == 0 for p in phases) else "FAIL"
    return {
        "passed": sorted(k for k, v in results.items() if v == "PASS"),
        "failed": sorted(k for k, v in results.items() if v == "FAIL"),
    }


def print_report(report: dict) -> None:
    db = report["database"]
    m = report["machine"]
    g = report["gunicorn"]
    print()
    print(
        f"Ideaboard benchmark {report['date']} commit {report['commit']} — {db['backend']} "
        f"({db['ideas']:,} ideas, {db['votes_before']:,} votes, hot idea {db['hot_idea_comments']} "
        f"comments)"
    )
    print(
        f"{m['nproc']} cores {m['cpu']}, {m['ram_gib']} GiB; gunicorn {g.get('workers')}×"
        f"{g.get('worker_class')}"
        + (f"×{g.get('threads')} threads" if g.get("worker_class") == "gthread" else "")
        + f"; wrk {report['load']['connections']} connections, {report['load']['seconds']} s each"
    )
    print()
    print(fmt_table(report["scenarios"]))
    print(
        "  cores s/w/o: CPU cores used by gunicorn / wrk / everything else (other work on the "
        "machine; the database server too on PostgreSQL) during the measured run"
    )
    for r in report["scenarios"]:
        if r["misses"]:
            print(f"  {r['name']}: {'; '.join(r['misses'])}")
    vc = report.get("vote_check")
    if vc is not None:
        print(
            f"\ncount_mismatches() after vote toggles: {vc['count_mismatches']} "
            f"({vc['votes']:,} vote rows)"
        )
    fe = report.get("frontend")
    if fe:
        print(
            f"\nfront-end weight, first load of /ideas: {fe['total_wire_bytes']:,} bytes on the "
            f"wire ({fe['total_decoded_bytes']:,} decoded) — budget {fe['budget_bytes']:,}: "
            f"{'PASS' if fe['pass'] else 'FAIL'}"
        )
        for r in fe["resources"]:
            if "skipped" in r:
                continue
            enc = r["content_encoding"]
            print(f"  {r['url']:<40} {r['status']}  {enc:<8} {r['wire_bytes']:>8,} B")
    fo = report.get("fanout")
    if fo:
        print(
            f"\nfan-out, {fo['followers']:,} followers: {fo['posts']} status-change POSTs "
            f"p50 {fo['post_p50_ms']} ms, p99 {fo['post_p99_ms']} ms "
            f"(target p99 ≤ {fo['post_target_p99_ms']:.0f} ms); fan-out "
            f"{fo['fanout_rows']:,} notifications (expected {fo['expected_notifications']:,}) "
            f"in {fo['fanout_seconds']} s, second fan-out wrote {fo['second_fan_out_wrote']}: "
            f"{fo['result']}"
        )
    if report.get("live"):
        print()
        print("\n".join(live_bench.describe(report["live"])))
    gr = report.get("growth")
    if gr:
        print(
            f"\ngrowth: {gr['database']} vs the main database, within {gr['tolerance']:.0%} "
            f"(medians of {gr['rounds']} alternating rounds)"
        )
        for r in gr["rows"]:
            print(
                f"  {r['name']:<14} {r['small_ideas']:>8,} ideas {r['small_rps']:>7,.0f} req/s "
                f"p99 {r['small_p99_ms']:5.1f} | {r['large_ideas']:>8,} ideas "
                f"{r['large_rps']:>7,.0f} req/s p99 {r['large_p99_ms']:5.1f} | "
                f"spread {r['spread']:.1%} {r['result']}"
            )
            print(
                f"  {'':<14} req/s per round: small {r['small_rps_samples']}, "
                f"large {r['large_rps_samples']}"
            )
    print("\nmarkdown:\n")
    print(markdown_table(report["scenarios"]))


if __name__ == "__main__":
    sys.exit(main())
