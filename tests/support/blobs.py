"""Tenants' blob uploads: a storage account, its keys, the official azure-storage-blob client, a fixed VHD.

The client is pointed at the server's own address with the account in the path (``https://127.0.0.1:PORT/acct``),
the form azure-storage-blob and the az CLI use for an IP endpoint; the account's published endpoint
(``https://acct.blob.local.127.0.0.1/``) names no host this machine resolves.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from azure.storage.blob import BlobServiceClient

from altostratus.marketplace.demo_images import build_demo_image
from altostratus.storage.vhd import fixed_footer
from tests.support.server import AltoServer

STORAGE_API = "api-version=2019-06-01"
RG_API = "api-version=2019-10-01"


def create_account(http: httpx.Client, group_path: str, name: str) -> str:
    """Create storage account ``name`` in the group at ``group_path``; return its first key."""
    account = f"{group_path}/providers/Microsoft.Storage/storageAccounts/{name}"
    body = {"location": "local", "sku": {"name": "Standard_LRS"}, "kind": "Storage", "properties": {}}
    r = http.put(f"{account}?{STORAGE_API}", json=body)
    assert r.status_code in (200, 201), r.text
    keys = http.post(f"{account}/listKeys?{STORAGE_API}")
    assert keys.status_code == 200, keys.text
    return str(keys.json()["keys"][0]["value"])


def endpoint(server: AltoServer, account: str) -> str:
    return f"{server.endpoint}/{account}"


def connection_string(server: AltoServer, account: str, key: str) -> str:
    return (
        f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};"
        f"BlobEndpoint={endpoint(server, account)};"
    )


def blob_client(server: AltoServer, account: str, key: str) -> BlobServiceClient:
    return BlobServiceClient(
        endpoint(server, account), credential={"account_name": account, "account_key": key},
        connection_verify=server.ca,
    )  # fmt: skip


def demo_vhd(directory: Path, size_mib: int = 64) -> Path:
    """A fixed VHD of the demo image: its raw disk (sparse) and the 512-byte footer."""
    path = directory / "demo-linux.vhd"
    if not path.exists():
        build_demo_image(path, publisher="Altostratus", offer="DemoLinux", sku="vhd", version="1.0.0",
                         size_mib=size_mib)  # fmt: skip
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.seek(size)
            f.write(fixed_footer(size))
        os.chmod(path, 0o644)
    return path


def upload_vhd(server: AltoServer, account: str, key: str, vhd: Path, container: str = "images") -> str:
    """Upload ``vhd`` as a page blob (as ``az storage blob upload`` does for .vhd files); return its URL as the
    account publishes it (what ``osDisk.image.uri`` names)."""
    service = blob_client(server, account, key)
    if not service.get_container_client(container).exists():
        service.create_container(container)
    with open(vhd, "rb") as f:
        service.get_blob_client(container, vhd.name).upload_blob(f, blob_type="PageBlob", overwrite=True)
    return f"https://{account}.blob.local.127.0.0.1/{container}/{vhd.name}"
