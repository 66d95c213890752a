"""Operator CLI for the marketplace, against a running server whose default upstream is the demo marketplace."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from altostratus.blobs.models import BlobRef
from altostratus.blobs.store import BlobStore
from altostratus.store.db import Database
from tests.support.marketplace import image_product
from tests.support.server import ALTO, AltoServer, free_port

DEMO_V1, DEMO_V2 = "Altostratus.DemoLinuxdemo.1.0.0", "Altostratus.DemoLinuxdemo.1.1.0"


def alto(server: AltoServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ALTO, *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    """`alto up` with no --upstream: registered with the embedded demo marketplace."""
    server = AltoServer(tmp_path_factory.mktemp("demo") / "data").start()
    yield server
    server.close()


def test_demo_marketplace_is_the_default(demo: AltoServer) -> None:
    out = alto(demo, "marketplace", "list-upstream", "-o", "json")
    assert out.returncode == 0, out.stderr
    products = {p["name"]: p["properties"] for p in json.loads(out.stdout)}
    assert {DEMO_V1, DEMO_V2, "Altostratus.Extensions.CustomScript.1.0.0", "microsoft.vmss.1.3.6"} <= set(products)
    assert products[DEMO_V1]["productKind"] == "virtualMachine"
    assert products["microsoft.vmss.1.3.6"]["productKind"] == "galleryItem"
    raw = json.loads((demo.data_dir / "demo-catalog" / "catalog.json").read_text())
    assert raw["formatVersion"] == 2, "the demo publishes extent maps"
    assert all(p["payload"]["extents"] for p in raw["products"])


def test_download_list_remove_with_the_cli(demo: AltoServer) -> None:
    out = alto(demo, "marketplace", "download", DEMO_V1)
    assert out.returncode == 0, out.stderr
    assert f"Downloaded '{DEMO_V1}'" in out.stdout and "allocated" in out.stdout
    images = json.loads(alto(demo, "image", "list", "-o", "json").stdout)
    assert [i["urn"] for i in images] == ["Altostratus:DemoLinux:demo:1.0.0"]
    table = alto(demo, "marketplace", "list").stdout
    assert DEMO_V1 in table and "Succeeded" in table

    again = alto(demo, "marketplace", "download", DEMO_V1)
    assert again.returncode == 1 and "ImageVersionAlreadyExists" in again.stderr

    assert alto(demo, "marketplace", "download", "microsoft.vmss.1.3.6").returncode == 0
    assert "microsoft.vmss.1.3.6" in alto(demo, "gallery-item", "list").stdout
    out = alto(demo, "gallery-item", "remove", "microsoft.vmss.1.3.6")
    assert out.returncode == 0 and "Removed" in out.stdout
    assert json.loads(alto(demo, "gallery-item", "list", "-o", "json").stdout) == []

    assert alto(demo, "marketplace", "remove", DEMO_V1).returncode == 0
    assert json.loads(alto(demo, "image", "list", "-o", "json").stdout) == []


def test_image_add_and_remove(demo: AltoServer, tmp_path: Path) -> None:
    disk = tmp_path / "mine.raw"
    with disk.open("wb") as f:
        f.truncate(2 << 20)
        f.write(b"boot sector")
    out = alto(demo, "image", "add", "Fabrikam:Mine:v1:1.0.0", "--uri", str(disk))
    assert out.returncode == 0, out.stderr
    assert "Fabrikam:Mine:v1:1.0.0" in [i["urn"] for i in json.loads(alto(demo, "image", "list", "-o", "json").stdout)]
    out = alto(demo, "image", "add", "bad-urn", "--uri", str(disk))
    assert out.returncode == 2 and "publisher:offer:sku:version" in out.stderr
    assert alto(demo, "image", "remove", "Fabrikam:Mine:v1:1.0.0").returncode == 0


def test_catalog_build_serve_and_register(demo: AltoServer, tmp_path: Path) -> None:
    disk = tmp_path / "svc.raw"
    with disk.open("wb") as f:
        f.truncate(1 << 20)
        f.write(b"served")
    catalog = tmp_path / "catalog"
    out = subprocess.run(
        [ALTO, "catalog", "build", str(catalog), "--image", f"{disk}:Served:Img:s:1.0.0"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "1 extents, " in out.stdout and "bytes of data" in out.stdout
    assert json.loads((catalog / "catalog.json").read_text())["formatVersion"] == 2
    port = free_port()
    serve = subprocess.Popen([ALTO, "catalog", "serve", str(catalog), "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        assert alto(demo, "admin", "register", "--upstream", f"http://127.0.0.1:{port}/").returncode == 0
        listed = json.loads(alto(demo, "marketplace", "list-upstream", "-o", "json").stdout)
        assert [p["name"] for p in listed] == ["Served.Imgs.1.0.0"]
        out = alto(demo, "marketplace", "download", "Served.Imgs.1.0.0")
        assert out.returncode == 0, out.stderr
        out = subprocess.run([ALTO, "catalog", "build", str(catalog), "--format", "1"], capture_output=True, text=True)
        assert out.returncode == 0 and "sha256 " in out.stdout, out.stderr
        assert json.loads((catalog / "catalog.json").read_text())["formatVersion"] == 1
    finally:
        serve.terminate()
        serve.wait(10)
        alto(demo, "admin", "register", "--upstream", "demo")


def test_blob_outlives_its_image_while_an_instance_holds_it(tmp_path: Path) -> None:
    """Reference counting: replacing or deleting an image never removes a disk something still uses."""
    from altostratus.marketplace.syndication import new_download, promote

    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    db.migrate()
    blobs = BlobStore(tmp_path)
    product = image_product(tmp_path / "up", "1.0.0").model_dump()
    src = tmp_path / "up" / product["payload"]["path"]
    with db.session() as s:
        d = new_download(s, product, str(src), None)
    partial = blobs.partial(d.id)
    partial.write_bytes(src.read_bytes())
    with db.session() as s:
        promote(s, blobs, d.id, partial, product["payload"]["sha256"], product["payload"]["size"])
    sha = product["payload"]["sha256"]
    with db.session() as s:
        BlobStore.add_ref(s, sha, "instance", "vmss-a/0")
    with db.session() as s:
        from altostratus.marketplace.images import find_image, remove_image

        image = find_image(s, "Contoso", "TinyLinux", "base", "1.0.0")
        assert image is not None
        remove_image(s, image)
    assert blobs.gc(db) == [] and blobs.path(sha).exists(), "the instance still holds the blob"
    with db.session() as s:
        BlobStore.drop_refs(s, "instance", "vmss-a/0")
        assert s.get(BlobRef, (sha, "instance", "vmss-a/0")) is None
    assert blobs.gc(db) == [sha] and not blobs.path(sha).exists()
    db.dispose()
