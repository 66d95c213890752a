"""The requests a tenant's SDK really sends, on ``alto up`` and on a minimal uvicorn app answering the same bytes.

What is measured. The official SDK (azure-mgmt-resource / azure-mgmt-compute, hybrid profile 2020-09-01:
Microsoft.Resources 2019-10-01, Microsoft.Compute 2020-06-01) builds the tenant's world on ``alto up`` (sim
driver, its own temporary data dir) and every request it sends is captured on the wire (bench/api_setup.py):

* reads, each alone and then as a mix: ``poll`` (GET of the ``Azure-AsyncOperation`` URL, as the SDK's poller
  sends it), ``get_set`` (GET scale set), ``get_vm`` (GET one scale-set VM; the SDK always adds
  ``$expand=instanceView``), ``list_vms`` (the first page of a set of ``--capacity`` 120 instances: 100 VMs and a
  nextLink; the SDK sends no ``$top``), ``get_group`` (GET resource group), ``list_groups`` (10 groups, one page);
* writes, in a second run: ``patch_capacity`` (capacity PATCH of a small set, each connection alternating
  2 -> 3 -> 2, so the deltas are one instance) and ``put_delete_group`` (each connection PUTs a new group, then
  DELETEs it). Both are long-running operations: only the initial request is timed (200 for the PATCH, 202 for
  the DELETE), not the polls, but the controller's work they start (instances created and deleted, groups torn
  down) runs in the server process and is in its CPU figure.

The read mix (``read_mix``) is what one polling client's session plausibly looks like: the SDK polls an operation
every ``Retry-After`` (1 s) while it runs, so polls dominate; around them it reads the set (the poller's final
GET, ``show``), a VM, the group, and lists groups and instances now and then. Weights (of 20): poll 8, get_set 4,
get_vm 3, get_group 2, list_groups 2, list_vms 1, interleaved in a fixed shuffled order, each connection starting
at a different place in it. ``--routes`` picks routes (e.g. ``--routes get_vm,read_mix``, or reads, writes).

Each request is replayed as the SDK sent it: same method, path and query, same headers (User-Agent, Accept,
Accept-Encoding, Connection, the bearer token), except that ``x-ms-client-request-id`` takes a fresh UUID from a
pool of 97, as the SDK makes one per request, and that group PUT/DELETE name a new group each time.

The baseline (bench/api_baseline.py) is a raw ASGI app on uvicorn with the same TLS certificate and settings as
``alto up``, answering each route with the status and body we answered (captured in the setup), so the ratio
measures our pipeline, not the size of the body.

Method (bench/api_load.py). This process is the load generator, separate from both servers: it keeps
``--concurrency`` keep-alive TLS connections busy, one request in flight each, and records every latency for
``--duration`` seconds per target, route after route. A route's time is cut into ``--rounds`` slices alternating
baseline, alto, baseline, alto... (``--warmup`` seconds before the first slice of each, at most 0.3 s before the
later ones, enough for the new connections), because the machine is shared: load from others that comes and goes
then hits both targets alike instead of whichever ran during it. Per route and for the mix it prints requests/s,
p50 and p99, and, from /proc (Linux only) over the measured windows, the server's CPU per request (utime + stime
delta / requests answered), the load generator's CPU and everything else's
("other CPU": someone else's work shares the cores and req/s is low by that much; CPU per request is the figure
that survives a busy machine best). With PostgreSQL, the CPU of the database's backends serving our connections
(found in pg_stat_activity at the window's edges) is its own column, "db us/req": SQLite's work is inside the
server's figure, PostgreSQL's is not. Ratios are alto/baseline for req/s and baseline/(alto + db) for CPU per
request (both: higher is better, 1.0 = as fast as the minimal app). Goals (issue 11), on SQLite: every read route
>= 0.3 of the baseline's req/s, the read mix >= 0.4. When "other CPU" is high, trust the CPU ratio more than
the req/s ratio; "srv CPU" (cores the server kept busy) well under 100% for the baseline means its req/s was
bounded by the machine, not by serving, and the req/s ratio says little.

``--database-url`` takes a PostgreSQL admin URL (e.g. postgresql://alto:alto@127.0.0.1:5432/postgres): the
script creates a throw-away database there for the run and drops it afterwards. ``--quick`` is a smoke run
(tiny windows, 101 instances): it checks the bench works, its figures mean nothing.

Run:  .venv/bin/python bench/api.py [--duration S] [--rounds N] [--warmup S] [--concurrency N]
                                    [--database-url ADMIN_URL]
                                    [--log-level warning|info] [--alto-arg=ARG] [--routes R,R|reads|writes]
                                    [--capacity N] [--quick]

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from api_load import Request, Result, Sequence, combine, measure  # noqa: E402
from api_setup import PLACEHOLDER, Exchange, capture  # noqa: E402
from tests.support.marketplace import make_catalog  # noqa: E402
from tests.support.server import AltoServer, free_port  # noqa: E402

READS = ["poll", "get_set", "get_vm", "list_vms", "get_group", "list_groups"]
READ_ROUTES, WRITE_ROUTES = [*READS, "read_mix"], ["patch_capacity", "put_delete_group"]
ROUTES = READ_ROUTES + WRITE_ROUTES
MIX_WEIGHTS = {"poll": 8, "get_set": 4, "get_vm": 3, "get_group": 2, "list_groups": 2, "list_vms": 1}
REQUEST_IDS = 97  # distinct x-ms-client-request-id values per route (prime: no lock-step with the mix's order)
GOAL_ROUTE, GOAL_MIX = 0.3, 0.4


class Requests:
    """Pre-encoded requests for one target (its port in Host), per route, each with rotating request ids."""

    def __init__(self, exchanges: dict[str, Exchange], port: int) -> None:
        self.exchanges, self.host = exchanges, f"127.0.0.1:{port}"
        ids = [str(uuid.uuid4()) for _ in range(REQUEST_IDS)]
        self.pool = {
            label: [Request(label, ex.encode(self.host, i), ex.status) for i in ids] for label, ex in exchanges.items()
        }
        self.ids = itertools.cycle(ids)
        self.names = itertools.count(1)  # group names for PUT/DELETE, unique for the whole process

    def one(self, label: str) -> Sequence:
        return lambda conn: itertools.islice(itertools.cycle(self.pool[label]), conn * 13, None)

    def mix(self) -> Sequence:
        order = [label for label, weight in MIX_WEIGHTS.items() for _ in range(weight)]
        random.Random(11).shuffle(order)
        cursors = {label: itertools.cycle(self.pool[label]) for label in MIX_WEIGHTS}

        def stream(conn: int) -> Iterator[Request]:
            for label in itertools.islice(itertools.cycle(order), conn * 3, None):
                yield next(cursors[label])

        return stream

    def patch(self) -> Sequence:
        """Capacity up then down again: every PATCH changes the set by one instance."""
        up, down = ([Request("patch", r.data, r.status) for r in self.pool[k]] for k in ("patch_up", "patch_down"))
        return lambda conn: (r for pair in itertools.cycle(zip(up, down, strict=True)) for r in pair)

    def group_put_delete(self) -> Sequence:
        """A new group each time, then its deletion: a PUT of a name being deleted would be refused."""
        put, delete = self.exchanges["put_group"], self.exchanges["delete_group"]
        prefix = PLACEHOLDER.rstrip("0")

        def stream(conn: int) -> Iterator[Request]:
            while True:
                name = f"{prefix}{next(self.names):0{len(PLACEHOLDER) - len(prefix)}d}"  # same length
                yield Request("put_group", put.encode(self.host, next(self.ids), name), put.status)
                yield Request("delete_group", delete.encode(self.host, next(self.ids), name), delete.status)

        return stream


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ratios(base: Result, ours: Result) -> tuple[float, float]:
    """(req/s alto/baseline, CPU per request baseline/(alto + its PostgreSQL backends)): higher is better."""
    rps = ours.rps / base.rps if base.rps else float("nan")
    spent = ours.cpu_us + ours.db_us
    cpu = base.cpu_us / spent if ours.requests and base.requests and spent else float("nan")
    return rps, cpu


HEADER = (
    f"{'route':<18}{'target':<10}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
    f"{'srv CPU':>8}{'CPU us/req':>11}{'db us/req':>10}{'client CPU':>11}{'other CPU':>10}"
    f"{'ratio req/s':>12}{'ratio CPU':>10}"
)


def row(route: str, r: Result, ratio: tuple[float, float] | None) -> str:
    line = (
        f"{route:<18}{r.target:<10}{r.requests:>9}{r.errors:>7}{r.rps:>8.0f}{r.pct(50):>8.2f}{r.pct(99):>8.2f}"
        f"{r.server_cpu:>8.0%}{r.cpu_us:>11.0f}{f'{r.db_us:.0f}' if r.db_cpu else '-':>10}"
        f"{r.client_cpu:>11.0%}{r.other_cpu:>10.0%}"
    )
    if ratio:
        line += f"{ratio[0]:>12.3f}{ratio[1]:>10.3f}"
    if r.errors:
        line += f"  first error: {r.first_error}"
    return line


@dataclass
class Targets:
    """The two servers under load, and how to find the database processes working for ours."""

    alto: AltoServer
    base_pid: int
    base_port: int
    db_pids: Callable[[], list[int]]
    args: argparse.Namespace

    def phase(self, title: str, cases: list[tuple[str, Sequence, Sequence]]) -> list[tuple[str, Result, Result]]:
        """Each case in rounds of baseline then alto, so load from others on the machine hits both alike."""
        print(f"\n{title}\n{HEADER}", flush=True)
        assert self.alto.proc is not None
        a, out = self.args, []
        for route, base_seq, alto_seq in cases:
            base_parts, alto_parts = [], []
            for i in range(a.rounds):
                # Later rounds need only new connections to settle: the servers' caches are warm by then.
                warmup, slice_ = a.warmup if i == 0 else min(a.warmup, 0.3), a.duration / a.rounds
                base_parts.append(measure("baseline", self.base_pid, self.base_port, self.alto.ca, base_seq,
                                          a.concurrency, warmup, slice_))  # fmt: skip
                alto_parts.append(measure("alto", self.alto.proc.pid, self.alto.port, self.alto.ca, alto_seq,
                                          a.concurrency, warmup, slice_, self.db_pids))  # fmt: skip
            base, ours = combine(base_parts), combine(alto_parts)
            print(row(route, base, None), flush=True)
            print(row("", ours, ratios(base, ours)), flush=True)
            for label in sorted(ours.latencies) if len(ours.latencies) > 1 and route != "read_mix" else []:
                print(f"{'':<18}  {label}: p50 {ours.pct(50, label):.2f} ms, p99 {ours.pct(99, label):.2f} ms (alto)")
            out.append((route, base, ours))
        return out


def verdict(results: list[tuple[str, Result, Result]], database: str) -> None:
    reads = {route: ratios(b, o)[0] for route, b, o in results if route in READS}
    mix = next((ratios(b, o)[0] for route, b, o in results if route == "read_mix"), None)
    if not reads and mix is None:
        return
    where = "" if database == "SQLite" else " (the goals are stated for SQLite)"
    print(f"\ngoals on {database}{where}:")
    if reads:
        low = [f"{r} {v:.3f}" for r, v in reads.items() if not v >= GOAL_ROUTE]
        print(f"  every read route >= {GOAL_ROUTE}: {'met' if not low else 'NOT met: ' + ', '.join(low)}")
    if mix is not None:
        print(f"  read mix >= {GOAL_MIX}: {mix:.3f}, {'met' if mix >= GOAL_MIX else 'NOT met'}")


def describe(exchanges: dict[str, Exchange]) -> None:
    """What is replayed, so a reader can check it against the SDK: request line, answer, and the header names."""
    print("requests as the SDK sent them (x-ms-client-request-id renewed per request):")
    for label, ex in exchanges.items():
        print(f"  {label:<13}{ex.method} {ex.target} -> {ex.status}, {len(ex.answer)} bytes")
    first = next(iter(exchanges.values()))
    print(f"  headers ({first.method}): Host, " + ", ".join(k for k, _ in first.headers))


def warn(results: list[tuple[str, Result, Result]]) -> None:
    if any(b.client_cpu > 0.8 or o.client_cpu > 0.8 for _, b, o in results):
        print("warning: the load generator used > 80% of a core; those figures are bounded by the client")
    if any(b.other_cpu > 0.1 or o.other_cpu > 0.1 for _, b, o in results):
        print("warning: other processes used > 10% of a core during a measurement; the figures are noisy")
    if any(b.server_cpu < 0.7 for _, b, _ in results):
        print(
            "warning: the baseline kept less than 70% of a core busy (srv CPU): its req/s was bounded by the "
            "machine (other work, scheduling), not by serving, so the req/s ratios say little; the CPU ratios hold"
        )


def routes(spec: str) -> list[str]:
    """``--routes``: route names and the aliases reads, writes, all, comma-separated."""
    aliases = {"all": READ_ROUTES + WRITE_ROUTES, "reads": READ_ROUTES, "writes": WRITE_ROUTES}
    names = [name for part in spec.split(",") for name in aliases.get(part.strip(), [part.strip()])]
    unknown = sorted(set(names) - set(aliases["all"]))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown route(s) {', '.join(unknown)}; known: {', '.join(aliases['all'])}")
    return names


def start_baseline(exchanges: dict[str, Exchange], data: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    table = tmp / "routes.json"
    table.write_text(json.dumps([ex.to_json() for ex in exchanges.values()]))
    port = free_port()
    cmd = [sys.executable, str(ROOT / "bench" / "api_baseline.py"), str(table), str(data), str(port)]
    with (tmp / "baseline.log").open("wb") as log:
        # Own session: Ctrl-C reaches only this process, whose `finally` stops the servers in order.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"baseline exited with {proc.returncode}:\n{(tmp / 'baseline.log').read_text()[-3000:]}")
        try:
            httpx.get(f"https://127.0.0.1:{port}/", verify=str(data / "ca.pem"), timeout=2)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("the baseline did not start in 30 s")


class ThrowawayDatabase:
    """A fresh PostgreSQL database next to the admin URL's, dropped on exit (even if the server still holds it)."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.admin, self.name = admin_url, f"alto_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = admin_url.rsplit("/", 1)[0] + "/" + self.name
        self.conn = psycopg.connect(admin_url, autocommit=True)

    def backend_pids(self) -> list[int]:
        """The server processes of our database's connections: their CPU is the server's too."""
        rows = self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)).fetchall()
        return [int(r[0]) for r in rows]

    def drop(self) -> None:
        import psycopg

        self.conn.close()
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def bench(args: argparse.Namespace, tmp: Path) -> None:
    database = "PostgreSQL" if args.database_url else "SQLite"
    db = ThrowawayDatabase(args.database_url) if args.database_url else None
    upstream = make_catalog(tmp / "upstream", versions=("1.0.0",))
    extra = ("--hypervisor", "sim", "--upstream", str(upstream), "--log-level", args.log_level, *args.alto_arg)
    alto = AltoServer(tmp / "data", db.url if db else None, extra_args=extra)
    base: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.perf_counter()
        alto.start()
        exchanges = capture(alto, args.capacity)
        describe(exchanges)
        base, base_port = start_baseline(exchanges, alto.data_dir, tmp)
        print(f"setup: {time.perf_counter() - t0:.1f} s; load average before: {loadavg()}", flush=True)
        ours, theirs = Requests(exchanges, alto.port), Requests(exchanges, base_port)
        targets = Targets(alto, base.pid, base_port, db.backend_pids if db else list, args)
        results = []
        settings = (
            f"{args.duration:g} s per target in {args.rounds} round{'s' if args.rounds > 1 else ''} "
            "alternating with the baseline, "
            f"{args.warmup:g} s warm-up, concurrency {args.concurrency}, "
            f"{database}, alto --log-level {args.log_level}{''.join(' ' + a for a in args.alto_arg)}, "
            f"{os.cpu_count()} CPUs"
        )
        reads = [(label, theirs.one(label), ours.one(label)) for label in READS]
        reads.append(("read_mix", theirs.mix(), ours.mix()))
        writes = [
            ("patch_capacity", theirs.patch(), ours.patch()),
            ("put_delete_group", theirs.group_put_delete(), ours.group_put_delete()),
        ]
        for title, cases in ((f"reads ({settings})", reads),
                             (f"writes, initial requests of the LROs only ({settings})", writes)):  # fmt: skip
            chosen = [case for case in cases if case[0] in args.routes]
            if chosen:
                results += targets.phase(title, chosen)
        verdict(results, database)
        print(f"load average after: {loadavg()}")
        warn(results)
    finally:
        if base is not None and base.poll() is None:
            base.terminate()
            base.wait(15)
        alto.close()
        if db:
            db.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per target (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/alto alternations per route (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each (default 1)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections per target (default 8)")
    parser.add_argument("--capacity", type=int, default=120, help="instances of the read scale set (>= 101)")
    parser.add_argument("--database-url", help="PostgreSQL admin URL: a throw-away database is made there")
    parser.add_argument("--log-level", default="warning", help="`alto up --log-level` (default warning)")
    parser.add_argument(
        "--routes",
        type=routes,
        default="all",
        help=f"comma-separated routes to measure, or reads, writes, all (default); routes: {', '.join(ROUTES)}",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny windows, 101 instances")
    parser.add_argument(
        "--alto-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra `alto up` argument, repeatable (e.g. --alto-arg=--no-controllers)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.capacity, args.concurrency, args.rounds = 0.2, 0.05, 101, 2, 1
    if args.capacity < 101:
        parser.error("--capacity must be >= 101: the first page of the VM list (100) must be full")
    # Ctrl-C and `kill` both end in KeyboardInterrupt (asyncio.run turns SIGINT into a clean one), so `finally`
    # stops the servers; SIGINT is reset because a background job of a non-interactive shell inherits SIG_IGN.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    with tempfile.TemporaryDirectory(prefix="alto-bench-") as tmp:
        try:
            bench(args, Path(tmp))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)


if __name__ == "__main__":
    main()
