"""Raw ARM requests: error bodies, tenants of our own, tokens signed with the server's key (or another).

The signing key is read from the server's database (a read: the server keeps its own copy in memory).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt

from altostratus.store.db import Database
from altostratus.store.models import Setting
from tests.support.server import AltoServer

RG_API = "api-version=2019-10-01"


def error_of(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
    return dict(body["error"])


def groups_url(server: AltoServer) -> str:
    return f"/subscriptions/{server.credentials['tenant']['subscriptionId']}/resourcegroups"


def signed_token(key: Any, server: AltoServer, **overrides: Any) -> str:
    now = int(time.time())
    creds = server.credentials
    claims = {
        "aud": server.endpoint,
        "iss": f"{server.endpoint}/{creds['tenantId']}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "appid": creds["tenant"]["clientId"],
        "tid": creds["tenantId"],
        "roles": ["tenant"],
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256")


def server_signing_key(server: AltoServer) -> str:
    db = Database(f"sqlite:///{server.data_dir / 'altostratus.db'}")
    try:
        with db.session(readonly=True) as s:
            row = s.get(Setting, "signing_key")
            assert row is not None
            return row.value
    finally:
        db.dispose()


def get(server: AltoServer, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.endpoint}{path}", headers=headers, verify=server.tls)


def make_tenant(server: AltoServer) -> dict[str, str]:
    """A second tenant with its own subscription, created through the admin APIs."""
    with server.client("operator") as op:
        base = f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers"
        cid, sub = str(uuid.uuid4()), str(uuid.uuid4())
        r = op.put(
            f"{base}/Altostratus.Identity.Admin/principals/{cid}?api-version=2024-01-01",
            json={"properties": {"displayName": "tenant B", "role": "tenant"}},
        )
        assert r.status_code == 201, r.text
        secret = r.json()["properties"]["clientSecret"]
        r = op.put(
            f"{base}/Microsoft.Subscriptions.Admin/subscriptions/{sub}?api-version=2015-11-01",
            json={"properties": {"displayName": "B's subscription", "owner": cid}},
        )
        assert r.status_code == 201, r.text
    return {"clientId": cid, "clientSecret": secret, "subscriptionId": sub}


def add_subscription(server: AltoServer, owner_client_id: str) -> str:
    """Another subscription for an existing principal (the operator's admin API), so a tenant has two."""
    sub = str(uuid.uuid4())
    with server.client("operator") as op:
        r = op.put(
            f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers/"
            f"Microsoft.Subscriptions.Admin/subscriptions/{sub}?api-version=2015-11-01",
            json={"properties": {"displayName": "second subscription", "owner": owner_client_id}},
        )
        assert r.status_code == 201, r.text
    return sub
