"""Image upload to a libvirt host's storage pool: how long a host takes to receive a platform image.

Method: the demo image (256 MiB, ~10 MiB of data; `alto images build-demo`'s builder) is put into a fresh pool
on each host URI given, `--reps` times, alternating:

- **ours**: what the libvirt driver does on a host's first instance of a version (libvirt_images.BaseImages):
  a sparse stream upload (`virStorageVolUpload` with VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM, only the extents
  move), then the read-back check against the extent map (sparse `virStorageVolDownload`, SHA-256 per extent,
  zeros elsewhere), then the marker volume. Upload and check are also timed apart.
- **plain stream**: the same volume filled by a non-sparse `virStorageVolUpload` of every byte (what a client
  without sparse streams would do), unverified.
- **cp --sparse=always**: a local copy of the blob on this machine's disk, the floor (no libvirt, no check).

Medians per host; ratios ours / plain and ours / cp. Exits 0 whatever the figures; prints the load average.
Hosts: `qemu:///system` by default; `scripts/libvirt.sh start_libvirt_hosts 2` gives private daemons to pass
with `--uri` (docs/several-machines.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import libvirt

from altostratus.hypervisors import InstanceSpec
from altostratus.hypervisors.libvirt_image_check import image_source
from altostratus.hypervisors.libvirt_images import BaseImages
from altostratus.hypervisors.libvirt_pools import create_volume, ensure_pool
from altostratus.marketplace.demo_images import build_demo_image

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def ours(conn: libvirt.virConnect, pool: libvirt.virStoragePool, spec: InstanceSpec) -> tuple[float, float]:
    """(total seconds, of which the read-back check) of a first upload."""
    images = BaseImages()
    source = image_source(spec)
    started = time.monotonic()
    with images.use("h", conn, pool, source):
        pass
    total = time.monotonic() - started
    check = images.upload_seconds["h"][0][1]
    for name in (source.volume, source.marker):
        pool.storageVolLookupByName(name).delete(0)
    return total, check


def plain(conn: libvirt.virConnect, pool: libvirt.virStoragePool, blob: Path) -> float:
    size = blob.stat().st_size
    started = time.monotonic()
    vol = create_volume(pool, f"plain-{uuid.uuid4().hex[:8]}.raw", size, "raw")
    stream = conn.newStream(0)
    vol.upload(stream, 0, size, 0)
    with blob.open("rb") as f:
        stream.sendAll(lambda _s, n, _o: f.read(n), None)
    stream.finish()
    seconds = time.monotonic() - started
    vol.delete(0)
    return seconds


def local_copy(blob: Path, directory: Path) -> float:
    dest = directory / "copy.raw"
    started = time.monotonic()
    subprocess.run(["cp", "--sparse=always", str(blob), str(dest)], check=True)
    seconds = time.monotonic() - started
    dest.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", action="append", help="libvirt host URI (repeatable; default qemu:///system)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    uris = args.uri or ["qemu:///system"]
    work = Path(tempfile.mkdtemp(prefix="alto-bench-upload-", dir="/var/tmp"))
    try:
        blob = build_demo_image(work / "demo.raw", publisher="Altostratus", offer="DemoLinux", sku="demo",
                                version="9.9.9")  # fmt: skip
        data = os.stat(blob).st_blocks * 512
        mib = data / (1 << 20)
        print(f"demo image: {blob.stat().st_size >> 20} MiB, {mib:.1f} MiB of data; load {os.getloadavg()}")
        spec = InstanceSpec(key="bench", vm_id="v", computer_name="c", image_urn="a:b:c:9.9.9",
                            image_version="9.9.9", disk_path=str(blob))  # fmt: skip
        image_source(spec)  # the local map, once (a driver caches it too)
        print("| host | ours s (upload + check) | check s | plain stream s | cp --sparse s | ours/plain | ours/cp |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for uri in uris:
            conn = libvirt.open(uri)
            name = f"alto-bench-{uuid.uuid4().hex[:8]}"
            pool = ensure_pool(conn, name, f"/var/lib/libvirt/{name}")
            try:
                runs: dict[str, list[float]] = {"ours": [], "check": [], "plain": [], "cp": []}
                for _ in range(args.reps):
                    total, check = ours(conn, pool, spec)
                    runs["ours"].append(total)
                    runs["check"].append(check)
                    runs["plain"].append(plain(conn, pool, blob))
                    runs["cp"].append(local_copy(blob, work))
                med = {k: statistics.median(v) for k, v in runs.items()}
                print(f"| {uri} | {med['ours']:.3f} | {med['check']:.3f} | {med['plain']:.3f} | {med['cp']:.3f} | "
                      f"{med['ours'] / med['plain']:.2f} | {med['ours'] / med['cp']:.2f} |")  # fmt: skip
            finally:
                with contextlib.suppress(libvirt.libvirtError):
                    for vol in pool.listAllVolumes(0):
                        vol.delete(0)
                    pool.destroy()
                    pool.delete(0)
                    pool.undefine()
                conn.close()
        print(f"load {os.getloadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
