"""The load generator of bench/api.py: keep-alive TLS connections replaying pre-encoded requests, one in flight each.

Why raw bytes and not an HTTP library: a request must cost the client far less CPU than the server, or the client
is what gets measured. Writing pre-encoded bytes and parsing answers with httptools costs ~13 us of CPU per
request; httpx needs ~50x that and on 2 cores saturates its own core below what the baseline serves.

Each connection asks its ``Sequence`` for the next request when the previous answer is complete, so a sequence can
alternate (PATCH capacity up then down, PUT a group then DELETE it) or interleave a mix. Only requests sent and
answered inside the measured window count; the server's CPU time (/proc/<pid>/stat utime + stime) and the
machine's are sampled at the window's edges.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httptools


@dataclass(frozen=True)
class Request:
    label: str  # the route; latencies are kept per label
    data: bytes  # the whole HTTP/1.1 request as it goes on the wire
    status: int  # the answer that counts as a success


Sequence = Callable[[int], Iterator[Request]]  # connection index -> its endless stream of requests


@dataclass
class Result:
    target: str
    latencies: dict[str, list[float]]  # per label, seconds, requests sent and answered inside the window
    errors: int
    first_error: str  # what the first failed answer was, to tell a broken setup from a slow server
    duration: float
    server_cpu: float  # cores busy on average over the window (1.0 = one core)
    db_cpu: float  # the PostgreSQL backends serving the server's connections (0 with SQLite: it is in-process)
    client_cpu: float
    other_cpu: float  # the rest of the machine: anything else running here skews the figures

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def rps(self) -> float:
        return self.requests / self.duration

    @property
    def cpu_us(self) -> float:
        """Server CPU per answered request, in microseconds: the figure that survives a busy machine best."""
        return self.server_cpu * self.duration / max(self.requests, 1) * 1e6

    @property
    def db_us(self) -> float:
        return self.db_cpu * self.duration / max(self.requests, 1) * 1e6

    def pct(self, p: int, label: str | None = None) -> float:
        """Percentile in milliseconds, of one label or of all."""
        samples = self.latencies.get(label, []) if label else [x for v in self.latencies.values() for x in v]
        return statistics.quantiles(samples, n=100)[p - 1] * 1000 if len(samples) > 1 else float("nan")


def combine(parts: list[Result]) -> Result:
    """Several windows of one target as one: latencies pooled, CPU averaged over the summed duration."""
    d = sum(p.duration for p in parts)
    latencies: dict[str, list[float]] = {}
    for p in parts:
        for label, values in p.latencies.items():
            latencies.setdefault(label, []).extend(values)

    def mean(value: Callable[[Result], float]) -> float:
        return sum(value(p) * p.duration for p in parts) / d

    return Result(
        parts[0].target,
        latencies,
        sum(p.errors for p in parts),
        next((p.first_error for p in parts if p.first_error), ""),
        d,
        mean(lambda p: p.server_cpu),
        mean(lambda p: p.db_cpu),
        mean(lambda p: p.client_cpu),
        mean(lambda p: p.other_cpu),
    )


class Window:
    """Warm-up then measurement; samples server, client and whole-machine CPU time at the window's edges."""

    def __init__(self, pid: int, db_pids: Callable[[], list[int]], warmup: float, duration: float) -> None:
        self.pid, self.db_pids, self.duration = pid, db_pids, duration
        self.start = time.perf_counter() + warmup
        self.end = self.start + duration
        self.latencies: dict[str, list[float]] = {}
        self.errors = 0
        self.first_error = ""
        self.cpu: list[tuple[float, float, float]] = []
        self.db: list[dict[int, float]] = []

    def record(self, label: str, t0: float, t1: float, ok: bool, status: int) -> None:
        if t0 >= self.start and t1 <= self.end:
            if ok:
                self.latencies.setdefault(label, []).append(t1 - t0)
            else:
                self.errors += 1
                self.first_error = self.first_error or f"{label}: HTTP {status}"

    def sample_cpu(self) -> None:
        machine = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = sum(machine) - machine[3] - machine[4]  # all but idle and iowait
        self.cpu.append((process_cpu(self.pid), time.process_time(), busy / os.sysconf("SC_CLK_TCK")))
        self.db.append({pid: process_cpu(pid) for pid in self.db_pids()})

    def result(self, target: str) -> Result:
        (s0, c0, m0), (s1, c1, m1) = self.cpu
        d = self.duration
        server, client = (s1 - s0) / d, (c1 - c0) / d
        # A backend that appeared inside the window counts whole (it was born there); one that ended is lost.
        db = sum(t - self.db[0].get(pid, 0.0) for pid, t in self.db[1].items() if t == t) / d
        other = max(0.0, (m1 - m0) / d - server - client - db)
        return Result(target, self.latencies, self.errors, self.first_error, d, server, db, client, other)


def process_cpu(pid: int) -> float:
    """utime + stime in seconds; NaN if the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawConnection(asyncio.Protocol):
    """One keep-alive connection sending its sequence's next request as soon as the previous answer is complete."""

    def __init__(self, requests: Iterator[Request], window: Window) -> None:
        self.requests, self.window = requests, window
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.current = next(requests)
        self.t0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's SSL transport is not a subclass
        self.send()

    def send(self) -> None:
        self.t0 = time.perf_counter()
        self.transport.write(self.current.data)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        t1 = time.perf_counter()
        status = self.parser.get_status_code()
        self.window.record(self.current.label, self.t0, t1, status == self.current.status, status)
        if t1 < self.window.end:
            self.current = next(self.requests)
            self.send()
        else:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc)


async def _load(port: int, ca: str, sequence: Sequence, concurrency: int, window: Window) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    loop = asyncio.get_running_loop()
    conns: list[RawConnection] = []
    try:
        for i in range(concurrency):
            stream = sequence(i)
            made = await loop.create_connection(lambda s=stream: RawConnection(s, window), "127.0.0.1", port, ssl=ctx)
            conns.append(made[1])
        await asyncio.sleep(window.start - time.perf_counter())
        window.sample_cpu()
        await asyncio.sleep(window.end - time.perf_counter())
        window.sample_cpu()
        await asyncio.gather(*(c.done for c in conns))
    finally:  # on Ctrl-C too: a server shuts down faster without our connections open
        for c in conns:
            c.transport.close()


def measure(
    target: str,
    pid: int,
    port: int,
    ca: str,
    sequence: Sequence,
    concurrency: int,
    warmup: float,
    duration: float,
    db_pids: Callable[[], list[int]] = list,
) -> Result:
    """Run ``sequence`` on ``concurrency`` connections to 127.0.0.1:port; ``pid`` is the server whose CPU counts,
    ``db_pids`` gives the database processes working for it at a window's edge."""
    window = Window(pid, db_pids, warmup, duration)
    loop_run = asyncio.run
    try:
        import uvloop

        loop_run = uvloop.run  # the client's event loop overhead counts against the client, keep it small
    except ImportError:
        pass
    loop_run(_load(port, ca, sequence, concurrency, window))
    return window.result(target)
