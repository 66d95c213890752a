"""Scale-out of 1000 instances spread over 10 simulated hosts, side by side with the same scale-out on the one
embedded host (issue 18, hosts).

``one host``: ``alto up`` (SQLite, sim driver, ``--log-level warning``) as shipped: every instance on ``local``,
the process's own file-backed simulator. ``ten hosts``: the same server with ten ``sim://`` hosts registered
(``local`` drained), so every instance is placed by capacity and fault domain (``platformFaultDomainCount`` 3),
its host recorded before the create, and created in the database-backed simulated host of its host
(compute/placement.py, compute/sim_hosts.py). Each round scales a new set out to ``--capacity`` (PUT, then the
``Azure-AsyncOperation`` polled every 50 ms until it ends); rounds alternate one host / ten hosts on two servers
started side by side, so load from others on the machine hits both alike. The figure is the median wall time;
the ratio is ten/one (lower is better; the price of placement and of shared simulated hosts).

``--nodes 2 --database-url postgresql://…``: the same 1000 instances over the ten ``sim://`` hosts, as ``--sets``
sets scaled out at once (one owner per set: a single set is converged by one node however many there are), with
one controller node and then with two (the second joined with a join token), each on a fresh database of its own
beside the given one. The figure is the wall time until every set's operation ended; the ratio two/one.

``--real N``: real VMs (libvirt/QEMU, the demo image) on the private libvirtd hosts of scripts/libvirt.sh
(``hv1``, ``hv2``; started if they are not running): a scale set scaled out from 0 to N, timed from the PATCH to
its operation's Succeeded (every instance's guest printed its ready line), with the set's instances on one
registered host and then spread over two, alternating, ``--rounds`` times. Both hosts are on this machine, so
they share its cores: the figure shows the cost of spreading (an upload per host, two daemons), not the
speed-up separate machines would give.

Run:  .venv/bin/python bench/placement.py [--capacity 1000] [--rounds 3] [--hosts 10]
      .venv/bin/python bench/placement.py --real 4 --rounds 2
      .venv/bin/python bench/placement.py --nodes 2 --database-url postgresql://alto:alto@127.0.0.1:5432/postgres

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.scaleout import loadavg, raise_quota, scale_out  # noqa: E402
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name  # noqa: E402
from tests.support.server import AltoServer  # noqa: E402
from tests.support.vmss import COMPUTE, Tenant, vmss_body  # noqa: E402

ADMIN = "api-version=2015-12-01-preview"


def start(
    root: Path, hosts: int, capacity: int, rounds: int, database_url: str | None = None
) -> tuple[AltoServer, Operator, Tenant]:
    root.mkdir(parents=True)
    upstream = make_catalog(root / "upstream", versions=("1.0.0",))
    args = ("--upstream", str(upstream), "--log-level", "warning")
    server = AltoServer(root / "data", database_url, extra_args=args).start()
    op = Operator(server)
    got = op.download(product_name(PUB, OFFER, SKU, "1.0.0"))
    if got["status"] != "Succeeded":
        raise RuntimeError(f"image download failed: {got}")
    base = f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/hosts"
    if hosts:
        for i in range(hosts):
            # Room for every round (the default 64 cores / 256 GiB takes ~220 Standard_A1 instances per host).
            big = {"cores": 4096, "memoryMB": 16 * 1024 * 1024, "diskGB": 100_000}
            r = op.http.put(f"{base}/hv{i}?{ADMIN}", json={"properties": {"uri": f"sim://hv{i}", "capacity": big}})
            r.raise_for_status()
        op.http.post(f"{base}/local/drain?{ADMIN}").raise_for_status()
        deadline = time.time() + 20
        while any(h["properties"]["health"] != "Healthy" for h in op.http.get(f"{base}?{ADMIN}").json()["value"]
                  if h["name"] != "local"):  # fmt: skip
            if time.time() > deadline:
                raise RuntimeError("the simulated hosts did not turn healthy in 20 s")
            time.sleep(0.5)
    t = Tenant(server, "bench-placement")
    raise_quota(server, op, t.sub, capacity * (rounds + 1))
    return server, op, t


def spread(op: Operator) -> Counter[str]:
    base = f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/hosts"
    return Counter({h["name"]: h["properties"]["instances"] for h in op.http.get(f"{base}?{ADMIN}").json()["value"]})


def fresh_database(admin_url: str) -> str:
    import psycopg

    name = f"alto_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def cluster_scale_out(root: Path, admin_url: str, nodes: int, hosts: int, capacity: int, sets: int) -> float:
    """Seconds until ``sets`` sets of ``capacity // sets`` instances, PUT at once, all ended (``nodes`` nodes)."""
    database = fresh_database(admin_url)
    server, op, tenant = start(root, hosts, capacity, 1, database)
    extra: list[AltoServer] = []
    try:
        for i in range(nodes - 1):
            r = op.http.post(
                f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/nodes/joinToken?{ADMIN}"
            )
            r.raise_for_status()
            args = ("--log-level", "warning", "--join-token", r.json()["token"])
            extra.append(AltoServer(root / f"node{i + 2}", extra_args=args).start())
        time.sleep(3)  # the joined nodes beat before the sets exist, so each takes its share
        each = capacity // sets
        t0 = time.perf_counter()
        urls = []
        for k in range(sets):
            r = tenant.http.put(f"{tenant.base}/c{k}?{COMPUTE}", json=vmss_body(each, prefix=f"c{k}"))
            if r.status_code not in (200, 201):
                raise RuntimeError(f"PUT c{k}: {r.status_code} {r.text[:300]}")
            urls.append(r.headers["azure-asyncoperation"])
        for url in urls:
            while (status := tenant.http.get(url).json())["status"] == "InProgress":
                if time.perf_counter() - t0 > 600:
                    raise RuntimeError(f"still InProgress after 600 s: {status}")
                time.sleep(0.05)
            if status["status"] != "Succeeded":
                raise RuntimeError(f"scale-out ended {status}")
        return time.perf_counter() - t0
    finally:
        tenant.http.close()
        op.http.close()
        for node in (*extra, server):
            node.close()
        drop_database(admin_url, database)


def real_scale_out(root: Path, hosts: tuple[str, ...], n: int) -> float:
    """Seconds from the PATCH to capacity ``n`` until its operation Succeeded, the set on ``hosts`` (libvirt)."""
    from tests.support.libvirt_env import host_uri

    server = AltoServer(root / "data", extra_args=("--log-level", "warning", "--no-portal")).start()
    op = Operator(server)
    tenant: Tenant | None = None
    try:
        if op.download("Altostratus.DemoLinuxdemo.1.0.0")["status"] != "Succeeded":
            raise RuntimeError("the demo image did not download")
        base = f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/hosts"
        for name in hosts:
            op.http.put(f"{base}/{name}?{ADMIN}", json={"properties": {"uri": host_uri(name)}}).raise_for_status()
        op.http.delete(f"{base}/local?{ADMIN}").raise_for_status()
        tenant = Tenant(server, "bench-real")
        body = vmss_body(0, prefix="real")
        body["properties"]["platformFaultDomainCount"] = len(hosts)
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
            "publisher": "Altostratus", "offer": "DemoLinux", "sku": "demo", "version": "latest",
        }  # fmt: skip
        tenant.create("real", body)
        t0 = time.perf_counter()
        r = tenant.scale("real", n)
        r.raise_for_status()
        url = r.headers["azure-asyncoperation"]
        while (status := tenant.http.get(url).json())["status"] == "InProgress":
            if time.perf_counter() - t0 > 600:
                raise RuntimeError("scale-out still InProgress after 600 s")
            time.sleep(0.1)
        seconds = time.perf_counter() - t0
        if status["status"] != "Succeeded":
            raise RuntimeError(f"scale-out ended {status}")
        tenant.wait(tenant.http.delete(f"{tenant.base}/real?{COMPUTE}"), timeout=300)
        return seconds
    finally:
        if tenant is not None:
            tenant.http.close()
        op.http.close()
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=1, help="controller nodes to compare with one (PostgreSQL)")
    parser.add_argument("--sets", type=int, default=4, help="with --nodes: sets the instances are split into")
    parser.add_argument("--database-url", help="with --nodes: a PostgreSQL URL allowed to create databases")
    parser.add_argument("--real", type=int, default=0, help="real VMs: scale out to N on 1 host vs 2 hosts")
    args = parser.parse_args()
    if args.real:
        from tests.support.libvirt_env import start_hosts, stop_host

        started = start_hosts(("hv1", "hv2"))
        by_hosts: dict[int, list[float]] = {1: [], 2: []}
        print(f"load average before: {loadavg()}", flush=True)
        try:
            with tempfile.TemporaryDirectory(prefix="alto-placement-", dir="/var/tmp") as tmp:
                for i in range(args.rounds):
                    for hosts in (("hv1",), ("hv1", "hv2")):
                        took = real_scale_out(Path(tmp) / f"r{i}h{len(hosts)}", hosts, args.real)
                        by_hosts[len(hosts)].append(took)
                        print(f"  {len(hosts)} host(s) round {i + 1}: {took:.2f} s", flush=True)
        finally:
            for name in started:
                stop_host(name)
        a, b = statistics.median(by_hosts[1]), statistics.median(by_hosts[2])
        print(f"load average after: {loadavg()}")
        print(f"scale-out of {args.real} real VMs (to ready), median of {args.rounds}:")
        print(f"  one libvirt host      {a:7.2f} s")
        print(f"  two libvirt hosts     {b:7.2f} s   ratio {b / a:.2f}")
        return 0
    if args.nodes > 1:
        if not args.database_url:
            parser.error("--nodes needs --database-url (PostgreSQL: nodes share one database)")
        print(f"load average before: {loadavg()}", flush=True)
        by_nodes: dict[int, list[float]] = {1: [], args.nodes: []}
        with tempfile.TemporaryDirectory(prefix="alto-placement-") as tmp:
            for i in range(args.rounds):
                for n in (1, args.nodes):
                    took = cluster_scale_out(
                        Path(tmp) / f"r{i}n{n}", args.database_url, n, args.hosts, args.capacity, args.sets
                    )
                    by_nodes[n].append(took)
                    print(f"  {n} node(s) round {i + 1}: {took:.2f} s", flush=True)
        a, b = statistics.median(by_nodes[1]), statistics.median(by_nodes[args.nodes])
        print(f"load average after: {loadavg()}")
        print(f"{args.capacity} instances in {args.sets} sets over {args.hosts} sim:// hosts, median of {args.rounds}:")
        print(f"  one controller node   {a:7.2f} s")
        print(f"  {args.nodes} controller nodes    {b:7.2f} s   ratio {b / a:.2f}")
        return 0
    print(f"load average before: {loadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="alto-placement-") as tmp:
        one = start(Path(tmp) / "one", 0, args.capacity, args.rounds)
        ten = start(Path(tmp) / "ten", args.hosts, args.capacity, args.rounds)
        times: dict[str, list[float]] = {"one": [], "ten": []}
        try:
            for i in range(args.rounds):
                for label, (server, _, tenant) in (("one", one), ("ten", ten)):
                    body_name = f"set{i:02d}"
                    run = scale_out(server, tenant, body_name, args.capacity)
                    if run["status"] != "Succeeded" or run["succeeded"] != args.capacity:
                        raise RuntimeError(f"{label}: {run}")
                    times[label].append(run["seconds"])
                    print(f"  {label:>3} host(s) round {i + 1}: {run['seconds']:.2f} s", flush=True)
            per_host = spread(ten[1])
        finally:
            for server, op, tenant in (one, ten):
                tenant.http.close()
                op.http.close()
                server.close()
    a, b = statistics.median(times["one"]), statistics.median(times["ten"])
    print(f"load average after: {loadavg()}")
    print(f"scale-out of {args.capacity} instances, median of {args.rounds} ({COMPUTE}):")
    print(f"  one host (local)      {a:7.2f} s")
    print(f"  {args.hosts} sim:// hosts     {b:7.2f} s   ratio {b / a:.2f}")
    print(f"  instances per host: {dict(sorted(per_host.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
