"""The metadata endpoints clients discover the cloud from, which answer without a token."""

from __future__ import annotations

import httpx
import jwt

from tests.support.server import AltoServer


def test_metadata_endpoints_without_auth(server: AltoServer) -> None:
    # msrestazure concatenates endpoint + "/metadata/...", so a trailing slash gives "//metadata": accept it.
    for path in ("/metadata/endpoints", "//metadata/endpoints"):
        r = httpx.get(f"{server.endpoint}{path}?api-version=2015-01-01", verify=server.tls)
        assert r.status_code == 200
        body = r.json()
        # AD FS style, as an Azure Stack Hub with AD FS publishes it: clients then sign in without Microsoft hosts.
        assert body["authentication"]["loginEndpoint"] == server.endpoint + "/adfs/"
        assert body["authentication"]["audiences"] == [server.endpoint + "/"]
        assert body["galleryEndpoint"] and body["graphEndpoint"]
    r = httpx.get(f"{server.endpoint}/metadata/endpoints", verify=server.tls)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MissingApiVersionParameter"


def test_the_cloud_object_the_current_cli_registers_from(server: AltoServer) -> None:
    r = httpx.get(f"{server.endpoint}/metadata/endpoints?api-version=2022-09-01", verify=server.tls)
    assert r.status_code == 200
    cloud = r.json()
    assert cloud["resourceManager"] == server.endpoint + "/"
    assert cloud["name"] and cloud["suffixes"]["storage"]
    auth = cloud["authentication"]
    assert auth["loginEndpoint"] == server.endpoint + "/adfs/"
    assert auth["audiences"] == [server.endpoint + "/"]
    assert auth["identityProvider"] == "ADFS" and auth["tenant"] == server.credentials["tenantId"]
    r = httpx.get(f"{server.endpoint}/metadata/endpoints?api-version=2019-05-01", verify=server.tls)
    assert r.status_code == 200 and r.json() == [cloud]


def test_the_adfs_discovery_documents_and_token_endpoint(server: AltoServer) -> None:
    """What MSAL reads for an authority ending in /adfs, and a token from the endpoint it names."""
    r = httpx.get(f"{server.endpoint}/adfs/.well-known/openid-configuration", verify=server.tls)
    assert r.status_code == 200
    config = r.json()
    assert config["token_endpoint"] == server.endpoint + "/adfs/oauth2/token"
    keys = httpx.get(config["jwks_uri"], verify=server.tls).json()["keys"]
    assert keys and keys[0]["kty"] == "RSA"
    tenant = server.credentials["tenant"]
    form = {
        "grant_type": "client_credentials",
        "client_id": tenant["clientId"],
        "client_secret": tenant["clientSecret"],
    }
    for scope in (f"{server.endpoint}//.default", f"{server.endpoint}/.default"):
        r = httpx.post(config["token_endpoint"], data={**form, "scope": scope}, verify=server.tls)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        groups = httpx.get(
            f"{server.endpoint}/subscriptions/{tenant['subscriptionId']}/resourcegroups?api-version=2019-10-01",
            headers={"Authorization": f"Bearer {token}"},
            verify=server.tls,
        )
        assert groups.status_code == 200
    r = httpx.post(
        config["token_endpoint"], data={**form, "scope": "https://management.azure.com//.default"}, verify=server.tls
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_resource"
    r = httpx.post(
        config["token_endpoint"],
        data={"grant_type": "password", "username": "nobody", "password": "p", "client_id": tenant["clientId"]},
        verify=server.tls,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # A user's password grant also answers who signed in (an ID token for the public client that asked).
    user = server.credentials["users"]["tenant"]
    az_client = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
    r = httpx.post(
        config["token_endpoint"],
        data={"grant_type": "password", "username": user["name"], "password": user["password"], "client_id": az_client},
        verify=server.tls,
    )
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["id_token"], options={"verify_signature": False})
    assert (
        claims["aud"] == az_client and claims["upn"] == user["name"] and claims["tid"] == server.credentials["tenantId"]
    )
    assert claims["iss"] == config["issuer"]
