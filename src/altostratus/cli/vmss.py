"""Tenant commands for virtual machine scale sets, shaped like `az vmss`: a client of the
Microsoft.Compute/virtualMachineScaleSets REST API (api-version 2020-06-01), as the tenant principal."""

from __future__ import annotations

import base64
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from altostratus.cli import lro
from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import (
    DataDirOpt,
    Output,
    OutputOpt,
    QueryOpt,
    client,
    console,
    emit,
    err_console,
    fail,
    wait_group_deletion,
)
from altostratus.cli.output import Col
from altostratus.cli.vmss_hints import create_hint

if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx
    import httpx

COMPUTE_API, RESOURCES_API = "2020-06-01", "2019-10-01"
NAMESPACE = "Microsoft.Compute"
PREFIX_MAX = 58  # Linux computerNamePrefix limit

vmss_app = typer.Typer(help="Virtual machine scale sets (like `az vmss`).", no_args_is_help=True)


class UpgradeMode(StrEnum):
    Manual = "Manual"
    Automatic = "Automatic"
    Rolling = "Rolling"


GroupOpt = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Scale set name.")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Return once the request is accepted.")]
InstanceIdsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--instance-ids",
        help="Instance ids (`--instance-ids 0 1`, or 0,1, or repeated); '*' for all (default: all).",
    ),
]
RequiredIdsOpt = Annotated[
    list[str],
    typer.Option("--instance-ids", help="Instance ids (`--instance-ids 0 1`, or 0,1, or repeated); '*' for all."),
]

SET_COLUMNS = [
    Col("Name", "name", ident=True),
    Col("ResourceGroup", "resourceGroup", ident=True),
    Col("Image", "image", ident=True),
    Col("Capacity", "sku.capacity"),
    Col("ProvisioningState", "properties.provisioningState"),
    Col("Sku", "sku.name"),
    Col("UpgradePolicy", "properties.upgradePolicy.mode"),
    Col("Location", "location"),
]
INSTANCE_COLUMNS = [
    Col("InstanceId", "instanceId", ident=True),
    Col("ComputerName", "computerName", ident=True),
    Col("ImageVersion", "imageVersion", ident=True),
    Col("PowerState", "powerState"),
    Col("ProvisioningState", "provisioningState"),
    Col("LatestModelApplied", "latestModelApplied"),
    Col("PortForwards", "portForwards"),
    Col("Name", "name"),
]


# -- paths and shapes ------------------------------------------------------------------------------------


def group_path(api: ApiClient, group: str) -> str:
    return f"/subscriptions/{api.subscription_id}/resourcegroups/{group}"


def sets_path(api: ApiClient, group: str | None = None) -> str:
    if group is None:
        return f"/subscriptions/{api.subscription_id}/providers/{NAMESPACE}/virtualMachineScaleSets"
    return f"/subscriptions/{api.subscription_id}/resourceGroups/{group}/providers/{NAMESPACE}/virtualMachineScaleSets"


def set_path(api: ApiClient, group: str, name: str) -> str:
    return f"{sets_path(api, group)}/{name}"


def parse_urn(urn: str) -> dict[str, str]:
    """``publisher:offer:sku:version`` (version a number or ``latest``); ``publisher:offer:sku`` means latest."""
    parts = urn.strip().split(":")
    if len(parts) == 3:
        parts.append("latest")
    if len(parts) != 4 or not all(p.strip() for p in parts):
        raise typer.BadParameter(f"'{urn}' is not an image URN: use publisher:offer:sku:version (or :latest).")
    version = "latest" if parts[3].lower() == "latest" else parts[3]
    return {"publisher": parts[0], "offer": parts[1], "sku": parts[2], "version": version}


def image_urn(item: dict[str, Any]) -> str:
    ref = (((item.get("properties") or {}).get("virtualMachineProfile") or {}).get("storageProfile") or {}).get(
        "imageReference"
    ) or {}
    return ":".join(str(ref.get(k, "")) for k in ("publisher", "offer", "sku", "version"))


def default_prefix(name: str) -> str:
    prefix = re.sub(r"[^A-Za-z0-9-]", "", name).lstrip("-")[:PREFIX_MAX]
    return prefix or "vm"


def scale_set_body(
    *,
    image: dict[str, str],
    capacity: int,
    vm_sku: str = "Standard_A1",
    location: str = "local",
    computer_name_prefix: str,
    admin_username: str = "azureuser",
    admin_password: str | None = None,
    ssh_keys: list[str] | None = None,
    custom_data: bytes | None = None,
    upgrade_mode: str = "Manual",
) -> dict[str, Any]:
    """The PUT body `az vmss create` would send (without the load balancer and virtual network)."""
    os_profile: dict[str, Any] = {"computerNamePrefix": computer_name_prefix, "adminUsername": admin_username}
    if admin_password:
        os_profile["adminPassword"] = admin_password
    if custom_data is not None:
        os_profile["customData"] = base64.b64encode(custom_data).decode()
    linux: dict[str, Any] = {"disablePasswordAuthentication": not admin_password}
    if ssh_keys:
        path = f"/home/{admin_username}/.ssh/authorized_keys"
        linux["ssh"] = {"publicKeys": [{"path": path, "keyData": k} for k in ssh_keys]}
    os_profile["linuxConfiguration"] = linux
    nic = computer_name_prefix[:9]
    return {
        "location": location,
        "sku": {"name": vm_sku, "tier": "Standard", "capacity": capacity},
        "properties": {
            "overprovision": False,
            "upgradePolicy": {"mode": upgrade_mode},
            "virtualMachineProfile": {
                "osProfile": os_profile,
                "storageProfile": {
                    "imageReference": image,
                    "osDisk": {"createOption": "FromImage", "caching": "ReadWrite"},
                },
                "networkProfile": {
                    "networkInterfaceConfigurations": [
                        {
                            "name": f"{nic}Nic",
                            "properties": {
                                "primary": True,
                                "ipConfigurations": [{"name": f"{nic}IPConfig", "properties": {}}],
                            },
                        }
                    ]
                },
            },
        },
    }


def set_row(item: dict[str, Any]) -> dict[str, Any]:
    """A scale set with the flat fields the tables show."""
    parts = item.get("id", "").split("/")
    group = parts[4] if len(parts) > 4 else ""
    return {**item, "resourceGroup": group, "image": image_urn(item)}


def power_state(vm: dict[str, Any]) -> str | None:
    statuses = ((vm.get("properties") or {}).get("instanceView") or {}).get("statuses") or []
    for s in statuses:
        if str(s.get("code", "")).startswith("PowerState/"):
            return str(s.get("displayStatus") or s["code"].split("/", 1)[1])
    return None


def instance_row(vm: dict[str, Any]) -> dict[str, Any]:
    props = vm.get("properties") or {}
    ref = (props.get("storageProfile") or {}).get("imageReference") or {}
    return {
        "instanceId": vm.get("instanceId"),
        "name": vm.get("name"),
        "computerName": (props.get("osProfile") or {}).get("computerName"),
        "provisioningState": props.get("provisioningState"),
        "powerState": power_state(vm),
        "imageVersion": ref.get("exactVersion"),
        "latestModelApplied": props.get("latestModelApplied"),
        "portForwards": port_forwards(vm),
    }


def port_forwards(vm: dict[str, Any]) -> str | None:
    """Inbound NAT forwards as ``127.a.b.c:50000->22`` (each load balancer listens on its own loopback address,
    so ``ssh -p 50000 user@127.a.b.c`` reaches the instance)."""
    forwards = ((vm.get("properties") or {}).get("instanceView") or {}).get("portForwards") or []
    text = ", ".join(f"{f.get('hostAddress')}:{f.get('hostPort')}->{f.get('guestPort')}" for f in forwards)
    return text or None


def split_ids(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    ids = [part for v in values for part in re.split(r"[,\s]+", v) if part]
    if not ids:
        raise typer.BadParameter("give at least one instance id", param_hint="--instance-ids")
    return ids


# -- API steps the commands (and `alto demo`) share ------------------------------------------------------


def wait_instances(api: ApiClient, response: httpx.Response, label: str) -> lro.Outcome:
    """Follow a scale-set operation, drawing a bar of instances ready (``properties.progress``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("instances ready"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task(label, total=None)

        def show(status: dict[str, Any]) -> None:
            detail = (status.get("properties") or {}).get("progress") or {}
            total, ready = detail.get("instances"), detail.get("instancesReady")
            state = status.get("status")
            if state == "Succeeded" and total is not None:
                ready = total
            percent = status.get("percentComplete")
            suffix = f" {percent:.0f}%" if isinstance(percent, int | float) and state == "InProgress" else ""
            progress.update(task, total=total, completed=ready or 0, description=f"{label}: {state}{suffix}")

        return lro.wait(api, response, show)


def ensure_group(api: ApiClient, group: str, location: str = "local") -> bool:
    """Create the resource group if it is missing; True if it was created."""
    try:
        api.request("GET", group_path(api, group), RESOURCES_API)
        return False
    except ApiError as exc:
        if exc.status != 404:
            raise
    api.request("PUT", group_path(api, group), RESOURCES_API, {"location": location})
    return True


def ensure_registered(api: ApiClient, namespace: str = NAMESPACE) -> bool:
    """Register the resource provider with the subscription if needed; True if it was registered now."""
    base = f"/subscriptions/{api.subscription_id}/providers/{namespace}"
    state = api.request("GET", base, RESOURCES_API).json().get("registrationState")
    if state == "Registered":
        return False
    api.request("POST", f"{base}/register", RESOURCES_API)
    return True


def list_vms(api: ApiClient, group: str, name: str) -> list[dict[str, Any]]:
    return api.list_all(f"{set_path(api, group, name)}/virtualMachines", COMPUTE_API, {"$expand": "instanceView"})


def run_action(
    api: ApiClient, group: str, name: str, action: str, ids: list[str] | None, verbs: tuple[str, str], no_wait: bool
) -> None:
    """POST an instance action (``ids`` None: all instances) and follow it; ``verbs`` like ("Stopping", "Stopped")."""
    body = {"instanceIds": ids} if ids is not None else None
    r = api.request("POST", f"{set_path(api, group, name)}/{action}", COMPUTE_API, body)
    which = "all instances" if ids is None else "instance(s) " + ", ".join(ids)
    if no_wait:
        console.print(f"{verbs[0]} {which} of '{name}': accepted.")
        return
    wait_instances(api, r, f"{verbs[0]} {which} of '{name}'")
    console.print(f"{verbs[1]} {which} of '{name}'.")


# -- commands --------------------------------------------------------------------------------------------


# Without --ssh-key-value (and without --admin-password): the first of these in ~/.ssh, as `az vmss create` does.
DEFAULT_SSH_KEYS = ("id_ed25519.pub", "id_rsa.pub", "id_ecdsa.pub")


def _ssh_key(value: str) -> str:
    if value.startswith("@") or (not value.lstrip().startswith(("ssh-", "ecdsa-", "sk-")) and Path(value).exists()):
        path = Path(value.removeprefix("@")).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--ssh-key-value") from None
    return value.strip()


def _default_ssh_key() -> str | None:
    for name in DEFAULT_SSH_KEYS:
        path = Path.home() / ".ssh" / name
        if path.is_file():
            return path.read_text().strip()
    return None


@vmss_app.command("create")
def create(
    resource_group: GroupOpt,
    name: NameOpt,
    image: Annotated[str, typer.Option("--image", help="publisher:offer:sku:version; version may be 'latest'.")],
    instance_count: Annotated[int, typer.Option("--instance-count", min=0, help="Number of instances.")] = 2,
    vm_sku: Annotated[str, typer.Option("--vm-sku", help="Instance size.")] = "Standard_A1",
    admin_username: Annotated[str, typer.Option("--admin-username")] = "azureuser",
    ssh_key_value: Annotated[
        list[str] | None,
        typer.Option(
            "--ssh-key-value",
            help="A public key, or @path of one; repeatable "
            "(default: the first of ~/.ssh/id_ed25519.pub, id_rsa.pub, id_ecdsa.pub).",
        ),
    ] = None,
    admin_password: Annotated[str | None, typer.Option("--admin-password")] = None,
    custom_data: Annotated[
        Path | None,
        typer.Option("--custom-data", exists=True, dir_okay=False, help="File passed to instances as user data."),
    ] = None,
    upgrade_policy_mode: Annotated[
        UpgradeMode, typer.Option("--upgrade-policy-mode", case_sensitive=False)
    ] = UpgradeMode.Manual,
    computer_name_prefix: Annotated[
        str | None, typer.Option("--computer-name-prefix", help="Default: the scale set name.")
    ] = None,
    location: Annotated[str, typer.Option("--location", "-l")] = "local",
    no_wait: NoWaitOpt = False,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Create a scale set (and its resource group if missing), then follow it until its instances run."""
    ref = parse_urn(image)
    keys = [_ssh_key(k) for k in ssh_key_value or []]
    if not keys and not admin_password:
        default = _default_ssh_key()
        if default is None:
            raise typer.BadParameter("give --ssh-key-value or --admin-password (no ~/.ssh/*.pub to default to)")
        keys = [default]
    body = scale_set_body(
        image=ref,
        capacity=instance_count,
        vm_sku=vm_sku,
        location=location,
        computer_name_prefix=computer_name_prefix or default_prefix(name),
        admin_username=admin_username,
        admin_password=admin_password,
        ssh_keys=keys,
        custom_data=custom_data.read_bytes() if custom_data else None,
        upgrade_mode=upgrade_policy_mode.value,
    )
    api = client(data_dir)
    created_group = False
    try:
        created_group = ensure_group(api, resource_group, location)
        if created_group:
            console.print(f"Created resource group '{resource_group}'.")
        if ensure_registered(api):
            console.print(f"Registered {NAMESPACE} with the subscription.")
        r = api.request("PUT", set_path(api, resource_group, name), COMPUTE_API, body)
    except ApiError as exc:
        refused(api, exc, resource_group if created_group else None, image, location)
    try:
        if no_wait:
            console.print(f"Creation of scale set '{name}' accepted.")
            return
        # The poller reads the set once more when the operation succeeds (ARM's final GET after a PUT).
        created = wait_instances(api, r, f"Creating '{name}'").result
        item = created or api.request("GET", set_path(api, resource_group, name), COMPUTE_API).json()
    except ApiError as exc:
        fail(exc)
    emit(set_row(item), output, SET_COLUMNS)


def refused(api: ApiClient, exc: ApiError, created_group: str | None, image: str, location: str) -> NoReturn:
    """The scale set was not accepted: remove the group this command created (it is empty), then show the error
    with what would have been valid."""
    hint = create_hint(exc, api, image, location)
    if created_group is not None:
        try:
            wait_group_deletion(
                api, api.request("DELETE", group_path(api, created_group), RESOURCES_API), created_group
            )
            err_console.print(f"Removed resource group '{created_group}', which this command had created.")
        except ApiError as cleanup:
            err_console.print(f"Resource group '{created_group}' was created but could not be removed: {cleanup}")
    if hint:
        exc.message = f"{exc.message} {hint}"
    fail(exc)
    raise AssertionError("fail() exits")  # pragma: no cover


@vmss_app.command("show")
def show(
    resource_group: GroupOpt,
    name: NameOpt,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
    query: QueryOpt = None,
) -> None:
    """Show a scale set."""
    api = client(data_dir)
    try:
        item = api.request("GET", set_path(api, resource_group, name), COMPUTE_API).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, SET_COLUMNS, query, row=set_row)


@vmss_app.command("list")
def list_sets(
    resource_group: Annotated[
        str | None, typer.Option("--resource-group", "-g", help="Resource group (default: the whole subscription).")
    ] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Scale sets of a resource group, or of the whole subscription."""
    api = client(data_dir)
    try:
        items = api.list_all(sets_path(api, resource_group), COMPUTE_API)
    except ApiError as exc:
        fail(exc)
    emit(items, output, SET_COLUMNS, query, row=set_row)


@vmss_app.command("scale")
def scale(
    resource_group: GroupOpt,
    name: NameOpt,
    new_capacity: Annotated[int, typer.Option("--new-capacity", min=0, help="Number of instances.")],
    no_wait: NoWaitOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Change the number of instances (new instances resolve the image as of now)."""
    api = client(data_dir)
    try:
        r = api.request("PATCH", set_path(api, resource_group, name), COMPUTE_API, {"sku": {"capacity": new_capacity}})
        if no_wait:
            console.print(f"Scaling '{name}' to {new_capacity} accepted.")
            return
        wait_instances(api, r, f"Scaling '{name}' to {new_capacity}")
    except ApiError as exc:
        fail(exc)
    console.print(f"Scaled '{name}' to {new_capacity} instance(s).")


@vmss_app.command("list-instances")
def list_instances(
    resource_group: GroupOpt,
    name: NameOpt,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Instances of a scale set, with power state and the exact image version each runs."""
    api = client(data_dir)
    try:
        vms = list_vms(api, resource_group, name)
    except ApiError as exc:
        fail(exc)
    emit(vms, output, INSTANCE_COLUMNS, query, row=instance_row)


EXTRA_IDS = {"allow_extra_args": True}  # `--instance-ids 0 1 2`, as az takes them


def _ids(ctx: typer.Context, values: list[str] | None) -> list[str] | None:
    if ctx.args and values is None:
        raise typer.BadParameter(f"unexpected argument(s): {' '.join(ctx.args)}")
    return split_ids(None if values is None else [*values, *ctx.args])


def _action_command(command: str, action: str, verbs: tuple[str, str], doc: str, *, required: bool = False) -> None:
    def act(
        ctx: typer.Context, group: str, name: str, ids: list[str] | None, no_wait: bool, data_dir: Path | None
    ) -> None:
        instance_ids = _ids(ctx, ids)
        api = client(data_dir)
        try:
            run_action(api, group, name, action, instance_ids, verbs, no_wait)
        except ApiError as exc:
            fail(exc)

    if required:

        def with_ids(
            ctx: typer.Context,
            resource_group: GroupOpt,
            name: NameOpt,
            instance_ids: RequiredIdsOpt,
            no_wait: NoWaitOpt = False,
            data_dir: DataDirOpt = None,
        ) -> None:
            act(ctx, resource_group, name, instance_ids, no_wait, data_dir)

        with_ids.__doc__ = doc
        vmss_app.command(command, context_settings=EXTRA_IDS)(with_ids)
        return

    def optional_ids(
        ctx: typer.Context,
        resource_group: GroupOpt,
        name: NameOpt,
        instance_ids: InstanceIdsOpt = None,
        no_wait: NoWaitOpt = False,
        data_dir: DataDirOpt = None,
    ) -> None:
        act(ctx, resource_group, name, instance_ids, no_wait, data_dir)

    optional_ids.__doc__ = doc
    vmss_app.command(command, context_settings=EXTRA_IDS)(optional_ids)


_action_command(
    "delete-instances", "delete", ("Deleting", "Deleted"), "Delete instances (the capacity drops by as many).",
    required=True,
)  # fmt: skip
_action_command(
    "update-instances", "manualupgrade", ("Upgrading", "Upgraded"), "Bring instances to the latest scale-set model.",
    required=True,
)  # fmt: skip
_action_command("reimage", "reimage", ("Reimaging", "Reimaged"), "Rebuild disks from the image the model names now.")
_action_command("start", "start", ("Starting", "Started"), "Start instances.")
_action_command("stop", "poweroff", ("Stopping", "Stopped"), "Power off instances (they keep their resources).")
_action_command("deallocate", "deallocate", ("Deallocating", "Deallocated"), "Stop and deallocate instances.")
_action_command("restart", "restart", ("Restarting", "Restarted"), "Restart instances.")


@vmss_app.command("delete")
def delete(resource_group: GroupOpt, name: NameOpt, no_wait: NoWaitOpt = False, data_dir: DataDirOpt = None) -> None:
    """Delete a scale set and its instances."""
    api = client(data_dir)
    try:
        r = api.request("DELETE", set_path(api, resource_group, name), COMPUTE_API)
        if r.status_code == 204:
            console.print(f"Scale set '{name}' does not exist.")
            return
        if no_wait:
            console.print(f"Deletion of '{name}' accepted.")
            return
        wait_instances(api, r, f"Deleting '{name}'")
    except ApiError as exc:
        fail(exc)
    console.print(f"Deleted scale set '{name}'.")


@vmss_app.command("console")
def console_log(
    resource_group: GroupOpt,
    name: NameOpt,
    instance_id: Annotated[str, typer.Option("--instance-id", help="The instance whose serial console to show.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Print an instance's serial console (boot diagnostics), as retrieveBootDiagnosticsData points to it."""
    api = client(data_dir)
    try:
        uris = api.request(
            "POST", f"{set_path(api, resource_group, name)}/virtualMachines/{instance_id}/retrieveBootDiagnosticsData",
            COMPUTE_API,
        ).json()  # fmt: skip
        text = api.request("GET", uris["serialConsoleLogBlobUri"], COMPUTE_API).text
    except ApiError as exc:
        fail(exc)
    sys.stdout.write(text)
