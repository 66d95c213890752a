"""Deferred durability (durability.py): a download is visible before its blob is synced, and nothing unsynced is
trusted after a crash - a resume re-verifies its checkpoint, a start re-verifies every blob not marked durable.

A crash of the machine cannot be staged here, so its effect on the files is: the test writes what a lost write
leaves (zeros where data was, a short file, a stale byte) into a file whose record says it is not yet durable,
then (re)starts the real server or engine on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from altostratus.blobs.models import Blob, BlobCopy, BlobRef
from altostratus.blobs.store import BlobStore
from altostratus.marketplace import durability
from altostratus.marketplace.catalog import Product, add_payload, write_catalog
from altostratus.marketplace.extent_transfer import transfer_extents
from altostratus.marketplace.extents import scan_extents
from altostratus.marketplace.models import Download, PlatformImage
from altostratus.marketplace.syndication import new_download, promote
from altostratus.store.db import Database, utcnow
from tests.support.flaky_upstream import FlakyUpstream
from tests.support.marketplace import Operator, image_product, make_disk
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


def disk(path: Path, size: int, runs: int, per: int) -> Path:
    step = size // runs
    return make_disk(path, size, [(i * step + 4096, os.urandom(per)) for i in range(runs)])


def sha_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pwrite(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def lose_writes(path: Path, how: str, extents: list[Any]) -> None:
    """What a crash of the machine can leave of writes that were never synced."""
    e = extents[1]
    if how == "zeroed":  # pages never written back: the extent reads as zeros (unwritten blocks)
        pwrite(path, e.offset, bytes(e.length))
    elif how == "torn":  # part of a page written back, part not
        pwrite(path, e.offset + e.length // 2, os.urandom(4096))
    elif how == "truncated":  # the size update lost
        os.truncate(path, e.offset)
    elif how == "stale":  # a block outside the extents holding old bytes
        pwrite(path, e.end + 2 * MiB, b"\x01")
    elif how == "missing":  # the rename or the directory entry lost
        path.unlink()


def db_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{data_dir / 'altostratus.db'}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def set_not_durable(data_dir: Path, sha: str, extents: list[Any]) -> None:
    """The record a kill between promote and the sync leaves (the server is not running)."""
    conn = sqlite3.connect(data_dir / "altostratus.db", timeout=30)
    try:
        with conn:
            conn.execute(
                "UPDATE blobs SET durable = 0, extents = ? WHERE sha256 = ?",
                (json.dumps([e.model_dump() for e in extents]), sha),
            )
            conn.execute("UPDATE blob_copies SET durable = 0 WHERE sha256 = ?", (sha,))  # the node's own copy
    finally:
        conn.close()


def v2_product(root: Path, version: str, image: Path) -> Product:
    return image_product(root, version).model_copy(update={"payload": add_payload(root, image, extents=True)})


# --- start-up re-verification, on the blob store itself -----------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[tuple[Database, BlobStore]]:
    """A blob store and a database of its own, SQLite and PostgreSQL."""
    db = Database(database_url or f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    yield db, BlobStore(tmp_path / "data")
    db.dispose()


def promoted(db: Database, blobs: BlobStore, product: Product, upstream: Path) -> str:
    """A download made visible and not yet synced: the state in which a crash must not lose anything."""
    with db.session() as s:
        d = new_download(s, product.model_dump(exclude_none=True), "unused", None)
    partial = blobs.partial(d.id)
    subprocess.run(["cp", "--sparse=always", str(upstream / product.payload.path), str(partial)], check=True)
    sha = product.payload.content_id
    with db.session() as s:
        promote(s, blobs, d.id, partial, sha, product.payload.size)
        blob = s.get(Blob, sha)
        assert blob is not None and not blob.durable
        assert (blob.extents is not None) == (product.payload.extents is not None)
    return sha


@pytest.mark.parametrize("how", ["intact", "zeroed", "torn", "truncated", "stale", "missing"])
def test_start_up_verifies_blobs_not_yet_durable(store: tuple[Database, BlobStore], tmp_path: Path, how: str) -> None:
    db, blobs = store
    root = tmp_path / "upstream"
    product = v2_product(root, "1.0.0", disk(tmp_path / "d.raw", 64 * MiB, 3, 3 * MiB))
    extents = product.payload.extents or []
    sha = promoted(db, blobs, product, root)
    lose_writes(blobs.path(sha), how, extents)
    durability.start_up(db, blobs)
    with db.session() as s:
        blob, image = s.get(Blob, sha), s.scalars(select(PlatformImage)).one()
        download = s.scalars(select(Download)).one()
        if how == "intact":
            # The map stays with the row: a node that fetches a copy checks it against it (blob_peers.py).
            assert blob is not None and blob.durable and blob.extents == [e.model_dump() for e in extents]
            assert image.provisioning_state == "Succeeded" and download.state == "Succeeded"
            assert sha_of(blobs.path(sha)) == product.payload.sha256
            return
        assert blob is None and s.get(BlobRef, (sha, "platformImage", str(image.id))) is None
        assert image.provisioning_state == "Failed" and download.state == "Failed"
        assert image.error == download.error and download.error is not None
        assert download.error["code"] == "ChecksumMismatch"
        message = download.error["message"]
    assert message.startswith(f"The image file {sha} was not yet known to be on disk when the server stopped")
    assert message.endswith("Download the product again.")
    expected = {
        "zeroed": f"has SHA-256 {hashlib.sha256(bytes(extents[1].length)).hexdigest()}, expected {extents[1].sha256}",
        "torn": f"expected {extents[1].sha256} (at offset {extents[1].offset})",
        "truncated": f"the file has {extents[1].offset} bytes, expected {64 * MiB}",
        "stale": f"a byte where the catalogue declares a hole is not zero (at offset {extents[1].end + 2 * MiB})",
        "missing": "is missing. The downloaded data was lost.",
    }[how]
    assert expected in message, message
    assert not blobs.path(sha).exists() and os.listdir(blobs.blob_dir) == []


def test_a_node_judges_only_its_own_copies(store: tuple[Database, BlobStore], tmp_path: Path) -> None:
    """Several nodes (blob_copies): a bad copy of this store goes alone while another store holds one; a blob
    this store never had is left alone; the sweep drops this store's rows of durable copies whose file is gone
    and never another store's rows."""
    db, blobs = store
    root = tmp_path / "upstream"
    product = v2_product(root, "1.0.0", disk(tmp_path / "d.raw", 64 * MiB, 3, 3 * MiB))
    sha = promoted(db, blobs, product, root)
    theirs = "0" * 64
    with db.session() as s:
        s.add(BlobCopy(sha256=sha, store_id="other-node", durable=True))
        s.add(Blob(sha256=theirs, size=1, allocated=0, created_at=utcnow(), durable=False))
        s.add(BlobCopy(sha256=theirs, store_id="other-node", durable=False))
    lose_writes(blobs.path(sha), "zeroed", product.payload.extents or [])
    durability.start_up(db, blobs)
    with db.session() as s:
        assert s.get(Blob, sha) is not None and s.get(Blob, theirs) is not None
        assert s.scalars(select(PlatformImage)).one().provisioning_state == "Succeeded"
        copies = {(c.sha256, c.store_id) for c in s.scalars(select(BlobCopy))}
    assert copies == {(sha, "other-node"), (theirs, "other-node")}
    assert not blobs.path(sha).exists()

    # A durable copy of this store whose file went: its row goes at the next start; the others' rows stay.
    with db.session() as s:
        s.add(BlobCopy(sha256=theirs, store_id=blobs.id, durable=True))
    durability.start_up(db, blobs)
    with db.session() as s:
        copies = {(c.sha256, c.store_id) for c in s.scalars(select(BlobCopy))}
    assert copies == {(sha, "other-node"), (theirs, "other-node")}


def test_start_up_verifies_a_format_1_blob_by_its_sha256(store: tuple[Database, BlobStore], tmp_path: Path) -> None:
    db, blobs = store
    root = tmp_path / "upstream"
    good, bad = image_product(root, "1.0.0", size=32 * MiB), image_product(root, "2.0.0", size=32 * MiB)
    bad_sha, good_sha = promoted(db, blobs, bad, root), promoted(db, blobs, good, root)  # newest first: both kept
    pwrite(blobs.path(bad_sha), 16 * MiB + 100, b"\0\0\0\0")  # inside the data at size // 2
    durability.start_up(db, blobs)
    with db.session() as s:
        kept = s.get(Blob, good_sha)
        lost = s.scalars(select(Download).where(Download.sha256 == bad_sha)).one()
        assert kept is not None and kept.durable and s.get(Blob, bad_sha) is None
        assert lost.state == "Failed" and lost.error is not None
        assert f"expected {32 * MiB} bytes, {bad_sha}" in lost.error["message"]
    assert os.listdir(blobs.blob_dir) == [good_sha]


# --- the engine: checkpoints are not synced, so a resume must not trust them -----------------------------------

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


@pytest.mark.parametrize("how", ["zeroed", "truncated", "stale"])
def test_resume_refetches_what_a_crash_lost_below_the_checkpoint(tmp_path: Path, how: str) -> None:
    root = tmp_path / "upstream"
    root.mkdir()
    src = disk(root / "big.raw", 96 * MiB, 6, 8 * MiB)
    extents, size = scan_extents(src), 96 * MiB
    dest, log = tmp_path / "out", tmp_path / "checkpoints"
    with FlakyUpstream(root) as upstream:
        upstream.throttle = 0.05  # ~20 MiB/s per connection: killed mid-transfer
        args = [upstream.url(src.name), str(dest), str(log), str(size), json.dumps([e.model_dump() for e in extents])]
        child = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT)
        try:
            deadline = time.monotonic() + 30
            while not (log.exists() and any(int(x) >= extents[3].offset for x in log.read_text().split())):
                assert child.poll() is None and time.monotonic() < deadline, "the child never reached extent 3"
                time.sleep(0.01)
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(30)
        resume = int(log.read_text().split()[-1])
        assert extents[3].offset <= resume < size
        lose_writes(dest, how, extents)  # below the checkpoint: the record says more than the disk holds
        upstream.throttle = 0
        upstream.requests.clear()
        checkpoints: list[int] = []
        transfer_extents(upstream.url(src.name), dest, size=size, extents=extents, resume_from=resume,
                         on_checkpoint=checkpoints.append)  # fmt: skip
        assert sha_of(dest) == sha_of(src)
        assert checkpoints[0] == 0, "the caller is told first that its checkpoint did not hold"
        ranges = {r.range for r in upstream.requests}
        assert f"bytes={extents[0].offset}-{extents[0].end - 1}" in ranges, "started over from the first extent"


# --- through the server --------------------------------------------------------------------------------------------


def start(tmp_path: Path, upstream: Path) -> tuple[AltoServer, Operator]:
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(upstream))).start()
    return server, Operator(server)


def deploys(server: AltoServer, name: str) -> dict[str, Any]:
    """PUT a scale set of one instance from the image (latest version): "Succeeded", or the error."""
    tenant = Tenant(server, f"rg-{name}")
    try:
        r = tenant.http.put(f"{tenant.base}/{name}?{COMPUTE}", json=vmss_body(1))
        if r.status_code >= 400:
            return dict(r.json()["error"])
        status = tenant.wait(r)
        return {"status": status["status"], **status.get("error", {})}
    finally:
        tenant.http.close()


def test_server_killed_right_after_the_download_is_visible(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    product = v2_product(root, "1.0.0", disk(tmp_path / "d.raw", 256 * MiB, 4, 24 * MiB))
    extents = product.payload.extents or []
    sha = product.payload.content_id
    write_catalog(root, "durability", [product])
    server, op = start(tmp_path, root)
    try:
        r = op.start_download(product.name)
        deadline = time.monotonic() + 60
        while not db_rows(server.data_dir, f"SELECT durable FROM blobs WHERE sha256 = '{sha}'"):
            assert time.monotonic() < deadline, "the image never became visible"
            time.sleep(0.002)
        server.kill()  # as soon as the blob row is committed: visible, the sync maybe not done
        [(durable, stored_map)] = db_rows(server.data_dir, f"SELECT durable, extents FROM blobs WHERE sha256 = '{sha}'")
        if durable:  # the sync beat the kill: put back the record the kill would have left, to test that path
            set_not_durable(server.data_dir, sha, extents)
        else:
            assert json.loads(stored_map) == [e.model_dump() for e in extents]
        server.start()
        op.http = server.client("operator")
        [(durable, stored_map)] = db_rows(server.data_dir, f"SELECT durable, extents FROM blobs WHERE sha256 = '{sha}'")
        assert durable == 1 and json.loads(stored_map) == [e.model_dump() for e in extents]  # the map is kept
        assert db_rows(server.data_dir, f"SELECT durable FROM blob_copies WHERE sha256 = '{sha}'") == [(1,)]
        assert op.wait(r)["status"] == "Succeeded"
        image = op.http.get(op.image_url("1.0.0")).json()["properties"]
        assert image["provisioningState"] == "Succeeded" and image["sha256"] == sha
        assert sha_of(server.data_dir / "blobs" / sha) == product.payload.sha256
        assert deploys(server, "after-kill")["status"] == "Succeeded"
        assert f"blob {sha} verified again after a restart and synced" in server.log_path.read_text()
    finally:
        op.http.close()
        server.close()


def test_lost_writes_in_a_visible_blob_fail_it_at_start_up(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    product = v2_product(root, "1.0.0", disk(tmp_path / "d.raw", 128 * MiB, 4, 4 * MiB))
    extents = product.payload.extents or []
    sha = product.payload.content_id
    write_catalog(root, "durability", [product])
    server, op = start(tmp_path, root)
    try:
        assert op.download(product.name)["status"] == "Succeeded"
        server.kill()
        set_not_durable(server.data_dir, sha, extents)  # killed between promote and sync...
        lose_writes(server.data_dir / "blobs" / sha, "zeroed", extents)  # ...and the machine lost an extent
        server.start()
        op.http = server.client("operator")
        assert not (server.data_dir / "blobs" / sha).exists() and db_rows(server.data_dir, "SELECT * FROM blobs") == []
        [download] = op.downloaded()
        assert download["properties"]["provisioningState"] == "Failed"
        error = download["properties"]["error"]
        assert error["code"] == "ChecksumMismatch" and "not yet known to be on disk" in error["message"]
        assert f"expected {extents[1].sha256} (at offset {extents[1].offset})" in error["message"]
        image = op.http.get(op.image_url("1.0.0")).json()["properties"]
        assert image["provisioningState"] == "Failed" and image["error"] == error
        assert op.image_versions() == []
        refused = deploys(server, "from-lost")
        assert refused["code"] == "PlatformImageNotFound", refused

        assert op.download(product.name)["status"] == "Succeeded", "the operator downloads it again"
        assert db_rows(server.data_dir, f"SELECT durable FROM blobs WHERE sha256 = '{sha}'") == [(1,)]
        assert deploys(server, "from-new")["status"] == "Succeeded"
    finally:
        op.http.close()
        server.close()


def test_server_killed_mid_download_with_lost_writes_below_the_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    root.mkdir()
    with FlakyUpstream(root) as flaky:
        local = add_payload(root, disk(tmp_path / "d.raw", 128 * MiB, 6, 14 * MiB), extents=True)
        product = image_product(root, "1.0.0").model_copy(
            update={"payload": local.model_copy(update={"path": flaky.url(local.path)})}
        )
        extents = local.extents or []
        write_catalog(tmp_path / "catalog", "slow", [product])
        flaky.throttle = 0.04
        server, op = start(tmp_path, tmp_path / "catalog")
        try:
            r = op.start_download(product.name)
            deadline = time.monotonic() + 60
            while True:
                rows = db_rows(server.data_dir, "SELECT id, bytes_done FROM downloads")
                if rows and rows[0][1] >= extents[2].offset:
                    break
                assert time.monotonic() < deadline, rows
                time.sleep(0.02)
            server.kill()
            [(download_id, checkpoint)] = db_rows(server.data_dir, "SELECT id, bytes_done FROM downloads")
            partial = server.data_dir / "downloads" / f"{download_id}.part"
            lose_writes(partial, "zeroed", extents)  # extent 1, below the checkpoint: the record claims it
            assert extents[1].end <= checkpoint
            flaky.throttle = 0
            before = len(flaky.requests)
            server.start()
            op.http = server.client("operator")
            assert op.wait(r)["status"] == "Succeeded"
            again = {q.range for q in flaky.requests[before:]}
            assert f"bytes={extents[0].offset}-{extents[0].end - 1}" in again, "refetched from the first extent"
            blob = server.data_dir / "blobs" / product.payload.content_id
            assert sha_of(blob) == product.payload.sha256
            assert db_rows(server.data_dir, "SELECT durable FROM blobs") == [(1,)]
        finally:
            op.http.close()
            server.close()
