"""Catalogue format 2: extent maps, their builder, and extent-verified downloads from local and HTTP upstreams."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from altostratus.marketplace.catalog import CatalogError, Payload, Product, add_payload, load_catalog, write_catalog
from altostratus.marketplace.extent_transfer import transfer_extents
from altostratus.marketplace.extents import MAX_EXTENT, Extent, map_id, scan_extents
from altostratus.marketplace.sparse_files import allocated_bytes
from altostratus.marketplace.transfer_job import TransferError
from tests.support.flaky_upstream import FlakyUpstream

MiB = 1 << 20
GiB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]


def write_image(path: Path, size: int, data: dict[int, int], seed: int = 7) -> Path:
    """``size`` bytes: random data at each {offset: length}, holes elsewhere."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length in sorted(data.items()):
            f.seek(offset)
            for left in range(length, 0, -64 * MiB):
                f.write(rng.randbytes(min(left, 64 * MiB)))
    return path


def sha_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def poke(path: Path, offset: int, data: bytes = b"\x01") -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[FlakyUpstream]:
    root = tmp_path / "upstream"
    root.mkdir()
    with FlakyUpstream(root) as up:
        yield up


@pytest.fixture
def image(upstream: FlakyUpstream) -> tuple[Path, list[Extent]]:
    """48 MiB: 20 MiB of data at an odd offset (two extents), 4 MiB more far behind a hole, then a hole."""
    path = write_image(upstream.root / "image.raw", 48 * MiB, {3 * MiB + 4321: 20 * MiB, 40 * MiB: 4 * MiB})
    return path, scan_extents(path)


# --- the map and the catalogue -----------------------------------------------------------------------------------


def test_builder_maps_only_data_blocks_joined_and_split(tmp_path: Path) -> None:
    path = write_image(tmp_path / "d.raw", 64 * MiB, {100: 1000, 300 * 1024: 5000, 8 * MiB: 20 * MiB})
    poke(path, 40 * MiB, bytes(2 * MiB))  # written zeros: allocated, yet no data
    extents = scan_extents(path)
    # 100.. and 300 KiB.. are less than a MiB apart: one extent (of whole 64 KiB blocks, clipped to the data the
    # file system has); then the 20 MiB in two pieces; the written zeros are left out
    assert extents[0].offset == 0 and 300 * 1024 + 5000 <= extents[0].end <= 320 * 1024
    assert [(e.offset, e.length) for e in extents[1:]] == [
        (8 * MiB, MAX_EXTENT),
        (8 * MiB + MAX_EXTENT, 20 * MiB - MAX_EXTENT),
    ]
    with open(path, "rb") as f:
        for e in extents:
            f.seek(e.offset)
            assert hashlib.sha256(f.read(e.length)).hexdigest() == e.sha256
    assert map_id(64 * MiB, extents) == map_id(64 * MiB, scan_extents(path))
    assert map_id(64 * MiB, extents).startswith("map-") and len(map_id(64 * MiB, extents)) == 64
    assert map_id(64 * MiB + 1, extents) != map_id(64 * MiB, extents)
    assert scan_extents(write_image(tmp_path / "empty.raw", 8 * MiB, {})) == []


def test_payload_and_catalogue_validation(tmp_path: Path) -> None:
    e = {"sha256": "a" * 64}
    with pytest.raises(ValidationError, match="overlaps"):
        Payload(path="p", size=100, extents=[Extent(offset=0, length=10, **e), Extent(offset=5, length=10, **e)])
    with pytest.raises(ValidationError, match="beyond the payload size"):
        Payload(path="p", size=100, extents=[Extent(offset=95, length=10, **e)])
    with pytest.raises(ValidationError, match="sha256 or extents"):
        Payload(path="p", size=100)
    assert Payload(path="p", size=100, extents=[]).content_id == map_id(100, [])

    disk = write_image(tmp_path / "d.raw", 4 * MiB, {MiB: 4096})
    root = tmp_path / "cat"
    payload = add_payload(root, disk, extents=True)
    assert payload.sha256 == sha_of(disk) and payload.extents is not None and len(payload.extents) == 1
    product = Product(name="P.Q.1.0.0", kind="virtualMachine", displayName="d", publisher="P", offer="Q", sku="s",
                      version="1.0.0", payload=payload)  # fmt: skip
    write_catalog(root, "v2", [product])
    raw = json.loads((root / "catalog.json").read_text())
    assert raw["formatVersion"] == 2 and raw["products"][0]["payload"]["extents"][0]["offset"] == MiB
    assert load_catalog(str(root)).products[0].payload.content_id == map_id(4 * MiB, payload.extents)

    raw["formatVersion"] = 1  # format 1 readers know no extents: refused rather than verified by the wrong rule
    (root / "catalog.json").write_text(json.dumps(raw))
    with pytest.raises(CatalogError, match="format 1 payload has a sha256 and no extents"):
        load_catalog(str(root))
    raw["formatVersion"] = 3
    (root / "catalog.json").write_text(json.dumps(raw))
    with pytest.raises(CatalogError, match="format version 3; this server reads versions 1 and 2"):
        load_catalog(str(root))

    v1 = product.model_copy(update={"payload": add_payload(root, disk)})
    write_catalog(root, "v1", [v1])
    assert json.loads((root / "catalog.json").read_text())["formatVersion"] == 1


# --- downloads -----------------------------------------------------------------------------------------------------


def test_local_file_url_and_http_sources(upstream: FlakyUpstream, image: tuple[Path, list[Extent]],
                                         tmp_path: Path) -> None:  # fmt: skip
    src, extents = image
    size = src.stat().st_size
    for i, source in enumerate((str(src), src.as_uri(), upstream.url(src.name))):
        dest = tmp_path / f"out{i}"
        progress: list[tuple[int, int | None]] = []
        checkpoints: list[int] = []
        result = transfer_extents(source, dest, size=size, extents=extents, checkpoint_bytes=4 * MiB,
                                  on_progress=lambda d, t: progress.append((d, t)),  # noqa: B023 - used in the loop
                                  on_checkpoint=checkpoints.append)  # fmt: skip
        assert result.content_id == map_id(size, extents) and result.size == size
        assert sha_of(dest) == sha_of(src) and dest.stat().st_size == size
        assert progress[-1] == (size, size) and progress == sorted(progress)
        assert checkpoints[-1] == size and checkpoints == sorted(checkpoints) and len(checkpoints) >= 2
        assert result.allocated_bytes == allocated_bytes(dest) <= 24 * MiB + 128 * 1024
    ranges = {r.range for r in upstream.requests}
    assert ranges == {f"bytes={e.offset}-{e.end - 1}" for e in extents}, "only the extents were requested"


def test_tampered_extent_fails_and_leaves_nothing(upstream: FlakyUpstream, image: tuple[Path, list[Extent]],
                                                  tmp_path: Path) -> None:  # fmt: skip
    src, extents = image
    size = src.stat().st_size
    upstream.corrupt_offset = extents[1].offset + 12345
    dest = tmp_path / "out"
    with pytest.raises(TransferError) as err:
        transfer_extents(upstream.url(src.name), dest, size=size, extents=extents)
    assert err.value.code == "ChecksumMismatch" and f"expected {extents[1].sha256}" in err.value.message
    assert not dest.exists()
    poke(src, extents[0].offset + 1, b"\xff\xfe")
    with pytest.raises(TransferError) as err:
        transfer_extents(str(src), dest, size=size, extents=extents)
    assert err.value.code == "ChecksumMismatch" and f"at offset {extents[0].offset}" in err.value.message
    assert not dest.exists() and sorted(os.listdir(tmp_path)) == ["upstream"]


def test_non_zero_byte_in_a_declared_hole(upstream: FlakyUpstream, image: tuple[Path, list[Extent]],
                                          tmp_path: Path) -> None:  # fmt: skip
    src, extents = image
    size, hole = src.stat().st_size, 30 * MiB + 7
    expected = sha_of(src)
    poke(src, hole)
    dest = tmp_path / "out"
    with pytest.raises(TransferError) as err:  # local: SEEK_DATA finds it, and it is read
        transfer_extents(str(src), dest, size=size, extents=extents)
    assert err.value.code == "ChecksumMismatch" and "hole is not zero (at offset 31457287)" in err.value.message
    assert not dest.exists()

    upstream.ignore_range = True  # the whole file comes: its hole bytes are checked
    with pytest.raises(TransferError) as err:
        transfer_extents(upstream.url(src.name), dest, size=size, extents=extents, backoff=0.01)
    assert err.value.code == "ChecksumMismatch" and f"(at offset {hole})" in err.value.message
    assert not dest.exists()

    upstream.ignore_range = False  # with Range the byte is never sent: the result is what the catalogue defines
    transfer_extents(upstream.url(src.name), dest, size=size, extents=extents)
    assert sha_of(dest) == expected


def test_upstream_ignoring_range_streams_once(upstream: FlakyUpstream, image: tuple[Path, list[Extent]],
                                              tmp_path: Path) -> None:  # fmt: skip
    src, extents = image
    size = src.stat().st_size
    upstream.ignore_range = True
    upstream.drop_after, upstream.drop_requests = 30 * MiB, 2  # the first whole-file stream drops
    checkpoints: list[int] = []
    result = transfer_extents(upstream.url(src.name), tmp_path / "out", size=size, extents=extents, backoff=0.01,
                              on_checkpoint=checkpoints.append, checkpoint_bytes=MiB, workers=1)  # fmt: skip
    assert result.content_id == map_id(size, extents) and sha_of(tmp_path / "out") == sha_of(src)
    first = f"bytes={extents[0].offset}-{extents[0].end - 1}"
    assert [r.range for r in upstream.requests] == [first, None, None], "one Range, then the stream, restarted"
    assert checkpoints == sorted(checkpoints) and checkpoints[-1] == size
    assert result.allocated_bytes <= 24 * MiB + 128 * 1024


def test_dropped_connection_resumes_inside_the_extent(upstream: FlakyUpstream, image: tuple[Path, list[Extent]],
                                                      tmp_path: Path) -> None:  # fmt: skip
    src, extents = image
    upstream.drop_after, upstream.drop_requests = 3 * MiB, 1
    transfer_extents(upstream.url(src.name), tmp_path / "out", size=src.stat().st_size, extents=extents,
                     workers=1, backoff=0.01)  # fmt: skip
    assert sha_of(tmp_path / "out") == sha_of(src)
    first = extents[0]
    assert [r.range for r in upstream.requests][:2] == [
        f"bytes={first.offset}-{first.end - 1}",
        f"bytes={first.offset + 3 * MiB}-{first.end - 1}",
    ]


def test_resume_mid_way_and_a_damaged_partial_file(upstream: FlakyUpstream, image: tuple[Path, list[Extent]],
                                                   tmp_path: Path) -> None:  # fmt: skip
    src, extents = image
    size, dest, cancel, checkpoints = src.stat().st_size, tmp_path / "out", threading.Event(), list[int]()

    def on_checkpoint(offset: int) -> None:
        checkpoints.append(offset)
        if offset:
            cancel.set()

    upstream.throttle = 0.02  # ~50 MiB/s: the cancel comes while extents are still to do
    with pytest.raises(TransferError) as err:
        transfer_extents(upstream.url(src.name), dest, size=size, extents=extents, workers=1, cancel=cancel,
                         on_checkpoint=on_checkpoint, checkpoint_bytes=MiB)  # fmt: skip
    assert err.value.code == "Canceled" and dest.exists()
    upstream.throttle = 0
    resume = checkpoints[-1]
    assert resume in [e.offset for e in extents[1:]], "at an extent boundary, past the first"
    poke(dest, resume + 5, b"garbage past the checkpoint")
    upstream.requests.clear()
    transfer_extents(upstream.url(src.name), dest, size=size, extents=extents, resume_from=resume)
    assert sha_of(dest) == sha_of(src)
    rest = {f"bytes={e.offset}-{e.end - 1}" for e in extents if e.offset >= resume}
    assert {r.range for r in upstream.requests} == rest, "what was done before the checkpoint is not fetched again"

    poke(dest, extents[0].offset + 10, b"damage")  # below the checkpoint: found by re-hashing, and refetched
    checkpoints.clear()
    result = transfer_extents(str(src), dest, size=size, extents=extents, resume_from=size,
                              on_checkpoint=checkpoints.append)  # fmt: skip
    assert checkpoints[0] == 0 and result.size == size and sha_of(dest) == sha_of(src)


CHILD = """
import json, sys
from pathlib import Path
from altostratus.marketplace.extent_transfer import transfer_extents
from altostratus.marketplace.extents import Extent

def checkpoint(offset):
    with open(sys.argv[3], "a") as f:
        f.write(f"{offset}\\n")

extents = [Extent(**e) for e in json.loads(sys.argv[5])]
transfer_extents(sys.argv[1], Path(sys.argv[2]), size=int(sys.argv[4]), extents=extents, on_checkpoint=checkpoint,
                 checkpoint_bytes=1 << 20)
"""


def test_process_killed_mid_download_resumes(upstream: FlakyUpstream, tmp_path: Path) -> None:
    src = write_image(upstream.root / "big.raw", 96 * MiB, {0: 20 * MiB, 50 * MiB: 40 * MiB})
    extents, size = scan_extents(src), 96 * MiB
    dest, log = tmp_path / "out", tmp_path / "checkpoints"
    upstream.throttle = 0.05  # ~20 MiB/s per connection: the child is mid-transfer for about a second
    args = [upstream.url(src.name), str(dest), str(log), str(size), json.dumps([e.model_dump() for e in extents])]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and any(int(x) >= 16 * MiB for x in log.read_text().split())):
            assert child.poll() is None and time.monotonic() < deadline, "the child never reached 16 MiB"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    resume = int(log.read_text().split()[-1])
    assert 0 < resume < size
    upstream.throttle = 0
    upstream.requests.clear()
    transfer_extents(upstream.url(src.name), dest, size=size, extents=extents, resume_from=resume)
    assert sha_of(dest) == sha_of(src)
    assert all(int(r.range.split("=")[1].split("-")[0]) >= resume for r in upstream.requests if r.range)


def test_size_mismatch_and_missing_sources(upstream: FlakyUpstream, image: tuple[Path, list[Extent]],
                                           tmp_path: Path) -> None:  # fmt: skip
    src, extents = image
    size = src.stat().st_size
    for source in (str(src), upstream.url(src.name)):
        with pytest.raises(TransferError) as err:
            transfer_extents(source, tmp_path / "out", size=size + 1, extents=extents)
        assert err.value.code == "SizeMismatch" and not (tmp_path / "out").exists()
    for source in (str(upstream.root / "missing.raw"), upstream.url("missing.raw")):
        with pytest.raises(TransferError) as err:
            transfer_extents(source, tmp_path / "out", size=size, extents=extents)
        assert err.value.code == "UpstreamNotFound" and not (tmp_path / "out").exists()


def test_too_small_file_system(image: tuple[Path, list[Extent]], tmp_path: Path) -> None:
    src, extents = image
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    try:
        dest = small / "images" / "out.raw"
        with pytest.raises(TransferError) as err:
            transfer_extents(str(src), dest, size=src.stat().st_size, extents=extents)
        assert err.value.code == "InsufficientStorage"
        assert f"Not enough space in {dest.parent}" in err.value.message and "24.0 MiB" in err.value.message
        assert not dest.exists() and os.listdir(dest.parent) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_4gib_image_takes_only_its_data(tmp_path: Path) -> None:
    size, data = 4 * GiB, 200 * MiB
    src = write_image(tmp_path / "big.raw", size, {i * GiB + 4096 * i: 50 * MiB for i in range(4)})
    extents = scan_extents(src)
    assert sum(e.length for e in extents) <= data + 4 * 64 * 1024
    result = transfer_extents(str(src), tmp_path / "out.raw", size=size, extents=extents)
    assert result.size == size and (tmp_path / "out.raw").stat().st_size == size
    assert result.allocated_bytes <= 1.01 * data, result.allocated_bytes
    with open(src, "rb") as a, open(tmp_path / "out.raw", "rb") as b:
        for e in extents:
            a.seek(e.offset)
            b.seek(e.offset)
            assert a.read(e.length) == b.read(e.length)


def test_zero_blocks_inside_extents_stay_holes(tmp_path: Path) -> None:
    """A map joins data runs across short zero gaps (MERGE_GAP); those gaps' 64 KiB blocks are still not stored."""
    runs = {5 * 4096 + 17: 300_000, 700_000: 200_000, 1_400_000: MiB, 3 * MiB: 5 * MiB, 8 * MiB + 900_000: 4096}
    src = write_image(tmp_path / "gappy.raw", 12 * MiB, runs)
    extents = scan_extents(src)
    data = sum(runs.values())
    assert sum(e.length for e in extents) > data + 1_200_000, "the map covers the gaps"
    dest = tmp_path / "out.raw"
    result = transfer_extents(str(src), dest, size=12 * MiB, extents=extents, workers=2)
    assert sha_of(dest) == sha_of(src)
    assert result.allocated_bytes <= data + 2 * 64 * 1024 * len(runs), (result.allocated_bytes, data)
