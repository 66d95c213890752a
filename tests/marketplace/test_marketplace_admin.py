"""Marketplace syndication through the admin APIs, as an operator drives it (Azure Stack semantics)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.marketplace import OFFER, PUB, SKU, Operator, make_catalog, product_name
from tests.support.server import AltoServer

V1, V2 = product_name(PUB, OFFER, SKU, "1.0.0"), product_name(PUB, OFFER, SKU, "1.1.0")
GALLERY = "microsoft.vmss.1.3.6"


@pytest.fixture
def market(tmp_path: Path) -> Iterator[tuple[AltoServer, Operator]]:
    upstream = make_catalog(tmp_path / "upstream")
    server = AltoServer(tmp_path / "data", extra_args=("--upstream", str(upstream))).start()
    op = Operator(server)
    yield server, op
    op.http.close()
    server.close()


def tenant_versions(server: AltoServer) -> list[str]:
    sub = server.credentials["tenant"]["subscriptionId"]
    with server.client() as c:
        r = c.get(
            f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/local/publishers/{PUB}/artifacttypes/vmimage"
            f"/offers/{OFFER}/skus/{SKU}/versions?api-version=2020-06-01"
        )
    assert r.status_code == 200, r.text
    return [v["name"] for v in r.json()]


def tenant_gallery(server: AltoServer) -> list[str]:
    sub = server.credentials["tenant"]["subscriptionId"]
    with server.client() as c:
        r = c.get(f"/subscriptions/{sub}/providers/Microsoft.Gallery/galleryItems?api-version=2015-04-01")
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["value"]]


def test_upstream_products_listed(market: tuple[AltoServer, Operator]) -> None:
    _, op = market
    products = {p["name"].split("/", 1)[1]: p["properties"] for p in op.products()}
    assert set(products) == {V1, V2, GALLERY}
    v1 = products[V1]
    assert v1["productKind"] == "virtualMachine" and v1["productProperties"]["version"] == "1.0.0"
    assert (
        v1["publisherIdentifier"] == PUB and v1["payloadLength"] == 8 << 20 and v1["downloadState"] == "NotDownloaded"
    )


def test_version_replacement_scenario(market: tuple[AltoServer, Operator]) -> None:
    server, op = market
    assert op.download(V1)["status"] == "Succeeded"
    assert op.image_versions() == ["1.0.0"] and tenant_versions(server) == ["1.0.0"]

    assert op.download(V2)["status"] == "Succeeded"
    assert op.image_versions() == ["1.1.0"], "a newer version replaces the older one"
    assert tenant_versions(server) == ["1.1.0"]
    assert [d["name"].split("/", 1)[1] for d in op.downloaded()] == [V2]

    again = op.start_download(V2)
    assert again.status_code == 409 and again.json()["error"]["code"] == "ImageVersionAlreadyExists"
    assert "Delete it first" in again.json()["error"]["message"]

    assert op.http.delete(op.image_url("1.1.0")).status_code == 200
    assert op.image_versions() == [] and tenant_versions(server) == []
    assert list((server.data_dir / "blobs").iterdir()) == [], "an unreferenced blob is collected"

    assert op.download(V2)["status"] == "Succeeded"
    assert tenant_versions(server) == ["1.1.0"]


def test_download_result_and_sizes(market: tuple[AltoServer, Operator]) -> None:
    _, op = market
    r = op.start_download(V1)
    status = op.wait(r)
    assert status["status"] == "Succeeded" and status["percentComplete"] == 100.0
    final = op.http.get(r.headers["location"])  # final-state-via: location → the downloaded product
    assert final.status_code == 200
    props = final.json()["properties"]
    assert props["provisioningState"] == "Succeeded" and props["virtualSize"] == 8 << 20
    assert props["allocatedSize"] < props["virtualSize"] // 4, "stored sparse"


def test_gallery_item_download_and_removal(market: tuple[AltoServer, Operator]) -> None:
    server, op = market
    assert op.download(GALLERY)["status"] == "Succeeded"
    assert tenant_gallery(server) == [GALLERY]
    r = op.http.delete(f"{op.gallery}/{GALLERY}?api-version=2016-05-01")  # Remove-AzsGalleryItem
    assert r.status_code == 200
    assert tenant_gallery(server) == []
    assert op.http.delete(f"{op.gallery}/{GALLERY}?api-version=2016-05-01").status_code == 204


def test_concurrent_requests_join_one_download(market: tuple[AltoServer, Operator]) -> None:
    _, op = market
    first, second = op.start_download(V1), op.start_download(V1)
    assert first.status_code == 202
    if second.status_code == 202:
        assert second.headers["azure-asyncoperation"] == first.headers["azure-asyncoperation"]
    else:  # the first one already finished
        assert second.status_code == 409
    assert op.wait(first)["status"] == "Succeeded"


def test_unknown_product_and_tenant_refused(market: tuple[AltoServer, Operator]) -> None:
    server, op = market
    r = op.start_download("No.Such.Product")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ProductNotFound"
    with server.client() as tenant:
        r = tenant.get(f"{op.activation}/products?api-version=2016-01-01")
        assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"


def test_add_platform_image_from_path_and_remove(market: tuple[AltoServer, Operator], tmp_path: Path) -> None:
    server, op = market
    disk = tmp_path / "custom.raw"
    with disk.open("wb") as f:
        f.truncate(4 << 20)
        f.write(b"custom image")
    r = op.http.put(
        op.image_url("2.0.0", "Fabrikam", "Custom", "v"),
        json={"properties": {"osDisk": {"osType": "Linux", "uri": str(disk)}}},
    )
    assert r.status_code == 201 and r.json()["properties"]["provisioningState"] == "Creating"
    assert op.wait(r)["status"] == "Succeeded"
    image = op.http.get(op.image_url("2.0.0", "Fabrikam", "Custom", "v")).json()
    assert image["properties"]["provisioningState"] == "Succeeded" and image["properties"]["virtualSize"] == 4 << 20
    r = op.http.put(
        op.image_url("2.0.0", "Fabrikam", "Custom", "v"), json={"properties": {"osDisk": {"uri": str(disk)}}}
    )
    assert r.status_code == 409
    r = op.http.put(op.image_url("2.0.1", "Fabrikam", "Custom", "v"), json={"properties": {"osDisk": {}}})
    assert r.status_code == 400 and r.json()["error"]["target"] == "properties.osDisk.uri"
    assert op.http.delete(op.image_url("2.0.0", "Fabrikam", "Custom", "v")).status_code == 200
    assert op.http.get(op.image_url("2.0.0", "Fabrikam", "Custom", "v")).status_code == 404


def test_vm_extensions_and_gallery_create(market: tuple[AltoServer, Operator], tmp_path: Path) -> None:
    server, op = market
    handler = tmp_path / "handler.zip"
    handler.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip archive
    ext_base = op.images.replace("platformImage", "VMExtension")
    url = f"{ext_base}/publishers/Contoso.Ext/types/Hello/versions/1.0.0?api-version=2015-12-01-preview"
    r = op.http.put(url, json={"properties": {"vmOsType": "Linux", "sourceBlob": {"uri": str(handler)}}})
    assert r.status_code == 201, r.text
    assert op.wait(r)["status"] == "Succeeded"
    got = op.http.get(url).json()
    assert got["properties"]["provisioningState"] == "Succeeded" and got["properties"]["vmOsType"] == "Linux"
    assert [e["name"] for e in op.http.get(f"{ext_base}?api-version=2015-12-01-preview").json()] == ["1.0.0"]
    assert op.http.put(url, json={"properties": {"sourceBlob": {"uri": str(handler)}}}).status_code == 409
    assert op.http.delete(url).status_code == 200
    assert op.http.get(url).status_code == 404

    manifest = tmp_path / "item.json"
    manifest.write_text('{"publisher": "contoso", "name": "webapp", "version": "2.0.0", "displayName": "Web app"}')
    r = op.http.post(
        f"{op.gallery}?api-version=2016-05-01", json={"galleryItemUri": str(manifest)}
    )  # Add-AzsGalleryItem
    assert r.status_code == 201 and r.json()["name"] == "contoso.webapp.2.0.0", r.text
    assert tenant_gallery(server) == ["contoso.webapp.2.0.0"]
    got = op.http.get(f"{op.gallery}/CONTOSO.webapp.2.0.0?api-version=2016-05-01").json()
    assert got["properties"]["itemDisplayName"] == "Web app"
    r = op.http.post(f"{op.gallery}?api-version=2016-05-01", json={"galleryItemUri": str(tmp_path / "missing.json")})
    assert r.status_code == 400, r.text
