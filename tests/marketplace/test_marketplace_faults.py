"""Downloads under faults: a corrupt payload, a flaky upstream, a killed server, a full disk, a huge sparse image.

The faults that both catalogue formats meet alike run for each: format 1 (one whole-content SHA-256) and format 2
(extent maps, fetched extent by extent).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from altostratus.marketplace.catalog import Payload, Product, add_payload, write_catalog
from tests.support.flaky_upstream import FlakyUpstream
from tests.support.marketplace import OFFER, PUB, SKU, Operator, image_product, make_disk, product_name
from tests.support.server import AltoServer

MiB = 1 << 20


def random_disk(path: Path, size: int, data_bytes: int, extents: int = 4) -> Path:
    step = size // extents
    per = data_bytes // extents
    return make_disk(path, size, [(i * step, os.urandom(per)) for i in range(extents)])


def poke(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def served_product(root: Path, flaky: FlakyUpstream, version: str, disk: Path, fmt: int = 1) -> Product:
    """A product whose payload is fetched from the flaky HTTP upstream (the catalogue itself stays local)."""
    local = add_payload(root, disk, extents=fmt == 2)
    return Product(
        name=product_name(PUB, OFFER, SKU, version),
        kind="virtualMachine",
        displayName=version,
        publisher=PUB,
        offer=OFFER,
        sku=SKU,
        version=version,
        payload=Payload(path=flaky.url(local.path), size=local.size, sha256=local.sha256, extents=local.extents),
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


@pytest.mark.parametrize("fmt", [1, 2])
def test_dropped_connection_resumes(tmp_path: Path, flaky: FlakyUpstream, fmt: int) -> None:
    product = served_product(flaky.root, flaky, "1.0.0", random_disk(tmp_path / "d.raw", 64 * MiB, 24 * MiB), fmt)
    write_catalog(tmp_path / "catalog", "flaky", [product])
    flaky.drop_after, flaky.drop_requests = 5 * MiB, 2
    server, op = start(tmp_path, tmp_path / "catalog")
    try:
        assert op.download(product.name)["status"] == "Succeeded"
        image = op.http.get(op.image_url("1.0.0")).json()["properties"]
        assert image["sha256"] == product.payload.content_id
        ranges = [r.range for r in flaky.requests if r.range]
        if fmt == 1:
            assert ranges and all(not r.startswith("bytes=0-") for r in ranges), "resumed, not restarted"
        else:  # the first two extents dropped 5 MiB in, and were resumed there
            extents = product.payload.extents or []
            resumed = {f"bytes={e.offset + 5 * MiB}-{e.end - 1}" for e in extents[:2]}
            assert resumed <= set(ranges) and len(ranges) == len(extents) + 2, ranges
    finally:
        op.http.close()
        server.close()


@pytest.mark.parametrize("fmt", [1, 2])
def test_server_killed_mid_download_resumes_after_restart(tmp_path: Path, flaky: FlakyUpstream, fmt: int) -> None:
    disk = random_disk(tmp_path / "d.raw", 128 * MiB, 96 * MiB)
    product = served_product(flaky.root, flaky, "1.0.0", disk, fmt)
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
        before = len(flaky.requests)
        server.start()
        op.http = server.client("operator")
        status = op.wait(r)
        assert status["status"] == "Succeeded", status
        image = op.http.get(op.image_url("1.0.0")).json()["properties"]
        assert image["sha256"] == product.payload.content_id
        if fmt == 1:
            resumed = [s.range for s in flaky.requests if s.range and not s.range.startswith("bytes=0-")]
            assert resumed, f"the restarted server resumed with a Range request: {flaky.requests}"
        else:
            again = [s.range for s in flaky.requests[before:] if s.range and s.range.startswith("bytes=0-")]
            assert again == [], "the restarted server did not fetch the first extent again"
        assert leftovers(server) == [image["sha256"]]
    finally:
        op.http.close()
        server.close()


@pytest.mark.parametrize("fmt", [1, 2])
def test_full_filesystem_fails_clearly_and_keeps_older_image(tmp_path: Path, fmt: int) -> None:
    root = tmp_path / "upstream"
    small = image_product(root, "1.0.0")
    big_disk = random_disk(tmp_path / "big.raw", 96 * MiB, 64 * MiB)
    big = Product(**{**small.model_dump(), "name": product_name(PUB, OFFER, SKU, "2.0.0"), "version": "2.0.0",
                     "payload": add_payload(root, big_disk, extents=fmt == 2)})  # fmt: skip
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


def test_format_2_product_end_to_end(tmp_path: Path) -> None:
    """A format 2 catalogue through the admin API: good, tampered and hole-breaking payloads of one image."""
    root = tmp_path / "upstream"
    disk = random_disk(tmp_path / "d.raw", 512 * MiB, 40 * MiB, extents=4)
    good = image_product(root, "3.0.0").model_copy(update={"payload": add_payload(root, disk, extents=True)})
    assert good.payload.extents is not None
    tampered_extents = list(good.payload.extents)
    tampered_extents[2] = tampered_extents[2].model_copy(update={"sha256": "0" * 64})
    tampered = image_product(root, "1.0.0").model_copy(
        update={"payload": good.payload.model_copy(update={"extents": tampered_extents})}
    )
    holed = disk.with_name("holed.raw")
    subprocess.run(["cp", "--sparse=always", str(disk), str(holed)], check=True)
    poke(holed, 300 * MiB, b"\x01")  # in a hole of the map
    hole_payload = add_payload(root, holed)
    breaks_hole = image_product(root, "2.0.0").model_copy(
        update={"payload": good.payload.model_copy(update={"path": hole_payload.path})}
    )
    path = write_catalog(root, "format 2", [tampered, breaks_hole, good])
    assert '"formatVersion": 2' in path.read_text()
    server, op = start(tmp_path, root)
    try:
        status = op.download(tampered.name)
        assert status["status"] == "Failed" and status["error"]["code"] == "ChecksumMismatch"
        assert "0" * 64 in status["error"]["message"]
        status = op.download(breaks_hole.name)
        assert status["status"] == "Failed" and status["error"]["code"] == "ChecksumMismatch"
        assert f"hole is not zero (at offset {300 * MiB})" in status["error"]["message"]
        assert op.image_versions() == [] and leftovers(server) == []

        r = op.start_download(good.name)
        assert op.wait(r)["status"] == "Succeeded"
        props = op.http.get(r.headers["location"]).json()["properties"]
        assert props["provisioningState"] == "Succeeded" and props["payloadSha256"] == good.payload.sha256
        image = op.http.get(op.image_url("3.0.0")).json()["properties"]
        assert image["sha256"] == good.payload.content_id and image["sha256"].startswith("map-")
        assert image["virtualSize"] == 512 * MiB and image["allocatedSize"] <= 1.01 * 40 * MiB
        blob = server.data_dir / "blobs" / image["sha256"]
        with open(blob, "rb") as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == good.payload.sha256, "byte for byte the image"
        assert leftovers(server) == [image["sha256"]]
    finally:
        op.http.close()
        server.close()
