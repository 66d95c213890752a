"""The metadata endpoints clients discover the cloud from, which answer without a token."""

from __future__ import annotations

import httpx

from tests.support.server import AltoServer


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
