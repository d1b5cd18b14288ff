"""A gunicorn worker that takes only its share of the connections (gunicorn.conf.py uses it).

gunicorn's gthread workers all watch one listening socket, and whichever wakes first
accepts. Connections that stay open (a proxy's keep-alive pool to its upstream, HTTP
clients, the benchmark's 32) are shared out once, at random, and then stay where they
landed, most of them on one worker. Each worker runs Python on at most one core at a
time, so the whole server then ran on about one core, and the same benchmark measured half
or twice as fast from run to run.

Here every worker publishes how many connections it holds in a small table in shared
memory, made by the master before it forks. When a connection waits, a worker accepts it
only if no live worker holds fewer; otherwise it looks again a millisecond later, by
which time the worker holding the fewest has usually taken it. A worker that is stuck
cannot hold connections back: after 50 ms of waiting any worker takes it, and a worker
that died without clearing its entry is skipped. Connections end up shared within one or
two of each other (tests/test_serving.py; the figures: docs/performance.md, "gunicorn").
"""

from __future__ import annotations

import multiprocessing
import os
import time

from gunicorn.workers.gthread import ThreadWorker

SLOTS = 64
# A worker holding more than another waits this long, at most, before it accepts anyway;
# it looks again every POLL while the connection is still waiting.
GRACE = 0.05
POLL = 0.001

# Made in the master when gunicorn loads this worker class, before any worker forks: each
# worker sees the same memory. RawArray: plain ints, read and written whole.
_pids = multiprocessing.RawArray("i", SLOTS)
_conns = multiprocessing.RawArray("i", SLOTS)
_claim = multiprocessing.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_slot(pid: int) -> int | None:
    """A free entry in the table for this worker, or None if all are taken."""
    with _claim:
        for i in range(SLOTS):
            if _pids[i] == 0 or not _alive(_pids[i]):
                _pids[i], _conns[i] = pid, 0
                return i
    return None


def release(pid: int) -> None:
    """Clear a worker's entry (the master calls this when the worker has exited)."""
    with _claim:
        for i in range(SLOTS):
            if _pids[i] == pid:
                _pids[i], _conns[i] = 0, 0


def may_accept(slot: int, mine: int) -> bool:
    """True when no other live worker holds fewer connections than `mine`."""
    for i in range(SLOTS):
        pid = _pids[i]
        if pid and i != slot and _conns[i] < mine:
            if _alive(pid):
                return False
            _pids[i] = 0  # died without the master clearing it (yet)
    return True


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, accepting only while it holds no more than any other."""

    def init_process(self) -> None:
        self._slot = claim_slot(os.getpid())
        self._waiting_since = self._last_declined = 0.0
        super().init_process()

    def _publish(self) -> None:
        if self._slot is not None:
            _conns[self._slot] = self.nr_conns

    def accept(self, server, listener) -> None:
        if self._slot is not None and not may_accept(self._slot, self.nr_conns):
            now = time.monotonic()
            if now - self._last_declined > 10 * POLL:  # a new wait, not the same one
                self._waiting_since = now
            self._last_declined = now
            if now - self._waiting_since < GRACE:
                # Leave it to a worker holding fewer; the socket stays watched, so this
                # worker looks again after the pause if the connection still waits.
                time.sleep(POLL)
                return
        super().accept(server, listener)
        self._publish()

    def finish_request(self, fs) -> None:
        super().finish_request(fs)
        self._publish()

    def murder_keepalived(self) -> None:
        super().murder_keepalived()
        self._publish()
