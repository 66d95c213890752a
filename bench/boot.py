"""Boot of N real VMs (libvirt, QEMU) through a scale set, side by side with the same N domains started directly.

``ours``: ``alto up --hypervisor libvirt --libvirt-uri qemu:///system`` (SQLite, data dir under /var/tmp so that
QEMU can reach it), the demo marketplace image ``Altostratus.DemoLinuxdemo.1.0.0`` downloaded by the operator,
one scale set created with capacity 0 (Standard_A1: 1 vCPU, 1792 MB requested, capped to 256 MiB by the driver).
For each N the timed part is from sending ``PATCH sku.capacity=N`` to the poll of its ``Azure-AsyncOperation``
(every 100 ms) that saw Succeeded; an instance is Succeeded only once its guest printed ``ALTOSTRATUS-READY`` on
its serial console, so this is "request to N instances ready". Afterwards the set is scaled back to 0 and the
bench waits for that to finish (not timed), so every run starts with no VM running. While it polls, the bench
also reads the instances' console files: "guests READY at" is when the last of the N consoles showed the ready
line, so the gap to "ours s" is the time the server took to notice and report it.

``direct``: what a script would do with libvirt-python alone, on the same raw blob (``<data>/blobs/<sha>``).
Timed from the start of the work: for each of the N VMs in turn, ``qemu-img create -f qcow2 -F raw -b`` an
overlay, a NoCloud seed (``altostratus.hypervisors.nocloud.build_seed``: mkfs.vfat + mcopy, the same content
our driver writes), ``defineXML`` of the XML from ``altostratus.hypervisors.libvirt_xml.domain_xml`` (identical
to our domains: same disks, console file, NIC, 256 MiB, 1 vCPU, same domain type), ``create()``; then poll the N
console files every 100 ms until all show the ready line. The domains are then destroyed and undefined and
their files removed (not timed). So the ratio ours/direct is the cost of our control plane (HTTP, store,
reconciler, the readiness poll) over the same QEMU work; goal <= 1.15.

Before the timed runs, ours scales to 1 and back once (warm-up, printed but not in the table): the driver's
first create on a host runs its KVM probe (a tiny probe guest, libvirt_probe.py) once per process, a one-time
cost of about 3 s here that would otherwise land on N=1 (``--no-warmup`` keeps it in). Ours and direct
alternate: N=1 ours, N=1 direct, N=4 ours, ... (``--reps`` repeats the whole sequence; the
table shows the median). Per-instance memory: the RSS of each QEMU process once all N are ready
(libvirt ``memoryStats()['rss']``, else ``VmRSS`` of the pid in /run/libvirt/qemu/<name>.pid), mean over the N.

Every domain and directory the bench creates is removed on exit, also on failure: the server's domains are
found by their disks being under the bench's data dir.

Run:  .venv/bin/python bench/boot.py [--counts 1,4,8] [--reps 1] [--uri qemu:///system]

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import libvirt  # noqa: E402
from tests.support.marketplace import Operator  # noqa: E402
from tests.support.server import AltoServer  # noqa: E402
from tests.support.vmss import Tenant, vmss_body  # noqa: E402

from altostratus.hypervisors.libvirt_xml import DomainFiles, InstanceRecord, domain_xml, mac_address  # noqa: E402
from altostratus.hypervisors.nocloud import build_seed  # noqa: E402

PRODUCT = "Altostratus.DemoLinuxdemo.1.0.0"
READY = b"ALTOSTRATUS-READY"
GOAL_RATIO = 1.15
POLL_SECONDS = 0.1
MEMORY_MB = 256  # the driver's default memory cap (Standard_A1 asks for 1792)
TIMEOUT = 900.0
SHARED_TMP = Path("/var/tmp")  # QEMU (libvirt-qemu) must reach the files: pytest-style 0700 dirs would not do

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def shared_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SHARED_TMP))
    os.chmod(path, 0o755)
    return path


# -- memory and cleanup ----------------------------------------------------------------------------------------


def rss_kib(dom: Any) -> int | None:
    """Resident memory of the domain's QEMU process, KiB."""
    try:
        rss = dom.memoryStats().get("rss")
        if rss:
            return int(rss)
    except libvirt.libvirtError:
        pass
    try:
        pid = Path(f"/run/libvirt/qemu/{dom.name()}.pid").read_text().strip()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def mean_rss_mib(doms: list[Any]) -> float | None:
    values = [v for v in (rss_kib(d) for d in doms) if v is not None]
    return statistics.mean(values) / 1024 if values else None


def remove_domain(dom: Any) -> None:
    flags = 0
    for name in ("MANAGED_SAVE", "SNAPSHOTS_METADATA", "NVRAM"):
        flags |= int(getattr(libvirt, f"VIR_DOMAIN_UNDEFINE_{name}", 0))
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass
    with contextlib.suppress(libvirt.libvirtError):
        dom.undefineFlags(flags)


def domains_under(conn: Any, directory: Path) -> list[Any]:
    """Domains whose XML mentions a path under ``directory`` (the bench's own, whoever defined them)."""
    found = []
    for dom in conn.listAllDomains():
        try:
            if str(directory) + "/" in dom.XMLDesc(0):
                found.append(dom)
        except libvirt.libvirtError:
            pass
    return found


# -- ours ------------------------------------------------------------------------------------------------------


class Ours:
    def __init__(self, base: Path, uri: str) -> None:
        self.uri = uri
        self.server = AltoServer(
            base / "data", extra_args=("--hypervisor", "libvirt", "--libvirt-uri", uri, "--log-level", "warning")
        ).start()
        op = Operator(self.server)
        status = op.download(PRODUCT)
        op.http.close()
        if status["status"] != "Succeeded":
            raise RuntimeError(f"downloading {PRODUCT}: {status}")
        blobs = sorted((self.server.data_dir / "blobs").iterdir())
        if len(blobs) != 1:
            raise RuntimeError(f"expected one blob, found {blobs}")
        self.blob = blobs[0]
        self.tenant = Tenant(self.server, "bench-boot")
        body = vmss_body(0, prefix="boot")
        body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
            "publisher": "Altostratus",
            "offer": "DemoLinux",
            "sku": "demo",
            "version": "latest",
        }
        self.body = body
        self.unique_id = self.tenant.create("boot", body)["properties"]["uniqueId"]

    def scale(self, n: int) -> float:
        t = self.tenant
        self.guests_ready: float | None = None
        t0 = time.perf_counter()
        r = t.scale("boot", n)
        if r.status_code not in (200, 201, 202):
            raise RuntimeError(f"PATCH capacity {n}: {r.status_code} {r.text[:300]}")
        url = r.headers["azure-asyncoperation"]
        instances = self.server.data_dir / "libvirt" / "instances"
        ready: set[Path] = set()
        while True:
            for path in instances.glob("*/console.log") if n else ():
                with contextlib.suppress(OSError):
                    if path not in ready and READY in path.read_bytes():
                        ready.add(path)
                        if len(ready) == n:
                            self.guests_ready = time.perf_counter() - t0
            status = t.http.get(url).json()
            if status["status"] != "InProgress":
                break
            if time.perf_counter() - t0 > TIMEOUT:
                raise RuntimeError(f"scale to {n} still InProgress after {TIMEOUT:g} s")
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - t0
        if status["status"] != "Succeeded":
            raise RuntimeError(f"scale to {n}: {status}")
        return seconds

    def run(self, n: int) -> dict[str, Any]:
        seconds = self.scale(n)
        conn = libvirt.open(self.uri)
        try:
            doms = domains_under(conn, self.server.data_dir)
            ready = sum(1 for v in self.tenant.vms("boot") if v["properties"]["provisioningState"] == "Succeeded")
            info = {"seconds": seconds, "guests_ready": self.guests_ready, "rss_mib": mean_rss_mib(doms)}
            info.update(domains=len(doms), ready=ready)
            info["domain_type"] = ElementTree.fromstring(doms[0].XMLDesc(0)).get("type") if doms else "qemu"
        finally:
            conn.close()
        self.scale(0)
        return info

    def close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            self.tenant.http.close()
        self.server.close()
        for dom in domains_under(conn, self.server.data_dir):
            remove_domain(dom)


# -- direct ----------------------------------------------------------------------------------------------------


def direct(uri: str, blob: Path, n: int, domain_type: str, custom_data: bytes) -> dict[str, Any]:
    """N domains defined and started by hand with libvirt-python; seconds until all consoles show READY."""
    work = shared_dir("alto-boot-direct-")
    conn = libvirt.open(uri)
    doms: list[Any] = []
    try:
        consoles: list[Path] = []
        t0 = time.perf_counter()
        for i in range(n):
            name = f"bench-direct-{work.name[-8:]}-{i}"
            directory = work / name
            directory.mkdir()
            os.chmod(directory, 0o711)
            overlay = directory / "disk.qcow2"
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(blob), str(overlay)],
                check=True,
                capture_output=True,
            )
            os.chmod(overlay, 0o640)
            vm_id = str(uuid.uuid4())
            hostname = f"direct{i:06d}"
            seed = build_seed(
                directory / "seed.img",
                instance_id=vm_id,
                hostname=hostname,
                user_data=custom_data,
                admin_username="azureuser",
                mode=0o640,
            )
            console = directory / "console.log"
            files = DomainFiles(overlay=str(overlay), backing=str(blob), seed=str(seed), console=str(console))
            now = round(time.time(), 6)
            rec = InstanceRecord(
                key=f"direct:{i}",
                vm_id=vm_id,
                computer_name=hostname,
                image_urn="Altostratus:DemoLinux:demo:1.0.0",
                image_version="1.0.0",
                disk_path=str(blob),
                cpu=1,
                memory_mb=1792,
                created_at=now,
                boot_count=1,
                boot_started=now,
                accelerator="kvm" if domain_type == "kvm" else "tcg",
            )
            xml = domain_xml(
                name=name,
                uuid=None,
                domain_type=domain_type,
                machine="pc",
                vcpus=1,
                memory_mb=MEMORY_MB,
                files=files,
                record=rec,
                mac=mac_address(rec.key),
            )
            dom = conn.defineXML(xml)
            doms.append(dom)
            dom.create()
            consoles.append(console)
        pending = set(consoles)
        while pending:
            for path in list(pending):
                try:
                    if READY in path.read_bytes():
                        pending.discard(path)
                except OSError:
                    pass
            if not pending:
                break
            if time.perf_counter() - t0 > TIMEOUT:
                raise RuntimeError(f"{len(pending)} of {n} direct domains not ready after {TIMEOUT:g} s")
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "rss_mib": mean_rss_mib(doms), "domains": len(doms), "ready": n}
    finally:
        for dom in doms:
            remove_domain(dom)
        for dom in domains_under(conn, work):
            remove_domain(dom)
        conn.close()
        shutil.rmtree(work, ignore_errors=True)


# -- report ----------------------------------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def med(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def report(counts: list[int], results: dict[tuple[str, int], list[dict[str, Any]]], domain_type: str) -> None:
    print()
    print(
        f"Boot bench, {date.today().isoformat()}, {os.cpu_count()} cores, domain type {domain_type}, "
        f"load average now {loadavg()}"
    )
    print(
        "| N | ours s | ours: guests READY at s | direct s | ours/direct (goal <= 1.15) "
        "| RSS/VM ours MiB | RSS/VM direct MiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in counts:
        ours, dire = results.get(("ours", n), []), results.get(("direct", n), [])
        o, d = med(ours, "seconds"), med(dire, "seconds")
        ratio = f"{o / d:.2f}" if o and d else "-"
        if o and d:
            ratio += " ok" if o / d <= GOAL_RATIO else " over goal"
        ready = fmt(med(ours, "guests_ready"))
        rss = f"{fmt(med(ours, 'rss_mib'))} | {fmt(med(dire, 'rss_mib'))}"
        print(f"| {n} | {fmt(o)} | {ready} | {fmt(d)} | {ratio} | {rss} |")
    for (side, n), runs in sorted(results.items()):
        print(f"  {side} N={n}: " + ", ".join(f"{r['seconds']:.2f} s" for r in runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="1,4,8", help="comma-separated instance counts (default 1,4,8)")
    parser.add_argument("--reps", type=int, default=1, help="repetitions of the whole sequence (default 1)")
    parser.add_argument("--uri", default="qemu:///system", help="libvirt URI (default qemu:///system)")
    parser.add_argument(
        "--no-warmup", action="store_true", help="time the very first scale-out too (it includes the KVM probe)"
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    print(f"load average before: {loadavg()}", flush=True)

    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    base = shared_dir("alto-boot-")
    conn = libvirt.open(args.uri)
    ours: Ours | None = None
    domain_type = "qemu"
    try:
        ours = Ours(base, args.uri)
        if not args.no_warmup:
            cold = ours.run(1)
            print(f"warm-up (untimed in the table): first scale-out to 1 took {cold['seconds']:.2f} s", flush=True)
        custom = base64.b64decode(ours.body["properties"]["virtualMachineProfile"]["osProfile"]["customData"])
        for rep in range(args.reps):
            for n in counts:
                info = ours.run(n)
                domain_type = info["domain_type"]
                results.setdefault(("ours", n), []).append(info)
                print(f"rep {rep + 1} N={n} ours:   {info['seconds']:.2f} s {info}", flush=True)
                info = direct(args.uri, ours.blob, n, domain_type, custom)
                results.setdefault(("direct", n), []).append(info)
                print(f"rep {rep + 1} N={n} direct: {info['seconds']:.2f} s {info}", flush=True)
    except Exception:  # noqa: BLE001 - report what was measured, exit 0
        traceback.print_exc()
        if ours is not None:
            log = ours.server.log_path
            if log.exists():
                print(f"server log tail ({log}):\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
    finally:
        if ours is not None:
            ours.close(conn)
        for dom in domains_under(conn, base):
            remove_domain(dom)
        conn.close()
        shutil.rmtree(base, ignore_errors=True)
    report(counts, results, domain_type)
    print(f"load average after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
