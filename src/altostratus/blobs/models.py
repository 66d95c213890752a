"""Blobs and who holds them: content-addressed disk files with reference-counted lifetimes.

Anything that needs a payload (a platform image, an extension, an instance's disk) holds a row in
``blob_refs``. A blob whose last reference goes away is garbage collected, so a running VM never loses its disk
when the operator replaces or deletes the image it came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column

from altostratus.store.models import Base


class Blob(Base):
    """A stored payload, named by its content: a whole-content SHA-256 or an extent map's id (``map-...``).

    A blob becomes visible before it is known to be on disk (durability.py): until then ``durable`` is false.
    ``extents`` holds the map it is verified against after a crash, and by a node that fetches a copy from
    another (None for a SHA-256 id, which says it all; None too for rows made durable before maps were kept).
    Rows from before the column existed were synced before they became visible, hence the server default.
    """

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    allocated: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    durable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=true())
    extents: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class BlobRef(Base):
    """Who keeps a blob alive: ("platformImage", id), ("vmExtension", id), ("instance", id), ..."""

    __tablename__ = "blob_refs"
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), primary_key=True)
    holder_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class BlobStoreNode(Base):
    """A blob store (one node's data dir, named by the uuid file in it) and the ARM endpoint of the node that
    serves it: where another node fetches a blob this store holds (marketplace/blob_peers.py)."""

    __tablename__ = "blob_stores"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(512))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BlobCopy(Base):
    """A file of a blob in one store. Files are per node (no shared file system), so a blob row says what the
    content is and these rows say where it is. ``durable``: the copy is known to be on that store's disk (a fetched
    copy is synced before it is recorded; a downloaded one once durability.py has synced it)."""

    __tablename__ = "blob_copies"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    durable: Mapped[bool] = mapped_column(Boolean, default=False)
