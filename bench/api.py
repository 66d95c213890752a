"""Requests/s and p50/p99 latency of an authenticated ``GET resourceGroup``, side by side with a minimal uvicorn app.

Two HTTPS servers run on this machine, each one uvicorn worker with the same TLS certificate and key:

* ``alto``: ``alto up`` (SQLite in a temporary data dir) answering
  ``GET /subscriptions/{s}/resourcegroups/benchrg?api-version=2019-10-01`` with a bearer token, i.e. the whole
  stack: routing, token check, api-version and subscription checks, one database transaction, JSON rendering;
* ``baseline``: a raw ASGI app that answers any request with a fixed JSON body of the same shape.

This process is the load generator (a separate process from both servers, so it shares neither GIL): it keeps
``--concurrency`` keep-alive connections busy, one request in flight each, warms up for ``--warmup`` seconds,
then records every latency for ``--duration`` seconds, target after target. It prints requests/s, p50 and p99
per target and the ratios alto/baseline; the goal is a requests/s ratio >= 0.5. Also printed, from /proc (so
Linux only), for the measured window: the CPU of each server (and per request), of the load generator, and of
everything else on the machine. A load generator near 100% means the figures measure the client; "other CPU"
above a few % means someone else's work shares the cores and req/s is low by that much (CPU per request is
the figure that survives a busy machine best).

The default client (``--client raw``) writes a pre-encoded HTTP/1.1 request per round trip over asyncio TLS
connections and parses answers with httptools, ~13 us of CPU per request. httpx (``--client httpx``, threads
sharing one ``httpx.Client``) needs ~50x that: on 2 cores it saturates its own core at ~1,600 req/s, far below
what the baseline serves, and the ratio it reports is meaningless (it flatters alto).

Run:  .venv/bin/python bench/api.py [--duration S] [--warmup S] [--concurrency N] [--client raw|httpx]
                                    [--log-level warning|info] [--alto-arg=--no-fast-lane]

The exit status is 0 whatever the ratio: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import httpx
import uvicorn

API = "2019-10-01"
BASELINE_BODY = json.dumps(
    {
        "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/benchrg",
        "name": "benchrg",
        "type": "Microsoft.Resources/resourceGroups",
        "location": "local",
        "properties": {"provisioningState": "Succeeded"},
    },
    separators=(",", ":"),
).encode()


async def baseline_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    headers = [(b"content-type", b"application/json; charset=utf-8")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BASELINE_BODY})


def serve_baseline(data_dir: Path, port: int) -> None:
    """The same uvicorn settings as ``alto up`` (altostratus/server.py), minus our application."""
    uvicorn.run(
        baseline_app,
        host="127.0.0.1",
        port=port,
        ssl_certfile=str(data_dir / "server.pem"),
        ssl_keyfile=str(data_dir / "server-key.pem"),
        log_config=None,
        access_log=False,
        lifespan="off",
    )


@dataclass
class Result:
    target: str
    latencies: list[float]  # seconds, requests sent and answered inside the measured window
    errors: int
    duration: float
    server_cpu: float  # cores busy on average over the window (1.0 = one core)
    client_cpu: float
    other_cpu: float  # the rest of the machine: anything else running here skews the figures

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.duration

    def pct(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[p - 1] * 1000 if len(self.latencies) > 1 else float("nan")


class Window:
    """Warm-up then measurement; samples server, client and whole-machine CPU time at the window's edges."""

    def __init__(self, pid: int, warmup: float, duration: float) -> None:
        self.pid, self.duration = pid, duration
        self.start = time.perf_counter() + warmup
        self.end = self.start + duration
        self.latencies: list[float] = []
        self.errors = 0
        self.cpu: list[tuple[float, float, float]] = []

    def record(self, t0: float, t1: float, ok: bool) -> None:
        if t0 >= self.start and t1 <= self.end:
            if ok:
                self.latencies.append(t1 - t0)
            else:
                self.errors += 1

    def sample_cpu(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        proc = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        machine = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = sum(machine) - machine[3] - machine[4]  # all but idle and iowait
        self.cpu.append(((int(proc[11]) + int(proc[12])) / tick, time.process_time(), busy / tick))

    def result(self, target: str) -> Result:
        (s0, c0, m0), (s1, c1, m1) = self.cpu
        d = self.duration
        server, client = (s1 - s0) / d, (c1 - c0) / d
        return Result(target, self.latencies, self.errors, d, server, client, max(0.0, (m1 - m0) / d - server - client))


class RawConnection(asyncio.Protocol):
    """One keep-alive connection sending the same request again as soon as the previous answer is complete."""

    def __init__(self, request: bytes, window: Window) -> None:
        self.request, self.window = request, window
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.t0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's SSL transport is not a subclass
        self.send()

    def send(self) -> None:
        self.t0 = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        t1 = time.perf_counter()
        self.window.record(self.t0, t1, self.parser.get_status_code() == 200)
        if t1 < self.window.end:
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


async def load_raw(url: str, headers: dict[str, str], ca: str, concurrency: int, window: Window) -> None:
    u = urlsplit(url)
    assert u.hostname and u.port
    lines = [f"GET {u.path}?{u.query} HTTP/1.1", f"Host: {u.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    ctx = ssl.create_default_context(cafile=ca)
    loop = asyncio.get_running_loop()
    conns: list[RawConnection] = []
    try:
        for _ in range(concurrency):
            conns.append(
                (await loop.create_connection(lambda: RawConnection(request, window), u.hostname, u.port, ssl=ctx))[1]
            )
        await asyncio.sleep(window.start - time.perf_counter())
        window.sample_cpu()
        await asyncio.sleep(window.end - time.perf_counter())
        window.sample_cpu()
        await asyncio.gather(*(c.done for c in conns))
    finally:  # on Ctrl-C too: a server shuts down faster without our connections open
        for c in conns:
            c.transport.close()


def load_httpx(url: str, headers: dict[str, str], ca: str, concurrency: int, window: Window) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(verify=ca, headers=headers, limits=limits) as client:

        def worker() -> None:
            while time.perf_counter() < window.end:
                t0 = time.perf_counter()
                try:
                    status = client.get(url).status_code
                except httpx.HTTPError:  # an error, or the pool closed under us by Ctrl-C
                    status = 0
                window.record(t0, time.perf_counter(), status == 200)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
        for t in threads:
            t.start()
        try:
            time.sleep(max(0.0, window.start - time.perf_counter()))
            window.sample_cpu()
            time.sleep(max(0.0, window.end - time.perf_counter()))
            window.sample_cpu()
            for t in threads:
                t.join()
        finally:
            window.end = 0.0  # on Ctrl-C: workers stop after their current request


def measure(target: str, pid: int, url: str, headers: dict[str, str], ca: str, args: argparse.Namespace) -> Result:
    window = Window(pid, args.warmup, args.duration)
    if args.client == "httpx":
        load_httpx(url, headers, ca, args.concurrency, window)
    else:
        loop_run = asyncio.run
        try:
            import uvloop

            loop_run = uvloop.run  # the client's event loop overhead counts against the client, keep it small
        except ImportError:
            pass
        loop_run(load_raw(url, headers, ca, args.concurrency, window))
    return window.result(target)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], url: str, ca: Path, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ca.exists() and httpx.get(url, verify=str(ca), timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"server at {url} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def start(cmd: list[str], log: Path, procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    # Own session: Ctrl-C reaches only this process, whose `finally` stops the servers in order.
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(proc)
    return proc


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\nauthenticated GET resourceGroup vs minimal uvicorn app: {args.duration:g} s per target after "
        f"{args.warmup:g} s warm-up, concurrency {args.concurrency}, client {args.client}, "
        f"alto --log-level {args.log_level}{''.join(' ' + a for a in args.alto_arg)}, {os.cpu_count()} CPUs\n"
    )
    print(
        f"{'target':<10}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'server CPU':>12}{'CPU us/req':>12}{'client CPU':>12}{'other CPU':>11}"
    )
    for r in results:
        print(
            f"{r.target:<10}{len(r.latencies):>10}{r.errors:>8}{r.rps:>10.0f}{r.pct(50):>9.2f}{r.pct(99):>9.2f}"
            f"{r.server_cpu:>12.0%}{r.server_cpu / max(r.rps, 1) * 1e6:>12.0f}{r.client_cpu:>12.0%}{r.other_cpu:>11.0%}"
        )
    base, ours = results
    ratio = ours.rps / base.rps if base.rps else float("nan")
    print(
        f"\nratio alto/baseline: req/s {ratio:.3f} (goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}), "
        f"p50 {ours.pct(50) / base.pct(50):.2f}x, p99 {ours.pct(99) / base.pct(99):.2f}x"
    )
    if max(base.client_cpu, ours.client_cpu) > 0.8:
        print("warning: the load generator used > 80% of a core; the figures are bounded by the client")
    if max(base.other_cpu, ours.other_cpu) > 0.1:
        print("warning: other processes used > 10% of a core during the measurement; the figures are noisy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per target (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections per target (default 8)")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load generator (default raw)")
    parser.add_argument("--log-level", default="warning", help="`alto up --log-level` (default warning)")
    parser.add_argument(
        "--alto-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra `alto up` argument, repeatable (e.g. --alto-arg=--no-fast-lane to measure the general pipeline)",
    )
    parser.add_argument("--serve-baseline", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(Path(args.serve_baseline[0]), int(args.serve_baseline[1]))
        return

    # Ctrl-C and `kill` both end in KeyboardInterrupt (asyncio.run turns SIGINT into a clean one), so `finally`
    # stops the servers; SIGINT is reset because a background job of a non-interactive shell inherits SIG_IGN.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="alto-bench-") as tmp:
        data = Path(tmp)
        try:
            alto_port, base_port = free_port(), free_port()
            alto_cmd = [str(Path(sys.executable).with_name("alto")), "up", "--data-dir", str(data)]
            alto_cmd += ["--port", str(alto_port), "--log-level", args.log_level, *args.alto_arg]
            alto = start(alto_cmd, data / "alto.log", procs)
            arm = f"https://127.0.0.1:{alto_port}"
            wait_ready(alto, f"{arm}/metadata/endpoints?api-version=2015-01-01", data / "ca.pem", data / "alto.log")
            base_cmd = [sys.executable, __file__, "--serve-baseline", str(data), str(base_port)]
            base = start(base_cmd, data / "baseline.log", procs)
            wait_ready(base, f"https://127.0.0.1:{base_port}/", data / "ca.pem", data / "baseline.log")

            creds = json.loads((data / "credentials.json").read_text())
            tenant, ca = creds["tenant"], creds["caFile"]
            form = {
                "grant_type": "client_credentials",
                "client_id": tenant["clientId"],
                "client_secret": tenant["clientSecret"],
                "scope": f"{creds['armEndpoint']}/.default",
            }
            token = httpx.post(creds["tokenEndpoint"], data=form, verify=ca).raise_for_status().json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            path = f"/subscriptions/{tenant['subscriptionId']}/resourcegroups/benchrg?api-version={API}"
            url = creds["armEndpoint"] + path
            httpx.put(url, json={"location": "local"}, headers=auth, verify=ca).raise_for_status()
            httpx.get(url, headers=auth, verify=ca).raise_for_status()

            results = []  # the same request bytes (path, token) to both; the baseline ignores them
            for target, pid, target_url in (
                ("baseline", base.pid, f"https://127.0.0.1:{base_port}{path}"),
                ("alto", alto.pid, url),
            ):
                print(f"measuring {target} ...", file=sys.stderr, flush=True)
                results.append(measure(target, pid, target_url, auth, ca, args))
            report(results, args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
