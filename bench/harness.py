"""What the benchmark (bench/run.py) and the load test (bench/loadtest.py) share.

- `log()`: one line per event, `[bench 12:00:00]` or `[loadtest  12.3s]` (`set_log`).
- `Database`: a SQLite instance folder or a PostgreSQL database; created, emptied and
  migrated here (`ensure_exists`, `recreate`, `migrate`), seeded with bench/seed.py
  (`seed`, its progress shown as it goes).
- `Server`: gunicorn with the production gunicorn.conf.py on a free port of 127.0.0.1, our
  own child, ready once its workers are up and /healthz answers; always stopped by its PID
  (`Server.stop_all`, `exit_on_signals`).
- `CpuWatch`, `cpu_busy`, `wait_for_quiet`: how busy the machine was, and who used the
  cores (the server, its PostgreSQL backends, the load generator, everything else).
- `redis_answers`, `machine`, `git_commit`: what a report records about the run.

Standard library only; psycopg is imported when a PostgreSQL database is touched. Nothing
here sends a request anywhere but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
RESULTS = BENCH / "results"  # every run's JSON, kept in git
WORK = BENCH / "work"  # server logs and scratch files of the latest runs (gitignored)
LOOPBACK = "127.0.0.1"
USER_AGENT = "ideaboard-bench-harness/1"
PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


# --------------------------------------------------------------------------------------
# log

_log = {"name": "bench", "elapsed": False, "start": time.monotonic()}


def set_log(name: str, *, elapsed: bool = False) -> None:
    """Tag every line with `name` and the wall clock, or the seconds since this call."""
    _log.update(name=name, elapsed=elapsed, start=time.monotonic())


def log(msg: str) -> None:
    if _log["elapsed"]:
        stamp = f"{time.monotonic() - _log['start']:6.1f}s"
    else:
        stamp = time.strftime("%H:%M:%S")
    print(f"[{_log['name']} {stamp}] {msg}", flush=True)


# --------------------------------------------------------------------------------------
# the database


def is_postgres_url(url: str) -> bool:
    return url.startswith(PG_SCHEMES)


def dbname_of(url: str) -> str:
    """The database name in a PostgreSQL URL ("" for none)."""
    return url.rsplit("/", 1)[-1].split("?", 1)[0] if url else ""


@dataclass
class Database:
    """Where the data lives: SQLite in `folder`, or a PostgreSQL database at `url`.

    `folder` also holds the files that belong with this data (the seed's state.json, for
    PostgreSQL the app's instance folder), never the app's own instance/. `owned`: the
    caller's own database, which it may empty without asking."""

    backend: Literal["sqlite", "postgresql"]
    folder: Path
    url: str | None = None
    owned: bool = False

    @classmethod
    def sqlite(cls, folder: Path, *, owned: bool = False) -> Database:
        return cls("sqlite", folder=Path(folder).resolve(), owned=owned)

    @classmethod
    def postgresql(cls, url: str, folder: Path, *, owned: bool = False) -> Database:
        if not is_postgres_url(url):
            raise ValueError(f"not a PostgreSQL URL: {url!r}")
        return cls("postgresql", folder=Path(folder).resolve(), url=url, owned=owned)

    def dbname(self) -> str:
        return dbname_of(self.url or "")

    def describe(self) -> str:
        """The URL without its password."""
        if self.url:
            return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.url)
        return f"sqlite:///{self.folder / 'ideaboard.db'}"

    def app_url(self) -> str:
        """The URL the app's own config takes (for an app created in this process)."""
        return self.url or f"sqlite:///{self.folder / 'ideaboard.db'}"

    def libpq_url(self) -> str:
        """The database's URL as psycopg.connect() takes it (no SQLAlchemy driver name)."""
        url = re.sub(r"^postgresql\+psycopg://", "postgresql://", self.url)
        return re.sub(r"^postgres://", "postgresql://", url)

    def admin_url(self) -> str:
        """The same server's `postgres` database, for CREATE/DROP DATABASE."""
        base, _, rest = self.libpq_url().rpartition("/")
        _name, sep, query = rest.partition("?")
        return f"{base}/postgres{sep}{query}"

    def env(self) -> dict[str, str]:
        """Variables that point the app at this database."""
        if self.url:
            return {"DATABASE_URL": self.url, "IDEABOARD_INSTANCE": str(self.folder)}
        return {"IDEABOARD_INSTANCE": str(self.folder)}

    def app_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) pointed at this database only."""
        env = dict(os.environ if base is None else base)
        env.pop("DATABASE_URL", None)
        env.update(self.env())
        return env

    def ensure_exists(self) -> bool:
        """Make the folder, and the PostgreSQL database if it is missing; True if new."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.backend == "sqlite":
            return not (self.folder / "ideaboard.db").exists()
        import psycopg

        name = self.dbname()
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            log(f"creating PostgreSQL database {name!r}")
            conn.execute(f'CREATE DATABASE "{name}"')
            return True

    def recreate(self) -> None:
        """Empty it: a new SQLite file, or the PostgreSQL database dropped and created.

        The seed's record goes with the data. Call it only on a database that is the
        caller's own (its folder, or a PostgreSQL database it names as scratch)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "state.json").unlink()
        if self.backend == "sqlite":
            for stale in self.folder.glob("ideaboard.db*"):  # with -wal and -shm
                stale.unlink()
            return
        import psycopg

        name = self.dbname()
        log(f"dropping and recreating PostgreSQL database {name!r}")
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


def flask(env: dict[str, str], *args: str, app: str = "wsgi", timeout: float = 600):
    """`flask --app APP ARGS` in the project root; the CompletedProcess, output captured."""
    cmd = [str(VENV_BIN / "flask"), "--app", app, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, text=True, capture_output=True)


def migrate(env: dict[str, str], *, app: str = "wsgi") -> None:
    """`flask db upgrade` on the database `env` names; raises with the error if it fails."""
    done = flask(env, "db", "upgrade", app=app)
    if done.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{done.stderr[-3000:]}")


def seed(
    env: dict[str, str],
    state: Path,
    args: Sequence[str],
    *,
    app: str | None = None,
    timeout: float = 7200,
) -> list[str]:
    """bench/seed.py into the database `env` names, its progress logged as it goes.

    Writes the seed's record to `state`; returns the lines it printed."""
    state.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(BENCH / "seed.py"), *(["--app", app] if app else [])]
    cmd += ["--state", str(state), *args]
    return run_logged(cmd, env, timeout=timeout, prefix="seed: ")


def run_logged(cmd: list[str], env: dict[str, str], *, timeout: float, prefix: str) -> list[str]:
    """Run a command in the project root, logging each line of its output as it comes.

    Long steps (a seed of 100,000 ideas takes minutes) show their progress instead of
    going quiet. Killed after `timeout` seconds; raises with the last lines on failure."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.daemon = True
    timer.start()
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            log(f"  {prefix}{lines[-1]}")
        code = proc.wait()
    finally:
        timer.cancel()
        proc.stdout.close()
    if code != 0:
        tail = "\n".join(lines[-40:])
        raise RuntimeError(f"{Path(cmd[1]).name} failed (exit {code}):\n{tail}")
    return lines


def redis_answers(url: str | None) -> bool:
    """Redis at `url` answers PING, or asks for a password first (a plain socket)."""
    if not url:
        return False
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or LOOPBACK, parts.port or 6379), 2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


# --------------------------------------------------------------------------------------
# gunicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def healthy(port: int) -> bool:
    """GET /healthz on our port answers 200."""
    try:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        conn.request("GET", "/healthz", headers={"User-Agent": USER_AGENT})
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


class Server:
    """gunicorn -c gunicorn.conf.py on a free loopback port; our own child, stopped by PID.

    `spec` is what gunicorn serves (`wsgi:app`, `bench.bare:app`,
    `ideaboard:create_app({...})`); `workers` overrides GUNICORN_WORKERS and is waited for;
    `extra` goes on gunicorn's command line. Use it as a context manager."""

    live: ClassVar[list[Server]] = []

    def __init__(
        self,
        spec: str,
        env: dict[str, str],
        log_path: Path,
        *,
        workers: int | None = None,
        extra: Sequence[str] = (),
        name: str | None = None,
    ) -> None:
        self.spec = spec
        self.name = name or spec
        self.port = free_port()
        self.workers = workers
        self.env = dict(env, GUNICORN_BIND=f"{LOOPBACK}:{self.port}")
        if workers is not None:
            self.env["GUNICORN_WORKERS"] = str(workers)
        self.extra = list(extra)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), *self.extra, self.spec]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        Server.live.append(self)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        pid, workers = self.proc.pid, self.worker_pids()
        log(f"gunicorn {self.name} pid {pid}, workers {workers}, on {self.base}")
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            enough = self.workers is None or len(self.worker_pids()) >= self.workers
            if enough and healthy(self.port):
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz in {timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        """The master's children: read from /proc, so only processes this run started."""
        if not self.proc:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.proc.pid:
                pids.append(int(entry.name))
        return sorted(pids)

    def tree_pids(self) -> list[int]:
        return ([self.proc.pid] if self.proc else []) + self.worker_pids()

    def connections(self, pid: int) -> int:
        """Established connections to our port held by one of our workers."""
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
        port = f":{self.port:04X}"
        count = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    f = line.split()
                    if f[1].endswith(port) and f[3] == "01" and f[9] in inodes:
                        count += 1
        return count

    def log_size(self) -> int:
        self._log.flush()
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        self._log.flush()
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")

    def log_text(self) -> str:
        return self.log_since(0)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of the master and workers
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # Our own child's process group (start_new_session): master and its workers.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.proc = None
        self._log.close()
        if self in Server.live:
            Server.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        """Stop every server this process started and has not stopped yet."""
        for server in list(cls.live):
            with contextlib.suppress(Exception):
                server.stop()


def exit_on_signals() -> None:
    """On Ctrl-C, SIGTERM or SIGHUP: stop our servers, then exit with 128 + the signal."""

    def stop(signum, _frame):
        Server.stop_all()
        sys.exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


# --------------------------------------------------------------------------------------
# CPU: from /proc, in jiffies


def _cpu_line() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def busy_jiffies() -> int:
    """The whole machine's busy time: all but idle and iowait."""
    f = _cpu_line()[:7]
    return sum(f) - f[3] - f[4]


def iowait_jiffies() -> int:
    return _cpu_line()[4]


def pid_jiffies(pid: int) -> int:
    """User + system time of one process (0 once it is gone)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        return 0


def pg_backends(dbname: str) -> list[int]:
    """PostgreSQL server processes serving `dbname` (their process title names it)."""
    if not dbname:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                title = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                if title.startswith("postgres: ") and f" {dbname} " in title:
                    pids.append(int(entry.name))
    return pids


def cpu_busy(seconds: float = 1.0) -> float:
    """The machine's CPU use over `seconds` (0..1), from /proc/stat."""

    def sample() -> tuple[int, int]:
        f = _cpu_line()
        return f[3] + f[4], sum(f[:8])

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    total = total1 - total0
    return round(1 - (idle1 - idle0) / total, 3) if total > 0 else 0.0


def wait_for_quiet(max_wait: float, threshold: float, note: str) -> float:
    """Other work on the machine skews every number: wait (up to `max_wait` s) until it is
    less busy than `threshold`; if it never is, log `note` (`{busy}` is filled in).
    Returns how busy it was."""
    busy = cpu_busy()
    deadline = time.monotonic() + max_wait
    while busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy(2.0)
    if busy > threshold:
        log(note.format(busy=busy))
    return busy


class CpuWatch:
    """Cores used between start and `stop()`: by the server's processes, by the PostgreSQL
    backends of `dbname`, by the load generator and by everything else on the machine.

    The load generator is this process (`load="self"`: client threads) or the children it
    waited for meanwhile (`load="children"`: wrk)."""

    def __init__(
        self, server: Server, dbname: str = "", load: Literal["self", "children"] = "self"
    ) -> None:
        self.server, self.dbname, self.load = server, dbname, load
        self.t0 = time.monotonic()
        self.busy0 = busy_jiffies()
        self.iowait0 = iowait_jiffies()
        self.start = {pid: pid_jiffies(pid) for pid in self._pids()}
        self.load0 = self._load_seconds()

    def _pids(self) -> list[int]:
        return self.server.tree_pids() + pg_backends(self.dbname)

    def _used(self, pids: list[int]) -> int:
        return sum(max(pid_jiffies(p) - self.start.get(p, 0), 0) for p in pids)

    def _load_seconds(self) -> float:
        if self.load == "children":
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            return ru.ru_utime + ru.ru_stime
        return time.process_time()

    def stop(self) -> dict:
        hz = os.sysconf("SC_CLK_TCK")
        secs = max(time.monotonic() - self.t0, 1e-6)
        busy = (busy_jiffies() - self.busy0) / hz
        server = self._used(self.server.tree_pids()) / hz
        database = self._used(pg_backends(self.dbname)) / hz
        load = self._load_seconds() - self.load0
        iowait = (iowait_jiffies() - self.iowait0) / hz
        workers = {
            str(pid): round(self._used([pid]) / hz / secs, 2) for pid in self.server.worker_pids()
        }
        return {
            # Per worker: a gthread worker accepts greedily and keeps its keep-alive
            # connections, so one busy worker (one core, one GIL) can leave others idle.
            "per_worker": workers,
            # Cores idle while waiting for the disk (anyone's I/O, fsync included): a
            # PostgreSQL commit waits for its fsync, so disk contention slows writes too.
            "iowait": round(iowait / secs, 2),
            "server": round(server / secs, 2),
            "database": round(database / secs, 2),
            "load_generator": round(load / secs, 2),
            "other": round(max(busy - server - database - load, 0) / secs, 2),
        }


# --------------------------------------------------------------------------------------
# the machine and the code


def machine() -> dict:
    """Cores, CPU model, memory, kernel and Python of this machine."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": int(nproc) if nproc.isdigit() else os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_commit() -> str | None:
    """The checked-out commit, read from .git (no git command is run)."""
    git = ROOT / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head[:7]
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").exists():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).exists():
                return (base / ref).read_text().strip()[:7]
        packed = common / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0][:7]
    except (OSError, IndexError):
        return None
    return None
