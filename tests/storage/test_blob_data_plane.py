"""The blob data plane (docs/blob-storage.md) through the official azure-storage-blob client, and user images by
blob URI on a scale set's PUT: what works and what each bad input gets."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient

from altostratus.storage.vhd import fixed_footer
from tests.support import blobs
from tests.support.names import unique
from tests.support.network import STORAGE, Group, error
from tests.support.server import AltoServer
from tests.support.vmss import COMPUTE, vmss_body

VMSS = "Microsoft.Compute/virtualMachineScaleSets"


def new_account(group: Group) -> tuple[str, str]:
    name = unique("blob").replace("-", "")[:24]
    return name, blobs.create_account(group.http, group.path, name)


def user_image_body(uri: str, os_type: str | None = "Linux", capacity: int = 1) -> dict[str, Any]:
    body = vmss_body(capacity)
    storage = body["properties"]["virtualMachineProfile"]["storageProfile"]
    del storage["imageReference"]
    storage["osDisk"] = {"createOption": "FromImage", "image": {"uri": uri}}
    if os_type:
        storage["osDisk"]["osType"] = os_type
    return body


def sblob_files(server: AltoServer) -> set[str]:
    return {p.name for p in (server.data_dir / "blobs").iterdir() if p.name.startswith("sblob-")}


def test_containers_block_and_page_blobs_with_the_official_client(server: AltoServer, group: Group) -> None:
    account, key = new_account(group)
    service = blobs.blob_client(server, account, key)
    service.create_container("data")
    with pytest.raises(ResourceExistsError):
        service.create_container("data")
    assert [c.name for c in service.list_containers()] == ["data"]
    container = service.get_container_client("data")

    small = container.get_blob_client("small.txt")
    small.upload_blob(b"hello, blob")
    assert small.download_blob().readall() == b"hello, blob"
    with pytest.raises(ResourceExistsError):  # no overwrite: If-None-Match: *
        small.upload_blob(b"again")
    small.upload_blob(b"replaced", overwrite=True)
    assert small.download_blob(offset=2, length=3).readall() == b"pla", "a range"

    in_blocks = BlobServiceClient(  # Put Block + Put Block List beyond 128 KiB
        blobs.endpoint(server, account), credential={"account_name": account, "account_key": key},
        connection_verify=server.ca, max_block_size=256 * 1024, max_single_put_size=128 * 1024,
    )  # fmt: skip
    big = in_blocks.get_blob_client("data", "big.bin")
    payload = bytes(range(256)) * 4096  # 1 MiB
    big.upload_blob(payload, max_concurrency=1)
    assert big.download_blob().readall() == payload
    assert big.get_blob_properties().size == len(payload)

    page = container.get_blob_client("disk.vhd")
    page.create_page_blob(size=4 * 512)
    page.upload_page(b"\1" * 512, offset=512, length=512)
    assert page.download_blob().readall() == b"\0" * 512 + b"\1" * 512 + b"\0" * 1024
    page.clear_page(offset=512, length=512)
    assert page.download_blob().readall() == b"\0" * 2048
    with pytest.raises(HttpResponseError) as exc:
        page.upload_page(b"\1" * 512, offset=2048, length=512)  # past the end
    assert exc.value.status_code == 416

    assert sorted(b.name for b in container.list_blobs()) == ["big.bin", "disk.vhd", "small.txt"]
    page.delete_blob()
    with pytest.raises(ResourceNotFoundError):
        page.get_blob_properties()
    service.delete_container("data")
    with pytest.raises(ResourceNotFoundError):
        container.get_container_properties()


def test_bad_requests_get_the_storage_service_errors(server: AltoServer, group: Group) -> None:
    account, key = new_account(group)
    service = blobs.blob_client(server, account, key)
    wrong = BlobServiceClient(
        blobs.endpoint(server, account), credential={"account_name": account, "account_key": blobs.create_account(
            group.http, group.path, new_account(group)[0])}, connection_verify=server.ca,
    )  # fmt: skip
    with pytest.raises(ClientAuthenticationError):
        wrong.create_container("nope")
    with pytest.raises(ResourceNotFoundError):
        service.get_container_client("missing").get_container_properties()
    with pytest.raises(HttpResponseError) as exc:
        service.create_container("Bad_Name")
    assert exc.value.status_code == 400
    service.create_container("one")
    with pytest.raises(ResourceNotFoundError):
        service.get_blob_client("one", "none").download_blob()
    with pytest.raises(HttpResponseError) as exc:
        service.get_blob_client("one", "odd").create_page_blob(size=1000)  # not a multiple of 512
    assert exc.value.status_code == 400
    unsigned = httpx.get(f"{blobs.endpoint(server, account)}/one?restype=container", headers={"x-ms-version":
                         "2021-08-06"}, verify=server.tls)  # fmt: skip
    assert unsigned.status_code in (401, 403) and unsigned.headers["x-ms-error-code"] == "NoAuthenticationInformation"
    missing = httpx.get(f"{server.endpoint}/nosuchacct1/one?restype=container", headers={"x-ms-version":
                        "2021-08-06"}, verify=server.tls)  # fmt: skip
    assert missing.status_code == 404 and "<Code>ResourceNotFound</Code>" in missing.text


class ToServer(RequestsTransport):
    """Sends each request to the server's address with the blob host name it was made for (no DNS here)."""

    def __init__(self, server: AltoServer) -> None:
        super().__init__(connection_verify=server.ca)
        self.server = server

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        url = httpx.URL(request.url)
        request.headers["Host"] = url.host
        request.url = f"{self.server.endpoint}{url.raw_path.decode()}"
        return super().send(request, **kwargs)


def test_blob_host_name_routes_to_the_account(server: AltoServer, group: Group) -> None:
    """``Host: <account>.blob.<region>.<domain>`` reaches the account on the same listener; the client signs the
    path without the account, as it does against Azure."""
    account, key = new_account(group)
    service = BlobServiceClient(
        f"https://{account}.blob.local.127.0.0.1", credential={"account_name": account, "account_key": key},
        transport=ToServer(server),
    )  # fmt: skip
    service.create_container("named")
    blob = service.get_blob_client("named", "a.txt")
    blob.upload_blob(b"by name")
    assert blob.download_blob().readall() == b"by name"
    assert [c.name for c in service.list_containers()] == ["named"]


def test_scale_set_boots_from_an_uploaded_vhd_and_bad_uris_are_refused(
    server: AltoServer, group: Group, tmp_path: Path
) -> None:
    account, key = new_account(group)
    uri = blobs.upload_vhd(server, account, key, blobs.demo_vhd(tmp_path))
    service = blobs.blob_client(server, account, key)
    base = uri.rsplit("/", 1)[0]
    service.get_blob_client("images", "block.vhd").upload_blob(b"\0" * 1024 + fixed_footer(1024))
    dynamic = tmp_path / "dynamic.vhd"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", str(dynamic), "4M"], check=True)
    blobs.upload_vhd(server, account, key, dynamic)

    refusals = {
        f"{base}/missing.vhd": "there is no blob 'missing.vhd'",
        f"{base}/block.vhd": "a disk image must be a page blob",
        f"{base}/dynamic.vhd": "it is a dynamic VHD",
        "https://example.com/images/x.vhd": "not a blob of this cloud",
        uri.replace(".blob.local.", ".blob.elsewhere."): "names region 'elsewhere'",
        uri.replace(account, "nosuchaccount9"): "does not exist in this subscription",
    }
    for bad, why in refusals.items():
        err = error(group.put(VMSS, "bad", user_image_body(bad), COMPUTE), 400, "InvalidParameter")
        assert why in err["message"] and err["target"] == "osDisk.image.uri", err
    err = error(group.put(VMSS, "bad", user_image_body(uri, os_type=None), COMPUTE), 400, "InvalidParameter")
    assert err["target"] == "osDisk.osType", err
    both = user_image_body(uri)
    both["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = vmss_body(1)["properties"][
        "virtualMachineProfile"]["storageProfile"]["imageReference"]  # fmt: skip
    error(group.put(VMSS, "bad", both, COMPUTE), 400, "InvalidParameter")
    assert group.get(VMSS, "bad", COMPUTE).status_code == 404, "nothing was created"

    before = sblob_files(server)
    created = group.put(VMSS, "fromvhd", user_image_body(uri, capacity=2), COMPUTE)
    assert created.status_code == 201, created.text
    vms = group.http.get(f"{group.id(VMSS, 'fromvhd')}/virtualMachines?{COMPUTE}").json()["value"]
    assert len(vms) == 2 and all("imageReference" not in vm["properties"]["storageProfile"] for vm in vms)
    assert all(vm["properties"]["storageProfile"]["osDisk"]["osType"] == "Linux" for vm in vms)

    # The instances hold the content they booted from: a write to the blob goes to a copy.
    page = service.get_blob_client("images", "demo-linux.vhd")
    page.upload_page(b"\7" * 512, offset=0, length=512)
    after = sblob_files(server)
    assert before <= after and len(after - before) == 1, "one copy, the instances' content kept"
    assert page.download_blob(offset=0, length=512).readall() == b"\7" * 512

    changed = copy.deepcopy(user_image_body(f"{base}/dynamic.vhd", capacity=2))
    error(group.put(VMSS, "fromvhd", changed, COMPUTE), 409, "PropertyChangeNotAllowed")


def test_an_api_path_stays_arm_even_with_x_ms_version(server: AltoServer, group: Group) -> None:
    """Path-style blob requests are told apart by ``x-ms-version``; a path the ARM API routes is still ARM's."""
    with server.client() as http:
        r = http.get(f"{group.path}?api-version=2019-10-01", headers={"x-ms-version": "2021-08-06"})
    assert r.status_code == 200 and r.json()["name"] == group.name, r.text


def test_an_accounts_blobs_go_with_it(server: AltoServer, group: Group) -> None:
    """Deleting the account (or its group) deletes its blobs: a new account of the same name starts empty."""
    account, key = new_account(group)
    service = blobs.blob_client(server, account, key)
    service.create_container("kept")
    service.get_blob_client("kept", "a.txt").upload_blob(b"old tenant's data")
    assert group.http.delete(f"{group.id('Microsoft.Storage/storageAccounts', account)}?{STORAGE}").status_code == 200
    again = blobs.create_account(group.http, group.path, account)
    assert list(blobs.blob_client(server, account, again).list_containers()) == []
    blobs.blob_client(server, account, again).create_container("kept")
    with pytest.raises(ResourceNotFoundError):
        blobs.blob_client(server, account, again).get_blob_client("kept", "a.txt").download_blob()


def test_blobs_survive_a_crash(tmp_path: Path) -> None:
    """Acknowledged writes are on disk: after a kill and a restart the blob reads back as written (start-up's
    sweep of unaccounted files leaves data-plane content alone)."""
    server = AltoServer(tmp_path / "data").start()
    try:
        group = Group(server)
        account, key = new_account(group)
        service = blobs.blob_client(server, account, key)
        service.create_container("kept")
        page = service.get_blob_client("kept", "disk.vhd")
        page.create_page_blob(size=8192)
        page.upload_page(b"\5" * 4096, offset=4096, length=4096)
        server.kill()
        server.start()
        again = blobs.blob_client(server, account, key).get_blob_client("kept", "disk.vhd")
        assert again.download_blob().readall() == b"\0" * 4096 + b"\5" * 4096
    finally:
        server.close()
