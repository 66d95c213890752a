"""The blob data plane's rows: containers and blobs of the cloud's storage accounts.

A blob's bytes are a file of the shared BlobStore (``blobs/``) named by ``content_id`` (``sblob-<uuid>``), held
by a ``blob_refs`` row of kind ``storageBlob``. Instances booted from the blob (a scale set's
``osDisk.image.uri``) hold the same content: a later write to a blob whose content is held by anything else goes
to a copy (copy-on-write, blob_content.py), so a running disk never changes under its VM, and deleting the blob
leaves the content to the garbage collector once the last instance is gone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from altostratus.store.models import Base


class StorageContainer(Base):
    __tablename__ = "storage_containers"
    __table_args__ = (UniqueConstraint("account", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(24))  # account names are global and lower case
    name: Mapped[str] = mapped_column(String(63))
    etag: Mapped[str] = mapped_column(String(64))
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StorageBlob(Base):
    __tablename__ = "storage_blobs"
    __table_args__ = (UniqueConstraint("account", "container", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(24))
    container: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(1024))
    blob_type: Mapped[str] = mapped_column(String(16))  # BlockBlob | PageBlob
    size: Mapped[int] = mapped_column(BigInteger)
    content_id: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(256))
    sequence_number: Mapped[int] = mapped_column(BigInteger, default=0)
    # Why the blob is not a bootable fixed VHD ("" when it is), checked whenever its last sector is written
    vhd_error: Mapped[str] = mapped_column(String(512), default="")
    etag: Mapped[str] = mapped_column(String(64))
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True))
