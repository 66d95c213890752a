"""The portal's pages for a 1000-instance scale set: server time of the scale-set page and the instances page, next to
the bare API calls each page makes, and Chromium's load time of the instances page.

Set-up: ``alto up`` (SQLite in a temporary data dir, sim driver, ``--log-level warning``) with the small test
marketplace (tests/support/marketplace.py); the operator downloads image 1.0.0 and raises the tenant's VM quota;
the tenant creates a set of 1000 instances and waits until all run. Then the portal's ``tenant`` user signs in
(the sign-in form, as a browser posts it) and:

* **server time**: ``--requests`` GETs (default 100) of each page on one keep-alive httpx client
  with the session cookie, p50 and p95 of the round trip on loopback (TLS included, the body read, not parsed);
  the same for each bare API call the page makes (the scale-set page: ``GET`` the set, its ``instanceView``,
  which counts the instances on each image version, the usages, the image versions; the instances page: the set,
  its instance view for the total, and one page of 100 VMs with ``$expand=instanceView``, sorted by the API with
  ``$orderby``), with the tenant's bearer token on the same kind of client; and, for comparison, the call the
  instances page made before (all 1000 VMs with their instance views). A page costs at least the sum of the
  calls it makes one after another (the portal makes the independent calls concurrently). Next to them, the
  server process's CPU time per request (utime + stime over the run, divided by the requests): unlike wall
  times, it does not grow with other work on the machine;
* **Chromium**: ``--loads`` navigations (default 15, after 2 warm-ups) of the instances page in Debian's Chromium
  (the CA trusted through an NSS db, tests/support/browser.py); the figure is the Navigation Timing
  ``loadEventEnd - startTime`` (request, response, parsing 100 rows, the stylesheet and script).

Goals (issue 13): p95 ≤ 100 ms server side, ≤ 1 s in the browser, on this 2-core machine.

Run:  .venv/bin/python bench/portal.py [--capacity 1000] [--requests 100] [--loads 15]
Side by side with older code: the same with ``PYTHONPATH=<its src>`` (``alto up`` inherits it; a call that
server does not serve is shown "not served").

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.support.browser import chromium, new_page, sign_in  # noqa: E402
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name  # noqa: E402
from tests.support.server import AltoServer  # noqa: E402
from tests.support.vmss import COMPUTE, Tenant, vmss_body  # noqa: E402


def pct(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100)[p - 1] * 1000


def timed(fn: Callable[[], object], n: int, warmup: int = 5, before: Callable[[], object] | None = None) -> list[float]:
    """``n`` timings of ``fn``; ``before`` runs (untimed) ahead of each, e.g. a write that makes the answer cold."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def process_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds: the server's CPU per request does not depend on the machine's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def set_up(server: AltoServer, capacity: int) -> Tenant:
    op = Operator(server)
    assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
    t = Tenant(server, "bench")
    quota = f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/quotas/{t.sub}"
    props = {"virtualMachineCount": capacity + 100, "coresLimit": (capacity + 100) * 8, "vmScaleSetCount": 100}
    op.http.put(f"{quota}?api-version=2018-02-09", json={"properties": props}).raise_for_status()
    t0 = time.perf_counter()
    status = t.wait(t.http.put(f"{t.base}/big?{COMPUTE}", json=vmss_body(capacity, prefix="big")), timeout=600)
    assert status["status"] == "Succeeded", status
    print(f"  {capacity} instances running in {time.perf_counter() - t0:.1f} s", flush=True)
    return t


def portal_client(server: AltoServer) -> httpx.Client:
    c = httpx.Client(base_url=server.endpoint, verify=server.tls, timeout=60)
    token = re.search(r'name="signin_token" value="([^"]+)"', c.get("/sign-in").text)
    assert token is not None
    user = server.credentials["users"]["tenant"]
    form = {"signin_token": token.group(1), "name": user["name"], "password": user["password"], "next": "/"}
    r = c.post("/sign-in", data=form)
    assert r.status_code == 303 and "alto_session" in c.cookies, r.text
    return c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--loads", type=int, default=15)
    args = parser.parse_args()
    print(f"load average before: {loadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "upstream").mkdir()
        catalog = make_catalog(root / "upstream" / "catalog", versions=("1.0.0",))
        server = AltoServer(root / "data", extra_args=("--upstream", str(catalog), "--log-level", "warning")).start()
        try:
            t = set_up(server, args.capacity)
            set_path = f"{t.base}/big"
            page = f"/portal{set_path}"
            versions = (
                f"/subscriptions/{t.sub}/providers/Microsoft.Compute/locations/local/publishers/{PUB}/artifacttypes/"
                f"vmimage/offers/{OFFER}/skus/{SKU}/versions?{COMPUTE}"
            )
            vms = f"{set_path}/virtualMachines?{COMPUTE}&$top=1000"
            usages = f"/subscriptions/{t.sub}/providers/Microsoft.Compute/locations/local/usages?{COMPUTE}"
            portal = portal_client(server)
            api = t.http

            def get(client: httpx.Client, url: str) -> Callable[[], object]:
                def fn() -> None:
                    r = client.get(url)
                    assert r.status_code == 200, (url, r.status_code, r.text[:300])

                return fn

            view = f"{set_path}/instanceView?{COMPUTE}"
            page_of = f"{set_path}/virtualMachines?{COMPUTE}&$top=100&$expand=instanceView"
            by_version = "properties/storageProfile/imageReference/exactVersion desc"
            rows = [
                ("scale-set page (portal)", get(portal, page)),
                ("— GET set (API)", get(api, f"{set_path}?{COMPUTE}")),
                ("— GET set instanceView (API)", get(api, view)),
                ("— GET usages (API)", get(api, usages)),
                ("— GET image versions (API)", get(api, versions)),
                ("instances page, 100 of 1000 (portal)", get(portal, page + "/instances")),
                ("instances page sorted by version (portal)", get(portal, page + "/instances?sort=version&order=desc")),
                ("— GET set, GET set instanceView (API, as above)", get(api, view)),
                ("— LIST 100 VMs, $expand=instanceView (API)", get(api, page_of)),
                ("— LIST 100 VMs, $orderby=exactVersion desc (API)", get(api, f"{page_of}&$orderby={by_version}")),
                ("(before: LIST 1000 VMs, $expand=instanceView, API)", get(api, f"{vms}&$expand=instanceView")),
            ]  # fmt: skip
            tag = iter(range(10**9))

            def touch() -> None:
                """A change to the set (a tag), so that the next answer is computed, not taken from the cache; the
                change's own work (an operation, the controller's pass) ends before the timed request."""
                r = api.patch(f"{set_path}?{COMPUTE}", json={"tags": {"bench": str(next(tag))}})
                assert r.status_code in (200, 202), r.text[:300]
                status = r.headers.get("azure-asyncoperation")
                while status and api.get(status).json()["status"] == "InProgress":
                    time.sleep(0.02)

            cold = [
                ("scale-set page, after a change (portal)", get(portal, page)),
                ("instances page, after a change (portal)", get(portal, page + "/instances")),
                ("sorted by version, after a change", get(portal, page + "/instances?sort=version&order=desc")),
            ]  # fmt: skip
            assert server.proc is not None
            pid = server.proc.pid
            print(f"\n{'Request':<46} {'p50 ms':>9} {'p95 ms':>9} {'server CPU ms':>14}", flush=True)
            for name, fn in cold:  # the CPU column includes the change's own work (PATCH, operation, controller)
                cpu0 = process_cpu(pid)
                samples = timed(fn, args.requests, warmup=0, before=touch)
                cpu = (process_cpu(pid) - cpu0) / args.requests * 1000
                print(f"{name:<46} {pct(samples, 50):>9.1f} {pct(samples, 95):>9.1f} {cpu:>14.1f}", flush=True)
            for name, fn in rows:
                try:
                    fn()
                except AssertionError as err:  # an older server (PYTHONPATH=its src) without this call
                    print(f"{name:<46} {'not served':>9}  ({str(err)[:80]})", flush=True)
                    continue
                cpu0 = process_cpu(pid)
                samples = timed(fn, args.requests, warmup=0)
                cpu = (process_cpu(pid) - cpu0) / args.requests * 1000
                print(f"{name:<46} {pct(samples, 50):>9.1f} {pct(samples, 95):>9.1f} {cpu:>14.1f}", flush=True)

            with sync_playwright() as p, chromium(p, server) as browser:
                context, tab = new_page(browser)
                sign_in(tab, server, "tenant")
                loads = []
                for i in range(args.loads + 2):
                    tab.goto(f"{server.endpoint}{page}/instances", wait_until="load")
                    timing = tab.evaluate(
                        "() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return n.loadEventEnd - n.startTime; }"
                    )
                    if i >= 2:
                        loads.append(float(timing) / 1000)
                context.close()
            print(
                f"{'instances page in Chromium (load event)':<46} {pct(loads, 50):>9.1f} {pct(loads, 95):>9.1f}",
                flush=True,
            )
        finally:
            server.close()
    print(f"\nload average after: {loadavg()}", flush=True)


if __name__ == "__main__":
    main()
