"""A sweep of odd requests against the compute and marketplace APIs: CloudErrors or success, never a 500."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, Tenant, vmss_body

BODIES: list[bytes] = [
    b"",
    b"{}",
    b"[]",
    b"null",
    b'"x"',
    b'{"properties": []}',
    b'{"properties": ["a"]}',
    b'{"properties": {"osDisk": ["a"], "sourceBlob": ["a"], "virtualMachineProfile": ["a"]}}',
    b'{"properties": {"osDisk": []}}',
    b'{"properties": {"protectionPolicy": 5}}',
    b'{"sku": 5}',
    b'{"sku": {"capacity": "3"}}',
    b'{"instanceIds": "0"}',
    b'{"instanceIds": [null]}',
    b'{"properties": {"virtualMachineProfile": []}}',
    b'{"properties": {"upstream": 7}}',
    b'{"galleryItemUri": 5}',
    b'{"location": "local", "properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": 1}}}}',
]


def test_compute_and_marketplace_never_answer_500(tmp_path: Path) -> None:
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(make_catalog(tmp_path / "up")))).start()
    try:
        op = Operator(server)
        assert op.download(product_name(PUB, OFFER, SKU, "1.0.0"))["status"] == "Succeeded"
        t = Tenant(server, unique("fz"))
        t.create("web", vmss_body(1))
        paths = [
            (t.http, f"{t.base}/web"),
            (t.http, f"{t.base}/nope"),
            (t.http, f"{t.base}/web/virtualMachines/0"),
            (t.http, f"{t.base}/web/virtualMachines/abc"),
            (t.http, f"{t.base}/web/virtualMachines/99999999999999"),
            (t.http, f"{t.base}/web/delete"),
            (t.http, f"{t.base}/web/manualupgrade"),
            (t.http, f"{t.base}/web/reimage"),
            (t.http, f"{t.base}/web/osRollingUpgrade"),
            (t.http, f"{t.base}/web/rollingUpgrades/cancel"),
            (t.http, f"{t.base}/web/rollingUpgrades/latest"),
            (t.http, f"{t.base}/web/virtualMachines/0/restart"),
            (t.http, f"/subscriptions/{t.sub}/providers/Microsoft.Compute/locations/local/publishers/x/artifacttypes"),
            (op.http, f"{op.activation}"),
            (op.http, f"{op.activation}/products/nope/download"),
            (op.http, f"{op.activation}/downloadedProducts/nope"),
            (op.http, op.image_url("1.0.0").split("?")[0]),
            (op.http, op.image_url("bad-version").split("?")[0]),
            (op.http, op.gallery),
            (op.http, f"{op.images.replace('platformImage', 'VMExtension')}/publishers/p/types/t/versions/1.0.0"),
            (op.http, op.images.replace("artifactTypes/platformImage", "quotas/q1")),
        ]  # fmt: skip
        versions = ["api-version=2020-06-01", "api-version=2016-01-01", "api-version=2015-12-01-preview",
                    "api-version=2016-05-01", "api-version=2018-02-09"]  # fmt: skip
        for (client, path), method in itertools.product(paths, ("GET", "PUT", "PATCH", "POST", "DELETE")):
            for version in versions:
                for body in BODIES if method in ("PUT", "PATCH", "POST") else [b""]:
                    r = client.request(method, f"{path}?{version}&$top=2", content=body)
                    assert r.status_code < 500, (method, path, version, body, r.text)
        assert t.http.get(f"{t.base}/web?{COMPUTE}").status_code in (200, 404)
    finally:
        server.close()
