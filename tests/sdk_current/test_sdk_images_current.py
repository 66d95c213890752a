"""The current azure-mgmt-compute release (api-version 2026-04-01) reads the image catalogue."""

from __future__ import annotations

from pathlib import Path

from azure.mgmt.compute import ComputeManagementClient

from tests.conftest import sdk_credential, sdk_kwargs
from tests.marketplace_util import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.server import AltoServer


def test_virtual_machine_images(tmp_path: Path) -> None:
    upstream = make_catalog(tmp_path / "upstream")
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(upstream))).start()
    try:
        op = Operator(server)
        assert op.download(product_name(PUB, OFFER, SKU, "1.1.0"))["status"] == "Succeeded"
        sub = server.credentials["tenant"]["subscriptionId"]
        cc = ComputeManagementClient(sdk_credential(server), sub, **sdk_kwargs(server))
        images = cc.virtual_machine_images
        assert [p.name for p in images.list_publishers("local")] == [PUB]
        assert [o.name for o in images.list_offers("local", PUB)] == [OFFER]
        assert [s.name for s in images.list_skus("local", PUB, OFFER)] == [SKU]
        assert [v.name for v in images.list("local", PUB, OFFER, SKU)] == ["1.1.0"]
        assert images.get("local", PUB, OFFER, SKU, "1.1.0").name == "1.1.0"
        op.http.close()
    finally:
        server.close()
