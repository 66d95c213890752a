"""Scale-out of 1000 instances (sim driver) and read latency with 10,000 instances stored, side by side with moto.

``ours``: ``alto up`` (SQLite in a temporary data dir, sim driver with boot_seconds 0, ``--log-level warning``)
with a small synthetic marketplace (tests/support/marketplace.py) whose image is syndicated first. Then:

1. scale-out: ``PUT`` a scale set with ``sku.capacity`` 1000, poll its ``Azure-AsyncOperation`` every 50 ms until it
   is no longer InProgress; the figure is the wall time from sending the PUT to the poll that saw Succeeded. The
   instances are then counted through the paged VM list (``$top=1000``, following nextLink): all 1000 must be
   listed with provisioningState Succeeded. This is repeated for ``--sets`` sets (default 10, capacity 1000 is the
   per-set maximum), so the store ends with 10,000 instances; the first set (empty store) is the headline figure,
   the median over all sets shows how it holds as the store grows;
2. reads with 10,000 instances stored: p50/p99 of ``GET`` one scale set, ``GET`` one VM (a random instance id)
   and ``LIST`` one set's VMs (1000 items, one page of ``$top=1000``), ``--requests`` each (default 200) on one
   keep-alive httpx client, after a short warm-up. The client reads the body but does not parse it.

``moto``: the same job on moto's server (``moto_server``, a process of its own, like ours), driven by boto3 from
another process: a launch template, then per group an Auto Scaling group (MinSize 0, MaxSize 1000,
DesiredCapacity 0) and the timed ``set_desired_capacity(1000)`` followed by ``describe_auto_scaling_groups``
(every 50 ms) until the group lists 1000 InService instances (moto creates them synchronously). Reads, with
10 groups of 1000 stored: ``describe_auto_scaling_groups`` of one group (it carries the group's 1000 instances
inline, so it is compared with both GET set and LIST VMs), ``describe_auto_scaling_instances`` of one instance
(vs GET VM); both are also timed as raw HTTP on one keep-alive connection ("moto as raw HTTP" rows), which
leaves out boto3's request building and XML parsing. moto runs from its own virtualenv (``--moto-python``,
default /tmp/moto-venv/bin/python), created with ``python3 -m venv`` + ``pip install moto[server] boto3`` on first
use, so the project venv never needs moto.

Differences to keep in mind: ours speaks HTTPS with bearer tokens and persists every instance (SQLite row + sim
host state file), moto is plain HTTP and in-memory; each side's client (httpx vs boto3) costs CPU on the same
2 cores. The ratio is ours/moto for times: lower is better, < 1 means ours is faster. The load average before
and after is printed: other work on the machine skews the figures.

Run:  .venv/bin/python bench/scaleout.py [--moto-python /tmp/moto-venv/bin/python] [--sets 10] [--capacity 1000]
                                         [--requests 200] [--no-moto] [--no-ours]

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name  # noqa: E402
from tests.support.server import AltoServer  # noqa: E402
from tests.support.vmss import COMPUTE, Tenant, vmss_body  # noqa: E402

GOAL_SECONDS = 2.0
POLL_SECONDS = 0.05
DEFAULT_MOTO_PYTHON = "/tmp/moto-venv/bin/python"


# -- helpers ---------------------------------------------------------------------------------------------------


def pct(samples: list[float], p: int) -> float:
    """Percentile in milliseconds (statistics.quantiles, exclusive method)."""
    if len(samples) < 2:
        return samples[0] * 1000 if samples else float("nan")
    return statistics.quantiles(samples, n=100)[p - 1] * 1000


def timed(fn: Callable[[], Any], n: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def process_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- ours ------------------------------------------------------------------------------------------------------


def quota_module() -> Path | None:
    path = ROOT / "src" / "altostratus" / "compute" / "quotas.py"
    return path if path.exists() else None


def raise_quota(server: AltoServer, op: Operator, subscription: str, instances: int) -> str:
    """Azure Stack's default quota (50 VMs, 100 cores) is far below the bench: the operator raises the tenant's
    through ``Microsoft.Compute.Admin/locations/local/quotas/{subscription}`` when that API exists."""
    if quota_module() is None:
        return "no Compute quota API in this version: nothing to raise"
    url = (
        f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/quotas/{subscription}"
        "?api-version=2018-02-09"
    )
    # Standard_A1 has 1 core; x8 leaves room for bigger sizes.
    props = {"virtualMachineCount": instances, "coresLimit": instances * 8, "vmScaleSetCount": 1000}
    r = op.http.put(url, json={"properties": props})
    if r.status_code not in (200, 201):
        return f"raising the quota failed: {r.status_code} {r.text[:300]}"
    return f"quota of the tenant subscription raised to {instances} VMs"


def scale_out(server: AltoServer, t: Tenant, name: str, capacity: int) -> dict[str, Any]:
    """PUT capacity N, poll the operation every 50 ms; then count Succeeded instances through the paged list."""
    assert server.proc is not None
    pid = server.proc.pid
    body = vmss_body(capacity, prefix=name)
    cpu0 = process_cpu(pid)
    t0 = time.perf_counter()
    r = t.http.put(f"{t.base}/{name}?{COMPUTE}", json=body)
    put_seconds = time.perf_counter() - t0
    if r.status_code not in (200, 201):
        err = r.json().get("error", {}) if r.headers.get("content-type", "").startswith("application/json") else {}
        hint = ""
        if r.status_code == 409 and "quota" in json.dumps(err).lower():
            hint = (
                " (refused for quota: raise the Compute quota via the admin API"
                + (f", see {quota_module()}" if quota_module() else ", none exists yet")
                + ")"
            )
        raise RuntimeError(f"PUT {name} capacity {capacity}: {r.status_code} {err or r.text[:300]}{hint}")
    url = r.headers["azure-asyncoperation"]
    polls = 0
    while True:
        status = t.http.get(url).json()
        polls += 1
        if status["status"] != "InProgress":
            break
        if time.perf_counter() - t0 > 600:
            raise RuntimeError(f"scale-out of {name} still InProgress after 600 s: {status}")
        time.sleep(POLL_SECONDS)
    done_seconds = time.perf_counter() - t0
    cpu1 = process_cpu(pid)
    listed = succeeded = pages = 0
    next_url: str | None = f"{t.base}/{name}/virtualMachines?{COMPUTE}&$top=1000"
    while next_url:
        page = t.http.get(next_url)
        page.raise_for_status()
        data = page.json()
        pages += 1
        listed += len(data["value"])
        succeeded += sum(1 for v in data["value"] if v["properties"]["provisioningState"] == "Succeeded")
        next_url = data.get("nextLink")
    return {
        "name": name,
        "status": status["status"],
        "error": status.get("error"),
        "seconds": done_seconds,
        "put_seconds": put_seconds,
        "polls": polls,
        "server_cpu": cpu1 - cpu0,
        "listed": listed,
        "succeeded": succeeded,
        "pages": pages,
    }


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="alto-scaleout-") as tmp:
        root = Path(tmp)
        upstream = make_catalog(root / "upstream", versions=("1.0.0",))
        server = AltoServer(root / "data", extra_args=("--upstream", str(upstream), "--log-level", "warning"))
        server.start()
        op = t = None
        try:
            op = Operator(server)
            got = op.download(product_name(PUB, OFFER, SKU, "1.0.0"))
            if got["status"] != "Succeeded":
                raise RuntimeError(f"image download failed: {got}")
            t = Tenant(server, "bench-scaleout")
            print(f"  ours  {raise_quota(server, op, t.sub, args.sets * args.capacity + 1000)}", flush=True)
            runs = []
            for i in range(args.sets):
                run = scale_out(server, t, f"set{i:02d}", args.capacity)
                runs.append(run)
                print(
                    f"  ours  {run['name']}: {run['status']} in {run['seconds']:.2f} s (PUT answered in "
                    f"{run['put_seconds']:.2f} s, server CPU {run['server_cpu']:.2f} s); listed {run['listed']}, "
                    f"{run['succeeded']} Succeeded",
                    flush=True,
                )
            first = f"{t.base}/set00"
            n = args.requests

            def get_set() -> None:
                r = t.http.get(f"{first}?{COMPUTE}")
                assert r.status_code == 200, r.text

            def get_vm() -> None:
                r = t.http.get(f"{first}/virtualMachines/{random.randrange(args.capacity)}?{COMPUTE}")
                assert r.status_code == 200, r.text

            def list_vms() -> None:
                r = t.http.get(f"{first}/virtualMachines?{COMPUTE}&$top=1000")
                assert r.status_code == 200, r.text

            reads = {
                "get_set": timed(get_set, n),
                "get_vm": timed(get_vm, n),
                "list_vms": timed(list_vms, n, warmup=3),
            }
            return {"runs": runs, "reads": reads, "stored": sum(r["listed"] for r in runs)}
        finally:
            for c in (op, t):
                if c is not None:
                    c.http.close()
            server.close()


# -- moto ------------------------------------------------------------------------------------------------------

MOTO_SCRIPT = textwrap.dedent(
    r"""
    import http.client, json, os, random, socket, statistics, subprocess, sys, time
    from pathlib import Path
    import boto3
    from botocore.config import Config

    sets, capacity, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        cfg = Config(retries={"max_attempts": 0}, max_pool_connections=1)
        ec2 = boto3.client("ec2", endpoint_url=endpoint, config=cfg)
        asg = boto3.client("autoscaling", endpoint_url=endpoint, config=cfg)
        image = ec2.describe_images()["Images"][0]["ImageId"]
        ec2.create_launch_template(
            LaunchTemplateName="bench", LaunchTemplateData={"ImageId": image, "InstanceType": "t2.micro"}
        )
        def cpu():
            f = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        runs = []
        for i in range(sets):
            name = f"set{i:02d}"
            asg.create_auto_scaling_group(
                AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": "bench", "Version": "$Latest"},
                MinSize=0, MaxSize=capacity, DesiredCapacity=0, AvailabilityZones=["us-east-1a"],
            )
            c0 = cpu()
            t0 = time.perf_counter()
            asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=capacity, HonorCooldown=False)
            put = time.perf_counter() - t0
            polls = 0
            while True:
                g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
                polls += 1
                inservice = sum(1 for x in g["Instances"] if x["LifecycleState"] == "InService")
                if inservice >= capacity:
                    break
                if time.perf_counter() - t0 > 600:
                    raise RuntimeError(f"{name}: {inservice} InService after 600 s")
                time.sleep(0.05)
            seconds = time.perf_counter() - t0
            runs.append({"name": name, "seconds": seconds, "put_seconds": put, "polls": polls,
                         "server_cpu": cpu() - c0, "listed": len(g["Instances"]), "succeeded": inservice})
            print(f"  moto  {name}: {inservice} InService in {seconds:.2f} s (set_desired_capacity answered in "
                  f"{put:.2f} s)", file=sys.stderr, flush=True)
        first = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["set00"])["AutoScalingGroups"][0]
        ids = [x["InstanceId"] for x in first["Instances"]]
        def timed(fn, n, warmup=10):
            for _ in range(warmup):
                fn()
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
            return out
        def describe_group():
            g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["set00"])["AutoScalingGroups"][0]
            assert len(g["Instances"]) == capacity
        def describe_instance():
            r = asg.describe_auto_scaling_instances(InstanceIds=[random.choice(ids)])
            assert len(r["AutoScalingInstances"]) == 1
        # The same two calls as raw HTTP on one keep-alive connection (moto checks no signature): the server's
        # share, without boto3 building the request and parsing the XML (our client does not parse either).
        conn = http.client.HTTPConnection("127.0.0.1", port)
        head = {
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/autoscaling/aws4_request, "
            "SignedHeaders=host, Signature=0",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        }
        def raw(body, marker, count):
            conn.request("POST", "/", body, head)
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200 and data.count(marker) == count, data[:300]
        def raw_group():
            raw("Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=set00",
                b"<InstanceId>", capacity)
        def raw_instance():
            raw("Action=DescribeAutoScalingInstances&Version=2011-01-01&InstanceIds.member.1=" + random.choice(ids),
                b"<InstanceId>", 1)
        reads = {
            "describe_group": timed(describe_group, n, 3),
            "describe_instance": timed(describe_instance, n),
            "raw_group": timed(raw_group, n, 3),
            "raw_instance": timed(raw_instance, n),
        }
        import moto
        print(json.dumps({"runs": runs, "reads": reads, "version": moto.__version__}))
    finally:
        server.terminate()
        server.wait(30)
    """
)


def ensure_moto(python: str) -> str | None:
    """The moto interpreter; created (venv + pip install moto[server] boto3) when missing. None on failure."""
    check = [python, "-c", "import moto, boto3, moto.server"]
    if Path(python).exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    venv = Path(python).parent.parent
    print(f"moto venv not found at {venv}: creating it (python3 -m venv + pip install moto[server] boto3) ...")
    try:
        if not Path(python).exists():
            subprocess.run([shutil.which("python3") or "python3", "-m", "venv", str(venv)], check=True)
        pip = subprocess.run(
            [python, "-m", "pip", "install", "-q", "moto[server]", "boto3"], capture_output=True, text=True
        )
        if pip.returncode != 0:
            print(pip.stdout[-3000:], pip.stderr[-3000:])
            raise subprocess.CalledProcessError(pip.returncode, pip.args)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"  could not create the moto venv: {exc}")
        return None
    return python if subprocess.run(check, capture_output=True).returncode == 0 else None


def run_moto(args: argparse.Namespace) -> dict[str, Any] | None:
    python = ensure_moto(args.moto_python)
    if python is None:
        return None
    proc = subprocess.run(
        [python, "-c", MOTO_SCRIPT, str(args.sets), str(args.capacity), str(args.requests)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0:
        print(f"  moto run failed (exit {proc.returncode})")
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- report ----------------------------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:.1f} {unit}"


def ratio(ours: float | None, moto: float | None) -> str:
    if ours is None or moto is None or not moto or ours != ours or moto != moto:
        return "-"
    return f"{ours / moto:.2f}"


def report(args: argparse.Namespace, ours: dict[str, Any] | None, moto: dict[str, Any] | None) -> None:
    rows: list[tuple[str, float | None, float | None, str]] = []

    def runs(side: dict[str, Any] | None) -> list[dict[str, Any]]:
        return side["runs"] if side else []

    o, m = runs(ours), runs(moto)
    cap = args.capacity
    rows.append((f"scale-out 0 -> {cap}, empty store", o[0]["seconds"] if o else None,
                 m[0]["seconds"] if m else None, "s"))  # fmt: skip
    rows.append(("  of which the write request (PUT / set_desired_capacity)", o[0]["put_seconds"] if o else None,
                 m[0]["put_seconds"] if m else None, "s"))  # fmt: skip
    rows.append(("  server CPU during it", o[0]["server_cpu"] if o else None,
                 m[0]["server_cpu"] if m else None, "s"))  # fmt: skip
    if len(o) > 1 or len(m) > 1:
        med = lambda rs: statistics.median(r["seconds"] for r in rs) if rs else None  # noqa: E731
        mx = lambda rs: max(r["seconds"] for r in rs) if rs else None  # noqa: E731
        rows.append((f"scale-out 0 -> {cap}, median of {args.sets} sets", med(o), med(m), "s"))
        rows.append((f"scale-out 0 -> {cap}, slowest of {args.sets} sets", mx(o), mx(m), "s"))
    stored = ours["stored"] if ours else (sum(r["listed"] for r in m) if m else 0)
    orr, mr = (ours or {}).get("reads", {}), (moto or {}).get("reads", {})
    for label, ok, mk in (
        ("GET one scale set  vs describe_auto_scaling_groups(1)", "get_set", "describe_group"),
        ("  moto as raw HTTP, no boto3", "get_set", "raw_group"),
        ("GET one VM         vs describe_auto_scaling_instances(1)", "get_vm", "describe_instance"),
        ("  moto as raw HTTP, no boto3", "get_vm", "raw_instance"),
        (f"LIST {cap} VMs ($top={cap}) vs describe_auto_scaling_groups(1)", "list_vms", "describe_group"),
        ("  moto as raw HTTP, no boto3", "list_vms", "raw_group"),
    ):
        for p in (50, 99):
            rows.append((f"{label} p{p}", pct(orr[ok], p) if ok in orr else None,
                         pct(mr[mk], p) if mk in mr else None, "ms"))  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print()
    print(f"Scale-out bench, {date.today().isoformat()}, {os.cpu_count()} cores, load average now {loadavg()}")
    version = moto.get("version") if moto else "-"
    print(f"reads with {stored} instances stored, {args.requests} requests each; moto {version}")
    print(f"{'metric':<{width}}  {'ours':>10}  {'moto':>10}  {'ours/moto':>9}")
    for label, ov, mv, unit in rows:
        print(f"{label:<{width}}  {fmt(ov, unit):>10}  {fmt(mv, unit):>10}  {ratio(ov, mv):>9}")
    print("ratio = ours/moto on times: lower is better (< 1: ours is faster).")
    if o:
        first = o[0]
        ok = first["status"] == "Succeeded" and first["succeeded"] == cap
        met = ok and cap >= 1000 and first["seconds"] <= GOAL_SECONDS
        print(
            f"goal 1000 in <= {GOAL_SECONDS:g} s: {'met' if met else 'not met'} "
            f"({first['seconds']:.2f} s; {first['succeeded']}/{first['listed']} listed Succeeded)"
        )
    else:
        print(f"goal 1000 in <= {GOAL_SECONDS:g} s: not measured")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--moto-python", default=DEFAULT_MOTO_PYTHON, help="python of a venv with moto[server], boto3")
    parser.add_argument("--no-moto", action="store_true", help="skip the moto side")
    parser.add_argument("--no-ours", action="store_true", help="skip our side")
    parser.add_argument("--sets", type=int, default=10, help="scale sets (and ASGs) created, each of --capacity")
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per read metric")
    args = parser.parse_args()
    print(f"load average before: {loadavg()}", flush=True)
    ours = moto = None
    if not args.no_ours:
        try:
            ours = run_ours(args)
        except Exception:
            print("ours failed:")
            traceback.print_exc()
    if not args.no_moto:
        try:
            moto = run_moto(args)
        except Exception:
            print("moto failed:")
            traceback.print_exc()
    report(args, ours, moto)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
