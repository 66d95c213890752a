"""Containers of the blob data plane: create, properties, delete, and the two listings (containers, blobs)."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from altostratus.blobs.store import BlobStore
from altostratus.storage import blob_content as content
from altostratus.storage.blob_common import BlobPlatform, container_row, etag, host_style, http_date
from altostratus.storage.blob_errors import BlobError
from altostratus.storage.blob_models import StorageBlob, StorageContainer
from altostratus.store.db import utcnow

CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def _check_container_name(name: str) -> None:
    if not CONTAINER.match(name):
        raise BlobError(
            400,
            "InvalidResourceName",
            f"The container name '{name}' is invalid: 3-63 lower-case letters, digits and single hyphens, starting "
            "and ending with a letter or digit.",
        )


def create_container(p: BlobPlatform, account: str, name: str) -> Response:
    _check_container_name(name)
    with p.db.session() as s:
        taken = s.scalars(
            select(StorageContainer.id).where(StorageContainer.account == account, StorageContainer.name == name)
        ).first()
        if taken is not None:
            raise BlobError(409, "ContainerAlreadyExists", "The specified container already exists.")
        row = StorageContainer(account=account, name=name, etag=etag(), last_modified=utcnow())
        s.add(row)
        return Response(None, 201, {"ETag": row.etag, "Last-Modified": http_date(row.last_modified)})


def container_properties(p: BlobPlatform, account: str, name: str) -> Response:
    with p.db.session(readonly=True) as s:
        row = container_row(s, account, name)
        return Response(
            None,
            200,
            {
                "ETag": row.etag,
                "Last-Modified": http_date(row.last_modified),
                "x-ms-lease-status": "unlocked",
                "x-ms-lease-state": "available",
                "x-ms-has-immutability-policy": "false",
                "x-ms-has-legal-hold": "false",
            },
        )


def delete_container(p: BlobPlatform, account: str, name: str) -> Response:
    with p.db.session() as s:
        row = container_row(s, account, name)
        for blob in s.scalars(select(StorageBlob).where(StorageBlob.account == account, StorageBlob.container == name)):
            BlobStore.drop_refs(s, content.HOLDER, content.holder_id(blob))
            s.delete(blob)
        s.delete(row)
    p.blobs.gc(p.db)
    return Response(None, 202)


def service_endpoint(request: Request, account: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f"{base}/" if host_style(request) else f"{base}/{account}/"


def list_containers(p: BlobPlatform, account: str, request: Request, params: dict[str, str]) -> Response:
    prefix = params.get("prefix", "")
    with p.db.session(readonly=True) as s:
        rows = s.scalars(
            select(StorageContainer).where(StorageContainer.account == account).order_by(StorageContainer.name)
        )
        items = "".join(
            f"<Container><Name>{escape(r.name)}</Name><Properties><Last-Modified>{http_date(r.last_modified)}"
            f"</Last-Modified><Etag>{r.etag}</Etag><LeaseStatus>unlocked</LeaseStatus><LeaseState>available"
            "</LeaseState><HasImmutabilityPolicy>false</HasImmutabilityPolicy><HasLegalHold>false</HasLegalHold>"
            "</Properties></Container>"
            for r in rows
            if r.name.startswith(prefix)
        )
    endpoint = escape(service_endpoint(request, account), {'"': "&quot;"})
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{endpoint}">'
        f"<Prefix>{escape(prefix)}</Prefix><Containers>{items}</Containers><NextMarker /></EnumerationResults>"
    )
    return Response(body, 200, media_type="application/xml")


def list_blobs(p: BlobPlatform, account: str, container: str, request: Request, params: dict[str, str]) -> Response:
    prefix = params.get("prefix", "")
    with p.db.session(readonly=True) as s:
        container_row(s, account, container)
        rows = s.scalars(
            select(StorageBlob)
            .where(StorageBlob.account == account, StorageBlob.container == container)
            .order_by(StorageBlob.name)
        )
        items = "".join(
            f"<Blob><Name>{escape(r.name)}</Name><Properties><Creation-Time>{http_date(r.last_modified)}"
            f"</Creation-Time><Last-Modified>{http_date(r.last_modified)}</Last-Modified><Etag>{r.etag}</Etag>"
            f"<Content-Length>{r.size}</Content-Length><Content-Type>{escape(r.content_type)}</Content-Type>"
            f"<BlobType>{r.blob_type}</BlobType><LeaseStatus>unlocked</LeaseStatus><LeaseState>available"
            "</LeaseState><ServerEncrypted>false</ServerEncrypted></Properties></Blob>"
            for r in rows
            if r.name.startswith(prefix)
        )
    endpoint = escape(service_endpoint(request, account), {'"': "&quot;"})
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{endpoint}" '
        f'ContainerName="{escape(container)}"><Prefix>{escape(prefix)}</Prefix><Blobs>{items}</Blobs>'
        "<NextMarker /></EnumerationResults>"
    )
    return Response(body, 200, media_type="application/xml")
