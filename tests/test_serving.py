"""gunicorn with the production settings shares kept-alive connections out evenly between
its workers (ideaboard/perf/worker.py), and a worker killed with its connections is replaced
without anyone being refused."""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections import Counter

import pytest

from .conftest import sqlite_pass_only
from .servers import ROOT, gunicorn

#: Spread and replacement are timed: another worker's load would blur them (conftest).
#: The app served is a stub without a database, so one pass is enough.
pytestmark = [pytest.mark.serial, sqlite_pass_only]

WORKERS = 3
CLIENTS = 30

# Answers with its worker's pid, after a short pause, so that requests overlap.
APP = """
import os, time

def app(environ, start_response):
    time.sleep(0.002)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture
def server(tmp_path):
    yield from _gunicorn(tmp_path, APP, WORKERS)


def _gunicorn(tmp_path, app: str, workers: int, **settings: str):
    """gunicorn with the production settings (and `settings`) serving `app`, once each of
    its workers has booted and watches the socket; its port."""
    (tmp_path / "pidapp.py").write_text(app)
    env = {
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_KEEPALIVE": "30",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "GUNICORN_WORKER_CLASS": None,  # the production default, whatever the caller's
        **settings,
    }

    def booted(_port: int, log: str) -> bool:
        if log.count("Booting worker") < workers:
            return False
        time.sleep(0.5)  # the last one loads the app and starts watching the socket
        return True

    with gunicorn("pidapp:app", tmp_path, tmp_path / "gunicorn.log", booted, **env) as port:
        yield port


def _get(conn: http.client.HTTPConnection) -> str:
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 200
    return resp.read().decode()


def _open(port: int, n: int) -> list[http.client.HTTPConnection]:
    """n connections opened at once, as a load tool or a proxy's pool opens them."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(n)]
    for c in conns:
        c.connect()
    return conns


def _spread(conns) -> Counter:
    """Which worker serves each connection; asked twice, it must not change (kept alive)."""
    first = [_get(c) for c in conns]
    assert [_get(c) for c in conns] == first
    return Counter(first)


def test_kept_alive_connections_are_shared_evenly(server):
    conns = _open(server, CLIENTS)
    try:
        spread = _spread(conns)
        assert len(spread) == WORKERS, spread
        assert max(spread.values()) - min(spread.values()) <= 2, spread
    finally:
        for c in conns:
            c.close()


def test_a_killed_workers_place_is_taken_and_nobody_waits(server):
    conns = _open(server, CLIENTS)
    try:
        spread = _spread(conns)
        victim = int(spread.most_common(1)[0][0])
        os.kill(victim, signal.SIGKILL)
        time.sleep(1.0)  # the master notices and forks a replacement
        fresh = _open(server, 10)
        try:
            started = time.monotonic()
            served = _spread(fresh)
            assert time.monotonic() - started < 5
            assert str(victim) not in served
            # The replacement held nothing, so it takes most of the new connections.
            newcomer = set(served) - set(spread)
            assert newcomer and served[newcomer.pop()] >= 6, served
        finally:
            for c in fresh:
                c.close()
    finally:
        for c in conns:
            c.close()


# Answers with how many objects its worker has frozen out of the collector's view.
FREEZE_APP = """
import gc

def app(environ, start_response):
    body = str(gc.get_freeze_count()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def test_a_warm_worker_freezes_what_it_built_at_the_set_request_counts(tmp_path):
    """gunicorn.conf.py's post_request: after the 5th and the 10th request (as set) the
    worker freezes what it built since (a full collection then walks less); between and
    after, it freezes nothing."""
    for port in _gunicorn(tmp_path, FREEZE_APP, 1, GUNICORN_GC_FREEZE_AFTER="5,10"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        counts = []
        for _ in range(14):
            counts.append(int(_get(conn)))
            time.sleep(0.05)  # the hook runs after the answer is sent
        conn.close()
        # Frozen objects still go when their last use ends (the count drops); it grows
        # only by a freeze. The 5th request's hook freezes: the 6th sees it; so the 11th.
        grew = [n + 1 for n in range(1, 14) if counts[n] > counts[n - 1]]
        assert grew == [6, 11], counts
        assert counts[5] > counts[4] and counts[10] > counts[9], counts
