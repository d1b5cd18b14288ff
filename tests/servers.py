"""Real servers the tests start on loopback: a free port, and gunicorn with the production
settings (gunicorn.conf.py) until it is ready, stopped and checked for tracebacks after."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(
    app: str, cwd: Path, log: Path, ready: Callable[[int, str], bool], **env: str | None
) -> Iterator[int]:
    """`gunicorn -c gunicorn.conf.py app` run in `cwd` with this environment and `env` (a
    None leaves that variable out), on a free port, its errors in `log`; yields the port
    once `ready(port, log text)` (within 30 s). Stopped with SIGTERM as a supervisor stops
    it; no traceback may be in its log."""
    port = free_port()
    environ = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{port}", **env}
    environ = {name: value for name, value in environ.items() if value is not None}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), app],
            cwd=cwd,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 30
        while not ready(port, log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()
