"""``alto admin host add|list|show|drain|enable|remove``: the operator's hypervisor hosts, through the
Microsoft.Compute.Admin hosts API (docs/several-machines.md). A client of that API like every other command."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import DataDirOpt, Output, OutputOpt, QueryOpt, client, console, emit, fail
from altostratus.cli.confirm import YesOpt, confirm
from altostratus.cli.output import Col, Columns

API = "2015-12-01-preview"
host_app = typer.Typer(help="Hypervisor hosts: add, list, drain, enable, remove.", no_args_is_help=True)
URI_HELP = (
    "qemu:///system, qemu+unix:///system?socket=…, qemu+ssh://host/system, qemu+tls://host/system or sim://<name> "
    "(a simulated host)."
)
NameArg = Annotated[str, typer.Argument(help="The host's name (e.g. hv1).")]
COLUMNS: Columns = [
    Col("Name", "name", ident=True),
    ("State", "state"),
    ("Health", "health"),
    ("Instances", "instances"),
    ("Cores", "cores"),
    ("Memory MB", "memoryMB"),
    ("Fault domain", "faultDomain"),
    Col("URI", "uri", ident=True),
    ("Reason", "healthReason"),
]


def _url(api: ApiClient, name: str = "") -> str:
    base = f"/subscriptions/{api.subscription_id}/providers/Microsoft.Compute.Admin/locations/"
    base += f"{api.credentials['location']}/hosts"
    return f"{base}/{name}" if name else base


def _row(item: dict[str, Any]) -> dict[str, Any]:
    props = item.get("properties") or {}
    cap = props.get("capacity") or {}
    return {"name": item.get("name"), **props, "cores": cap.get("cores"), "memoryMB": cap.get("memoryMB")}


@host_app.command("add")
def host_add(
    name: NameArg,
    uri: Annotated[
        str,
        typer.Option(
            help="qemu:///system, qemu+unix:///system?socket=…, qemu+ssh://host/system, qemu+tls://host/system "
            "or sim://<name> (a simulated host)."
        ),
    ],  # fmt: skip
    cores: Annotated[
        int | None, typer.Option(help="sim:// hosts: cores offered (libvirt hosts report theirs).")
    ] = None,
    memory_mb: Annotated[int | None, typer.Option(help="sim:// hosts: memory offered in MB.")] = None,
    disk_gb: Annotated[int | None, typer.Option(help="sim:// hosts: disk offered in GB.")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Register a host: every control-plane node then places instances on it and watches its health."""
    api = client(data_dir, "operator")
    props: dict[str, Any] = {"uri": uri}
    if cores is not None or memory_mb is not None or disk_gb is not None:
        props["capacity"] = {"cores": cores or 0, "memoryMB": memory_mb or 0, "diskGB": disk_gb or 0}
    try:
        item = api.request("PUT", _url(api, name), API, {"properties": props}).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, COLUMNS, row=_row)


@host_app.command("list")
def host_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Every host with its state, health, instances and capacity."""
    api = client(data_dir, "operator")
    try:
        items = api.list_all(_url(api), API)
    except ApiError as exc:
        fail(exc)
    emit(items, output, COLUMNS, query, row=_row)


@host_app.command("show")
def host_show(name: NameArg, data_dir: DataDirOpt = None, output: OutputOpt = Output.json) -> None:
    """One host as the API answers it."""
    api = client(data_dir, "operator")
    try:
        item = api.request("GET", _url(api, name), API).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, COLUMNS, row=_row)


def _action(name: str, action: str, data_dir: Any, done: str) -> None:
    api = client(data_dir, "operator")
    try:
        api.request("POST", f"{_url(api, name)}/{action}", API)
    except ApiError as exc:
        fail(exc)
    console.print(done)


@host_app.command("drain")
def host_drain(name: NameArg, data_dir: DataDirOpt = None) -> None:
    """No new instances on the host; those on it keep running (scale in or delete them to empty it)."""
    _action(name, "drain", data_dir, f"Host '{name}' is draining: no new instances go to it.")


@host_app.command("enable")
def host_enable(name: NameArg, data_dir: DataDirOpt = None) -> None:
    """Let a drained host take new instances again."""
    _action(name, "enable", data_dir, f"Host '{name}' is enabled.")


@host_app.command("remove")
def host_remove(name: NameArg, yes: YesOpt = False, data_dir: DataDirOpt = None) -> None:
    """Unregister an empty host (a host with instances is refused: drain it and move them first)."""
    confirm(f"Remove host '{name}'?", yes)
    api = client(data_dir, "operator")
    try:
        api.request("DELETE", _url(api, name), API)
    except ApiError as exc:
        fail(exc)
    console.print(f"Removed host '{name}'.")
