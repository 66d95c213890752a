"""The marketplace download engine against a real (local, fault-injecting) HTTP upstream and local files."""

from __future__ import annotations

import ast
import hashlib
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

from altostratus.marketplace.sparse_files import allocated_bytes
from altostratus.marketplace.transfer import transfer
from altostratus.marketplace.transfer_job import TransferError
from altostratus.pki import ensure_server_cert
from tests.support.flaky_upstream import FlakyUpstream

MiB = 1 << 20
GiB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]


def make_sparse(path: Path, size: int, extents: dict[int, int], seed: int = 1) -> str:
    """A file of ``size`` bytes, random data at each {offset: length}, holes elsewhere; returns its sha256."""
    rng = random.Random(seed)
    sha = hashlib.sha256()
    zeros = bytes(4 * MiB)
    pos = 0
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length in sorted(extents.items()):
            pos = _hash_zeros(sha, zeros, offset - pos) + pos
            data = rng.randbytes(length)
            f.seek(offset)
            f.write(data)
            sha.update(data)
            pos = offset + length
    _hash_zeros(sha, zeros, size - pos)
    return sha.hexdigest()


def _hash_zeros(sha: hashlib._Hash, zeros: bytes, n: int) -> int:
    view = memoryview(zeros)
    left = n
    while left > 0:
        sha.update(view[: min(left, len(zeros))])
        left -= len(zeros)
    return n


def sha_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[FlakyUpstream]:
    root = tmp_path / "upstream"
    root.mkdir()
    with FlakyUpstream(root) as up:
        yield up


@pytest.fixture
def image(upstream: FlakyUpstream) -> tuple[str, str, int]:
    """A 24 MiB image (data, a hole, data) on the upstream: (name, sha256, size)."""
    size = 24 * MiB
    return "image.raw", make_sparse(upstream.root / "image.raw", size, {0: 7 * MiB + 123, 15 * MiB: 9 * MiB}), size


def test_http_path_and_file_url(upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path) -> None:
    name, sha, size = image
    src = upstream.root / name
    for i, source in enumerate((upstream.url(name), str(src), src.as_uri())):
        dest = tmp_path / f"out{i}"
        progress: list[tuple[int, int | None]] = []
        checkpoints: list[int] = []
        result = transfer(
            source,
            dest,
            expected_size=size,
            expected_sha256=sha,
            on_progress=lambda done, total: progress.append((done, total)),  # noqa: B023 - used within the loop
            on_checkpoint=checkpoints.append,
        )
        assert (result.size, result.sha256) == (size, sha)
        assert sha_of(dest) == sha and dest.stat().st_size == size
        assert progress[-1] == (size, size) and progress == sorted(progress)
        assert checkpoints[-1] == size and checkpoints == sorted(checkpoints)
        assert result.allocated_bytes == allocated_bytes(dest) <= 17 * MiB  # the 8 MiB hole stayed a hole


def test_sparse_4gib_local_image_takes_only_its_data(tmp_path: Path) -> None:
    size, data = 4 * GiB, 200 * MiB
    extents = {0: 50 * MiB, GiB + 4096: 50 * MiB, 2 * GiB + 12345: 50 * MiB, 4 * GiB - 50 * MiB: 50 * MiB}
    src = tmp_path / "big.raw"
    sha = make_sparse(src, size, extents)
    dest = tmp_path / "out.raw"
    started = time.monotonic()
    result = transfer(str(src), dest, expected_size=size, expected_sha256=sha)
    assert (result.size, result.sha256) == (size, sha)
    assert dest.stat().st_size == size
    assert result.allocated_bytes <= 1.1 * data, result.allocated_bytes
    with open(src, "rb") as a, open(dest, "rb") as b:
        for offset, length in extents.items():
            a.seek(offset)
            b.seek(offset)
            assert a.read(length) == b.read(length)
    assert time.monotonic() - started < 30


def test_sparse_over_http(upstream: FlakyUpstream, tmp_path: Path) -> None:
    size = 256 * MiB
    extents = {3 * MiB: 8 * MiB, 100 * MiB + 777: 8 * MiB, 250 * MiB: 6 * MiB}
    sha = make_sparse(upstream.root / "sparse.raw", size, extents)
    dest = tmp_path / "out.raw"
    result = transfer(upstream.url("sparse.raw"), dest, expected_size=size, expected_sha256=sha)
    assert result.sha256 == sha == sha_of(dest) and dest.stat().st_size == size
    assert result.allocated_bytes <= 1.1 * 22 * MiB


def test_dropped_connection_resumes_with_range(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    upstream.drop_after, upstream.drop_requests = 3 * MiB, 2
    result = transfer(upstream.url(name), tmp_path / "out", expected_size=size, expected_sha256=sha, backoff=0.01)
    assert result.sha256 == sha
    assert [(r.range, r.status) for r in upstream.requests] == [
        (None, 200),
        (f"bytes={3 * MiB}-", 206),
        (f"bytes={6 * MiB}-", 206),
    ]


def test_503_is_retried(upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path) -> None:
    name, sha, size = image
    upstream.fail_requests = 2
    result = transfer(upstream.url(name), tmp_path / "out", expected_size=size, expected_sha256=sha, backoff=0.01)
    assert result.sha256 == sha
    assert [r.status for r in upstream.requests] == [503, 503, 200]


def test_upstream_ignoring_range_restarts_from_zero(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    upstream.ignore_range = True
    upstream.drop_after, upstream.drop_requests = 5 * MiB, 1
    checkpoints: list[int] = []
    result = transfer(
        upstream.url(name),
        tmp_path / "out",
        expected_size=size,
        expected_sha256=sha,
        backoff=0.01,
        on_checkpoint=checkpoints.append,
        checkpoint_bytes=4 * MiB,
    )
    assert result.sha256 == sha and sha_of(tmp_path / "out") == sha
    assert [(r.range, r.status) for r in upstream.requests] == [(None, 200), (f"bytes={5 * MiB}-", 200)]
    assert checkpoints[:3] == [0, 4 * MiB, 0]  # the caller is told its checkpoint no longer holds


def test_retries_give_up_and_leave_nothing(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, _, size = image
    upstream.fail_requests = 100
    dest = tmp_path / "out"
    with pytest.raises(TransferError) as err:
        transfer(upstream.url(name), dest, expected_size=size, expected_sha256=None, retries=2, backoff=0.01)
    assert err.value.code == "UpstreamError" and "after 2 retries" in err.value.message
    assert len(upstream.requests) == 3 and not dest.exists()


def test_checksum_mismatch_fails_and_leaves_nothing(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    upstream.corrupt_offset = 20 * MiB
    dest = tmp_path / "out"
    with pytest.raises(TransferError) as err:
        transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha)
    assert err.value.code == "ChecksumMismatch"
    assert f"expected {sha}" in err.value.message and "got " in err.value.message
    assert not dest.exists() and os.listdir(tmp_path) == ["upstream"]


def test_size_mismatch_fails_before_downloading(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    for source in (upstream.url(name), str(upstream.root / name)):
        with pytest.raises(TransferError) as err:
            transfer(source, tmp_path / "out", expected_size=size + 1, expected_sha256=sha)
        assert err.value.code == "SizeMismatch" and not (tmp_path / "out").exists()


def test_resume_from_checkpoint_after_simulated_crash(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    dest, cancel, checkpoints = tmp_path / "out", threading.Event(), []

    def on_checkpoint(offset: int) -> None:
        checkpoints.append(offset)
        if offset:
            cancel.set()

    with pytest.raises(TransferError) as err:
        transfer(
            upstream.url(name),
            dest,
            expected_size=size,
            expected_sha256=sha,
            on_checkpoint=on_checkpoint,
            cancel=cancel,
            checkpoint_bytes=4 * MiB,
        )
    assert err.value.code == "Canceled" and dest.exists()
    resume = checkpoints[1]
    assert 0 < resume < size
    with open(dest, "r+b") as f:  # what a crash may leave past the durable offset: garbage
        f.seek(resume)
        f.write(b"\xff" * MiB)
    result = transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha, resume_from=resume)
    assert result.sha256 == sha == sha_of(dest)
    assert upstream.requests[-1].range == f"bytes={resume}-"


def test_resume_of_a_complete_file_and_of_a_local_source(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    dest = tmp_path / "out"
    transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha)
    result = transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha, resume_from=size)
    assert result.sha256 == sha and upstream.requests[-1].status == 416
    with open(dest, "r+b") as f:
        f.truncate(10 * MiB)
    result = transfer(str(upstream.root / name), dest, expected_size=size, expected_sha256=sha, resume_from=10 * MiB)
    assert result.sha256 == sha == sha_of(dest)
    # A stale resume offset beyond what the file holds starts over instead of trusting it.
    dest.unlink()
    result = transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha, resume_from=12 * MiB)
    assert result.sha256 == sha and upstream.requests[-1].range is None


CHILD = """
import sys
from pathlib import Path
from altostratus.marketplace.transfer import transfer

def checkpoint(offset):
    with open(sys.argv[3], "a") as f:
        f.write(f"{offset}\\n")

transfer(sys.argv[1], Path(sys.argv[2]), expected_size=None, expected_sha256=None, on_checkpoint=checkpoint,
         checkpoint_bytes=4 << 20)
"""


def test_process_killed_mid_download_resumes(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    dest, log = tmp_path / "out", tmp_path / "checkpoints"
    upstream.throttle = 0.05  # ~20 MiB/s: the child is mid-transfer for about a second
    child = subprocess.Popen([sys.executable, "-c", CHILD, upstream.url(name), str(dest), str(log)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and any(int(x) >= 8 * MiB for x in log.read_text().split())):
            assert child.poll() is None and time.monotonic() < deadline, "the child never reached 8 MiB"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    resume = int(log.read_text().split()[-1])
    assert 0 < resume < size
    upstream.throttle = 0
    result = transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha, resume_from=resume)
    assert result.sha256 == sha == sha_of(dest)
    assert upstream.requests[-1].range == f"bytes={resume}-"


def test_not_found_fails_at_once(upstream: FlakyUpstream, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    started = time.monotonic()
    for source in (upstream.url("missing.raw"), str(upstream.root / "missing.raw")):
        with pytest.raises(TransferError) as err:
            transfer(source, dest, expected_size=None, expected_sha256=None)
        assert err.value.code == "UpstreamNotFound" and not dest.exists()
    assert time.monotonic() - started < 1 and len(upstream.requests) == 1


def test_secrets_in_urls_stay_out_of_messages(upstream: FlakyUpstream, tmp_path: Path) -> None:
    with pytest.raises(TransferError) as err:
        transfer(upstream.url("missing.raw?sig=SECRET"), tmp_path / "out", expected_size=None, expected_sha256=None)
    assert "SECRET" not in err.value.message and "/missing.raw" in err.value.message


def test_too_small_file_system_fails_with_a_clear_message(upstream: FlakyUpstream, tmp_path: Path) -> None:
    size = 32 * MiB
    sha = make_sparse(upstream.root / "big.raw", size, {0: size})
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)], check=True)
    try:
        dest = small / "images" / "out.raw"
        with pytest.raises(TransferError) as err:
            transfer(upstream.url("big.raw"), dest, expected_size=size, expected_sha256=sha)
        assert err.value.code == "InsufficientStorage"
        assert f"Not enough space in {dest.parent}" in err.value.message and str(size) in err.value.message
        assert not dest.exists() and os.listdir(dest.parent) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_https_with_a_ca_bundle_and_untrusted_certificates(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    cert, key = ensure_server_cert(pki)
    root = tmp_path / "upstream"
    root.mkdir()
    sha = make_sparse(root / "image.raw", 8 * MiB, {MiB: 3 * MiB})
    with FlakyUpstream(root, tls=(cert, key)) as up:
        result = transfer(up.url("image.raw"), tmp_path / "out", expected_size=None, expected_sha256=sha,
                          verify=str(pki / "ca.pem"))  # fmt: skip
        assert result.sha256 == sha
        started = time.monotonic()
        with pytest.raises(TransferError) as err:  # the system trust store does not know our CA: no retrying that
            transfer(up.url("image.raw"), tmp_path / "out2", expected_size=None, expected_sha256=sha)
        assert err.value.code == "UpstreamError" and "not trusted" in err.value.message
        assert time.monotonic() - started < 1 and not (tmp_path / "out2").exists()


def test_cancel_interrupts_a_backoff_and_keeps_the_partial_file(
    upstream: FlakyUpstream, image: tuple[str, str, int], tmp_path: Path
) -> None:
    name, sha, size = image
    upstream.drop_after, upstream.drop_requests = 5 * MiB, 1
    cancel, checkpoints = threading.Event(), list[int]()
    dest = tmp_path / "out"
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(TransferError) as err:
        transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha, backoff=60, cancel=cancel,
                 on_checkpoint=checkpoints.append)  # fmt: skip
    assert err.value.code == "Canceled" and time.monotonic() - started < 5
    assert checkpoints[-1] == 5 * MiB and dest.stat().st_size == 5 * MiB
    result = transfer(upstream.url(name), dest, expected_size=size, expected_sha256=sha, resume_from=5 * MiB)
    assert result.sha256 == sha and upstream.requests[-1].range == f"bytes={5 * MiB}-"


def test_marketplace_modules_share_only_public_names_and_import_no_circle() -> None:
    """Issue 11: the engines' toolkit is imported by public names (from src and tests), and no marketplace module
    imports, even lazily, one that imports it back."""
    private, imports = [], dict[str, set[str]]()
    for path in [*(ROOT / "src" / "altostratus").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("altostratus.marketplace."):
                private += [f"{path.name}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
                if path.parent.name == "marketplace":
                    imports.setdefault(path.stem, set()).add(str(node.module).rsplit(".", 1)[1])
    assert private == []
    assert {"transfer", "extent_transfer", "extent_http", "extent_run"} <= imports.keys()  # the scan saw them
    for start in imports:
        reached, todo = set[str](), list(imports[start])
        while todo:
            module = todo.pop()
            assert module != start, f"{start} is imported back by a module that it imports"
            if module not in reached:
                reached.add(module)
                todo += imports.get(module, ())
