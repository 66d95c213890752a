"""Downloads: from an upstream product (or a URI the operator gives) to a verified, visible artifact.

The API records a ``downloads`` row and an operation; :func:`run_download` (run by the operation runner)
transfers the payload into a partial file (extent by extent when the catalogue has an extent map: format 2),
checkpointing the offset so a restarted server resumes instead of starting over, verifies it, and only
then - in one transaction - turns it into a platform image, a VM extension or a gallery item, replacing older
versions of the same image. The blob is synced to disk just after it became visible, not before
(durability.py), and the operation ends once it is. Every step is idempotent.
"""

from __future__ import annotations

import json
import logging
import uuid
import zipfile
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.arm.operations import OperationTask, ProgressFn
from altostratus.blobs.store import BlobStore
from altostratus.marketplace.durability import make_durable
from altostratus.marketplace.extent_transfer import transfer_extents
from altostratus.marketplace.extents import MAP_ID_PREFIX, Extent, map_id
from altostratus.marketplace.images import find_image, images_of, remove_image, version_key
from altostratus.marketplace.models import Download, GalleryItem, PlatformImage, VmExtension
from altostratus.marketplace.transfer import transfer
from altostratus.marketplace.transfer_job import TransferError
from altostratus.store.db import Database, utcnow

log = logging.getLogger("altostratus.syndication")
DOWNLOAD_KIND = "marketplace/download"
MAX_MANIFEST_BYTES = 16 << 20
CHECKPOINT_BYTES = 16 << 20  # how much a crash can cost: the transfer resumes from the last checkpoint
_EXTENTS = TypeAdapter(list[Extent])


def new_download(s: Session, product: dict[str, Any], source: str, activation_id: int | None) -> Download:
    payload = product.get("payload") or {}
    download = Download(
        id=str(uuid.uuid4()),
        activation_id=activation_id,
        product_name=product["name"],
        product_key=product["name"].lower(),
        product=product,
        kind=product["kind"],
        state="Downloading",
        source=source,
        total_bytes=payload.get("size"),
        bytes_done=0,
        created_at=utcnow(),
    )
    s.add(download)
    return download


def conflict_for(s: Session, product: dict[str, Any]) -> ArmError | None:
    """Azure Stack refuses to download a version that is already present: delete it first."""
    kind, version = product["kind"], product["version"]
    if kind == "virtualMachine":
        existing = find_image(s, product["publisher"], product["offer"], product["sku"], version)
        if existing is not None and existing.provisioning_state == "Failed":
            remove_image(s, existing)  # a failed attempt leaves nothing that blocks a new one
        elif existing is not None:
            return ArmError(
                409,
                "ImageVersionAlreadyExists",
                f"Version {version} of {product['publisher']}:{product['offer']}:{product['sku']} is already in the "
                "catalogue. Delete it first (alto image remove, or DELETE the downloaded product), then download "
                "again.",
            )
    elif kind == "virtualMachineExtension":
        ext = find_extension(s, product["publisher"], product.get("extensionType") or product["offer"], version)
        if ext is not None and ext.provisioning_state == "Succeeded":
            return ArmError(
                409,
                "ExtensionVersionAlreadyExists",
                f"Version {version} of extension {product['publisher']}.{ext.type} is already present. "
                "Delete it first.",
            )
    elif kind == "galleryItem":
        identity = product.get("galleryItemIdentity") or product["name"]
        if s.get(GalleryItem, identity.lower()) is not None:
            return ArmError(
                409,
                "GalleryItemAlreadyExists",
                f"The gallery item '{identity}' is already in the marketplace. Remove it first, then download again.",
            )
    return None


def find_extension(s: Session, publisher: str, ext_type: str, version: str) -> VmExtension | None:
    return s.scalars(
        select(VmExtension).where(
            VmExtension.publisher_key == publisher.lower(),
            VmExtension.type_key == ext_type.lower(),
            VmExtension.version == version,
        )
    ).one_or_none()


def run_download(db: Database, blobs: BlobStore, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
    download_id = task.params["downloadId"]
    with db.session() as s:
        d = s.get(Download, download_id)
        if d is None:
            raise ArmError(404, "NotFound", "The download was deleted before it finished.")
        if d.state == "Failed":
            err = d.error or {}
            raise ArmError(400, err.get("code", "DownloadFailed"), err.get("message", "The download failed."))
        state, done_sha = d.state, d.sha256
        source, size, resume = d.source or "", d.total_bytes, d.bytes_done
        product = dict(d.product)
    if state == "Succeeded":  # made visible by an attempt that stopped before the end: it may still need syncing
        if done_sha:
            _make_durable(db, blobs, download_id, done_sha)
        return {"downloadId": download_id}
    payload = product.get("payload") or {}
    extents = _EXTENTS.validate_python(payload["extents"]) if payload.get("extents") is not None else None
    if extents is not None:
        size = int(payload["size"])  # a validated catalogue entry: extents always come with the size
    expected_sha = map_id(size, extents) if extents is not None and size is not None else payload.get("sha256")
    partial = blobs.partial(download_id)
    if expected_sha and blobs.path(expected_sha).exists() and not partial.exists():
        sha, size_done = expected_sha, blobs.path(expected_sha).stat().st_size  # promoted before a crash
    else:

        def checkpoint(offset: int) -> None:
            with db.session() as s2:
                s2.execute(update(Download).where(Download.id == download_id).values(bytes_done=offset))

        def on_progress(done: int, total: int | None) -> None:
            percent = round(100.0 * done / total, 1) if total else None
            progress(percent, {"bytesDone": done, "totalBytes": total})

        resume_from = resume if partial.exists() else 0
        try:
            if extents is not None and size is not None:  # format 2: only the data extents are fetched and hashed
                done = transfer_extents(
                    source,
                    partial,
                    size=size,
                    extents=extents,
                    resume_from=resume_from,
                    on_progress=on_progress,
                    on_checkpoint=checkpoint,
                    checkpoint_bytes=CHECKPOINT_BYTES,
                )
                sha, size_done = done.content_id, done.size
            else:
                result = transfer(
                    source,
                    partial,
                    expected_size=size,
                    expected_sha256=expected_sha,
                    resume_from=resume_from,
                    on_progress=on_progress,
                    on_checkpoint=checkpoint,
                    checkpoint_bytes=CHECKPOINT_BYTES,
                )
                sha, size_done = result.sha256, result.size
        except TransferError as err:
            partial.unlink(missing_ok=True)
            fail(db, download_id, err.code, err.message)
            raise ArmError(400, err.code, err.message) from None
    try:
        with db.session() as s:
            promote(s, blobs, download_id, partial, sha, size_done)
    except ArmError as err:
        partial.unlink(missing_ok=True)
        fail(db, download_id, err.code, err.message)
        raise
    except Exception as exc:  # never leave a download "Downloading" forever
        log.exception("promoting download %s failed", download_id)
        partial.unlink(missing_ok=True)
        fail(db, download_id, "InternalError", f"The download could not be made visible: {exc}")
        raise ArmError(500, "InternalError", f"The download could not be made visible: {exc}") from None
    blobs.gc(db)
    _make_durable(db, blobs, download_id, sha)
    return {"downloadId": download_id}


def _make_durable(db: Database, blobs: BlobStore, download_id: str, sha: str) -> None:
    """Sync the visible blob; if that fails it is discarded, the download Failed (durability.py)."""
    try:
        make_durable(db, blobs, sha)
    except TransferError as err:
        log.warning("download %s failed after it became visible: %s: %s", download_id, err.code, err.message)
        raise ArmError(400, err.code, err.message) from None


def fail(db: Database, download_id: str, code: str, message: str) -> None:
    with db.session() as s:
        d = s.get(Download, download_id)
        if d is not None:
            d.state = "Failed"
            d.error = {"code": code, "message": message}
            d.finished_at = utcnow()
            for image in s.scalars(select(PlatformImage).where(PlatformImage.download_id == download_id)):
                if image.provisioning_state == "Creating":
                    image.provisioning_state = "Failed"
                    image.error = d.error
            for ext in s.scalars(select(VmExtension).where(VmExtension.download_id == download_id)):
                if ext.provisioning_state == "Creating":
                    ext.provisioning_state = "Failed"
    log.warning("download %s failed: %s: %s", download_id, code, message)


def promote(s: Session, blobs: BlobStore, download_id: str, partial: Path, sha: str, size: int) -> None:
    """Make the verified payload visible, in one transaction."""
    d = s.get(Download, download_id)
    if d is None:
        raise ArmError(404, "NotFound", "The download was deleted before it finished.")
    product = d.product
    if d.kind == "galleryItem":
        manifest = read_manifest(partial if partial.exists() else blobs.path(sha))
        partial.unlink(missing_ok=True)
        add_gallery_item(s, manifest, product, d.id)
    else:
        extents = product["payload"].get("extents") if sha.startswith(MAP_ID_PREFIX) else None
        blobs.promote(s, partial, sha, size, extents)
        if d.kind == "virtualMachine":
            promote_image(s, product, d.id, sha)
        else:
            promote_extension(s, product, d.id, sha)
    d.state = "Succeeded"
    d.sha256 = sha
    d.bytes_done = size
    d.finished_at = utcnow()


def promote_image(s: Session, product: dict[str, Any], download_id: str, sha: str) -> None:
    pub, offer, sku, version = product["publisher"], product["offer"], product["sku"], product["version"]
    image = find_image(s, pub, offer, sku, version)
    if image is not None and image.download_id != download_id:
        raise ArmError(
            409, "ImageVersionAlreadyExists", f"Version {version} of {pub}:{offer}:{sku} appeared meanwhile."
        )
    if image is None:
        image = PlatformImage(
            publisher=pub,
            publisher_key=pub.lower(),
            offer=offer,
            offer_key=offer.lower(),
            sku=sku,
            sku_key=sku.lower(),
            version=version,
            os_type=product.get("osType", "Linux"),
            source_uri=product.get("sourceUri"),
            download_id=download_id,
            details={"billingPartNumber": product.get("billingPartNumber")} if product.get("billingPartNumber") else {},
            created_at=utcnow(),
        )
        s.add(image)
    image.provisioning_state = "Succeeded"
    image.blob_sha256 = sha
    s.flush()
    BlobStore.add_ref(s, sha, "platformImage", str(image.id))
    if product.get("replaceOlder", True):
        # Azure Stack: downloading a newer version replaces the older ones (instances keep their disks).
        for older in images_of(s, pub, offer, sku):
            if version_key(older.version) < version_key(version):
                if older.download_id:
                    old_download = s.get(Download, older.download_id)
                    if old_download is not None:
                        s.delete(old_download)
                remove_image(s, older)


def promote_extension(s: Session, product: dict[str, Any], download_id: str, sha: str) -> None:
    ext_type = product.get("extensionType") or product["offer"]
    ext = find_extension(s, product["publisher"], ext_type, product["version"])
    if ext is None:
        ext = VmExtension(
            publisher=product["publisher"],
            publisher_key=product["publisher"].lower(),
            type=ext_type,
            type_key=ext_type.lower(),
            version=product["version"],
            download_id=download_id,
            properties={
                "vmOsType": product.get("osType", "Linux"),
                "computeRole": "IaaS",
                "vmScaleSetEnabled": True,
                "supportMultipleExtensions": False,
                "isSystemExtension": False,
            },
            created_at=utcnow(),
        )
        s.add(ext)
    ext.provisioning_state = "Succeeded"
    ext.blob_sha256 = sha
    ext.download_id = download_id
    s.flush()
    BlobStore.add_ref(s, sha, "vmExtension", str(ext.id))


def read_manifest(path: Path) -> dict[str, Any]:
    """A gallery-item manifest: plain JSON, or an .azpkg (zip) holding Manifest.json."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.lower() == "manifest.json"), None)
                if name is None:
                    raise ArmError(400, "InvalidGalleryItem", "The gallery package has no Manifest.json.")
                raw = z.read(name)
        else:
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise ArmError(400, "InvalidGalleryItem", "The gallery item manifest is too large.")
            raw = path.read_bytes()
        manifest = json.loads(raw.decode("utf-8-sig"))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ArmError(400, "InvalidGalleryItem", f"The gallery item manifest cannot be read: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArmError(400, "InvalidGalleryItem", "The gallery item manifest must be a JSON object.")
    return manifest


def gallery_identity(manifest: dict[str, Any]) -> str:
    for field in ("publisher", "name", "version"):
        if not isinstance(manifest.get(field), str) or not manifest[field]:
            raise ArmError(400, "InvalidGalleryItem", f"The gallery item manifest needs '{field}'.", field)
    return f"{manifest['publisher']}.{manifest['name']}.{manifest['version']}"


def add_gallery_item(
    s: Session, manifest: dict[str, Any], product: dict[str, Any] | None, download_id: str | None
) -> GalleryItem:
    identity = gallery_identity(manifest)
    if s.get(GalleryItem, identity.lower()) is not None:
        raise ArmError(
            409, "GalleryItemAlreadyExists", f"The gallery item '{identity}' already exists. Remove it first."
        )
    now = utcnow()
    item = GalleryItem(
        identity_key=identity.lower(),
        identity=identity,
        manifest=manifest,
        download_id=download_id,
        created_at=now,
        changed_at=now,
    )
    s.add(item)
    return item
