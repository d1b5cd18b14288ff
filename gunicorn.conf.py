"""Production gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Tuned for a small machine (the benchmark's is 2 cores). Every value can be overridden from
the environment, so one file serves the app, the benchmark and the bare endpoint it is
compared with (bench/bare.py). `make bench` measured the choices below; the figures are in
docs/performance.md ("gunicorn: workers, threads, GIL, recycling").
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


_cores = multiprocessing.cpu_count()

# Loopback by default: put nginx (TLS, static files) in front in production.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# The app is CPU-bound Python (templates, Markdown, SQLAlchemy) with short waits on the
# database, so a process per core plus one, each with a few threads that cover those waits.
# The gthread worker also keeps connections alive, which browsers and proxies use.
# Of the shapes measured (sync workers, 2x8, 3x2, 4x4 threads), 3 workers x 4 threads served
# the signed-in pages fastest on 2 cores.
# gthread, except that each worker accepts only while it holds no more connections than
# any other (ideaboard/perf/worker.py): kept-alive connections no longer pile up on one worker.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "ideaboard.perf.worker.BalancedThreadWorker")
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", _cores + 1))
threads = _int("GUNICORN_THREADS", 4)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Connections beyond this wait in the listen backlog rather than being accepted.
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
backlog = _int("GUNICORN_BACKLOG", 2048)

# A request that takes longer than this is stuck: the worker is replaced.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)

# Refuse oversized request lines and headers early (a session cookie is well under this).
limit_request_line = _int("GUNICORN_LIMIT_REQUEST_LINE", 8190)
limit_request_fields = _int("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = _int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)

# Recycle a worker after this many requests so a slow leak cannot grow without bound; the
# jitter keeps them from restarting together. High on purpose: a restart drops the worker's
# keep-alive connections and empties its caches (pages, list rows); lower values restarted
# workers in the middle of load, and clients saw connection resets.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1_000_000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100_000)

# Heartbeat files in memory, not on a possibly slow disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# No access log by default (the proxy in front keeps one); errors go to stderr.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# X-Forwarded-* are trusted only from the proxy on this host; the app's PROXY_HOPS decides
# what it believes about the client.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "ideaboard"


# How long a thread may hold the GIL while another waits (Python's default: 5 ms). A
# thread back from the database or the socket waits that long behind one that is
# rendering; so does the worker's own loop that hands out requests. With SQLite a writer
# waits so while holding the write lock, and every other writer with it. 0.5 ms made vote
# toggles and the signed-in pages' p99 much better, and nothing slower.
switch_interval = float(os.environ.get("GUNICORN_SWITCH_INTERVAL", "") or 0.0005)


# After how many requests a worker freezes again what it has built since (see
# post_request): "1000,10000,100000" by default, "" never.
gc_freeze_after = tuple(
    int(n)
    for n in os.environ.get("GUNICORN_GC_FREEZE_AFTER", "1000,10000,100000").split(",")
    if n.strip()
)


def post_worker_init(worker) -> None:
    """Tune the worker's interpreter once the app is loaded.

    gc.freeze(): move everything the app built at start-up out of the garbage collector's
    view. Full collections otherwise walk every module, template and mapper object again
    and again; under load those pauses were the slowest requests (Instagram's gc.freeze()).
    """
    import gc
    import sys

    sys.setswitchinterval(switch_interval)
    gc.collect()
    gc.freeze()


_frozen = [0]  # how many of gc_freeze_after this worker has passed (each worker its own)


def post_request(worker, req, environ, resp) -> None:
    """Freeze again once the worker is warm, and again as it keeps warming.

    What a worker keeps is mostly built by its first requests, not at start-up: SQLAlchemy's
    compiled statements, Jinja's and Babel's caches, the page and fragment stores' tables.
    A full collection walked those 35,000-40,000 objects each time (15-36 ms of CPU, and
    100-300 ms of wall time on a busy machine, every thread of the worker stalled: the
    members' slowest requests). After 1,000, 10,000 and 100,000 requests, what is alive is
    collected once more and frozen; full collections then walk only what came since.
    Garbage cycles among frozen objects are never collected: three freezes bound that.
    """
    done = _frozen[0]
    if done < len(gc_freeze_after) and worker.nr >= gc_freeze_after[done]:
        _frozen[0] = done + 1  # one thread freezes; the others see it done
        import gc

        gc.collect()
        gc.freeze()


def child_exit(server, worker) -> None:
    """In the master, once a worker has exited: free its entry in the connection table."""
    if worker_class.startswith("ideaboard.perf.worker."):
        from ideaboard.perf import worker as balanced

        balanced.release(worker.pid)
