"""Marketplace state: the registration with an upstream, downloads, platform images, extensions, gallery items.

The payloads themselves are blobs (``altostratus.blobs``): a platform image or extension holds a reference to
its blob, so the blob outlives the image while an instance's disk still needs it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from altostratus.store.models import Base


class Activation(Base):
    """Microsoft.AzureBridge.Admin/activations: this cloud's registration with an upstream marketplace."""

    __tablename__ = "activations"
    __table_args__ = (UniqueConstraint("subscription_id", "resource_group_key", "name_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36))
    resource_group: Mapped[str] = mapped_column(String(90))
    resource_group_key: Mapped[str] = mapped_column(String(90))
    name: Mapped[str] = mapped_column(String(128))
    name_key: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(256))
    upstream: Mapped[str] = mapped_column(String(2048))  # "demo", a directory, or an http(s) URL
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Download(Base):
    """A product download (AzureBridge downloadedProducts) and its resumable transfer state."""

    __tablename__ = "downloads"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activation_id: Mapped[int | None] = mapped_column(ForeignKey("activations.id", ondelete="SET NULL"), nullable=True)
    product_name: Mapped[str] = mapped_column(String(256))
    product_key: Mapped[str] = mapped_column(String(256), index=True)
    product: Mapped[dict[str, Any]] = mapped_column()  # the upstream catalogue entry, as downloaded
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # Downloading | Succeeded | Failed
    source: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)  # checkpoint: verified below (resume re-checks)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    operation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PlatformImage(Base):
    """Microsoft.Compute.Admin platformImage: one publisher/offer/sku/version in this location."""

    __tablename__ = "platform_images"
    __table_args__ = (UniqueConstraint("publisher_key", "offer_key", "sku_key", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    publisher: Mapped[str] = mapped_column(String(128))
    publisher_key: Mapped[str] = mapped_column(String(128), index=True)
    offer: Mapped[str] = mapped_column(String(128))
    offer_key: Mapped[str] = mapped_column(String(128))
    sku: Mapped[str] = mapped_column(String(128))
    sku_key: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    os_type: Mapped[str] = mapped_column(String(16))
    provisioning_state: Mapped[str] = mapped_column(String(16))  # Creating | Succeeded | Failed
    source_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    blob_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    download_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VmExtension(Base):
    """Microsoft.Compute.Admin VMExtension artifact (publisher/type/version)."""

    __tablename__ = "vm_extensions"
    __table_args__ = (UniqueConstraint("publisher_key", "type_key", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    publisher: Mapped[str] = mapped_column(String(128))
    publisher_key: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    type_key: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    provisioning_state: Mapped[str] = mapped_column(String(16))
    blob_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    download_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GalleryItem(Base):
    """Microsoft.Gallery.Admin galleryItem: a marketplace offering tenants see (``publisher.item.version``)."""

    __tablename__ = "gallery_items"
    identity_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    identity: Mapped[str] = mapped_column(String(256))
    manifest: Mapped[dict[str, Any]] = mapped_column()
    download_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
