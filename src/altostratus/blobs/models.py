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

    A blob becomes visible before it is known to be on disk (durability.py): until then ``durable`` is false and
    ``extents`` holds the map it is re-verified against after a crash (None for a SHA-256 id, which says it all).
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
