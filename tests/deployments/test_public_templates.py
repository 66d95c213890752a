"""Issue 6's acceptance set: real public VMSS templates deploy through the official SDK and leave running scale sets.

The templates are the public files themselves, byte for byte (``tests/arm_templates/public``; README.md there names
the repository, path and commit of each and the shapes it covers), plus two of our own for the shapes the public
files lack (``vmss_nested_outputs.json``: BOM, comments, a nested deployment, outputs; ``vmss_linked_ethereum.json``:
the Azure Stack QuickStart ethereum ``vmss.json`` as a linked template). As on Azure Stack Hub, the operator first
downloads the platform images and VM extensions the templates name from an upstream catalogue.

Each case deploys with the template's parameter file where it has one, its CI placeholders (``GEN-UNIQUE-*``,
``GEN-PASSWORD``, ``GEN-SSH-PUB-KEY``, ``YOUR_*``) replaced by real values as the quickstart CI does, and checks what
the deployment leaves: the scale set with its capacity, its instances Succeeded and running on the sim driver with
the image, OS type and NAT pool forwards they should have, the storage accounts, networks, load balancers and public
IPs the template declares, with names and computed fields worked out here from the template's own rules
(``uniqueString`` of the group id, ``{label}.{region}.cloudapp.{domain}``...), the api-versions the profile or the
template gives, the outputs, and that a redeploy changes nothing.

The cases are plain functions of a :class:`Ctx`; each runs on every SDK line the venv has (the ``sdk`` fixture:
azure-mgmt-resource 23.1.1 with both hybrid profiles, or the current releases).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from altostratus.templates.hashing import unique_string
from tests.support import blobs
from tests.support.marketplace import Operator, OsType, make_catalog, platform_image, vm_extension
from tests.support.names import unique
from tests.support.sdk import SdkLine
from tests.support.server import OUTBOUND_ALLOW_TEST_WEB, AltoServer
from tests.support.templates import ARM_TEMPLATES

TEMPLATES = ARM_TEMPLATES
PUBLIC = TEMPLATES / "public"
BOM = b"\xef\xbb\xbf"
REGION = "local"
DOMAIN = "127.0.0.1"  # the host the clients call stands for Azure Stack Hub's external domain
RES_API = "api-version=2019-10-01"
COMPUTE_API = "api-version=2017-03-30"
NET_API = "api-version=2017-10-01"
STORAGE_API = "api-version=2016-01-01"
INSIGHTS_API = "api-version=2015-04-01"
# What apiProfile 2018-03-01-hybrid gives resources without an apiVersion (azure-rest-api-specs profile/).
HYBRID_2018 = {"Microsoft.Compute": "2017-03-30", "Microsoft.Network": "2017-10-01", "Microsoft.Storage": "2016-01-01"}

UBUNTU = ("Canonical", "UbuntuServer", "16.04-LTS")
UBUNTU_0 = ("Canonical", "UbuntuServer", "16.04.0-LTS")
WS2016 = ("MicrosoftWindowsServer", "WindowsServer", "2016-Datacenter")
WS2012R2 = ("MicrosoftWindowsServer", "WindowsServer", "2012-R2-Datacenter")
WS2019 = ("MicrosoftWindowsServer", "WindowsServer", "2019-Datacenter")
IMAGES: dict[tuple[str, str, str], tuple[str, OsType]] = {  # URN -> (the version the operator downloads, OS type)
    UBUNTU: ("16.04.20180831", "Linux"),
    UBUNTU_0: ("16.04.20170113", "Linux"),
    WS2016: ("14393.2430.20180814", "Windows"),
    WS2012R2: ("9600.19101.20180814", "Windows"),
    WS2019: ("17763.55.20181106", "Windows"),
}
EXTENSIONS: tuple[
    tuple[str, str, str, OsType], ...
] = (  # the handlers the templates' extensionProfiles name (publisher, type, version, OS)
    ("Microsoft.OSTCExtensions", "CustomScriptForLinux", "1.5.2", "Linux"),
    ("Microsoft.Compute", "CustomScriptExtension", "1.9.3", "Windows"),
    ("Microsoft.Azure.Extensions", "CustomScript", "2.0.6", "Linux"),
)
# The stored copies of these files lost the UTF-8 byte-order mark the originals start with (see the README): the
# web server below also serves them with one, as azuredeploy.bom.json.
BOM_LOST = ("101-vmss-linux-vm", "201-vmss-linux-vm-largescale")
DEPLOY_TIMEOUT = 120.0  # a deployment of these templates takes seconds on the sim driver


# ------------------------------------------------------------------------------------------------ the cloud


def start_cloud(root: Path) -> AltoServer:
    """A server whose operator has downloaded every image and extension the templates name, and given the tenant
    enough quota for all the cases."""
    upstream = root / "upstream"
    products = [platform_image(upstream, *urn, version, os_type) for urn, (version, os_type) in IMAGES.items()]
    products += [vm_extension(upstream, *ext) for ext in EXTENSIONS]
    catalog = make_catalog(upstream, versions=(), extra=products)
    server = AltoServer(root / "data", extra_args=("--upstream", str(catalog), *OUTBOUND_ALLOW_TEST_WEB)).start()
    op = Operator(server)
    try:
        started = [op.start_download(p.name) for p in products]
        assert [op.wait(r)["status"] for r in started] == ["Succeeded"] * len(products)
        for (pub, offer, sku), (version, os_type) in IMAGES.items():
            image = op.http.get(op.image_url(version, pub, offer, sku)).json()
            assert image["properties"]["provisioningState"] == "Succeeded", image
            assert image["properties"]["osDisk"]["osType"] == os_type
        for pub, ext_type, version, _ in EXTENSIONS:
            r = op.http.get(
                f"{op.images.replace('platformImage', 'VMExtension')}/publishers/{pub}/types/{ext_type}/versions/"
                f"{version}?api-version=2015-12-01-preview"
            )
            assert r.status_code == 200 and r.json()["properties"]["provisioningState"] == "Succeeded", r.text
        tenant = server.credentials["tenant"]["subscriptionId"]
        r = op.http.put(
            f"/subscriptions/{op.sub}/providers/Microsoft.Compute.Admin/locations/{REGION}/quotas/{tenant}"
            "?api-version=2018-02-09",
            json={"properties": {"virtualMachineCount": 1000, "coresLimit": 2000, "vmScaleSetCount": 500}},
        )
        assert r.status_code in (200, 201), r.text
    except BaseException:
        server.close()
        raise
    finally:
        op.http.close()
    return server


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def serve_templates(root: Path) -> tuple[str, Callable[[], None]]:
    """``tests/arm_templates`` over plain HTTP (linked templates, ``templateLink.uri``), with the BOM variants."""
    site = root / "site"
    shutil.copytree(TEMPLATES, site)
    for folder in BOM_LOST:
        original = (PUBLIC / folder / "azuredeploy.json").read_bytes()
        assert not original.startswith(BOM)
        (site / "public" / folder / "azuredeploy.bom.json").write_bytes(BOM + original)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return f"http://127.0.0.1:{httpd.server_address[1]}", stop


class Deployer(Protocol):
    """The SDK under test: resource groups and deployments, answers in the wire format (camelCase dicts)."""

    def create_group(self, name: str) -> str:
        """Creates the group in ``local``; its id as the SDK returns it."""
        ...

    def deploy(self, group: str, name: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        """PUT the deployment and wait for it (at most DEPLOY_TIMEOUT seconds: fail, never hang); the final
        deployment. Raises HttpResponseError if it fails."""
        ...

    def validate(self, group: str, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Validate (preflight): the error (wire format) when the template is refused, else None."""
        ...

    def exists(self, group: str, name: str) -> bool: ...


# ------------------------------------------------------------------------------------------------ CI values


def ssh_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return data.decode() + " ci@altostratus"


def unique_name(length: int) -> str:
    """A lower-case name that starts with a letter (DNS labels, storage accounts, computer names)."""
    return ("ci" + secrets.token_hex(32))[:length]


def ci_value(value: Any) -> Any:
    """What the quickstart CI puts in place of a parameter file's placeholders (GEN-UNIQUE-[N], GEN-PASSWORD...)."""
    if not isinstance(value, str) or not value.startswith("GEN-"):
        return value
    if value == "GEN-PASSWORD":
        return "Ci1!" + secrets.token_urlsafe(12)
    if value == "GEN-SSH-PUB-KEY":
        return ssh_public_key()
    if value == "GEN-UNIQUE":
        return unique_name(18)
    if value.startswith("GEN-UNIQUE-"):
        suffix = value.removeprefix("GEN-UNIQUE-")
        return unique_name(int(suffix)) if suffix.isdigit() else unique_name(8)  # GEN-UNIQUE-vmssname
    raise AssertionError(f"unknown CI placeholder {value}")


def file_parameters(folder: str, replace: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """The values of ``folder/azuredeploy.parameters.json``, placeholders replaced; ``overrides`` win."""
    raw = (PUBLIC / folder / "azuredeploy.parameters.json").read_bytes()
    values = {k: v["value"] for k, v in json.loads(raw.decode("utf-8-sig"))["parameters"].items()}
    for key, value in values.items():
        value = ci_value(value)
        for placeholder, real in (replace or {}).items():
            value = value.replace(placeholder, real) if isinstance(value, str) else value
        values[key] = value
    return {**values, **overrides}


def public(folder: str, file: str = "azuredeploy.json") -> dict[str, Any]:
    """A public template as its file holds it (strict JSON; the stored copies carry no byte-order mark)."""
    raw = (PUBLIC / folder / file).read_bytes()
    assert not raw.startswith(BOM)
    return dict(json.loads(raw))


# ------------------------------------------------------------------------------------------------ the context


@dataclass
class Ctx:
    """One case's view: a fresh resource group, the deployer, the tenant's REST client, the template web server."""

    server: AltoServer
    deployer: Deployer
    web: str
    http: httpx.Client = field(init=False)
    sub: str = field(init=False)
    group: str = field(init=False)
    gid: str = field(init=False)
    groups: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.http = self.server.client()
        self.sub = self.server.credentials["tenant"]["subscriptionId"]
        self.group, self.gid = self.new_group()

    def new_group(self, prefix: str = "tpl") -> tuple[str, str]:
        name = unique(prefix)
        gid = self.deployer.create_group(name)
        assert gid == f"/subscriptions/{self.sub}/resourceGroups/{name}"
        self.groups.append(gid)
        return name, gid

    def rid(self, rtype: str, *names: str, gid: str | None = None) -> str:
        """resourceId() for this group: type segments interleaved with the names."""
        namespace, *types = rtype.split("/")
        assert len(types) == len(names)
        path = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        return f"{gid or self.gid}/providers/{namespace}/{path}"

    def get(self, resource_id: str, api: str) -> dict[str, Any]:
        r = self.http.get(f"{resource_id}?{api}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def body(
        self, template: dict[str, Any] | None = None, params: dict[str, Any] | None = None, link: str | None = None
    ) -> dict[str, Any]:
        props: dict[str, Any] = {
            "mode": "Incremental",
            "parameters": {k: {"value": v} for k, v in (params or {}).items()},
        }
        if link is not None:
            props["templateLink"] = {"uri": link}
        else:
            props["template"] = template
        return {"properties": props}

    def deploy(
        self,
        name: str,
        template: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        *,
        link: str | None = None,
        raw: bytes | None = None,
        group: str | None = None,
    ) -> dict[str, Any]:
        """Deploys and asserts Succeeded; the deployment's properties (wire format)."""
        if raw is not None:  # a template file with a byte-order mark and comments, sent as it is
            body: dict[str, Any] | bytes = (
                BOM
                + b'{"properties": {"mode": "Incremental", "parameters": '
                + json.dumps({k: {"value": v} for k, v in (params or {}).items()}).encode()
                + b', "template": '
                + raw.removeprefix(BOM)
                + b"}}"
            )
        else:
            body = self.body(template, params, link)
        try:
            result = self.deployer.deploy(group or self.group, name, body)
        except HttpResponseError as exc:
            pytest.fail(f"deployment {name} failed: {exc.message}\n{self.failed_operations(group or self.group, name)}")
        props = dict(result["properties"])
        assert props["provisioningState"] == "Succeeded", props.get("error")
        return props

    def failed_operations(self, group: str, name: str) -> str:
        r = self.http.get(
            f"/subscriptions/{self.sub}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/{name}"
            f"/operations?{RES_API}"
        )
        if r.status_code != 200:
            return r.text
        return "\n".join(
            json.dumps(o["properties"].get("statusMessage"))
            for o in r.json()["value"]
            if o["properties"]["provisioningState"] == "Failed"
        )

    def operations(self, name: str) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.gid}/providers/Microsoft.Resources/deployments/{name}/operations?{RES_API}")
        assert r.status_code == 200, r.text
        return list(r.json()["value"])

    def api_versions(self, name: str) -> dict[str, str]:
        """The api-version each resource of the deployment was PUT with, by resource name."""
        return {
            o["properties"]["targetResource"]["resourceName"]: o["properties"]["targetResource"]["apiVersion"]
            for o in self.operations(name)
            if o["properties"]["provisioningOperation"] == "Create"
        }

    def resources(self, gid: str | None = None) -> dict[str, str]:
        r = self.http.get(f"{gid or self.gid}/resources?{RES_API}")
        assert r.status_code == 200, r.text
        return {x["name"]: x["type"] for x in r.json()["value"]}

    def vms(self, vmss_name: str) -> list[dict[str, Any]]:
        vmss_id = self.rid("Microsoft.Compute/virtualMachineScaleSets", vmss_name)
        r = self.http.get(f"{vmss_id}/virtualMachines?{COMPUTE_API}&$expand=instanceView")
        assert r.status_code == 200, r.text
        return list(r.json()["value"])

    def console(self, vm: dict[str, Any]) -> str:
        r = self.http.get(f"{vm['id']}/serialConsoleLog?{COMPUTE_API}")
        assert r.status_code == 200, r.text
        return r.text

    def close(self) -> None:
        """Deletes the case's groups, as the quickstart CI does after each template: what one case deployed (its
        instances, their NAT ports) does not outlive it. Every group goes, even when one deletion fails."""
        try:
            started = [self.http.delete(f"{gid}?{RES_API}") for gid in self.groups]
            for gid, r in zip(self.groups, started, strict=True):
                assert r.status_code in (200, 202, 204), r.text
                if r.status_code == 202:
                    status = self.wait(r.headers["azure-asyncoperation"])
                    assert status["status"] == "Succeeded", (gid, status)
        finally:
            self.http.close()

    def wait(self, url: str, timeout: float = DEPLOY_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = dict(self.http.get(url).json())
            if body["status"] not in ("InProgress", "Accepted", "Running"):
                return body
            time.sleep(0.2)
        raise AssertionError(f"{url} still running after {timeout}s")


def outputs(props: dict[str, Any]) -> dict[str, Any]:
    return {name: value["value"] for name, value in (props.get("outputs") or {}).items()}


def depends_on(props: dict[str, Any], resource_name: str) -> list[str]:
    """The names the deployment's dependency graph has ``resource_name`` wait for."""
    (entry,) = [d for d in props["dependencies"] if d["resourceName"] == resource_name]
    return sorted(d["resourceName"] for d in entry["dependsOn"])


def default_vmss_name(ctx: Ctx) -> str:
    """The Azure Stack QuickStart default: substring(concat('vmss', uniquestring(replace(resourceGroup().Id,'-',''))),
    0, 8)."""
    return ("vmss" + unique_string(ctx.gid.replace("-", "")))[:8]


# ------------------------------------------------------------------------------------------------ checks


def check_scale_set(
    ctx: Ctx,
    name: str,
    *,
    capacity: int,
    image: tuple[str, str, str],
    nat: tuple[int, int] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The scale set has ``capacity`` instances, all Succeeded and running the image's downloaded version on the sim
    driver with its OS type; ``nat`` (frontend start, backend port) is the NAT pool instance N forwards through."""
    vmss = ctx.get(ctx.rid("Microsoft.Compute/virtualMachineScaleSets", name), COMPUTE_API)
    assert vmss["properties"]["provisioningState"] == "Succeeded"
    assert vmss["sku"]["capacity"] == capacity
    ref = vmss["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert (ref["publisher"], ref["offer"], ref["sku"], ref["version"]) == (*image, "latest")
    version, os_type = IMAGES[image]
    vms = ctx.vms(name)
    assert len(vms) == capacity
    addresses = set()
    for vm in vms:
        props = vm["properties"]
        assert props["provisioningState"] == "Succeeded", vm
        assert props["storageProfile"]["imageReference"]["exactVersion"] == version
        assert props["storageProfile"]["osDisk"]["osType"] == os_type, "the image's OS type"
        assert props["osProfile"]["computerName"].startswith(
            vmss["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"]
        )
        assert "PowerState/running" in {s["code"] for s in props["instanceView"]["statuses"]}
        if nat is not None:  # instance N behind frontend port start + N, on the frontend's loopback address
            start, backend = nat
            (hop,) = props["instanceView"]["portForwards"]
            assert (hop["hostPort"], hop["guestPort"]) == (start + int(vm["instanceId"]), backend), hop
            assert ipaddress.ip_address(hop["hostAddress"]).is_loopback, hop
            addresses.add(hop["hostAddress"])
    assert len(addresses) == (1 if nat is not None and vms else 0), "one frontend, one address"
    if vms:
        assert ctx.get(f"{vms[0]['id']}/instanceView", COMPUTE_API)["hypervisor"]["driver"] == "sim"
        assert f"publisher={image[0]} offer={image[1]} sku={image[2]} version={version}" in ctx.console(vms[0])
    return vmss, vms


def check_storage(ctx: Ctx, name: str) -> dict[str, Any]:
    account = ctx.get(ctx.rid("Microsoft.Storage/storageAccounts", name), STORAGE_API)
    assert account["sku"]["name"] == "Standard_LRS" and account["kind"] == "Storage"
    assert account["properties"]["provisioningState"] == "Succeeded"
    assert account["properties"]["primaryEndpoints"]["blob"] == f"https://{name}.blob.{REGION}.{DOMAIN}/"
    return account


def check_vnet(ctx: Ctx, name: str, subnet: str, prefix: str) -> dict[str, Any]:
    vnet = ctx.get(ctx.rid("Microsoft.Network/virtualNetworks", name), NET_API)
    subnets = {s["name"]: s for s in vnet["properties"]["subnets"]}
    assert subnets[subnet]["properties"]["addressPrefix"] == prefix
    assert subnets[subnet]["id"] == ctx.rid("Microsoft.Network/virtualNetworks/subnets", name, subnet)
    return vnet


def check_pip(ctx: Ctx, name: str, label: str, allocation: str = "Dynamic") -> dict[str, Any]:
    pip = ctx.get(ctx.rid("Microsoft.Network/publicIPAddresses", name), NET_API)
    props = pip["properties"]
    assert props["provisioningState"] == "Succeeded" and props["publicIPAllocationMethod"] == allocation
    assert props["dnsSettings"]["domainNameLabel"] == label
    assert props["dnsSettings"]["fqdn"] == f"{label}.{REGION}.cloudapp.{DOMAIN}"
    assert ipaddress.ip_address(props["ipAddress"]) in ipaddress.ip_network("198.18.0.0/15")
    return pip


def check_lb(ctx: Ctx, name: str, pip: str, pools: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """``pools``: NAT pool name -> (frontend start, frontend end, backend port)."""
    lb = ctx.get(ctx.rid("Microsoft.Network/loadBalancers", name), NET_API)
    props = lb["properties"]
    (front,) = props["frontendIPConfigurations"]
    assert front["properties"]["publicIPAddress"]["id"].lower() == (
        ctx.rid("Microsoft.Network/publicIPAddresses", pip).lower()
    )
    got = {
        p["name"]: tuple(p["properties"][k] for k in ("frontendPortRangeStart", "frontendPortRangeEnd", "backendPort"))
        for p in props["inboundNatPools"]
    }
    assert got == pools
    for pool in props["inboundNatPools"]:
        assert pool["id"] == f"{ctx.rid('Microsoft.Network/loadBalancers', name)}/inboundNatPools/{pool['name']}"
    return lb


def ip_configuration(vmss: dict[str, Any]) -> dict[str, Any]:
    (nic,) = vmss["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"]
    (ipc,) = nic["properties"]["ipConfigurations"]
    return dict(ipc["properties"])


def check_redeploy(ctx: Ctx, deploy: Callable[[], dict[str, Any]], sets: list[str]) -> None:
    """Deploying the same template again is idempotent: the same scale sets (uniqueId), the same instances."""

    def state() -> dict[str, tuple[str, list[str]]]:
        out = {}
        for name in sets:
            vmss = ctx.get(ctx.rid("Microsoft.Compute/virtualMachineScaleSets", name), COMPUTE_API)
            out[name] = (vmss["properties"]["uniqueId"], sorted(vm["instanceId"] for vm in ctx.vms(name)))
        return out

    before = state()
    deploy()
    assert state() == before
    for name in sets:
        assert all(vm["properties"]["provisioningState"] == "Succeeded" for vm in ctx.vms(name))


def extension(vmss: dict[str, Any]) -> dict[str, Any]:
    (ext,) = vmss["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
    return dict(ext)


# ------------------------------------------------------------------------------------------------ the cases
# Azure Stack QuickStart templates (Azure/AzureStack-QuickStart-Templates)


def case_101_vmss_linux_vm(ctx: Ctx) -> None:
    """Unmanaged OS disks in a storage account read through reference() + providers(); every parameter default."""
    tpl = public("101-vmss-linux-vm")
    props = ctx.deploy("vmss", tpl)  # the quickstart ships no parameter values: every default applies
    us, name = unique_string(ctx.gid), default_vmss_name(ctx)
    assert props["parameters"]["vmssName"] == {"type": "String", "value": name}
    assert props["parameters"]["instanceCount"] == {"type": "Int", "value": 2}
    assert props["parameters"]["adminPassword"] == {"type": "SecureString"}, "secure values are never returned"
    sa = f"sa{us}"
    check_storage(ctx, sa)
    check_vnet(ctx, f"vnet{us}", f"subnet{us}", "10.0.0.0/24")
    check_pip(ctx, f"pip{us}", f"pubdns{us}")
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50019, 22)})
    vmss, _ = check_scale_set(ctx, name, capacity=2, image=UBUNTU, nat=(50000, 22))
    os_disk = vmss["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]
    assert os_disk["vhdContainers"] == [f"https://{sa}.blob.{REGION}.{DOMAIN}/sc{us}"]
    assert ip_configuration(vmss)["subnet"]["id"] == ctx.rid(
        "Microsoft.Network/virtualNetworks/subnets", f"vnet{us}", f"subnet{us}"
    )
    assert depends_on(props, name) == sorted([sa, f"vnet{us}", f"LB{us}"])
    compute, network, storage = (
        HYBRID_2018[ns] for ns in ("Microsoft.Compute", "Microsoft.Network", "Microsoft.Storage")
    )
    assert ctx.api_versions("vmss") == {
        sa: storage, f"vnet{us}": network, f"pip{us}": network, f"LB{us}": network, name: compute,
    }  # fmt: skip
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl), [name])


def case_101_vmss_windows_vm(ctx: Ctx) -> None:
    """Windows image (allowedValues), managed OS disk, NAT pool to 3389."""
    tpl = public("101-vmss-windows-vm")
    props = ctx.deploy("vmss", tpl)
    us, name = unique_string(ctx.gid), default_vmss_name(ctx)
    assert props["parameters"]["osImageSku"] == {"type": "String", "value": "2016-Datacenter"}
    check_vnet(ctx, f"vnet{us}", f"subnet{us}", "10.0.0.0/24")
    check_pip(ctx, f"pip{us}", f"pubdns{us}")
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50019, 3389)})
    vmss, _ = check_scale_set(ctx, name, capacity=2, image=WS2016, nat=(50000, 3389))
    assert "vhdContainers" not in vmss["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]
    assert set(ctx.resources().values()) == {
        "Microsoft.Network/virtualNetworks", "Microsoft.Network/publicIPAddresses", "Microsoft.Network/loadBalancers",
        "Microsoft.Compute/virtualMachineScaleSets",
    }  # fmt: skip
    assert ctx.api_versions("vmss")[name] == HYBRID_2018["Microsoft.Compute"]
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl), [name])


def case_201_vmss_linux_existing_vnet(ctx: Ctx) -> None:
    """The scale set joins a subnet that exists already (another group), named by the parameter file's id."""
    net_group, net_gid = ctx.new_group("shared-net")
    r = ctx.http.post(f"/subscriptions/{ctx.sub}/providers/Microsoft.Network/register?{RES_API}")
    assert r.status_code == 200, r.text
    vnet_id = ctx.rid("Microsoft.Network/virtualNetworks", "shared", gid=net_gid)
    r = ctx.http.put(
        f"{vnet_id}?{NET_API}",
        json={
            "location": REGION,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.20.0.0/16"]},
                "subnets": [{"name": "apps", "properties": {"addressPrefix": "10.20.3.0/24"}}],
            },
        },
    )
    assert r.status_code in (200, 201), r.text
    replace = {
        "YOUR_SUBSCRIPTION_ID": ctx.sub,
        "YOUR_RESOURCE_GROUP_NAME": net_group,
        "YOUR_VNET_NAME": "shared",
        "YOUR_SUBNET_NAME": "apps",
    }
    params = file_parameters("201-vmss-linux-existing-vnet", replace)
    assert params == {"existingSubnetResourceId": f"{vnet_id}/subnets/apps"}
    tpl = public("201-vmss-linux-existing-vnet")
    ctx.deploy("vmss", tpl, params)
    us, name = unique_string(ctx.gid), default_vmss_name(ctx)
    check_storage(ctx, f"sa{us}")
    check_pip(ctx, f"pip{us}", f"pubdns{us}")
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50019, 3389)})
    vmss, _ = check_scale_set(ctx, name, capacity=2, image=UBUNTU, nat=(50000, 3389))
    assert ip_configuration(vmss)["subnet"]["id"] == f"{vnet_id}/subnets/apps"
    assert "Microsoft.Network/virtualNetworks" not in ctx.resources().values(), "the template creates no network"
    assert ctx.resources(net_gid) == {"shared": "Microsoft.Network/virtualNetworks"}
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [name])


def case_201_vmss_linux_extension(ctx: Ctx) -> None:
    """CustomScriptForLinux in the extensionProfile; explicit (old) apiVersions; CI placeholders in the parameters."""
    params = file_parameters("201-vmss-linux-extension")
    assert params["vmssName"] != "GEN-UNIQUE-vmssname" and params["adminPassword"] != "GEN-PASSWORD"
    tpl = public("201-vmss-linux-extension")
    ctx.deploy("vmss", tpl, params)
    us, name = unique_string(ctx.gid), params["vmssName"]
    sa = f"sa{us}"
    check_storage(ctx, sa)
    check_vnet(ctx, f"vnet{us}", f"subnet{us}", "10.0.0.0/24")
    check_pip(ctx, f"pip{us}", f"pubdns{us}")
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50019, 3389)})
    vmss, _ = check_scale_set(ctx, name, capacity=2, image=UBUNTU, nat=(50000, 3389))
    assert vmss["sku"]["name"] == "Standard_D1"
    assert vmss["properties"]["virtualMachineProfile"]["osProfile"]["adminUsername"] == params["adminUsername"]
    ext = extension(vmss)
    assert ext["name"] == f"{name}-LinuxCustomScriptExtension"
    assert ext["properties"]["publisher"] == "Microsoft.OSTCExtensions"
    assert ext["properties"]["type"] == "CustomScriptForLinux" and ext["properties"]["typeHandlerVersion"] == "1.3"
    assert ext["properties"]["settings"] == {"commandToExecute": "touch /test.txt", "enableInternalDNSCheck": "false"}
    assert ctx.api_versions("vmss") == {
        sa: "2015-06-15", f"vnet{us}": "2015-06-15", f"pip{us}": "2015-06-15", f"LB{us}": "2015-06-15",
        name: "2016-03-30",
    }  # fmt: skip
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [name])


def case_201_vmss_linux_vm_largescale(ctx: Ctx) -> None:
    """A storage copy loop of five accounts, five vhdContainers through reference() with array indexing."""
    tpl = public("201-vmss-linux-vm-largescale")
    props = ctx.deploy("vmss", tpl, {"instanceCount": 3})
    us, name = unique_string(ctx.gid), default_vmss_name(ctx)
    accounts = [f"sa{us}{i}" for i in range(5)]
    for account in accounts:
        check_storage(ctx, account)
    check_pip(ctx, f"pip{us}", f"pubdns{us}")
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50099, 3389)})
    vmss, _ = check_scale_set(ctx, name, capacity=3, image=UBUNTU, nat=(50000, 3389))
    os_disk = vmss["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]
    assert os_disk["vhdContainers"] == [f"https://{a}.blob.{REGION}.{DOMAIN}/{us}vhd" for a in accounts]
    assert os_disk["name"] == f"{us}osdisk"
    assert depends_on(props, name) == sorted([*accounts, f"vnet{us}", f"LB{us}"])
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, {"instanceCount": 3}), [name])


def case_201_vmss_windows_extension(ctx: Ctx) -> None:
    """CustomScriptExtension with fileUris from _artifactsLocation and protectedSettings; min/maxLength."""
    tpl = public("201-vmss-windows-extension")
    props = ctx.deploy("vmss", tpl)
    us, name = unique_string(ctx.gid), default_vmss_name(ctx)
    assert props["parameters"]["_artifactsLocationSasToken"] == {"type": "SecureString"}
    check_storage(ctx, f"sa{us}")
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50019, 3389)})
    vmss, _ = check_scale_set(ctx, name, capacity=2, image=WS2016, nat=(50000, 3389))
    ext = extension(vmss)
    assert (ext["name"], ext["properties"]["publisher"], ext["properties"]["type"]) == (
        "customScript", "Microsoft.Compute", "CustomScriptExtension",
    )  # fmt: skip
    assert ext["properties"]["settings"]["fileUris"] == [
        "https://raw.githubusercontent.com/Azure/azurestack-quickstart-templates/master/201-vmss-windows-extension"
        "/scripts/helloWorld.ps1"
    ]
    assert "protectedSettings" not in ext["properties"], "protected settings are never returned"
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl), [name])


def case_201_vmss_windows_vm_largescale_with_managed_disk(ctx: Ctx) -> None:
    """Managed disks with an empty data disk whose size is an int parameter."""
    params = file_parameters("201-vmss-windows-vm-largescale-with-managed-disk")
    tpl = public("201-vmss-windows-vm-largescale-with-managed-disk")
    props = ctx.deploy("vmss", tpl, params)
    us, name = unique_string(ctx.gid), default_vmss_name(ctx)
    assert props["parameters"]["dataDiskSizeGB"] == {"type": "Int", "value": 1}
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50099, 3389)})
    vmss, vms = check_scale_set(ctx, name, capacity=2, image=WS2016, nat=(50000, 3389))
    disks = [{"diskSizeGB": 1, "lun": 1, "createOption": "Empty"}]
    assert vmss["properties"]["virtualMachineProfile"]["storageProfile"]["dataDisks"] == disks
    for vm in vms:  # each instance has the disk (its own, with a name and a managed-disk id)
        [disk] = vm["properties"]["storageProfile"]["dataDisks"]
        assert {k: disk[k] for k in ("diskSizeGB", "lun", "createOption")} == disks[0]
        assert disk["managedDisk"]["id"].endswith("/providers/Microsoft.Compute/disks/" + disk["name"])
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [name])


def case_201_vmss_windows_customimage(ctx: Ctx) -> None:
    """A user image by blob URI (osDisk.image.uri): as Azure Stack Hub's docs have it, the tenant first uploads a
    fixed VHD (here of the demo image) to a storage account through the blob data plane with the official client,
    then deploys with its URL; every instance boots from that blob. A URI that is not a blob of this cloud, a blob
    that does not exist, or one that is not a fixed VHD is refused at validation, with nothing created."""
    us = unique_string(ctx.gid)
    account = f"sa{us}"  # the template's own account, made beforehand to hold the image (the template keeps it)
    r = ctx.http.post(f"/subscriptions/{ctx.sub}/providers/Microsoft.Storage/register?api-version=2019-10-01")
    assert r.status_code == 200, r.text
    key = blobs.create_account(ctx.http, ctx.gid, account)
    work = Path(tempfile.mkdtemp(prefix="alto-vhd-"))
    try:
        uri = blobs.upload_vhd(ctx.server, account, key, blobs.demo_vhd(work))
        raw = work / "plain.vhd"  # a blob that is no VHD (no footer)
        raw.write_bytes(b"\1" * 8192)
        not_vhd = blobs.upload_vhd(ctx.server, account, key, raw)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert uri == f"https://{account}.blob.{REGION}.{DOMAIN}/images/demo-linux.vhd"
    tpl = public("201-vmss-windows-customimage")
    params = {**file_parameters("201-vmss-windows-customimage"), "osImageUrl": uri}
    for bad, why in (
        (f"https://{account}.blob.{REGION}.{DOMAIN}/images/missing.vhd", "there is no blob 'missing.vhd'"),
        ("https://images.example.com/vhds/windows-2016.vhd", "not a blob of this cloud"),
        (not_vhd, "not a usable VHD"),
    ):
        error = ctx.deployer.validate(ctx.group, "bad", ctx.body(tpl, {**params, "osImageUrl": bad}))
        assert error is not None and error["code"] == "InvalidTemplateDeployment", error
        assert why in json.dumps(error["details"]), error
    assert ctx.deployer.exists(ctx.group, "bad") is False
    assert ctx.resources() == {account: "Microsoft.Storage/storageAccounts"}, "nothing else is created"

    ctx.deploy("vmss", tpl, params)
    name = default_vmss_name(ctx)
    check_storage(ctx, account)
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50019, 3389)})
    vmss = ctx.get(ctx.rid("Microsoft.Compute/virtualMachineScaleSets", name), COMPUTE_API)
    assert vmss["properties"]["provisioningState"] == "Succeeded" and vmss["sku"]["capacity"] == 2
    storage = vmss["properties"]["virtualMachineProfile"]["storageProfile"]
    assert "imageReference" not in storage and storage["osDisk"]["image"] == {"uri": uri}, storage
    assert storage["osDisk"]["osType"] == "Windows"
    vms = ctx.vms(name)
    assert len(vms) == 2
    for vm in vms:
        props = vm["properties"]
        assert props["provisioningState"] == "Succeeded", vm
        assert "imageReference" not in props["storageProfile"], "a user image has no reference"
        assert props["storageProfile"]["osDisk"]["osType"] == "Windows"
        assert "PowerState/running" in {s["code"] for s in props["instanceView"]["statuses"]}
        assert "version=userImage" in ctx.console(vm)
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [name])


def case_extension_not_downloaded(ctx: Ctx) -> None:
    """As on Azure Stack Hub, a VM extension is usable once the operator has downloaded it from the marketplace:
    the linux-extension template asking for a handler that is not in the repository is refused at validation (like
    a missing platform image), and nothing is deployed."""
    tpl = public("201-vmss-linux-extension")
    (vmss,) = [r for r in tpl["resources"] if r["type"] == "Microsoft.Compute/virtualMachineScaleSets"]
    (ext,) = vmss["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"]
    ext["properties"]["type"] = "VMAccessForLinux"  # same publisher; this handler was never downloaded
    body = ctx.body(tpl, file_parameters("201-vmss-linux-extension"))
    error = ctx.deployer.validate(ctx.group, "vmss", body)
    assert error is not None and error["code"] == "InvalidTemplateDeployment", error
    assert "VMAccessForLinux" in json.dumps(error["details"]), error
    with pytest.raises(HttpResponseError) as exc:
        ctx.deployer.deploy(ctx.group, "vmss", body)
    assert exc.value.status_code == 400 and exc.value.error is not None
    assert exc.value.error.code == "InvalidTemplateDeployment"
    assert ctx.deployer.exists(ctx.group, "vmss") is False
    assert ctx.resources() == {}, "nothing is half-deployed"


def case_linux_vmss_managed(ctx: Ctx) -> None:
    """Managed OS disk; the storage account the template still declares is created but unused."""
    tpl = public("Linux-VmssManaged")
    ctx.deploy("vmss", tpl, {"instanceCount": 1})
    us, name = unique_string(ctx.gid), default_vmss_name(ctx)
    check_storage(ctx, f"sa{us}")
    check_vnet(ctx, f"vnet{us}", f"subnet{us}", "10.0.0.0/24")
    check_pip(ctx, f"pip{us}", f"pubdns{us}")
    check_lb(ctx, f"LB{us}", f"pip{us}", {f"LBNatPool{us}": (50000, 50019, 22)})
    vmss, _ = check_scale_set(ctx, name, capacity=1, image=UBUNTU, nat=(50000, 22))
    assert vmss["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]["createOption"] == "FromImage"
    assert "vhdContainers" not in vmss["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, {"instanceCount": 1}), [name])


def case_201_vmss_scalein_scaleout_existing(ctx: Ctx) -> None:
    """A re-PUT of an existing scale set with only location and sku changes its capacity and nothing else."""
    name = default_vmss_name(ctx)
    ctx.deploy("base", public("Linux-VmssManaged"), {"instanceCount": 2})
    before, _ = check_scale_set(ctx, name, capacity=2, image=UBUNTU, nat=(50000, 22))
    tpl = public("201-vmss-scalein-scaleout-existing")
    for capacity in (3, 1):
        params = {"existingVmssName": name, "newCapacity": capacity, "vmSku": "Standard_A1"}
        ctx.deploy(f"scale-{capacity}", tpl, params)
        after, _ = check_scale_set(ctx, name, capacity=capacity, image=UBUNTU, nat=(50000, 22))
        assert after["properties"]["uniqueId"] == before["properties"]["uniqueId"]
        assert after["properties"]["virtualMachineProfile"] == before["properties"]["virtualMachineProfile"]
        assert after["sku"]["name"] == "Standard_A1"


def case_ethereum_linked_vmss(ctx: Ctx) -> None:
    """The ethereum consortium's nested vmss.json as a linked template: object and bool parameters, customData from
    base64(concat(...)), linuxConfiguration through if(..., json('null')), an extension, the Result output."""
    suffix = unique_name(6)
    link = f"{ctx.web}/public/ethereum-consortium-blockchain-poa/common/nested/vmss.json"
    params = {"vmssTemplateUri": link, "suffix": suffix, "adminUsername": "ethadmin", "adminPassword": "Eth1!" +
              secrets.token_urlsafe(9), "capacity": 2}  # fmt: skip
    tpl = json.loads((TEMPLATES / "vmss_linked_ethereum.json").read_text())
    props = ctx.deploy("eth", tpl, params)
    name = f"vl-{suffix}"
    assert outputs(props) == {
        "result": {"name": name, "vmssPrincipalId": ""},
        "vmssId": ctx.rid("Microsoft.Compute/virtualMachineScaleSets", name),
        "templateUri": link,
    }
    assert props["outputs"]["result"]["type"] == "Object"
    linked = {d: ctx.get(f"{ctx.gid}/providers/Microsoft.Resources/deployments/{d}", RES_API) for d in ("vlVmss",)}
    assert linked["vlVmss"]["properties"]["templateLink"]["uri"] == link
    assert linked["vlVmss"]["properties"]["outputs"]["Result"]["value"]["name"] == name
    check_lb(ctx, f"lb-{suffix}", f"eth-pip-{suffix}", {"Nat": (4000, 4099, 3000)})
    vmss, vms = check_scale_set(ctx, name, capacity=2, image=UBUNTU, nat=(4000, 3000))
    profile = vmss["properties"]["virtualMachineProfile"]
    assert vmss["properties"]["upgradePolicy"]["mode"] == "Automatic"
    assert profile["storageProfile"]["osDisk"]["managedDisk"] == {"storageAccountType": "Standard_LRS"}
    assert profile["osProfile"]["computerNamePrefix"] == name and profile["osProfile"]["adminUsername"] == "ethadmin"
    assert "ssh" not in (profile["osProfile"].get("linuxConfiguration") or {}), "password authentication"
    assert ip_configuration(vmss)["subnet"]["id"] == ctx.rid(
        "Microsoft.Network/virtualNetworks/subnets", f"eth-vnet-{suffix}", "validators"
    )
    ext = extension(vmss)
    assert ext["name"] == f"{name}-config" and ext["properties"]["type"] == "CustomScript"
    assert ext["properties"]["settings"] == {"fileUris": ["https://artifacts.example/configure-validator.sh"]}
    assert "protectedSettings" not in ext["properties"], "protected settings are never returned"
    for vm in vms:  # the cloud-config custom data reaches every instance (the sim image runs #! scripts only)
        console = ctx.console(vm)
        assert "NoCloud seed found" in console and "unsupported user-data format" in console
    check_redeploy(ctx, lambda: ctx.deploy("eth", tpl, params), [name])


# Azure quickstart templates (Azure/azure-quickstart-templates, quickstarts/microsoft.compute)


def case_vmss_windows_nat(ctx: Ctx) -> None:
    """Storage copy loop over length() of uniqueString()s, dependsOn the loop name, imageReference as a variable."""
    params = file_parameters("vmss-windows-nat")
    assert len(params["vmssName"]) == 32 and params["instanceCount"] == 5
    tpl = public("vmss-windows-nat")
    props = ctx.deploy("vmss", tpl, params)
    infix = params["vmssName"][:9].lower()
    accounts = [f"{unique_string(ctx.gid + infix + 'sa' + str(i))}{infix}sa" for i in range(5)]
    for account in accounts:
        check_storage(ctx, account)
    check_vnet(ctx, f"{infix}vnet", f"{infix}subnet", "10.0.0.0/24")
    check_pip(ctx, f"{infix}pip", params["vmssName"].lower())
    check_lb(ctx, f"{infix}lb", f"{infix}pip", {f"{infix}natpool": (50000, 50119, 3389)})
    vmss, _ = check_scale_set(ctx, infix, capacity=5, image=WS2012R2, nat=(50000, 3389))
    assert vmss["properties"]["virtualMachineProfile"]["osProfile"]["adminUsername"] == "windows"
    assert depends_on(props, infix) == sorted([*accounts, f"{infix}lb", f"{infix}vnet"])
    versions = ctx.api_versions("vmss")
    assert {versions[a] for a in accounts} == {"2016-01-01"} and versions[infix] == "2017-03-30"
    assert versions[f"{infix}vnet"] == versions[f"{infix}lb"] == "2017-04-01"
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [infix])


def case_vmss_linux_nat(ctx: Ctx) -> None:
    """SSH key or password: linuxConfiguration is a variable or json('null')."""
    tpl = public("vmss-linux-nat")
    key = ssh_public_key()
    name = unique_name(12)
    params = {"vmssName": name, "instanceCount": 2, "adminUsername": "azureuser", "adminPasswordOrKey": key}
    ctx.deploy("vmss", tpl, params)
    infix = name[:9]
    check_vnet(ctx, f"{infix}vnet", f"{infix}subnet", "10.0.0.0/24")
    check_pip(ctx, f"{infix}pip", name)
    check_lb(ctx, f"{infix}lb", f"{infix}pip", {f"{infix}natpool": (50000, 50119, 22)})
    vmss, _ = check_scale_set(ctx, infix, capacity=2, image=UBUNTU, nat=(50000, 22))
    assert vmss["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"] == {
        "disablePasswordAuthentication": True,
        "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": key}]},
    }
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [infix])


def case_vmss_linux_nat_password(ctx: Ctx) -> None:
    """The same template with password authentication: linuxConfiguration is json('null'), so it is left out."""
    tpl = public("vmss-linux-nat")
    name = unique_name(12)
    params = {"vmssName": name, "instanceCount": 2, "adminUsername": "azureuser", "authenticationType": "password",
              "adminPasswordOrKey": "Pwd1!" + secrets.token_urlsafe(9)}  # fmt: skip
    ctx.deploy("vmss", tpl, params)
    infix = name[:9]
    vmss, _ = check_scale_set(ctx, infix, capacity=2, image=UBUNTU, nat=(50000, 22))
    assert "ssh" not in (vmss["properties"]["virtualMachineProfile"]["osProfile"].get("linuxConfiguration") or {})


def case_vmss_windows_autoscale(ctx: Ctx) -> None:
    """Bicep output (metadata, functions: [], format()), resourceId of a child type, Microsoft.Insights autoscale."""
    tpl = public("vmss-windows-autoscale")
    name = unique_name(10)
    params = {"vmssName": name, "instanceCount": 2, "adminUsername": "azureuser", "adminPassword": "Win1!" +
              secrets.token_urlsafe(9)}  # fmt: skip
    ctx.deploy("vmss", tpl, params)
    infix = (name + unique_string(ctx.gid))[:9]
    check_vnet(ctx, f"{infix}vnet", f"{infix}subnet", "10.0.0.0/24")
    check_pip(ctx, f"{infix}pip", name)
    check_lb(ctx, f"{infix}lb", f"{infix}pip", {f"{infix}natpool": (50000, 50119, 3389)})
    vmss, _ = check_scale_set(ctx, name, capacity=2, image=WS2019, nat=(50000, 3389))
    assert vmss["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"] == infix
    setting = ctx.get(ctx.rid("Microsoft.Insights/autoscalesettings", "cpuautoscale"), INSIGHTS_API)
    vmss_id = ctx.rid("Microsoft.Compute/virtualMachineScaleSets", name)
    assert setting["properties"]["targetResourceUri"] == vmss_id and setting["properties"]["enabled"] is True
    (profile,) = setting["properties"]["profiles"]
    assert profile["capacity"] == {"minimum": "1", "maximum": "10", "default": "1"}
    assert [r["scaleAction"]["direction"] for r in profile["rules"]] == ["Increase", "Decrease"]
    assert {r["metricTrigger"]["metricResourceUri"] for r in profile["rules"]} == {vmss_id}
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [name])


def case_vmss_public_ip_linux(ctx: Ctx) -> None:
    """Per-instance public IP configuration (lower-case key), resourceId() types with a trailing slash, minValue 3."""
    # The parameter file asks for Standard_D2_v3, a size Azure Stack Hub does not offer: its D2_v2 stands in.
    params = file_parameters("vmss-public-ip-linux", vmSku="Standard_D2_v2")
    tpl = public("vmss-public-ip-linux")
    ctx.deploy("vmss", tpl, params)
    name = params["vmssName"]
    assert len(name) == 9 and params["instanceCount"] == 3
    check_vnet(ctx, f"{name}vnet", f"{name}subnet", "10.0.0.0/24")
    check_pip(ctx, f"{name}pip", name)
    check_lb(ctx, f"{name}lb", f"{name}pip", {f"{name}natpool": (50000, 50120, 22)})
    vmss, _ = check_scale_set(ctx, name, capacity=3, image=UBUNTU, nat=(50000, 22))
    ipc = ip_configuration(vmss)
    assert ipc["subnet"]["id"] == ctx.rid("Microsoft.Network/virtualNetworks/subnets", f"{name}vnet", f"{name}subnet")
    assert ipc["loadBalancerBackendAddressPools"] == [
        {"id": ctx.rid("Microsoft.Network/loadBalancers/backendAddressPools", f"{name}lb", f"{name}bepool")}
    ]
    assert ipc["publicipaddressconfiguration"] == {"name": "pub1", "properties": {"idleTimeoutInMinutes": 15}}
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), [name])


def case_multi_vmss_linux_lb_zones(ctx: Ctx) -> None:
    """A scale-set copy loop (copyindex()), one NAT pool per set, customData per set, NSG, Standard SKU, data disks."""
    # The parameter file's location is an Azure region; CI deploys to the stamp's region instead.
    params = file_parameters("multi-vmss-linux-lb-zones", location=REGION)
    tpl = public("multi-vmss-linux-lb-zones")
    props = ctx.deploy("vmss", tpl, params)
    dns = params["dnsName"]
    check_vnet(ctx, f"{dns}-vnet", "Subnet-1", "10.0.0.0/24")
    nsg = ctx.get(ctx.rid("Microsoft.Network/networkSecurityGroups", "allowRemoting"), NET_API)
    assert sorted(r["name"] for r in nsg["properties"]["securityRules"]) == ["remoteConnection", "webTraffic"]
    pip = check_pip(ctx, "lbPublicIp", dns, allocation="Static")
    assert pip["sku"]["name"] == "Standard"
    natpools = {f"lbNAT{i}": (50000 + 100 * i, 50099 + 100 * i, 22) for i in (1, 2, 3)}
    lb = check_lb(ctx, f"lb-{dns}", "lbPublicIp", natpools)
    assert lb["sku"]["name"] == "Standard"
    for zone in ("1", "2"):
        name = f"myScaleset-zone{zone}"
        vmss, vms = check_scale_set(ctx, name, capacity=2, image=UBUNTU_0, nat=(50000 + 100 * int(zone), 22))
        profile = vmss["properties"]["virtualMachineProfile"]
        assert profile["storageProfile"]["dataDisks"] == [{"lun": 1, "createOption": "Empty", "diskSizeGB": 50}]
        (nic,) = profile["networkProfile"]["networkInterfaceConfigurations"]
        assert nic["properties"]["networkSecurityGroup"]["id"] == nsg["id"]
        assert extension(vmss)["properties"]["settings"]["commandToExecute"] == "bash automate_nginx.sh"
        for vm in vms:  # customData is base64 of the zone name: delivered, not a script the image runs
            console = ctx.console(vm)
            assert "NoCloud seed found" in console and "unsupported user-data format" in console
        assert depends_on(props, name) == sorted([f"{dns}-vnet", f"lb-{dns}", "allowRemoting"])
    check_redeploy(ctx, lambda: ctx.deploy("vmss", tpl, params), ["myScaleset-zone1", "myScaleset-zone2"])


def case_vmss_custom_script_windows(ctx: Ctx) -> None:
    """Deployed by templateLink: _artifactsLocation defaults to deployment().properties.templateLink.uri and the
    script URI is built with uri(); the scale set comes first in the file but depends on later resources."""
    params = file_parameters("vmss-custom-script-windows")
    link = f"{ctx.web}/public/vmss-custom-script-windows/azuredeploy.json"
    props = ctx.deploy("vmss", params=params, link=link)
    assert props["templateLink"]["uri"] == link
    name = params["vmssName"]
    check_vnet(ctx, "vnet", "subnet", "10.0.0.0/24")
    check_pip(ctx, "pip", name.lower())
    check_lb(ctx, "loadBalancer", "pip", {"loadBalancerNatPool": (50000, 50019, 3389)})
    vmss, _ = check_scale_set(ctx, name, capacity=2, image=WS2016, nat=(50000, 3389))
    assert vmss["sku"]["name"].lower() == "standard_ds2_v2"
    ext = extension(vmss)
    assert ext["properties"]["settings"]["fileUris"] == [
        f"{ctx.web}/public/vmss-custom-script-windows/scripts/helloWorld.ps1"
    ]
    assert "protectedSettings" not in ext["properties"], "protected settings are never returned"
    assert depends_on(props, name) == ["loadBalancer", "vnet"]
    check_redeploy(ctx, lambda: ctx.deploy("vmss", params=params, link=link), [name])


# Our own templates, for the shapes the public files lack


def case_own_nested_bom_comments_outputs(ctx: Ctx) -> None:
    """vmss_nested_outputs.json: BOM, comments, a nested (inner-scope) deployment that creates the scale set, and
    outputs read back from the deployed resources."""
    raw = (TEMPLATES / "vmss_nested_outputs.json").read_bytes()
    assert raw.startswith(BOM) and b"// " in raw and b"/* " in raw
    prefix = unique_name(7)
    params = {"prefix": prefix, "adminPassword": "Own1!" + secrets.token_urlsafe(9)}
    props = ctx.deploy("own", params=params, raw=raw)
    suffix = unique_string(ctx.gid, prefix)
    label, storage = f"{prefix}-{suffix[:6]}", f"{prefix}sa{suffix[:8]}"
    fqdn = f"{label}.{REGION}.cloudapp.{DOMAIN}"
    pip = check_pip(ctx, f"{prefix}-pip", label)
    check_storage(ctx, storage)
    check_lb(ctx, f"{prefix}-lb", f"{prefix}-pip", {"ssh": (50000, 50019, 22)})
    vmss, vms = check_scale_set(ctx, prefix, capacity=2, image=UBUNTU, nat=(50000, 22))
    assert outputs(props) == {
        "fqdn": fqdn,
        "ipAddress": pip["properties"]["ipAddress"],
        "blobEndpoint": f"https://{storage}.blob.{REGION}.{DOMAIN}/",
        "vmssId": ctx.rid("Microsoft.Compute/virtualMachineScaleSets", prefix),
        "uniqueId": vmss["properties"]["uniqueId"],
        "capacity": 2,
        "natPorts": {"first": 50000, "last": 50019},
        "ssh": [f"ssh -p {50000 + i} azureuser@{fqdn}" for i in range(2)],
    }
    types = {k: v["type"] for k, v in props["outputs"].items()}
    assert types == {"fqdn": "String", "ipAddress": "String", "blobEndpoint": "String", "vmssId": "String",
                     "uniqueId": "String", "capacity": "Int", "natPorts": "Object", "ssh": "Array"}  # fmt: skip
    os_disk = vmss["properties"]["virtualMachineProfile"]["storageProfile"]["osDisk"]
    assert os_disk["vhdContainers"] == [f"https://{storage}.blob.{REGION}.{DOMAIN}/vhds"]
    assert all("ALTOSTRATUS-USERDATA exit=0" in ctx.console(vm) for vm in vms), "the user-data script ran"
    nested = ctx.get(f"{ctx.gid}/providers/Microsoft.Resources/deployments/scaleSet", RES_API)["properties"]
    assert nested["provisioningState"] == "Succeeded"
    assert nested["outputs"]["vmssId"]["value"] == outputs(props)["vmssId"]
    assert depends_on(props, "scaleSet") == sorted([storage, f"{prefix}-vnet", f"{prefix}-lb"])
    check_redeploy(ctx, lambda: ctx.deploy("own", params=params, raw=raw), [prefix])


def bom_variant(folder: str, accounts: int) -> Callable[[Ctx], None]:
    def case(ctx: Ctx) -> None:
        """A QuickStart file whose original starts with a byte-order mark, fetched by the server with one."""
        link = f"{ctx.web}/public/{folder}/azuredeploy.bom.json"
        assert httpx.get(link).content.startswith(BOM)
        props = ctx.deploy("vmss", params={"instanceCount": 1}, link=link)
        assert props["templateLink"]["uri"] == link
        us, name = unique_string(ctx.gid), default_vmss_name(ctx)
        check_scale_set(ctx, name, capacity=1, image=UBUNTU, nat=(50000, 22 if accounts == 1 else 3389))
        names = [f"sa{us}"] if accounts == 1 else [f"sa{us}{i}" for i in range(accounts)]
        for account in names:
            check_storage(ctx, account)

    return case


def case_same_template_in_two_groups(ctx: Ctx) -> None:
    """Two tenants' groups deploy the same QuickStart template side by side, as on Azure Stack Hub: each load balancer
    has its own frontend, so both NAT pools 50000-50019 serve their own instances."""
    tpl = public("101-vmss-linux-vm")
    other, other_gid = ctx.new_group("twin")
    ctx.deploy("vmss", tpl, {"instanceCount": 1})
    ctx.deploy("vmss", tpl, {"instanceCount": 1}, group=other)
    hops = []
    for gid in (ctx.gid, other_gid):
        name = ("vmss" + unique_string(gid.replace("-", "")))[:8]
        vmss = ctx.get(ctx.rid("Microsoft.Compute/virtualMachineScaleSets", name, gid=gid), COMPUTE_API)
        assert vmss["properties"]["provisioningState"] == "Succeeded"
        r = ctx.http.get(f"{vmss['id']}/virtualMachines?{COMPUTE_API}&$expand=instanceView")
        (vm,) = r.json()["value"]
        assert vm["properties"]["provisioningState"] == "Succeeded"
        (hop,) = vm["properties"]["instanceView"]["portForwards"]
        hops.append(hop)
    assert [(h["hostPort"], h["guestPort"]) for h in hops] == [(50000, 22), (50000, 22)]
    assert hops[0]["hostAddress"] != hops[1]["hostAddress"], "two load balancers, two frontend addresses"


CASES: dict[str, Callable[[Ctx], None]] = {
    "101-vmss-linux-vm": case_101_vmss_linux_vm,
    "101-vmss-windows-vm": case_101_vmss_windows_vm,
    "201-vmss-linux-existing-vnet": case_201_vmss_linux_existing_vnet,
    "201-vmss-linux-extension": case_201_vmss_linux_extension,
    "201-vmss-linux-extension-not-downloaded": case_extension_not_downloaded,
    "201-vmss-linux-vm-largescale": case_201_vmss_linux_vm_largescale,
    "201-vmss-windows-extension": case_201_vmss_windows_extension,
    "201-vmss-windows-vm-largescale-with-managed-disk": case_201_vmss_windows_vm_largescale_with_managed_disk,
    "201-vmss-windows-customimage": case_201_vmss_windows_customimage,
    "201-vmss-scalein-scaleout-existing": case_201_vmss_scalein_scaleout_existing,
    "Linux-VmssManaged": case_linux_vmss_managed,
    "ethereum-nested-vmss": case_ethereum_linked_vmss,
    "vmss-windows-nat": case_vmss_windows_nat,
    "vmss-linux-nat": case_vmss_linux_nat,
    "vmss-linux-nat-password": case_vmss_linux_nat_password,
    "vmss-windows-autoscale": case_vmss_windows_autoscale,
    "vmss-public-ip-linux": case_vmss_public_ip_linux,
    "multi-vmss-linux-lb-zones": case_multi_vmss_linux_lb_zones,
    "vmss-custom-script-windows": case_vmss_custom_script_windows,
    "own-nested-bom-comments-outputs": case_own_nested_bom_comments_outputs,
    "101-vmss-linux-vm-bom": bom_variant("101-vmss-linux-vm", accounts=1),
    "201-vmss-linux-vm-largescale-bom": bom_variant("201-vmss-linux-vm-largescale", accounts=5),
    "same-template-in-two-groups": case_same_template_in_two_groups,
}


# ------------------------------------------------------------------------------------------------ the SDK lines


class SdkDeployer:
    """Groups and deployments through one line of the official SDK: the Deployer the cases use."""

    def __init__(self, server: AltoServer, sdk: SdkLine) -> None:
        self.sdk = sdk
        self.rc = sdk.arm(server, polling_interval=1)

    def create_group(self, name: str) -> str:
        return str(self.rc.resource_groups.create_or_update(name, {"location": REGION}).id)

    def deploy(self, group: str, name: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        poller = self.rc.deployments.begin_create_or_update(group, name, body)
        result = poller.result(timeout=DEPLOY_TIMEOUT)
        assert poller.done(), f"deployment {name} still running after {DEPLOY_TIMEOUT}s: {poller.status()}"
        return self.sdk.wire(result)

    def validate(self, group: str, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if not self.sdk.speaks("deployments", "2019-10-01"):  # 2018-02-01: a plain POST whose result carries the error
            result = self.rc.deployments.validate(group, name, body)
            return None if result.error is None else self.sdk.wire(result.error)
        try:
            self.rc.deployments.begin_validate(group, name, body).result()
        except HttpResponseError as exc:
            assert exc.response is not None
            return dict(json.loads(exc.response.text())["error"])
        return None

    def exists(self, group: str, name: str) -> bool:
        return bool(self.rc.deployments.check_existence(group, name))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AltoServer]:
    server = start_cloud(tmp_path_factory.mktemp("public-templates"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, stop = serve_templates(tmp_path_factory.mktemp("web"))
    yield url
    stop()


@pytest.mark.parametrize("case", list(CASES))
def test_public_template(cloud: AltoServer, web: str, case: str, sdk: SdkLine) -> None:
    ctx = Ctx(cloud, SdkDeployer(cloud, sdk), web)
    try:
        CASES[case](ctx)
    finally:
        ctx.close()


def test_every_public_file_is_a_case_and_listed_in_the_readme() -> None:
    """The README records each file's source; each template file is deployed by a case above."""
    readme = (PUBLIC / "README.md").read_text()
    files = sorted(p.relative_to(PUBLIC).as_posix() for p in PUBLIC.rglob("*.json"))
    assert files, "the public templates are there"
    for path in files:
        assert f"`{path}`" in readme, path
    folders = {p.split("/")[0] for p in files} - {"ethereum-consortium-blockchain-poa"}
    assert folders <= set(CASES), folders - set(CASES)


def test_bookkeeping_helpers() -> None:
    """The CI placeholder values and the quickstart default names the cases compute."""
    assert len(ci_value("GEN-UNIQUE-32")) == 32 and ci_value("GEN-UNIQUE-9")[0].isalpha()
    assert ci_value("GEN-PASSWORD") != ci_value("GEN-PASSWORD") and ci_value("Standard_A1") == "Standard_A1"
    assert ci_value("GEN-SSH-PUB-KEY").startswith("ssh-rsa AAAA")
    assert unique_string("aaa") == "zavj67f3en4hc", "the hashing the expected names rest on is ARM's"
