"""Live updates under load: N open idea pages polling one server (issue 13, item 11).

Each simulated page is what app.js does in a browser: every `interval` seconds (± 10%,
the first poll spread over the first interval) it asks the page's live URL with the ETag
it holds (If-None-Match), keeps the new URL and ETag a 200 brings, and uses its own
connection (reopened when the server closed it: gunicorn's keep-alive is shorter than the
interval, as a browser's connection would be). An asyncio client in this process, so
the server's CPU is measured apart from the client's (harness.CpuWatch, load="self").

Two phases on the same idea: quiet (nothing changes: every poll should be a 304), then
with one vote toggle a second on that idea from a member's session (each poll after a
change is a 200 with the new count, the next ones 304 again). Per phase: requests, 200s,
304s, errors, p50/p99 latency, and the gunicorn processes' CPU seconds per second.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from urllib.parse import urlsplit

from bench import harness
from bench.harness import Server

STATE = re.compile(rb'id="live-state" data-live-url="([^"]*)" data-etag="([^"]*)"')


class Page:
    """One open idea page: its live URL, ETag and connection."""

    def __init__(self, host: str, port: int, url: str, etag: str, user_agent: str) -> None:
        self.host, self.port, self.url, self.etag = host, port, url, etag
        self.user_agent = user_agent
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        await self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def _exchange(self) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None and self.writer is not None
        request = (
            f"GET {self.url} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"User-Agent: {self.user_agent}\r\nAccept: */*\r\nHX-Request: true\r\n"
            f"If-None-Match: {self.etag}\r\nAccept-Encoding: identity\r\n\r\n"
        )
        self.writer.write(request.encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await self.reader.readexactly(length) if length else b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers, body

    async def poll(self) -> tuple[int, float]:
        """One poll: (status, seconds from sending to the whole answer; 0 on failure)."""
        for attempt in (1, 2):
            try:
                if self.reader is None or self.reader.at_eof():
                    await self._connect()
                started = time.perf_counter()
                status, _headers, body = await self._exchange()
                took = time.perf_counter() - started
                break
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                await self.close()  # the server closed an idle keep-alive connection
                if attempt == 2:
                    return 0, 0.0
        if status == 200:
            found = STATE.search(body)
            if found:
                self.url = html.unescape(found.group(1).decode())
                self.etag = html.unescape(found.group(2).decode())
        return status, took


async def _vote_loop(host, port, idea_id, cookie, csrf, user_agent, per_second, stop, out):
    """Toggle one member's vote on the idea `per_second` times a second until `stop`."""
    period = 1.0 / per_second
    while not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            request = (
                f"POST /ideas/{idea_id}/vote HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"User-Agent: {user_agent}\r\nCookie: session={cookie}\r\n"
                f"X-CSRFToken: {csrf}\r\nHX-Request: true\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(request.encode())
            await writer.drain()
            line = await reader.readline()
            out.append(int(line.split()[1]))
            await reader.read()
            writer.close()
        except (ConnectionError, OSError, IndexError, ValueError):
            out.append(0)
        await asyncio.sleep(max(period - (time.monotonic() - started), 0))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def _phase(pages, interval, seconds, votes) -> dict:
    stop = asyncio.Event()
    statuses: list[int] = []
    latencies: list[float] = []

    async def run(page: Page, first: float) -> None:
        await asyncio.sleep(first)
        while not stop.is_set():
            status, took = await page.poll()
            statuses.append(status)
            if status:
                latencies.append(took)
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))

    vote_statuses: list[int] = []
    tasks = [asyncio.create_task(run(p, random.uniform(0, interval))) for p in pages]
    if votes is not None:
        tasks.append(asyncio.create_task(_vote_loop(*votes, stop, vote_statuses)))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    counts: dict[str, int] = {}
    for s in statuses:
        counts[str(s)] = counts.get(str(s), 0) + 1
    return {
        "requests": len(statuses),
        "by_status": counts,
        "errors": sum(n for s, n in counts.items() if s not in ("200", "304")),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=0) * 1000, 2),
        "votes": {
            "sent": len(vote_statuses),
            "by_status": {str(s): vote_statuses.count(s) for s in set(vote_statuses)},
        },
    }


def measure_live(
    server: Server,
    idea_id: int,
    member: tuple[str, str],
    user_agent: str,
    pages: int = 500,
    interval: float = 10.0,
    seconds: float = 30.0,
    votes_per_second: float = 1.0,
) -> dict:
    """Open `pages` copies of the idea page and poll for `seconds`, quiet and then with
    `votes_per_second` vote toggles on the idea; CPU and latency per phase."""
    import urllib.request

    parts = urlsplit(server.base)
    host, port = parts.hostname, parts.port
    req = urllib.request.Request(
        f"{server.base}/ideas/{idea_id}", headers={"User-Agent": user_agent}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        found = STATE.search(resp.read())
    if not found:
        raise RuntimeError(f"/ideas/{idea_id} has no #live-state: live updates are off")
    url, etag = (html.unescape(g.decode()) for g in found.groups())
    dbname = harness.dbname_of(server.env.get("DATABASE_URL", ""))
    result: dict = {
        "pages": pages,
        "interval_s": interval,
        "seconds_per_phase": seconds,
        "idea_id": idea_id,
        "votes_per_second": votes_per_second,
        "phases": {},
    }

    async def both() -> None:
        for name, votes in (
            ("quiet", None),
            ("one_vote_per_second", (host, port, idea_id, *member, user_agent, votes_per_second)),
        ):
            opened = [Page(host, port, url, etag, user_agent) for _ in range(pages)]
            cpu = harness.CpuWatch(server, dbname, load="self")
            phase = await _phase(opened, interval, seconds, votes)
            used = cpu.stop()
            for page in opened:
                await page.close()
            phase["server_cores"] = used["server"]
            phase["database_cores"] = used["database"]
            phase["client_cores"] = used["load_generator"]
            phase["other_cores"] = used["other"]
            phase["rps"] = round(phase["requests"] / seconds, 1)
            phase["server_cpu_ms_per_poll"] = (
                round(used["server"] * seconds / phase["requests"] * 1000, 3)
                if phase["requests"]
                else None
            )
            result["phases"][name] = phase

    asyncio.run(both())
    return result


def describe(live: dict) -> list[str]:
    """Lines for the printed report."""
    out = [
        f"live updates: {live['pages']} open pages of idea {live['idea_id']} polling every "
        f"{live['interval_s']:g} s, {live['seconds_per_phase']:g} s per phase"
    ]
    for name, p in live["phases"].items():
        out.append(
            f"  {name:<20} {p['rps']:>6,.1f} polls/s  {p['by_status']}  p50 {p['p50_ms']:.1f} ms"
            f"  p99 {p['p99_ms']:.1f} ms  gunicorn {p['server_cores']:.3f} CPU s/s "
            f"({p['server_cpu_ms_per_poll']} ms/poll)  errors {p['errors']}"
            + (f"  votes {p['votes']['by_status']}" if p["votes"]["sent"] else "")
        )
    return out
