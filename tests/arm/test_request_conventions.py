"""ARM request conventions every provider shares: case-insensitive paths with canonical ids back, request ids
and the access log, unknown body fields tolerated."""

from __future__ import annotations

import json
import re
import time

from tests.support.names import unique
from tests.support.server import AltoServer

RG_API = "api-version=2019-10-01"


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


def test_urls_in_headers_and_links_are_percent_encoded(server: AltoServer) -> None:
    """Names may hold any Unicode letter (``\\w``), and URLs built from them went into headers as they were: a
    deployment named with U+1740 was a 500 (UnicodeEncodeError: headers are Latin-1; found by the fuzz suite's
    long run). URLs this server writes are percent-encoded, and a client that follows them gets there."""
    sub = server.credentials["tenant"]["subscriptionId"]
    group, name = unique("rg"), unique("d") + "\u1740\u00e9"
    template = {"$schema": "x", "contentVersion": "1.0.0.0", "resources": []}
    with server.client() as c:
        c.put(f"/subscriptions/{sub}/resourcegroups/{group}?{RG_API}", json={"location": "local"}).raise_for_status()
        url = f"/subscriptions/{sub}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/{name}?{RG_API}"
        r = c.put(url, json={"properties": {"mode": "Incremental", "template": template}})
        assert r.status_code == 201, r.text
        status_url = r.headers["azure-asyncoperation"]
        assert status_url.isascii() and "%E1%9D%80%C3%A9" in status_url, status_url
        deadline = time.time() + 30
        while (status := c.get(status_url).json()["status"]) not in ("Succeeded", "Failed") and time.time() < deadline:
            time.sleep(0.2)
        assert status == "Succeeded"
        assert c.get(url).json()["name"] == name
