"""Bearer tokens on ARM requests: missing, malformed, expired, badly signed, or of a deleted principal, each
refused with its own ARM error code."""

from __future__ import annotations

import time

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.arm import RG_API, error_of, get, groups_url, make_tenant, server_signing_key, signed_token
from tests.support.server import AltoServer


def test_missing_token(server: AltoServer) -> None:
    r = get(server, f"{groups_url(server)}?{RG_API}", None)
    assert r.status_code == 401 and error_of(r)["code"] == "AuthenticationFailed"
    assert "www-authenticate" in r.headers


def test_malformed_authorization_header(server: AltoServer) -> None:
    r = httpx.get(
        f"{server.endpoint}/subscriptions?api-version=2016-06-01",
        headers={"Authorization": "Basic xyz"},
        verify=server.tls,
    )
    assert r.status_code == 401 and error_of(r)["code"] == "AuthenticationFailedInvalidHeader"


def test_expired_token(server: AltoServer) -> None:
    key = server_signing_key(server)
    token = signed_token(
        key, server, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 60
    )
    r = get(server, f"{groups_url(server)}?{RG_API}", token)
    assert r.status_code == 401 and error_of(r)["code"] == "ExpiredAuthenticationToken"


def test_badly_signed_token(server: AltoServer) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    r = get(server, f"{groups_url(server)}?{RG_API}", signed_token(other_key, server))
    assert r.status_code == 401 and error_of(r)["code"] == "InvalidAuthenticationToken"
    r = get(server, f"{groups_url(server)}?{RG_API}", "not-a-jwt")
    assert r.status_code == 401 and error_of(r)["code"] == "InvalidAuthenticationToken"


def test_deleted_principal_token_stops_working(server: AltoServer) -> None:
    tenant_c = make_tenant(server)
    with server.client(creds=tenant_c) as c:
        assert c.get("/subscriptions?api-version=2016-06-01").status_code == 200
        with server.client("operator") as op:
            base = f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers"
            r = op.delete(f"{base}/Altostratus.Identity.Admin/principals/{tenant_c['clientId']}?api-version=2024-01-01")
            assert r.status_code == 409, "it still owns a subscription"
            r = op.delete(
                f"{base}/Microsoft.Subscriptions.Admin/subscriptions/{tenant_c['subscriptionId']}?api-version=2015-11-01"
            )
            assert r.status_code == 200
            r = op.delete(f"{base}/Altostratus.Identity.Admin/principals/{tenant_c['clientId']}?api-version=2024-01-01")
            assert r.status_code == 200
        r = c.get("/subscriptions?api-version=2016-06-01")
        assert r.status_code == 401 and error_of(r)["code"] == "InvalidAuthenticationToken"


def test_token_for_another_audience_is_refused(server: AltoServer) -> None:
    key = server_signing_key(server)
    for audience in ("https://evil.example.com", "https://management.azure.com/", f"{server.endpoint}.evil.com"):
        r = get(server, f"{groups_url(server)}?{RG_API}", signed_token(key, server, aud=audience))
        assert r.status_code == 401, audience
        error = error_of(r)
        assert error["code"] == "InvalidAuthenticationToken" and "audience" in error["message"], error
        assert audience in error["message"] and server.endpoint in error["message"]
    for audience in (server.endpoint, server.endpoint + "/"):
        r = get(server, f"{groups_url(server)}?{RG_API}", signed_token(key, server, aud=audience))
        assert r.status_code == 200, (audience, r.text)
