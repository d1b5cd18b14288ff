"""gunicorn with the production settings shares kept-alive connections out evenly between
its workers (ideaboard/perf/worker.py), and a worker killed with its connections is replaced
without anyone being refused."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import sqlite_pass_only

#: Spread and replacement are timed: another worker's load would blur them (conftest).
#: The app served is a stub without a database, so one pass is enough.
pytestmark = [pytest.mark.serial, sqlite_pass_only]

ROOT = Path(__file__).resolve().parent.parent
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    (tmp_path / "pidapp.py").write_text(APP)
    port = _free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(WORKERS),
        "GUNICORN_KEEPALIVE": "30",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    env.pop("GUNICORN_WORKER_CLASS", None)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "pidapp:app"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("Booting worker") < WORKERS:
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # the last one loads the app and starts watching the socket
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert "Traceback" not in log.read_text(), log.read_text()


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
