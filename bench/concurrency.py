"""Write latency under 20 concurrent clients: reads, resource-group create/delete and capacity PATCHes, mixed.

Why: issue 12, point 9. Under 20 clients, group PUT/DELETE and capacity PATCH had a p99 of 1.2-1.5 s (max 6.8 s)
while GETs stayed at 24 ms. The goal is a write p99 of at most 100 ms at that load, with no errors.

What runs. ``alto up`` on its default embedded SQLite (``--database-url`` takes a PostgreSQL admin URL instead and
makes a throw-away database there), the sim hypervisor, over HTTPS. The operator syndicates the test image and
raises the tenant's quota; the tenant makes a resource group with one sim scale set (capacity 1) per client. Then
``--clients`` clients (default 20), each its own keep-alive HTTPS connection (httpx, a bearer token from the token
endpoint, as a script or an SDK would hold one), run for ``--duration`` seconds (default 120). Each client sends
``--rate`` requests a second (default 13, so ~260 a second in all: the rate of the issue's probe, 31,709 requests
in two minutes); a client whose answer comes late sends its next request at once rather than in a burst, so
a slow server gets fewer requests, never a pile. ``--rate 0`` is a closed loop (as fast as answers come). Each
request is drawn at random (seeded per client) from this mix:

* reads, 65 %: ``get_group`` (GET the bench's group), ``list_groups``, ``get_set`` (GET the client's scale set),
  ``poll`` (GET the ``Azure-AsyncOperation`` URL of the client's last long-running write, as an SDK poller does);
* ``put_group`` / ``delete_group``, 20 %: a client with no group of its own PUTs a new one (a fresh name, 201),
  one with a group DELETEs it (202: the deletion is an operation that runs in the server);
* ``patch_capacity``, 15 %: a PATCH of the client's own scale set's ``sku.capacity``, alternating 1 -> 2 -> 1
  (200; the controller then creates or deletes an instance in the sim driver).

Every answer other than the expected status (or a transport failure or timeout) is an error, counted per type,
and the first few are printed. Per type: count, p50, p99, max, errors; the writes together against the goal.
Only requests sent and answered inside the measured window count (``--warmup`` seconds come first).

Side by side. ``--compare DIR`` starts a second server from another source tree (``PYTHONPATH=DIR``, e.g. the
previous commit: ``git worktree add /tmp/before <commit>`` and ``--compare /tmp/before/src``), with its own data
dir, and measures it in alternating slices with this tree's server (``--rounds``, default 2 per target), so load
from others on the machine falls on both alike; the ratios this/compare (p50, p99) are printed per type. Both
servers are up for the whole run and get the same setup. Also printed per target: the server's CPU (cores), the
load generator's and the rest of the machine's, and the load average: a shared machine inflates latencies.

Run:   .venv/bin/python bench/concurrency.py [--duration 120] [--clients 20] [--rate 13] [--compare DIR]
                                             [--rounds 2] [--database-url ADMIN_URL] [--quick]
``--quick`` is a 20 s run (a smoke test of the bench and a first look; the figures are noisier).

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from api import ThrowawayDatabase, loadavg  # noqa: E402
from api_load import process_cpu  # noqa: E402
from api_setup import raise_quota  # noqa: E402
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name  # noqa: E402
from tests.support.server import AltoServer  # noqa: E402
from tests.support.vmss import vmss_body  # noqa: E402

GROUP = "benchrg"
RESOURCES = "api-version=2019-10-01"
COMPUTE = "api-version=2020-06-01"
READS = ("get_group", "list_groups", "get_set", "poll")
WRITES = ("put_group", "delete_group", "patch_capacity")
KINDS = (*READS, *WRITES)
# Of 20 draws: reads 13 (65 %), a group write 4 (20 %: PUT or DELETE, whichever the client's state calls for),
# a capacity PATCH 3 (15 %).
MIX = {"get_group": 4, "list_groups": 3, "get_set": 3, "poll": 3, "group": 4, "patch_capacity": 3}
EXPECTED = {"put_group": 201, "delete_group": 202, "patch_capacity": 200}
GOAL_P99_MS = 100.0
TIMEOUT = 30.0


@dataclass
class Window:
    """One measured slice of one target: latencies per type, errors per type, CPU at the edges."""

    target: str
    start: float
    end: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    first_errors: list[str] = field(default_factory=list)
    server_cpu: float = 0.0  # CPU seconds of the server (and its PostgreSQL backends) over the window
    client_cpu: float = 0.0
    machine_cpu: float = 0.0  # all CPU seconds on the machine over the window

    def record(self, kind: str, t0: float, t1: float, error: str | None) -> None:
        if t0 < self.start or t1 > self.end:
            return
        if error is None:
            self.latencies[kind].append(t1 - t0)
        else:
            self.errors[kind] += 1
            if len(self.first_errors) < 5:
                self.first_errors.append(f"{kind}: {error}")


def machine_cpu() -> float:
    """CPU seconds spent by the whole machine so far (user + nice + system + irq + softirq)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = sum(int(fields[i]) for i in (0, 1, 2, 5, 6))
    return ticks / os.sysconf("SC_CLK_TCK")


class Client:
    """One tenant client: its own connection, scale set, group (when it has one) and last operation URL."""

    def __init__(self, index: int, http: httpx.AsyncClient, sub: str, seed: int) -> None:
        self.index, self.http, self.sub = index, http, sub
        self.rng = random.Random(seed * 1000 + index)
        self.draws = [kind for kind, weight in MIX.items() for _ in range(weight)]
        self.group: str | None = None
        self.capacity = 1
        self.operation: str | None = None
        self.names = itertools.count(1)
        self.tag = f"{seed:x}"

    @property
    def set_path(self) -> str:
        return (
            f"/subscriptions/{self.sub}/resourceGroups/{GROUP}/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/bench{self.index:02d}"
        )

    def group_path(self, name: str) -> str:
        return f"/subscriptions/{self.sub}/resourcegroups/{name}?{RESOURCES}"

    def next_request(self) -> tuple[str, str, str, dict[str, object] | None]:
        """(kind, method, url, json body) of the next request in the mix."""
        kind = self.rng.choice(self.draws)
        if kind == "group":
            if self.group is None:
                self.group = f"benchc{self.tag}x{self.index:02d}x{next(self.names)}"
                return "put_group", "PUT", self.group_path(self.group), {"location": "local"}
            name, self.group = self.group, None
            return "delete_group", "DELETE", self.group_path(name), None
        if kind == "patch_capacity":
            self.capacity = 2 if self.capacity == 1 else 1
            return kind, "PATCH", f"{self.set_path}?{COMPUTE}", {"sku": {"capacity": self.capacity}}
        if kind == "poll" and self.operation:
            return kind, "GET", self.operation, None
        if kind in ("poll", "get_group"):
            return "get_group", "GET", self.group_path(GROUP), None
        if kind == "list_groups":
            return kind, "GET", f"/subscriptions/{self.sub}/resourcegroups?{RESOURCES}", None
        return "get_set", "GET", f"{self.set_path}?{COMPUTE}", None

    async def run(self, window: Window, rate: float) -> None:
        interval = 1.0 / rate if rate else 0.0
        due = time.perf_counter() + self.rng.random() * interval  # spread the clients' first requests
        while True:
            now = time.perf_counter()
            if now >= window.end:
                return
            if due > now:
                await asyncio.sleep(due - now)
            kind, method, url, body = self.next_request()
            t0 = time.perf_counter()
            error: str | None = None
            try:
                r = await self.http.request(method, url, json=body)
                expected = EXPECTED.get(kind, 200)
                if r.status_code != expected:
                    error = f"{method} {url.split('?')[0]} -> {r.status_code} {r.text[:200]}"
                elif "azure-asyncoperation" in r.headers:
                    self.operation = r.headers["azure-asyncoperation"]
            except httpx.HTTPError as err:
                error = f"{method} {url.split('?')[0]} -> {type(err).__name__}: {err}"
            t1 = time.perf_counter()
            window.record(kind, t0, t1, error)
            due = max(due + interval, t1)  # late: the next request goes at once, but no burst to catch up


@dataclass
class Target:
    """A running server under load and its clients' state (kept from slice to slice)."""

    name: str
    server: AltoServer
    sub: str
    token: str
    db: ThrowawayDatabase | None
    clients: list[Client] = field(default_factory=list)

    def cpu(self) -> float:
        assert self.server.proc is not None
        pids = [self.server.proc.pid, *(self.db.backend_pids() if self.db else [])]
        return sum(process_cpu(pid) for pid in pids)


def start_server(tmp: Path, name: str, tree: Path | None, upstream: Path, args: argparse.Namespace) -> Target:
    """``alto up`` from this tree or ``tree`` (a src directory), set up for the bench: image, quota, sets."""
    db = ThrowawayDatabase(args.database_url) if args.database_url else None
    extra = ("--hypervisor", "sim", "--upstream", str(upstream), "--log-level", "warning")
    server = AltoServer(tmp / f"data-{name}", db.url if db else None, extra_args=extra)
    with python_path(tree):
        server.start()
    sub = str(server.credentials["tenant"]["subscriptionId"])
    op = Operator(server)
    try:
        got = op.download(product_name(PUB, OFFER, SKU, "1.0.0"))
        if got["status"] != "Succeeded":
            raise RuntimeError(f"image download failed: {got}")
        raise_quota(op, sub, 4 * args.clients + 10)
    finally:
        op.http.close()
    with server.client() as http:
        http.put(f"/subscriptions/{sub}/resourcegroups/{GROUP}?{RESOURCES}", json={"location": "local"})
        http.post(f"/subscriptions/{sub}/providers/Microsoft.Compute/register?{RESOURCES}").raise_for_status()
        pending = []
        for i in range(args.clients):
            url = f"/subscriptions/{sub}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets"
            r = http.put(f"{url}/bench{i:02d}?{COMPUTE}", json=vmss_body(1, prefix=f"b{i:02d}"))
            if r.status_code not in (200, 201):
                raise RuntimeError(f"scale set bench{i:02d}: {r.status_code} {r.text}")
            pending.append(r.headers["azure-asyncoperation"])
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            status = http.get(pending[0]).json()["status"]
            if status == "InProgress":
                time.sleep(0.2)
                continue
            if status != "Succeeded":
                raise RuntimeError(f"a scale set's creation ended {status}")
            pending.pop(0)
        if pending:
            raise RuntimeError("the scale sets were not created in 120 s")
    return Target(name, server, sub, server.token(), db)


@contextmanager
def python_path(tree: Path | None) -> Iterator[None]:
    """``alto up`` (a subprocess inheriting the environment) imports altostratus from ``tree`` when given."""
    if tree is None:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tree.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


async def measure(target: Target, warmup: float, duration: float, args: argparse.Namespace, seed: int) -> Window:
    """One slice: the clients run ``warmup`` + ``duration`` seconds; only the last ``duration`` count."""
    tls = ssl.create_default_context(cafile=target.server.ca)
    headers = {"Authorization": f"Bearer {target.token}"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [
        httpx.AsyncClient(base_url=target.server.endpoint, verify=tls, headers=headers, timeout=TIMEOUT, limits=limits)
        for _ in range(args.clients)
    ]
    if not target.clients:
        target.clients = [Client(i, https[i], target.sub, seed) for i in range(args.clients)]
    for client, http in zip(target.clients, https, strict=True):
        client.http = http
    now = time.perf_counter()
    window = Window(target.name, now + warmup, now + warmup + duration)
    t0, m0, c0 = target.cpu(), machine_cpu(), time.process_time()
    started = False

    async def sample_start() -> None:
        nonlocal t0, m0, c0, started
        await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
        t0, m0, c0, started = target.cpu(), machine_cpu(), time.process_time(), True

    try:
        await asyncio.gather(sample_start(), *(c.run(window, args.rate) for c in target.clients))
    finally:
        for http in https:
            await http.aclose()
    if started:
        window.server_cpu = target.cpu() - t0
        window.machine_cpu = machine_cpu() - m0
        window.client_cpu = time.process_time() - c0
    return window


def combine(parts: list[Window]) -> Window:
    out = Window(parts[0].target, 0.0, sum(p.end - p.start for p in parts))
    for p in parts:
        for kind in KINDS:
            out.latencies[kind] += p.latencies[kind]
            out.errors[kind] += p.errors[kind]
        out.first_errors += p.first_errors[: 5 - len(out.first_errors)]
        out.server_cpu += p.server_cpu
        out.client_cpu += p.client_cpu
        out.machine_cpu += p.machine_cpu
    return out


def pct(samples: list[float], p: int) -> float:
    if len(samples) < 2:
        return samples[0] * 1000 if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1] * 1000


def groups(w: Window) -> list[tuple[str, list[float], int]]:
    rows = [(kind, w.latencies[kind], w.errors[kind]) for kind in KINDS]
    rows.append(("all reads", [x for k in READS for x in w.latencies[k]], sum(w.errors[k] for k in READS)))
    rows.append(("all writes", [x for k in WRITES for x in w.latencies[k]], sum(w.errors[k] for k in WRITES)))
    return rows


def report(w: Window, other: Window | None) -> None:
    seconds = w.end  # combine() keeps the measured seconds there
    n = sum(len(v) for v in w.latencies.values())
    errors = sum(w.errors.values())
    print(
        f"\n{w.target}: {n} requests in {seconds:.0f} s ({n / seconds:.0f}/s), {errors} errors; server CPU "
        f"{w.server_cpu / seconds:.2f} cores ({w.server_cpu / max(n, 1) * 1000:.2f} ms per request, the controllers' "
        f"and operations' work included), load generator {w.client_cpu / seconds:.2f}, rest of the machine "
        f"{max(0.0, w.machine_cpu - w.server_cpu - w.client_cpu) / seconds:.2f}"
    )
    header = f"{'type':<16}{'count':>8}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    if other is not None:
        header += f"{'p50 ratio':>11}{'p99 ratio':>11}"
    print(header)
    theirs = {kind: samples for kind, samples, _ in groups(other)} if other is not None else {}
    for kind, samples, errs in groups(w):
        line = (
            f"{kind:<16}{len(samples):>8}{errs:>8}{pct(samples, 50):>9.1f}{pct(samples, 99):>9.1f}"
            f"{(max(samples) * 1000 if samples else float('nan')):>9.1f}"
        )
        if other is not None:
            base = theirs[kind]
            line += f"{pct(samples, 50) / pct(base, 50):>11.3f}{pct(samples, 99) / pct(base, 99):>11.3f}"
        print(line)
    for message in w.first_errors:
        print(f"  error: {message}")


def verdict(w: Window) -> None:
    writes = [x for k in WRITES for x in w.latencies[k]]
    worst = max((pct(w.latencies[k], 99), k) for k in WRITES)
    errors = sum(w.errors.values())
    met = worst[0] <= GOAL_P99_MS and errors == 0
    print(
        f"\ngoal (write p99 <= {GOAL_P99_MS:.0f} ms per type, 0 errors): {'met' if met else 'NOT met'} - worst write "
        f"p99 {worst[0]:.1f} ms ({worst[1]}), all writes p99 {pct(writes, 99):.1f} ms, {errors} errors"
    )


async def run(args: argparse.Namespace, tmp: Path) -> None:
    upstream = make_catalog(tmp / "upstream", versions=("1.0.0",))
    targets: list[Target] = []
    try:
        t_setup = time.perf_counter()
        if args.compare:
            targets.append(start_server(tmp, "compare", args.compare, upstream, args))
        targets.append(start_server(tmp, "this tree", None, upstream, args))
        database = "PostgreSQL" if args.database_url else "SQLite"
        print(
            f"setup {time.perf_counter() - t_setup:.0f} s; {args.clients} clients at "
            f"{f'{args.rate:g} req/s each' if args.rate else 'full speed (closed loop)'}, {args.duration:g} s "
            f"measured per target in {args.rounds} slice(s), {args.warmup:g} s warm-up each, {database}, "
            f"sim driver, {os.cpu_count()} CPUs; load average before: {loadavg()}",
            flush=True,
        )
        parts: dict[str, list[Window]] = {t.name: [] for t in targets}
        for i in range(args.rounds):
            for target in targets:
                window = await measure(target, args.warmup, args.duration / args.rounds, args, seed=i)
                parts[target.name].append(window)
                print(f"  slice {i + 1} of {target.name}: load average {loadavg()}", flush=True)
        combined = {name: combine(p) for name, p in parts.items()}
        mine = combined["this tree"]
        if args.compare:
            report(combined["compare"], None)
        report(mine, combined.get("compare"))
        if args.compare:
            print("(ratios: this tree / compare; below 1 is faster)")
        verdict(mine)
        print(f"load average after: {loadavg()}")
    finally:
        for target in targets:
            target.server.close()
            if target.db:
                target.db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="measured seconds per target (default 120)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--rate", type=float, default=13.0, help="requests/s per client, 0 = closed loop (13)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each slice (3)")
    parser.add_argument("--rounds", type=int, default=2, help="slices per target, alternating with --compare (2)")
    parser.add_argument("--compare", type=Path, help="also run a server from this src directory, side by side")
    parser.add_argument("--database-url", help="PostgreSQL admin URL: a throw-away database is made there")
    parser.add_argument("--quick", action="store_true", help="a 20 s run (1 slice per target)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup = 20.0, 1, 2.0
    if args.compare and not (args.compare / "altostratus").is_dir():
        parser.error(f"--compare {args.compare}: no altostratus package there (give the src directory)")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    with tempfile.TemporaryDirectory(prefix="alto-bench-conc-") as tmp:
        try:
            asyncio.run(run(args, Path(tmp)))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)


if __name__ == "__main__":
    main()
