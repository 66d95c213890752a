"""User images by blob URI: which blob of this cloud a scale set's ``osDisk.image.uri`` names, and whether it can
boot.

Azure Stack Hub boots a scale set from a VHD a tenant uploaded (the ``201-vmss-windows-customimage`` QuickStart
template): ``osDisk.image.uri`` is the blob's URL at its account's endpoint,
``https://<account>.blob.<region>.<external domain>/<container>/<blob>``. The blob must be in an account of the
scale set's own subscription, a page blob, and a fixed VHD (vhd.py). Instances then boot from the blob's content
as they boot from a platform image's: its file in the BlobStore, held by each instance (blob_content.py copies
the content before any later write to the blob).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.storage.accounts import NS
from altostratus.storage.blob_models import StorageBlob
from altostratus.store.models import Resource, ResourceGroup

TARGET = "osDisk.image.uri"
_HOST = re.compile(r"^([a-z0-9]{3,24})\.blob\.([a-z0-9]+)\.", re.IGNORECASE)


@dataclass(frozen=True)
class BlobUri:
    account: str
    container: str
    blob: str


@dataclass(frozen=True)
class UserImage:
    content_id: str  # the BlobStore file instances boot from
    size: int


def _invalid(uri: str, why: str) -> ArmError:
    return ArmError(400, "InvalidParameter", f"The image URI '{uri}' cannot be used: {why}", TARGET)


def parse_blob_uri(uri: object, location: str | None = None) -> BlobUri:
    """The account, container and blob of a blob URL of this cloud (of ``location``, when given)."""
    if not isinstance(uri, str) or not uri.strip():
        raise ArmError(400, "InvalidParameter", "osDisk.image.uri must be the URL of a VHD blob.", TARGET)
    parts = urlsplit(uri.strip())
    host = _HOST.match(parts.hostname or "")
    container, _, blob = unquote(parts.path).lstrip("/").partition("/")
    expected = f"https://<account>.blob.{location or '<region>'}.<domain>/<container>/<blob>.vhd"
    if parts.scheme.lower() != "https" or host is None or not container or not blob:
        raise _invalid(uri, f"it is not a blob of this cloud's storage accounts ({expected}).")
    if location is not None and host.group(2).lower() != location:
        raise _invalid(uri, f"it names region '{host.group(2)}'; this cloud's blobs are at {expected}.")
    return BlobUri(host.group(1).lower(), container, blob)


def find_image(s: Session, uri: str, subscription_id: str | None = None) -> UserImage:
    """The bootable content behind ``uri``, or a clear 400 for why there is none."""
    where = parse_blob_uri(uri)
    account = s.execute(
        select(ResourceGroup.subscription_id)
        .join(Resource, Resource.resource_group_id == ResourceGroup.id)
        .where(Resource.type_key == f"{NS}/storageAccounts".lower(), Resource.name_key == where.account)
    ).first()
    if account is None or (subscription_id is not None and account[0].lower() != subscription_id.lower()):
        raise _invalid(uri, f"the storage account '{where.account}' does not exist in this subscription.")
    row = s.scalars(
        select(StorageBlob).where(
            StorageBlob.account == where.account,
            StorageBlob.container == where.container,
            StorageBlob.name == where.blob,
        )
    ).first()
    if row is None:
        raise _invalid(uri, f"there is no blob '{where.blob}' in container '{where.container}' of '{where.account}'.")
    if row.blob_type != "PageBlob":
        raise _invalid(
            uri, "it is a block blob; a disk image must be a page blob (az storage blob upload --type page)."
        )
    if row.vhd_error:
        raise _invalid(uri, f"it is not a usable VHD: {row.vhd_error}.")
    return UserImage(row.content_id, row.size)
