"""Downloads under faults: a corrupt payload, a flaky upstream, a killed server, a full disk, a huge sparse image."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from altostratus.marketplace.catalog import Payload, Product, add_payload, write_catalog
from tests.flaky_upstream import FlakyUpstream
from tests.marketplace_util import OFFER, PUB, SKU, Operator, image_product, make_disk, product_name
from tests.server import AltoServer

MiB = 1 << 20


def random_disk(path: Path, size: int, data_bytes: int, extents: int = 4) -> Path:
    step = size // extents
    per = data_bytes // extents
    return make_disk(path, size, [(i * step, os.urandom(per)) for i in range(extents)])


def served_product(root: Path, flaky: FlakyUpstream, version: str, disk: Path) -> Product:
    """A product whose payload is fetched from the flaky HTTP upstream (the catalogue itself stays local)."""
    local = add_payload(root, disk)
    return Product(
        name=product_name(PUB, OFFER, SKU, version),
        kind="virtualMachine",
        displayName=version,
        publisher=PUB,
        offer=OFFER,
        sku=SKU,
        version=version,
        payload=Payload(path=flaky.url(local.path), size=local.size, sha256=local.sha256),
    )


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[FlakyUpstream]:
    root = tmp_path / "upstream"
    root.mkdir()
    with FlakyUpstream(root) as up:
        yield up


def start(tmp_path: Path, upstream: Path, data_dir: Path | None = None) -> tuple[AltoServer, Operator]:
    server = AltoServer(data_dir or tmp_path / "data", extra_args=("--upstream", str(upstream))).start()
    return server, Operator(server)


def leftovers(server: AltoServer) -> list[str]:
    return sorted(p.name for d in ("downloads", "blobs") for p in (server.data_dir / d).iterdir())


def test_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    good = image_product(root, "1.0.0")
    bad = good.model_copy(update={"payload": good.payload.model_copy(update={"sha256": "0" * 64})})
    write_catalog(root, "corrupt", [bad])
    server, op = start(tmp_path, root)
    try:
        status = op.download(bad.name)
        assert status["status"] == "Failed" and status["error"]["code"] == "ChecksumMismatch"
        assert "0000000000" in status["error"]["message"], "the message names the expected digest"
        assert op.image_versions() == []
        [download] = op.downloaded()
        assert download["properties"]["provisioningState"] == "Failed"
        assert download["properties"]["error"]["code"] == "ChecksumMismatch"
        assert leftovers(server) == []
    finally:
        op.http.close()
        server.close()


def test_dropped_connection_resumes(tmp_path: Path, flaky: FlakyUpstream) -> None:
    product = served_product(flaky.root, flaky, "1.0.0", random_disk(tmp_path / "d.raw", 64 * MiB, 24 * MiB))
    write_catalog(tmp_path / "catalog", "flaky", [product])
    flaky.drop_after, flaky.drop_requests = 5 * MiB, 2
    server, op = start(tmp_path, tmp_path / "catalog")
    try:
        assert op.download(product.name)["status"] == "Succeeded"
        image = op.http.get(op.image_url("1.0.0")).json()["properties"]
        assert image["sha256"] == product.payload.sha256
        ranges = [r.range for r in flaky.requests if r.range]
        assert ranges and all(not r.startswith("bytes=0-") for r in ranges), "resumed, not restarted"
    finally:
        op.http.close()
        server.close()


def test_server_killed_mid_download_resumes_after_restart(tmp_path: Path, flaky: FlakyUpstream) -> None:
    product = served_product(flaky.root, flaky, "1.0.0", random_disk(tmp_path / "d.raw", 128 * MiB, 96 * MiB))
    write_catalog(tmp_path / "catalog", "slow", [product])
    flaky.throttle = 0.04  # ~4 s for the whole payload
    server, op = start(tmp_path, tmp_path / "catalog")
    try:
        r = op.start_download(product.name)
        status_url = r.headers["azure-asyncoperation"]
        deadline = time.time() + 60
        while time.time() < deadline:
            progress = (op.http.get(status_url).json().get("properties") or {}).get("progress") or {}
            if progress.get("bytesDone", 0) > 40 * MiB:
                break
            time.sleep(0.1)
        assert progress.get("bytesDone", 0) > 40 * MiB, progress
        server.kill()
        server.start()
        op.http = server.client("operator")
        status = op.wait(r)
        assert status["status"] == "Succeeded", status
        image = op.http.get(op.image_url("1.0.0")).json()["properties"]
        assert image["sha256"] == product.payload.sha256
        resumed = [s.range for s in flaky.requests if s.range and not s.range.startswith("bytes=0-")]
        assert resumed, f"the restarted server resumed with a Range request: {flaky.requests}"
        assert leftovers(server) == [image["sha256"]]
    finally:
        op.http.close()
        server.close()


def test_full_filesystem_fails_clearly_and_keeps_older_image(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    small = image_product(root, "1.0.0")
    big_disk = random_disk(tmp_path / "big.raw", 96 * MiB, 64 * MiB)
    big = Product(**{**small.model_dump(), "name": product_name(PUB, OFFER, SKU, "2.0.0"), "version": "2.0.0",
                     "payload": add_payload(root, big_disk)})  # fmt: skip
    write_catalog(root, "big", [small, big])
    data = tmp_path / "tiny-fs"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(data)], check=True)
    server, op = None, None
    try:
        server, op = start(tmp_path, root, data / "alto")
        assert op.download(small.name)["status"] == "Succeeded"
        status = op.download(big.name)
        assert status["status"] == "Failed" and status["error"]["code"] == "InsufficientStorage"
        assert "space" in status["error"]["message"].lower()
        assert op.image_versions() == ["1.0.0"], "the older image is untouched"
        assert list((server.data_dir / "downloads").iterdir()) == []
    finally:
        if op is not None:
            op.http.close()
        if server is not None:
            server.close()
        subprocess.run(["umount", str(data)], check=False)


def test_huge_sparse_image_stays_sparse(tmp_path: Path) -> None:
    """A 4 GiB image holding 200 MiB of data takes at most 1.1 x 200 MiB on disk after download."""
    root = tmp_path / "upstream"
    disk = random_disk(tmp_path / "huge.raw", 4096 * MiB, 200 * MiB, extents=8)
    product = Product(
        name=product_name(PUB, OFFER, SKU, "3.0.0"),
        kind="virtualMachine",
        displayName="huge",
        publisher=PUB,
        offer=OFFER,
        sku=SKU,
        version="3.0.0",
        payload=add_payload(root, disk),
    )
    disk.unlink()
    write_catalog(root, "huge", [product])
    server, op = start(tmp_path, root)
    try:
        assert op.download(product.name)["status"] == "Succeeded"
        props = op.http.get(op.image_url("3.0.0")).json()["properties"]
        assert props["virtualSize"] == 4096 * MiB
        assert props["allocatedSize"] <= 1.1 * 200 * MiB, props
        blob = server.data_dir / "blobs" / props["sha256"]
        assert blob.stat().st_blocks * 512 <= 1.1 * 200 * MiB
    finally:
        op.http.close()
        server.close()
