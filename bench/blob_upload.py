"""Upload throughput of the blob data plane: a VHD uploaded as a page blob with azure-storage-blob (what
``az storage blob upload --type page`` runs), on ``alto up`` next to a minimal uvicorn app that takes the same
requests and throws the bytes away.

Method: a dense file of ``--size`` random MiB (every 4 MiB page range is sent: no zero chunks to skip) is uploaded
``--reps`` times to each target, alternating, with one connection (max_concurrency=1, as the SDK's default), over
TLS with the same certificate. alto writes each Put Page with pwrite + fdatasync (acknowledged writes are on disk)
and records it in the database; the baseline answers 201 with an ETag without reading further than the body.
The ratio is baseline seconds / alto seconds (1.0 = the data plane costs nothing beyond HTTP and TLS); the disk
floor row times the same pwrite + fdatasync per 4 MiB with no HTTP (its ratio: floor seconds / alto seconds). A
last row uploads a fixed VHD of the demo image (64 MiB, sparse) (the SDK skips its all-zero pages) to alto alone.

Run:  .venv/bin/python bench/blob_upload.py [--size 64] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from azure.storage.blob import BlobServiceClient  # noqa: E402
from tests.support import blobs  # noqa: E402
from tests.support.server import AltoServer  # noqa: E402


async def sink(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Take any blob request, read its body, answer 201 with what the SDK reads back (ETag, Last-Modified)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"etag", f'"0x{uuid.uuid4().hex[:15]}"'.encode()), (b"last-modified", b"Sat, 05 Dec 2026 00:00:00 GMT"),
               (b"content-length", b"0")]  # fmt: skip
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(data_dir: Path) -> tuple[str, uvicorn.Server]:
    port = free_port()
    config = uvicorn.Config(
        sink, host="127.0.0.1", port=port, ssl_certfile=str(data_dir / "server.pem"),
        ssl_keyfile=str(data_dir / "server-key.pem"), log_config=None, access_log=False, lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"https://127.0.0.1:{port}", server


def upload(endpoint: str, account: str, key: str, ca: str, path: Path, name: str) -> float:
    service = BlobServiceClient(
        f"{endpoint}/{account}", credential={"account_name": account, "account_key": key}, connection_verify=ca
    )
    start = time.perf_counter()
    with open(path, "rb") as f:
        service.get_blob_client("bench", name).upload_blob(f, blob_type="PageBlob", overwrite=True, max_concurrency=1)
    return time.perf_counter() - start


def disk_floor(path: Path, size_mib: int) -> float:
    """The same writes with no HTTP at all: pwrite + fdatasync of each 4 MiB, what alto must do per Put Page."""
    data = os.urandom(4 << 20)
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY)
    try:
        for i in range(size_mib // 4):
            os.pwrite(fd, data, i * len(data))
            os.fdatasync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="MiB of dense data")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        work = Path(tmp)
        server = AltoServer(work / "data", extra_args=("--log-level", "warning")).start()
        try:
            http = server.client()
            sub = server.credentials["tenant"]["subscriptionId"]
            group = f"/subscriptions/{sub}/resourceGroups/bench"
            http.put(f"{group}?api-version=2019-10-01", json={"location": "local"})
            http.post(f"/subscriptions/{sub}/providers/Microsoft.Storage/register?api-version=2019-10-01")
            key = blobs.create_account(http, group, "benchblobs")
            blobs.blob_client(server, "benchblobs", key).create_container("bench")
            dense = work / "dense.vhd"
            dense.write_bytes(os.urandom(args.size << 20))
            sink_url, sink_server = start_sink(server.data_dir)
            ours, base, floor = [], [], []
            for rep in range(args.reps):
                ours.append(upload(server.endpoint, "benchblobs", key, server.ca, dense, f"d{rep}.vhd"))
                base.append(upload(sink_url, "benchblobs", key, server.ca, dense, f"d{rep}.vhd"))
                floor.append(disk_floor(work / "floor.bin", args.size))
            sink_server.should_exit = True
            sparse = blobs.demo_vhd(work)
            demo = [
                upload(server.endpoint, "benchblobs", key, server.ca, sparse, f"s{r}.vhd") for r in range(args.reps)
            ]
            size_mib = sparse.stat().st_size / (1 << 20)
        finally:
            server.close()
    a, b = statistics.median(ours), statistics.median(base)
    print(f"{'upload':<42} {'alto s':>8} {'MiB/s':>7} {'baseline s':>11} {'MiB/s':>7} {'ratio':>6}")
    print(f"{f'dense {args.size} MiB page blob':<42} {a:8.2f} {args.size / a:7.1f} {b:11.2f} {args.size / b:7.1f} "
          f"{b / a:6.2f}")  # fmt: skip
    f = statistics.median(floor)
    print(f"{'disk floor: pwrite + fdatasync per 4 MiB':<42} {f:8.2f} {args.size / f:7.1f} {'-':>11} {'-':>7} "
          f"{f / a:6.2f}")  # fmt: skip
    d = statistics.median(demo)
    print(
        f"{f'demo image VHD, {size_mib:.0f} MiB sparse':<42} {d:8.2f} {size_mib / d:7.1f} {'-':>11} {'-':>7} {'-':>6}"
    )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
