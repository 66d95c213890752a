"""The cloud's nodes for the operator (Compute.Admin ``locations/nodes``) and joining a new one.

``POST .../locations/{location}/nodes/joinToken`` (operators only) issues a join token: a one-time secret that
expires in minutes (15 by default), the URL of this node, and the fingerprint of the cloud's CA
(altostratus/join.py has the format). ``alto up --join-token <token>`` on a new machine trades it, over TLS
pinned to that CA, at ``POST /altostratus/join`` for what a node needs - the database URL, the CA certificate
and key, the operator's credentials file - instead of copying files by hand. Any node accepts a token any node
issued: only the secret's SHA-256 is stored, in the shared database, and its use is a compare-and-set.

Joining needs a database every node can reach (PostgreSQL); with the embedded SQLite both calls say so.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import NO_VERSION, Access, Router
from altostratus.compute.models import NodeJoinToken
from altostratus.join import CA_PATH, JOIN_PATH, JoinToken, fingerprint
from altostratus.store.db import iso, utcnow
from altostratus.store.models import Node
from altostratus.store.nodes import is_alive

NS = "Microsoft.Compute.Admin"
VERSIONS = ("2015-12-01-preview",)
DEFAULT_MINUTES = 15
MAX_MINUTES = 24 * 60
# What credentials.json says about the node that wrote it: the joining node writes its own.
NODE_FIELDS = ("armEndpoint", "tokenEndpoint", "authority", "caFile", "location")


def _needs_shared_database(ctx: RequestContext) -> None:
    if ctx.services.settings.resolved_database_url.startswith("sqlite"):
        raise ArmError(
            409,
            "JoinNeedsSharedDatabase",
            "This cloud keeps its state in SQLite inside one node's data dir, which no other node can reach. "
            "Run its nodes on PostgreSQL (`alto up --database-url postgresql://...`, docs/several-machines.md) "
            "to add nodes.",
        )


def issue_token(ctx: RequestContext) -> Response:
    _needs_shared_database(ctx)
    body = ctx.json(required=False) or {}
    minutes = body.get("expiresInMinutes", DEFAULT_MINUTES)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_MINUTES:
        raise ArmError(
            400, "InvalidParameter", f"expiresInMinutes must be a whole number from 1 to {MAX_MINUTES}.",
            target="expiresInMinutes",
        )  # fmt: skip
    url = body.get("url", ctx.base_url)
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ArmError(400, "InvalidParameter", "url must be this node's https:// URL.", target="url")
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(minutes=minutes)
    ctx.db.add(
        NodeJoinToken(
            secret_sha256=_hash(secret), created_at=now, expires_at=expires, created_by=ctx.require_caller.client_id
        )
    )
    ca = (ctx.services.settings.data_dir / "ca.pem").read_bytes()
    token = JoinToken(url.rstrip("/"), secret, fingerprint(ca))
    return json_response(
        {"token": token.encode(), "url": token.url, "expiresOn": iso(expires), "caFingerprint": token.fingerprint}
    )


def join(ctx: RequestContext) -> Response:
    _needs_shared_database(ctx)
    secret = (ctx.json(required=False) or {}).get("token")
    if not isinstance(secret, str) or not secret:
        raise ArmError(400, "InvalidParameter", "The join request needs the token's secret.", target="token")
    now = utcnow()
    used = ctx.db.execute(  # compare-and-set: of two nodes joining with one token, one gets in
        update(NodeJoinToken)
        .where(NodeJoinToken.secret_sha256 == _hash(secret), NodeJoinToken.used_at.is_(None))
        .where(NodeJoinToken.expires_at > now)
        .values(used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not used:
        raise ArmError(
            401,
            "InvalidJoinToken",
            "The join token is unknown, expired or already used: get a new one with `alto admin node join-token`.",
        )
    settings = ctx.services.settings
    credentials: dict[str, Any] | None = None
    path = settings.data_dir / "credentials.json"
    if path.exists():
        credentials = {k: v for k, v in json.loads(path.read_text()).items() if k not in NODE_FIELDS}
    return json_response(
        {
            "databaseUrl": settings.resolved_database_url,
            "caCertificate": (settings.data_dir / "ca.pem").read_text(),
            "caKey": (settings.data_dir / "ca-key.pem").read_text(),
            "credentials": credentials,
            "location": settings.location,
        }
    )


def ca_certificate(ctx: RequestContext) -> Response:
    """Public, like any CA certificate: a joining node checks it against the token's fingerprint."""
    pem = (ctx.services.settings.data_dir / "ca.pem").read_bytes()
    return Response(pem, media_type="application/x-pem-file")


def list_nodes(ctx: RequestContext) -> Response:
    sub, location = ctx.params["subscriptionId"], ctx.params["location"]
    rows = ctx.db.scalars(select(Node).order_by(Node.started_at)).all()
    now = utcnow()
    return json_response(
        {
            "value": [
                {
                    "id": f"/subscriptions/{sub}/providers/{NS}/locations/{location}/nodes/{row.node}",
                    "name": row.node,
                    "type": f"{NS}/locations/nodes",
                    "location": location,
                    "properties": {
                        "hostname": row.hostname,
                        "pid": row.pid,
                        "controllers": row.controllers,
                        "alive": is_alive(row, now),
                        "startedAt": iso(row.started_at),
                        "lastSeen": iso(row.last_beat),
                    },
                }
                for row in rows
            ]
        }
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = registry.add_type(NS, "locations/nodes", VERSIONS, always_registered=True).full_name
    path = "/subscriptions/{subscriptionId}/providers/" + NS + "/locations/{location}/nodes"
    router.add("GET", path, list_nodes, resource_type=t, access=Access.OPERATOR)
    router.add("POST", path + "/joinToken", issue_token, resource_type=t, access=Access.OPERATOR)
    router.add("POST", JOIN_PATH, join, resource_type=NO_VERSION, access=Access.PUBLIC)
    router.add("GET", CA_PATH, ca_certificate, resource_type=NO_VERSION, access=Access.PUBLIC)
