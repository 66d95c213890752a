"""The compute admin APIs refuse, with a 400 on every database, what does not fit the columns it is stored in.

Found by the fuzz suite's long run on PostgreSQL (tests/arm/test_fuzz_bodies.py) and the path-name probe that
followed it: a quota limit of ``9223372036854775806`` fits the body limits (64-bit) but not an ``integer``
column, and a quota, image or extension name longer than its ``varchar`` column, were 500s on PostgreSQL and
stored as-is on SQLite, which enforces neither.
"""

from __future__ import annotations

import uuid

import httpx

from tests.support.server import AltoServer

QUOTA_API = "api-version=2018-02-09"
ADMIN_API = "api-version=2015-12-01-preview"
INT32_MAX = 2**31 - 1
LIMITS = ["virtualMachineCount", "coresLimit", "availabilitySetCount", "vmScaleSetCount"]


def refused(op: httpx.Client, url: str, body: dict, target: str) -> None:
    r = op.put(url, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["target"]) == ("InvalidParameter", target), error
    assert op.get(url).status_code == 404, "a refused PUT stores nothing"


def test_quota_limits_and_names_past_their_columns_are_refused(fresh_server: AltoServer) -> None:
    server = fresh_server.start()
    with server.client("operator") as op:
        base = f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers/Microsoft.Compute.Admin"
        quotas = f"{base}/locations/local/quotas"
        for field in LIMITS:
            for value in (INT32_MAX + 1, 2**63 - 2):
                url = f"{quotas}/{uuid.uuid4()}?{QUOTA_API}"
                refused(op, url, {"properties": {field: value}}, f"properties.{field}")
            url = f"{quotas}/{uuid.uuid4()}?{QUOTA_API}"
            r = op.put(url, json={"properties": {field: INT32_MAX}})
            assert r.status_code == 201, r.text
            assert op.get(url).json()["properties"][field] == INT32_MAX
        refused(op, f"{quotas}/{'q' * 129}?{QUOTA_API}", {"properties": {}}, "quotaName")
        assert op.put(f"{quotas}/{'q' * 128}?{QUOTA_API}", json={"properties": {}}).status_code == 201


def test_image_and_extension_names_past_their_columns_are_refused(fresh_server: AltoServer) -> None:
    server = fresh_server.start()
    with server.client("operator") as op:
        base = f"/subscriptions/{server.credentials['operator']['subscriptionId']}/providers/Microsoft.Compute.Admin"
        images = f"{base}/locations/local/artifactTypes/platformImage"
        extensions = f"{base}/locations/local/artifactTypes/VMExtension"
        image = {"properties": {"osDisk": {"uri": "/nonexistent/disk.raw"}}}
        extension = {"properties": {"sourceBlob": {"uri": "/nonexistent/ext.zip"}}}
        long, version = "p" * 129, "1.0." + "1" * 61
        long_uri = {"properties": {"osDisk": {"uri": "/" + "u" * 2048}}}
        cases = [
            (f"{images}/publishers/{long}/offers/o/skus/s/versions/1.0.0", image, "publisher"),
            (f"{images}/publishers/p/offers/{long}/skus/s/versions/1.0.0", image, "offer"),
            (f"{images}/publishers/p/offers/o/skus/{long}/versions/1.0.0", image, "sku"),
            (f"{images}/publishers/p/offers/o/skus/s/versions/{version}", image, "version"),
            (f"{images}/publishers/{'p' * 100}/offers/{'o' * 100}/skus/{'s' * 100}/versions/1.0.0", image, "name"),
            (f"{images}/publishers/p/offers/o/skus/s/versions/1.0.0", long_uri, "properties.osDisk.uri"),
            (f"{extensions}/publishers/{long}/types/t/versions/1.0.0", extension, "publisher"),
            (f"{extensions}/publishers/p/types/{long}/versions/1.0.0", extension, "type"),
            (f"{extensions}/publishers/p/types/t/versions/{version}", extension, "version"),
            (f"{extensions}/publishers/{'p' * 128}/types/{'t' * 128}/versions/1.0.0", extension, "name"),
        ]  # fmt: skip
        for path, body, target in cases:
            refused(op, f"{path}?{ADMIN_API}", body, target)
        # At the limits they are accepted (the import then fails: there is no such file; that is the operation's).
        r = op.put(f"{images}/publishers/{'p' * 128}/offers/o/skus/s/versions/1.0.0?{ADMIN_API}", json=image)
        assert r.status_code == 201, r.text
