"""What bench/api.py replays: a tenant's world built through the official SDK, and every request captured on the wire.

Why capture instead of writing the requests by hand: the bench must send exactly what the SDK sends (paths,
api-versions of the hybrid 2020-09-01 profile, query, headers including User-Agent, Accept, Accept-Encoding and a
bearer token), and the SDK is the judge of what that is. The clients get a ``raw_response_hook``; it sees the
``requests`` PreparedRequest (the headers that went on the wire) and our answer (status, body), which the baseline
then serves as constants.

The world: a resource group with a scale set of ``capacity`` instances (>= 101, so the first page of the VM list,
100 items by default, is full and carries a nextLink; the SDK asks for no ``$top``), more groups for the group
list, a small second scale set for the capacity PATCHes, and the status URL of the big set's creation as the
SDK polled it (``Azure-AsyncOperation``). Group PUT and DELETE are captured on a placeholder name of fixed width
that the load generator replaces per request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource import ResourceManagementClient
from azure.profiles import KnownProfiles
from tests.support.marketplace import OFFER, PUB, SKU, Operator, product_name
from tests.support.server import AltoServer
from tests.support.vmss import vmss_body

GROUP = "benchrg"
SET = "benchset"
WRITE_SET = "benchwrite"
LIST_GROUPS = 9  # plus benchrg: the group list returns 10
PLACEHOLDER = "benchw00000000"  # group PUT/DELETE: the load generator writes benchw<8 digits> in its place
PAGE = 100  # the VM list's default page size (docs/api-conventions.md, "Paging")
WRITE_CAPACITY = 2  # the PATCH run moves benchwrite between 2 and 3 instances


@dataclass(frozen=True)
class Exchange:
    """One request as the SDK put it on the wire (minus Host, which depends on the target) and our answer."""

    method: str
    target: str  # path?query
    headers: list[tuple[str, str]]
    body: bytes
    status: int
    answer: bytes
    content_type: str

    def encode(self, host: str, request_id: str, name: str | None = None) -> bytes:
        """The request for ``host``, with a fresh x-ms-client-request-id (as the SDK makes one per request)."""
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {host}"]
        for key, value in self.headers:
            lines.append(f"{key}: {request_id if key.lower() == 'x-ms-client-request-id' else value}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body
        return data.replace(PLACEHOLDER.encode(), name.encode()) if name else data

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "target": self.target, "status": self.status,
                "content_type": self.content_type, "answer": self.answer.decode()}  # fmt: skip


class Recorder:
    """The clients' raw_response_hook: keeps every exchange in order."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def hook(self, pipeline_response: Any) -> None:
        sent = pipeline_response.http_response.internal_response  # a requests.Response
        prepared = sent.request
        body = prepared.body or b""
        self.exchanges.append(
            Exchange(
                method=prepared.method,
                target=prepared.path_url,
                headers=[(k, v) for k, v in prepared.headers.items() if k.lower() != "host"],
                body=body.encode() if isinstance(body, str) else bytes(body),
                status=sent.status_code,
                answer=sent.content,
                content_type=sent.headers.get("content-type", ""),
            )
        )

    def last(self, method: str, contains: str = "") -> Exchange:
        for ex in reversed(self.exchanges):
            if ex.method == method and contains.lower() in ex.target.lower():
                return ex
        raise RuntimeError(f"the SDK sent no {method} {contains!r}")


def raise_quota(op: Operator, subscription: str, instances: int) -> None:
    """Azure Stack's default Compute quota (50 VMs) is below the bench's scale set: the operator raises it."""
    url = (
        f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/local/quotas/{subscription}"
        "?api-version=2018-02-09"
    )
    props = {"virtualMachineCount": instances, "coresLimit": instances * 8, "vmScaleSetCount": 100}
    op.http.put(url, json={"properties": props}).raise_for_status()


def scale_set_body(capacity: int, prefix: str) -> dict[str, Any]:
    body = vmss_body(capacity, prefix=prefix)
    body["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"] = {
        "disablePasswordAuthentication": False
    }
    return body


def prepare(server: AltoServer, capacity: int) -> str:
    """The operator's part: the image syndicated and the tenant's quota raised. Returns the tenant's subscription."""
    op = Operator(server)
    try:
        got = op.download(product_name(PUB, OFFER, SKU, "1.0.0"))
        if got["status"] != "Succeeded":
            raise RuntimeError(f"image download failed: {got}")
        sub = str(server.credentials["tenant"]["subscriptionId"])
        raise_quota(op, sub, capacity + 100)
    finally:
        op.http.close()
    return sub


def sdk_clients(server: AltoServer, sub: str, rec: Recorder) -> tuple[Any, Any]:
    """The tenant's resource and compute SDK clients on the hybrid 2020-09-01 profile; exchanges go to ``rec``."""
    c = server.credentials
    cred = ClientSecretCredential(
        c["tenantId"],
        c["tenant"]["clientId"],
        c["tenant"]["clientSecret"],
        authority=c["armEndpoint"],
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )
    kwargs: dict[str, Any] = {
        "base_url": server.endpoint,
        "credential_scopes": [server.endpoint + "/.default"],
        "connection_verify": server.ca,
        "profile": KnownProfiles.v2020_09_01_hybrid,
        "raw_response_hook": rec.hook,
    }
    return ResourceManagementClient(cred, sub, **kwargs), ComputeManagementClient(cred, sub, **kwargs)


def capture(server: AltoServer, capacity: int) -> dict[str, Exchange]:
    """Build the world through the SDK and return the exchanges to replay, by route label."""
    rec = Recorder()
    rc, cc = sdk_clients(server, prepare(server, capacity), rec)
    out: dict[str, Exchange] = {}

    rc.resource_groups.create_or_update(GROUP, {"location": "local"})
    for i in range(LIST_GROUPS):
        rc.resource_groups.create_or_update(f"benchlist{i}", {"location": "local"})
    rc.providers.register("Microsoft.Compute")
    sets, vms = cc.virtual_machine_scale_sets, cc.virtual_machine_scale_set_vms
    created = sets.begin_create_or_update(GROUP, SET, scale_set_body(capacity, "bench")).result()
    if created.provisioning_state != "Succeeded":
        raise RuntimeError(f"the scale set did not succeed: {created.provisioning_state}")
    out["poll"] = rec.last("GET", "/operations/")
    # The other LROs are not waited for (the SDK would sleep Retry-After, 1 s, before each poll): the PATCHes
    # target a set that may still be converging, as a client's PATCH may, and the groups have fresh names.
    sets.begin_create_or_update(GROUP, WRITE_SET, scale_set_body(WRITE_CAPACITY, "bw"), polling=False).result()

    sets.get(GROUP, SET)
    out["get_set"] = rec.last("GET", f"/virtualMachineScaleSets/{SET}?")
    vms.get(GROUP, SET, "7")
    out["get_vm"] = rec.last("GET", "/virtualMachines/7?")
    page = list(next(vms.list(GROUP, SET).by_page()))  # one page: exactly the SDK's first request of a listing
    out["list_vms"] = rec.last("GET", "/virtualMachines?")
    listed = json.loads(out["list_vms"].answer)
    if len(page) != PAGE or "nextLink" not in listed:
        raise RuntimeError(f"the first VM page has {len(page)} items (want {PAGE}) or no nextLink")
    rc.resource_groups.get(GROUP)
    out["get_group"] = rec.last("GET", f"/resourcegroups/{GROUP}?")
    list(next(rc.resource_groups.list().by_page()))
    out["list_groups"] = rec.last("GET", "/resourcegroups?")

    sets.begin_update(GROUP, WRITE_SET, {"sku": {"capacity": WRITE_CAPACITY + 1}}, polling=False).result()
    out["patch_up"] = rec.last("PATCH")
    sets.begin_update(GROUP, WRITE_SET, {"sku": {"capacity": WRITE_CAPACITY}}, polling=False).result()
    out["patch_down"] = rec.last("PATCH")
    rc.resource_groups.create_or_update(PLACEHOLDER, {"location": "local"})
    out["put_group"] = rec.last("PUT", f"/resourcegroups/{PLACEHOLDER}?")
    rc.resource_groups.begin_delete(PLACEHOLDER, polling=False).result()
    out["delete_group"] = rec.last("DELETE")  # the initial request of the LRO, not its polls
    return out
