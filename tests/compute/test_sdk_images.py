"""The official SDK reads the image catalogue, on every line the venv has (the ``sdk`` fixture: azure-mgmt-compute
35.x with the 2018-03-01-hybrid and 2020-09-01-hybrid profiles, or the current 39.x)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import ResourceNotFoundError

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    root = tmp_path_factory.mktemp("images")
    upstream = make_catalog(root / "upstream", versions=("1.0.0", "1.2.0"))
    server = AltoServer(root / "data", extra_args=("--upstream", str(upstream))).start()
    op = Operator(server)
    # Two different skus so that both versions stay (a newer version of the same sku replaces the older).
    assert op.download(product_name(PUB, OFFER, SKU, "1.2.0"))["status"] == "Succeeded"
    disk = root / "other.raw"
    disk.write_bytes(b"x" * 4096)
    r = op.http.put(op.image_url("1.10.0"), json={"properties": {"osDisk": {"osType": "Linux", "uri": str(disk)}}})
    assert op.wait(r)["status"] == "Succeeded"
    r = op.http.put(op.image_url("1.9.0"), json={"properties": {"osDisk": {"osType": "Linux", "uri": str(disk)}}})
    assert op.wait(r)["status"] == "Succeeded"
    op.http.close()
    yield server
    server.close()


def test_virtual_machine_images(synced: AltoServer, sdk: SdkLine) -> None:
    cc = sdk.compute(synced)
    images = cc.virtual_machine_images
    assert [p.name for p in images.list_publishers("local")] == [PUB]
    assert [o.name for o in images.list_offers("local", PUB.lower())] == [OFFER]
    assert [s.name for s in images.list_skus("local", PUB, OFFER)] == [SKU]
    versions = [v.name for v in images.list("local", PUB, OFFER, SKU)]
    assert versions == ["1.2.0", "1.9.0", "1.10.0"], "numeric, not lexical, order"
    newest = images.list("local", PUB, OFFER, SKU, orderby="name desc", top=1)
    assert [v.name for v in newest] == ["1.10.0"]
    image = images.get("local", PUB, OFFER, SKU, "1.2.0")
    assert image.name == "1.2.0" and sdk.compute_properties(image).os_disk_image.operating_system == "Linux"
    with pytest.raises(ResourceNotFoundError):
        images.get("local", PUB, OFFER, SKU, "9.9.9")
