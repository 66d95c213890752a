"""The token service: OpenID discovery, the v1 and v2 token endpoints, and how client secrets are kept."""

from __future__ import annotations

import httpx

from altostratus.arm.auth import hash_secret, verify_secret
from tests.support.server import AltoServer


def test_openid_discovery(server: AltoServer) -> None:
    tenant = server.credentials["tenantId"]
    r = httpx.get(f"{server.endpoint}/{tenant}/v2.0/.well-known/openid-configuration", verify=server.tls)
    assert r.status_code == 200
    assert r.json()["token_endpoint"] == server.credentials["tokenEndpoint"]
    keys = httpx.get(r.json()["jwks_uri"], verify=server.tls).json()["keys"]
    assert keys[0]["kty"] == "RSA"


def test_v1_token_endpoint(server: AltoServer) -> None:
    creds = server.credentials
    r = httpx.post(
        f"{server.endpoint}/{creds['tenantId']}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds["tenant"]["clientId"],
            "client_secret": creds["tenant"]["clientSecret"],
            "resource": server.endpoint + "/",
        },
        verify=server.tls,
    )
    assert r.status_code == 200
    token = r.json()["access_token"]
    sub = creds["tenant"]["subscriptionId"]
    r = httpx.get(
        f"{server.endpoint}/subscriptions/{sub}?api-version=2016-06-01",
        headers={"Authorization": f"Bearer {token}"},
        verify=server.tls,
    )
    assert r.status_code == 200


def test_token_endpoint_rejects_wrong_secret(server: AltoServer) -> None:
    creds = server.credentials
    r = httpx.post(
        creds["tokenEndpoint"],
        data={"grant_type": "client_credentials", "client_id": creds["tenant"]["clientId"], "client_secret": "nope"},
        verify=server.tls,
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def _token_for(server: AltoServer, path: str, **form: str) -> httpx.Response:
    creds = server.credentials
    data = {"grant_type": "client_credentials", "client_id": creds["tenant"]["clientId"],
            "client_secret": creds["tenant"]["clientSecret"], **form}  # fmt: skip
    return httpx.post(f"{server.endpoint}/{creds['tenantId']}/{path}", data=data, verify=server.tls)


def test_tokens_only_for_this_clouds_audience(server: AltoServer) -> None:
    """Tokens are issued for the ARM endpoint only (AAD's invalid_resource, AADSTS500011, for anything else)."""
    for form in (
        {"scope": "https://evil.example.com/.default"},
        {"scope": f"{server.endpoint}.evil.com/.default"},
        {"scope": "https://management.azure.com//.default"},
    ):
        r = _token_for(server, "oauth2/v2.0/token", **form)
        assert r.status_code == 400, form
        assert r.json()["error"] == "invalid_resource" and "AADSTS500011" in r.json()["error_description"]
    r = _token_for(server, "oauth2/token", resource="https://evil.example.com/")
    assert r.status_code == 400 and r.json()["error"] == "invalid_resource"
    for form in (
        {"scope": f"{server.endpoint}/.default"},
        {"scope": f"{server.endpoint}//.default"},  # what az and the SDKs send for a resource ending in "/"
        {"scope": f"{server.endpoint}/.default offline_access"},
        {},
    ):
        r = _token_for(server, "oauth2/v2.0/token", **form)
        assert r.status_code == 200, (form, r.text)
        sub = server.credentials["tenant"]["subscriptionId"]
        url = f"{server.endpoint}/subscriptions/{sub}?api-version=2016-06-01"
        arm = httpx.get(url, headers={"Authorization": f"Bearer {r.json()['access_token']}"}, verify=server.tls)
        assert arm.status_code == 200, form
    for resource in (server.endpoint, server.endpoint + "/"):
        assert _token_for(server, "oauth2/token", resource=resource).status_code == 200


def test_secret_hashing() -> None:
    stored = hash_secret("s3cret")
    assert "s3cret" not in stored
    assert verify_secret("s3cret", stored) and not verify_secret("other", stored)
    assert not verify_secret("s3cret", "garbage")
