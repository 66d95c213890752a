"""Blobs across control-plane nodes (issue 18): two real `alto up` nodes on one PostgreSQL database, an image
downloaded through node A only.

- Restarting node B while A's copy is not yet durable leaves the blob alone (B never had it: before, B's start-up
  check found no file in its own data dir and discarded the blob, failing the image, for every node).
- Node B fetches the blob from A: the unit call of the fetch path (a copy byte for byte, holes kept, recorded as
  B's copy), its refusals (no copy anywhere, a tenant asking the route), and end to end through B's controller
  creating a scale set's instances while A runs no controllers.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from altostratus.arm.auth import new_signing_key
from altostratus.blobs.models import Blob, BlobCopy, BlobStoreNode
from altostratus.blobs.store import BlobStore, store_id
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.hypervisors.base import DriverError
from altostratus.marketplace.blob_peers import PATH, PeerFetcher, frames, write_frames
from altostratus.marketplace.extents import map_id, scan_extents
from altostratus.marketplace.models import PlatformImage
from altostratus.marketplace.transfer_job import TransferError
from altostratus.store.db import Database
from altostratus.store.models import Setting
from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, make_disk, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

ARGS = ("--sim-boot-seconds", "0.2", "--no-portal")
ADMIN = "api-version=2015-12-01-preview"


def sha_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _copies(db: Database, sha: str) -> dict[str, bool]:
    with db.session(readonly=True) as s:
        return {c.store_id: c.durable for c in s.scalars(select(BlobCopy).where(BlobCopy.sha256 == sha))}


def hide_copies(db: Database, sha: str, keep: str) -> None:
    """As if every node holding the blob had gone: only ``keep``'s copy is left, pointing at a store no node
    serves (`BlobCopy.store_id` set back to ``keep`` restores it)."""
    with db.session() as s:
        s.execute(delete(BlobCopy).where(BlobCopy.sha256 == sha, BlobCopy.store_id != keep))
        s.execute(update(BlobCopy).where(BlobCopy.sha256 == sha).values(store_id="gone"))


def _fetcher(db: Database, data_dir: Path, ca: Path) -> PeerFetcher:
    """The fetch path as a node's assembly builds it (app.py), for a store in ``data_dir``."""
    with db.session(readonly=True) as s:
        key, tenant = (s.get(Setting, k) for k in ("signing_key", "tenant_id"))
    assert key is not None and tenant is not None
    blobs = BlobStore(data_dir)
    return PeerFetcher(db, blobs, key.value, tenant.value, ca)


@pytest.mark.postgres
def test_a_blob_downloaded_on_one_node_reaches_another(tmp_path: Path, postgres_url: str) -> None:
    counter = itertools.count()
    a = AltoServer(tmp_path / "a", postgres_url, extra_args=(*ARGS, "--upstream", str(make_catalog(tmp_path / "up"))))
    servers = [a]
    db = Database(postgres_url)
    try:
        a.start()
        op = Operator(a)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        sha = op.http.get(op.image_url("1.0.0")).json()["properties"]["sha256"]
        r = op.http.post(
            f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/nodes/joinToken?{ADMIN}"
        )
        assert r.status_code == 200, r.text
        op.http.close()
        b = AltoServer(tmp_path / "b", extra_args=ARGS)
        servers.append(b)
        # B starts without controllers: a controller node copies every image at once (blob_replication.py), and
        # this test first looks at a node that has none.
        b.start("--join-token", r.json()["token"], "--no-controllers")
        a_store, b_store = store_id(a.data_dir), store_id(b.data_dir)
        assert a_store != b_store
        assert _copies(db, sha) == {a_store: True}
        assert not (b.data_dir / "blobs" / sha).exists()

        # --- restarting B while A's copy is not yet known to be on disk: B judges only its own copies --------------
        with db.session() as s:
            s.execute(update(Blob).where(Blob.sha256 == sha).values(durable=False))
            s.execute(update(BlobCopy).where(BlobCopy.sha256 == sha).values(durable=False))
        b.restart("--no-controllers")
        with db.session(readonly=True) as s:
            assert s.get(Blob, sha) is not None, "B's restart discarded A's blob"
            image = s.scalars(select(PlatformImage).where(PlatformImage.blob_sha256 == sha)).one()
            assert image.provisioning_state == "Succeeded", image.error
        assert _copies(db, sha) == {a_store: False}
        assert (a.data_dir / "blobs" / sha).exists(), "A's intact copy is kept"
        assert f"blob {sha} discarded" not in b.log_path.read_text()

        # A restarts without controllers (an API-only node that still serves its blobs): its own start-up
        # verifies its copy, syncs it and marks it, as on one node.
        a.restart("--no-controllers")
        assert _copies(db, sha) == {a_store: True}
        with db.session(readonly=True) as s:
            assert s.get(Blob, sha).durable  # type: ignore[union-attr]
            endpoints = {n.id: n.endpoint for n in s.scalars(select(BlobStoreNode))}
        assert endpoints == {a_store: a.endpoint, b_store: b.endpoint}

        # --- the fetch path, called as B's controller calls it, for a third store (a node that just joined) ------
        c_dir = tmp_path / f"c{next(counter)}"
        fetcher = _fetcher(db, c_dir, a.data_dir / "ca.pem")
        fetcher.blobs.fetcher = fetcher
        got = fetcher.blobs.ensure_local(sha)
        source = a.data_dir / "blobs" / sha
        assert got == c_dir / "blobs" / sha and sha_of(got) == sha_of(source) == sha
        assert got.stat().st_size == source.stat().st_size
        # Only the data travelled and was written: the 8 MiB image holds ~70 KiB of data.
        assert got.stat().st_blocks * 512 <= source.stat().st_blocks * 512 + (128 << 10)
        assert _copies(db, sha) == {a_store: True, fetcher.blobs.id: True}
        assert list((c_dir / "downloads").iterdir()) == []

        # Nobody holds a copy: a retryable error that says so, and nothing written.
        hide_copies(db, sha, a_store)
        lone = _fetcher(db, tmp_path / "d", a.data_dir / "ca.pem")
        with pytest.raises(DriverError) as err:
            lone(sha)
        assert err.value.retryable and err.value.code == "ImageNotAvailable"
        assert "on no node's disk" in err.value.message and not lone.blobs.path(sha).exists()

        # The route is the operator's: a tenant gets 403, an unknown blob is 404 BlobNotFound.
        with a.client() as tenant_http:
            assert tenant_http.get(PATH.format(blobId=sha)).status_code == 403
        with a.client("operator") as operator_http:
            missing = operator_http.get(PATH.format(blobId="0" * 64))
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "BlobNotFound", missing.text

        # --- end to end: B's controller creates instances of A's image, fetching the blob on demand ----------------
        # While no node can give the blob (still hidden), the instances wait and say why; once A's copy is known
        # again, B fetches it and creates them.
        b.restart()  # now with its controllers (and its replicator, which finds no copy to take either)
        tenant = Tenant(b, unique("peer"))
        put = tenant.http.put(f"{tenant.base}/p1?{COMPUTE}", json=vmss_body(2, prefix="p1"))
        assert put.status_code == 201, put.text
        p1 = select(ScaleSet.id).where(ScaleSet.name == "p1").scalar_subquery()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with db.session(readonly=True) as s:
                errors = list(s.scalars(select(ScaleSetVm.error).where(ScaleSetVm.scale_set_id == p1)))
            if errors and all(e and e["code"] == "ImageNotAvailable" for e in errors):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the instances do not say why they wait: {errors}")
        assert "The image is not on this node yet" in errors[0]["message"] and "retried in" in errors[0]["message"]
        with db.session() as s:
            s.execute(update(BlobCopy).where(BlobCopy.sha256 == sha).values(store_id=a_store))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db.session(readonly=True) as s:
                ss = s.scalars(select(ScaleSet).where(ScaleSet.name == "p1")).one()
                states = list(s.scalars(select(ScaleSetVm.state).where(ScaleSetVm.scale_set_id == ss.id)))
                if ss.observed_generation >= ss.generation and states == ["Running", "Running"]:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"the set did not converge on B: {states}")
        assert sha_of(b.data_dir / "blobs" / sha) == sha
        assert _copies(db, sha)[b_store] is True
        assert f"blob {sha} fetched from {a.endpoint}" in b.log_path.read_text()
        tenant.http.close()
    finally:
        for server in servers:
            server.close()
        db.dispose()


def test_the_route_streams_only_data(tmp_path: Path) -> None:
    """The sparse stream on its own (one node, SQLite): frames cover the data regions and nothing else."""
    server = AltoServer(tmp_path / "one", extra_args=(*ARGS, "--upstream", str(make_catalog(tmp_path / "up"))))
    try:
        server.start()
        op = Operator(server)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        sha = op.http.get(op.image_url("1.0.0")).json()["properties"]["sha256"]
        r = op.http.get(PATH.format(blobId=sha))
        assert r.status_code == 200, r.text
        size = int(r.headers["x-alto-blob-size"])
        assert size == 8 << 20 and len(r.content) < 256 << 10
        op.http.close()
    finally:
        server.close()


# --- the stream and the check, without servers ---------------------------------------------------------------------


def _stream(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    return b"".join(frames(fd, path.stat().st_size))  # frames closes fd


def _received(tmp_path: Path, body: bytes, size: int, chunk: int) -> Path:
    out = tmp_path / f"out-{chunk}"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        write_frames(fd, iter([body[i : i + chunk] for i in range(0, len(body), chunk)]), size)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return out


@pytest.mark.parametrize("chunk", [1, 7, 16, 65536, 1 << 30])
def test_frames_carry_data_only_and_rebuild_the_file(tmp_path: Path, chunk: int) -> None:
    size = 8 << 20
    src = make_disk(tmp_path / "src.raw", size, [(4096, b"abc" * 5000), (size // 2, os.urandom(70000))])
    body = _stream(src)
    assert len(body) < 256 << 10  # the holes did not travel
    out = _received(tmp_path, body, size, chunk)
    assert sha_of(out) == sha_of(src) and out.stat().st_size == size
    assert out.stat().st_blocks * 512 < 1 << 20  # and are holes on arrival


def test_a_cut_or_overlong_stream_is_refused(tmp_path: Path) -> None:
    size = 1 << 20
    src = make_disk(tmp_path / "src.raw", size, [(0, b"x" * 1000)])
    body = _stream(src)
    with pytest.raises(ValueError, match="middle of a frame"):
        _received(tmp_path, body[:-1], size, 100)
    with pytest.raises(ValueError, match="beyond the size"):
        _received(tmp_path, body, 500, 100)


def test_a_fetched_copy_is_checked_against_its_name(tmp_path: Path) -> None:
    """Both kinds of id: a whole-content SHA-256 and an extent map's id (with the map of the row, or the copy's own
    when the row kept none); a copy that differs by one byte is refused."""
    size = 4 << 20
    good = make_disk(tmp_path / "good.raw", size, [(65536, os.urandom(200000))])
    extents = scan_extents(good)
    mid = map_id(size, extents)
    check = PeerFetcher._verify
    check(good, sha_of(good), size, None)
    check(good, mid, size, extents)
    check(good, mid, size, None)
    bad = tmp_path / "bad.raw"
    bad.write_bytes(good.read_bytes())
    with bad.open("r+b") as f:
        f.seek(65536 + 1000)
        f.write(b"\xff")
    for sha, ext in ((sha_of(good), None), (mid, extents), (mid, None)):
        with pytest.raises(TransferError) as err:
            check(bad, sha, size, ext)
        assert err.value.code == "ChecksumMismatch"


def test_concurrent_needs_of_one_blob_fetch_once(tmp_path: Path) -> None:
    """Every instance of a new set needs the image at once (the driver pool's threads): one fetch serves them."""
    fetched: list[str] = []

    class Counting(PeerFetcher):
        def _fetch(self, sha: str) -> None:
            fetched.append(sha)
            time.sleep(0.2)  # long enough for every other thread to arrive meanwhile
            self.blobs.path(sha).write_bytes(b"data")

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        blobs = BlobStore(tmp_path / "data")
        blobs.fetcher = Counting(db, blobs, new_signing_key(), "tenant", tmp_path / "ca.pem")
        with ThreadPoolExecutor(8) as pool:
            paths = list(pool.map(blobs.ensure_local, ["a" * 64] * 8 + ["b" * 64] * 8))
        assert sorted(fetched) == ["a" * 64, "b" * 64]
        assert all(p.read_bytes() == b"data" for p in paths)
    finally:
        db.dispose()
