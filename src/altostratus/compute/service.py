"""Scale-set intent: what a PUT, PATCH or action means for the instances, decided at request time.

Image versions are resolved here, once per request, when it arrives (:class:`RequestImage`): ``latest``
becomes the newest version available at that moment and every new (or reimaged) instance records its exact
version and disk blob, as does a rolling upgrade its target; a pinned or unknown image refuses the request
synchronously. The controller only carries out what these functions recorded and never looks an image up, so a
version deleted meanwhile cannot fail work already accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.blobs.models import BlobRef
from altostratus.blobs.store import BlobStore
from altostratus.compute import data_disks, quotas
from altostratus.compute.model import SCALE_IN_RULES, ImageRef, computer_name, image_reference
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.sizes import find_size
from altostratus.marketplace.images import resolve
from altostratus.marketplace.models import PlatformImage
from altostratus.storage.user_images import find_image
from altostratus.store.db import utcnow

LIVE = ("Creating", "Running", "Failed", "Updating")
USER_IMAGE_VERSION = "userImage"  # what an instance booted from a blob URI records as its image version


def image_not_found(ref: ImageRef) -> ArmError:
    return ArmError(
        404,
        "PlatformImageNotFound",
        f"The platform image '{ref.urn}' is not available. Verify that all fields in the storage profile are correct. "
        "For more details about storage profile information, please refer to https://aka.ms/storageprofile",
        "imageReference",
    )


def resolve_or_refuse(s: Session, ref: ImageRef) -> PlatformImage:
    image = resolve(s, ref.publisher, ref.offer, ref.sku, ref.version)
    if image is None or image.blob_sha256 is None:
        raise image_not_found(ref)
    return image


@dataclass(frozen=True)
class ResolvedImage:
    """One exact image version and its disk, as resolved for a request: what instances and rolling upgrades
    record, so that nothing resolves it again."""

    publisher: str
    offer: str
    sku: str
    version: str
    blob_sha256: str
    os_type: str

    def record(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> ResolvedImage:
        return cls(**{name: str(data[name]) for name in cls.__dataclass_fields__})


# Where new or reimaged instances get their image from: a request's RequestImage, or a recorded target.
ImageSource = Callable[[], ResolvedImage]


class RequestImage:
    """The image a request gives the instances it creates or reimages: resolved on first need, then kept. One
    request thus sees one version wherever it is used, and a request that needs none (a scale-in, a power
    action) still works while the pinned version is gone."""

    def __init__(self, s: Session, ref: ImageRef) -> None:
        self.session, self.ref = s, ref
        self._image: ResolvedImage | None = None

    def __call__(self) -> ResolvedImage:
        if self._image is None and self.ref.uri:
            # A user image: the blob's content now (a later write to the blob goes to a copy: storage/blob_content.py)
            found = find_image(self.session, self.ref.uri)
            self._image = ResolvedImage("", "", "", USER_IMAGE_VERSION, found.content_id, self.ref.os_type)
        if self._image is None:
            image = resolve_or_refuse(self.session, self.ref)
            assert image.blob_sha256 is not None
            self._image = ResolvedImage(
                image.publisher, image.offer, image.sku, image.version, image.blob_sha256, image.os_type
            )
        return self._image


def needs_new_disk(row: ScaleSetVm, ref: ImageRef) -> bool:
    """Does bringing ``row`` to a model naming ``ref`` take a new disk? A different image does, and so does a
    different pinned version; ``latest`` keeps whatever version the instance has."""
    same_image = (row.image_publisher.lower(), row.image_offer.lower(), row.image_sku.lower()) == (
        ref.publisher.lower(),
        ref.offer.lower(),
        ref.sku.lower(),
    )
    return not same_image or (ref.version != "latest" and row.image_version != ref.version)


def live_rows(s: Session, ss: ScaleSet) -> list[ScaleSetVm]:
    rows = s.scalars(select(ScaleSetVm).where(ScaleSetVm.scale_set_id == ss.id).order_by(ScaleSetVm.instance_id))
    return [r for r in rows if r.state in LIVE]


def all_rows(s: Session, ss: ScaleSet) -> list[ScaleSetVm]:
    return list(s.scalars(select(ScaleSetVm).where(ScaleSetVm.scale_set_id == ss.id).order_by(ScaleSetVm.instance_id)))


def instance_key(ss: ScaleSet, instance_id: int) -> str:
    return f"{ss.unique_id}:{instance_id}"


def add_instances(s: Session, ss: ScaleSet, count: int, prefix: str, source: ImageSource) -> list[ScaleSetVm]:
    if count <= 0:
        return []
    size = find_size(ss.sku["name"])
    quotas.check(s, ss.subscription_id, add_vms=count, cores_each=size.cores if size else 1)
    image = source()
    rows = []
    now = utcnow()
    first = ss.next_instance_id
    ss.next_instance_id = first + count
    with s.no_autoflush:
        for iid in range(first, first + count):
            rows.append(
                ScaleSetVm(
                    scale_set_id=ss.id,
                    instance_id=iid,
                    key=instance_key(ss, iid),
                    vm_id=str(uuid.uuid4()),
                    computer_name=computer_name(prefix, iid),
                    image_publisher=image.publisher,
                    image_offer=image.offer,
                    image_sku=image.sku,
                    image_version=image.version,
                    blob_sha256=image.blob_sha256,
                    model_revision=ss.model_revision,
                    state="Creating",
                    desired_power="running",
                    power_state="starting",
                    reimage_requested=0,
                    reimage_done=0,
                    restart_requested=0,
                    restart_done=0,
                    protect_from_scale_in=False,
                    created_at=now,
                )
            )
        for row in rows:
            data_disks.sync_to_model(ss, row)
        s.add_all(rows)
        # Instance ids are never reused, so these keys hold no reference yet: no per-row lookup (autoflush).
        s.add_all([BlobRef(sha256=image.blob_sha256, holder_kind="instance", holder_id=r.key) for r in rows])
    return rows


def scale_in_policy(ss: ScaleSet) -> str:
    rules = ((ss.model.get("scaleInPolicy") or {}).get("rules")) or ["Default"]
    return SCALE_IN_RULES.get(str(rules[0]).lower(), "Default")


def choose_victims(rows: list[ScaleSetVm], count: int, policy: str) -> list[ScaleSetVm]:
    """Deterministic: NewestVM removes the most recently created first, OldestVM the oldest; Default (one
    location, one fault domain here) removes the highest instance ids first, as Azure does within a zone.
    Protected instances are never chosen."""
    candidates = [r for r in rows if not r.protect_from_scale_in]
    if policy == "OldestVM":
        ordered = sorted(candidates, key=lambda r: (r.created_at, r.instance_id))
    elif policy == "NewestVM":
        ordered = sorted(candidates, key=lambda r: (r.created_at, r.instance_id), reverse=True)
    else:
        ordered = sorted(candidates, key=lambda r: r.instance_id, reverse=True)
    if len(ordered) < count:
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Cannot remove {count} instances: only {len(ordered)} are not protected from scale-in.",
            "sku.capacity",
        )
    return ordered[:count]


def scale_to(s: Session, ss: ScaleSet, target: int, source: ImageSource) -> None:
    rows = live_rows(s, ss)
    prefix = (ss.model.get("virtualMachineProfile") or {}).get("osProfile", {}).get("computerNamePrefix", ss.name)
    if target > len(rows):
        add_instances(s, ss, target - len(rows), prefix, source)
    elif target < len(rows):
        for row in choose_victims(rows, len(rows) - target, scale_in_policy(ss)):
            row.state = "Deleting"
    ss.capacity = target


def select_instances(
    s: Session, ss: ScaleSet, ids: Iterable[str] | None, *, required: bool = False
) -> list[ScaleSetVm]:
    rows = live_rows(s, ss)
    if ids is None:
        if required:
            raise ArmError(400, "InvalidParameter", "'instanceIds' is required.", "instanceIds")
        return rows
    by_id = {str(r.instance_id): r for r in rows}
    wanted = [str(i) for i in ids]
    missing = [i for i in wanted if i not in by_id and i != "*"]
    if missing:
        raise ArmError(
            404,
            "NotFound",
            f"The instance(s) {', '.join(missing)} of scale set '{ss.name}' do not exist.",
            "instanceIds",
        )
    return rows if "*" in wanted else [by_id[i] for i in wanted]


def reimage(s: Session, ss: ScaleSet, rows: list[ScaleSetVm], source: ImageSource, *, to_model: bool = False) -> None:
    """Rebuild the disks from ``source``: for a request, the image the model names now (``latest`` is the
    newest), refused synchronously when it is not available, like a scale-out; for a rolling batch, the
    upgrade's recorded target."""
    if not rows:
        return
    image = source()
    for row in rows:
        BlobStore.drop_refs(s, "instance", row.key)
        BlobStore.add_ref(s, image.blob_sha256, "instance", row.key)
        row.image_publisher, row.image_offer, row.image_sku = image.publisher, image.offer, image.sku
        row.image_version, row.blob_sha256 = image.version, image.blob_sha256
        row.reimage_requested += 1
        row.state = "Updating"
        row.error = None
        if to_model:
            row.model_revision = ss.model_revision
            data_disks.sync_to_model(ss, row)


def upgrade(s: Session, ss: ScaleSet, rows: list[ScaleSetVm], source: ImageSource) -> None:
    """Bring instances to the current model: image changes need a reimage (from ``source``), anything else is
    recorded."""
    ref = image_reference(ss.model)
    needs_disk = [r for r in rows if r.model_revision != ss.model_revision and needs_new_disk(r, ref)]
    reimage(s, ss, needs_disk, source, to_model=True)
    for r in rows:
        r.model_revision = ss.model_revision
        data_disks.sync_to_model(ss, r)


def set_power(rows: list[ScaleSetVm], desired: str) -> None:
    for r in rows:
        r.desired_power = desired


def restart(rows: list[ScaleSetVm]) -> None:
    for r in rows:
        r.desired_power = "running"
        r.restart_requested += 1


def delete_instances(ss: ScaleSet, rows: list[ScaleSetVm]) -> None:
    """Deleting instances lowers the capacity by as many."""
    for r in rows:
        r.state = "Deleting"
    ss.capacity = max(0, ss.capacity - len(rows))
