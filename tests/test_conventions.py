"""ARM conventions on the wire: casing, metadata endpoints, LRO headers, request ids, access log."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlparse

import httpx

from tests.conftest import unique
from tests.server import AltoServer

RG_API = "api-version=2019-10-01"


def test_metadata_endpoints_without_auth(server: AltoServer) -> None:
    # msrestazure concatenates endpoint + "/metadata/...", so a trailing slash gives "//metadata": accept it.
    for path in ("/metadata/endpoints", "//metadata/endpoints"):
        r = httpx.get(f"{server.endpoint}{path}?api-version=2015-01-01", verify=server.tls)
        assert r.status_code == 200
        body = r.json()
        assert body["authentication"]["loginEndpoint"] == server.endpoint + "/"
        assert body["authentication"]["audiences"] == [server.endpoint + "/"]
        assert body["galleryEndpoint"] and body["graphEndpoint"]
    r = httpx.get(f"{server.endpoint}/metadata/endpoints", verify=server.tls)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MissingApiVersionParameter"


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


def test_case_insensitive_paths_and_canonical_ids(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    name = unique("MiXeD")
    with server.client() as c:
        r = c.put(
            f"/SUBSCRIPTIONS/{sub.upper()}/ResourceGroups/{name}?Api-Version=2019-10-01", json={"location": "LOCAL"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["id"] == f"/subscriptions/{sub}/resourceGroups/{name}"
        assert r.json()["location"] == "local"
        r = c.get(f"/subscriptions/{sub}/resourcegroups/{name.lower()}?{RG_API}")
        assert r.status_code == 200 and r.json()["name"] == name
        # Same name in other casing is the same group: PUT updates it, the original casing stays.
        r = c.put(f"/subscriptions/{sub}/resourcegroups/{name.upper()}?{RG_API}", json={"location": "local"})
        assert r.status_code == 200 and r.json()["name"] == name


def test_long_running_operation_headers(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    name = unique()
    with server.client() as c:
        c.put(f"/subscriptions/{sub}/resourcegroups/{name}?{RG_API}", json={"location": "local"}).raise_for_status()
        r = c.delete(f"/subscriptions/{sub}/resourcegroups/{name}?{RG_API}")
        assert r.status_code == 202 and r.content == b""
        for header in ("azure-asyncoperation", "location"):
            url = urlparse(r.headers[header])
            assert url.scheme == "https" and url.netloc == f"127.0.0.1:{server.port}", "absolute, on our host"
            assert "api-version=2019-10-01" in url.query
        assert int(r.headers["retry-after"]) >= 1
        status = c.get(r.headers["azure-asyncoperation"])
        assert status.status_code == 200
        body = status.json()
        assert body["status"] in ("InProgress", "Succeeded") and body["name"] and body["startTime"]
        if body["status"] == "InProgress":
            assert int(status.headers["retry-after"]) >= 1


def test_request_ids_and_access_log(server: AltoServer) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    with server.client() as c:
        r = c.get(f"/subscriptions/{sub}/resourcegroups?{RG_API}", headers={"x-ms-client-request-id": "my-req-1"})
    request_id = r.headers["x-ms-request-id"]
    assert r.headers["x-ms-client-request-id"] == "my-req-1"
    entry = None
    for _ in range(100):  # access-log lines are written in batches, at most 0.1 s late
        entries = [
            json.loads(line.split("altostratus.access ", 1)[1])
            for line in server.log_path.read_text().splitlines()
            if "altostratus.access " in line
        ]
        entry = next((e for e in entries if e["requestId"] == request_id), None)
        if entry is not None:
            break
        time.sleep(0.02)
    assert entry is not None, "no access-log line for the request"
    line = next(x for x in server.log_path.read_text().splitlines() if request_id in x)
    # The buffered writer prints what the logging configuration would: "<asctime> INFO <logger> <message>".
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO altostratus\.access \{.*\}", line), line
    assert entry["status"] == 200 and entry["clientRequestId"] == "my-req-1" and entry["method"] == "GET"
    assert entry["client"] == server.credentials["tenant"]["clientId"] and entry["ms"] >= 0


def test_unknown_body_fields_are_tolerated(server: AltoServer) -> None:
    """Newer api-versions send fields we don't know; they must not break the request."""
    sub = server.credentials["tenant"]["subscriptionId"]
    with server.client() as c:
        r = c.put(
            f"/subscriptions/{sub}/resourcegroups/{unique()}?api-version=2025-04-01",
            json={"location": "local", "properties": {"futureThing": 1}, "someNewField": {"a": 1}},
        )
        assert r.status_code == 201
