"""Entry point of the `alto` command."""

from __future__ import annotations

import json
import sys
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from altostratus.cli.client import ApiClient, ApiError, credentials_path
from altostratus.config import DEFAULT_DATA_DIR, Settings

app = typer.Typer(
    help="Altostratus: an Azure Stack Hub-compatible cloud for virtual machine scale sets.",
    no_args_is_help=True,
)
admin_app = typer.Typer(help="Operator commands (need the operator principal).", no_args_is_help=True)
admin_sub_app = typer.Typer(help="Tenant subscriptions.", no_args_is_help=True)
admin_principal_app = typer.Typer(help="Service principals of the local directory.", no_args_is_help=True)
group_app = typer.Typer(help="Resource groups (like `az group`).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
admin_app.add_typer(admin_sub_app, name="subscription")
admin_app.add_typer(admin_principal_app, name="principal")
app.add_typer(group_app, name="group")

console = Console()
err_console = Console(stderr=True)
RESOURCES_API = "2019-10-01"
SUBSCRIPTIONS_API = "2016-06-01"
SUBS_ADMIN_API = "2015-11-01"
IDENTITY_ADMIN_API = "2024-01-01"


class Output(StrEnum):
    table = "table"
    json = "json"


DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data dir whose credentials.json to use.")]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]


def _client(data_dir: Path | None, principal: str = "tenant") -> ApiClient:
    path = credentials_path(data_dir)
    if not path.exists():
        err_console.print(f"[red]No credentials at {path}.[/red] Start the server with `alto up` first.")
        raise typer.Exit(2)
    return ApiClient.from_file(path, principal)


def _emit(items: list[dict[str, Any]] | dict[str, Any], output: Output, columns: list[tuple[str, str]]) -> None:
    if output is Output.json:
        console.print_json(json.dumps(items))
        return
    rows = items if isinstance(items, list) else [items]
    table = Table(*[c[0] for c in columns])
    for item in rows:
        cells = []
        for _, key in columns:
            value: Any = item
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            cells.append("" if value is None else (json.dumps(value) if isinstance(value, dict | list) else str(value)))
        table.add_row(*cells)
    console.print(table)


def _fail(exc: ApiError) -> None:
    err_console.print(f"[red]{exc.code}[/red]: {exc.message}" + (f" (target: {exc.target})" if exc.target else ""))
    raise typer.Exit(1)


@app.command()
def up(
    data_dir: Annotated[
        Path, typer.Option(help="Where the database, certificates and credentials live.")
    ] = DEFAULT_DATA_DIR,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTPS port.")] = 8443,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL, e.g. postgresql://user:pw@host/db (default: SQLite in the data dir)."),
    ] = None,
    controllers: Annotated[
        bool,
        typer.Option("--controllers/--no-controllers", help="Run the reconcile loops here (off: API-only node)."),
    ] = True,
    token_lifetime: Annotated[int, typer.Option(help="Access token lifetime in seconds.")] = 3600,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Start the service (HTTPS ARM endpoint, token endpoint, controllers)."""
    from altostratus.server import serve

    settings = Settings(
        data_dir=data_dir.expanduser().resolve(),
        host=host,
        port=port,
        database_url=database_url,
        controllers=controllers,
        token_lifetime=token_lifetime,
    )
    serve(settings, log_level)


@admin_sub_app.command("create")
def subscription_create(
    display_name: Annotated[str, typer.Option("--display-name", "-n", help="Name of the new subscription.")],
    owner: Annotated[str | None, typer.Option(help="Client id of an existing principal (default: a new one).")] = None,
    offer: Annotated[str | None, typer.Option(help="Offer id to record.")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a tenant subscription (and, unless --owner is given, a new tenant principal that owns it).

    Prints the new tenant's credentials as JSON, in the shape of credentials.json's "tenant" entry.
    """
    client = _client(data_dir, "operator")
    admin = f"/subscriptions/{client.subscription_id}/providers"
    try:
        result: dict[str, Any] = {}
        if owner is None:
            cid = str(uuid.uuid4())
            p = client.request(
                "PUT",
                f"{admin}/Altostratus.Identity.Admin/principals/{cid}",
                IDENTITY_ADMIN_API,
                {"properties": {"displayName": f"{display_name} owner", "role": "tenant"}},
            ).json()
            owner = cid
            result.update(clientId=cid, clientSecret=p["properties"]["clientSecret"])
        sub_id = str(uuid.uuid4())
        client.request(
            "PUT",
            f"{admin}/Microsoft.Subscriptions.Admin/subscriptions/{sub_id}",
            SUBS_ADMIN_API,
            {"properties": {"displayName": display_name, "owner": owner, "offerId": offer}},
        )
        result.update(subscriptionId=sub_id, owner=owner)
    except ApiError as exc:
        _fail(exc)
    console.print_json(json.dumps(result))


@admin_sub_app.command("list")
def subscription_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table) -> None:
    """All subscriptions of this cloud."""
    client = _client(data_dir, "operator")
    try:
        items = client.list_all(
            f"/subscriptions/{client.subscription_id}/providers/Microsoft.Subscriptions.Admin/subscriptions",
            SUBS_ADMIN_API,
        )
    except ApiError as exc:
        _fail(exc)
    _emit(
        items,
        output,
        [
            ("Subscription", "name"),
            ("Name", "properties.displayName"),
            ("Owner", "properties.owner"),
            ("State", "properties.state"),
        ],
    )


@admin_principal_app.command("list")
def principal_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table) -> None:
    """Principals of the local directory."""
    client = _client(data_dir, "operator")
    try:
        items = client.list_all(
            f"/subscriptions/{client.subscription_id}/providers/Altostratus.Identity.Admin/principals",
            IDENTITY_ADMIN_API,
        )
    except ApiError as exc:
        _fail(exc)
    _emit(
        items,
        output,
        [("Client id", "name"), ("Name", "properties.displayName"), ("Role", "properties.role")],
    )


@app.command("subscriptions")
def subscriptions(
    operator: Annotated[bool, typer.Option(help="As the operator principal.")] = False,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Subscriptions the principal can see."""
    client = _client(data_dir, "operator" if operator else "tenant")
    try:
        items = client.list_all("/subscriptions", SUBSCRIPTIONS_API)
    except ApiError as exc:
        _fail(exc)
    _emit(items, output, [("Subscription", "subscriptionId"), ("Name", "displayName"), ("State", "state")])


@group_app.command("list")
def group_list(
    tag: Annotated[str | None, typer.Option(help="Only groups with this tag (name or name=value).")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Resource groups of the tenant's subscription."""
    client = _client(data_dir)
    params = None
    if tag:
        name, _, value = tag.partition("=")
        quote = lambda v: v.replace("'", "''")  # noqa: E731 - OData string literal escaping
        f = f"tagName eq '{quote(name)}'" + (f" and tagValue eq '{quote(value)}'" if value else "")
        params = {"$filter": f}
    try:
        items = client.list_all(f"/subscriptions/{client.subscription_id}/resourcegroups", RESOURCES_API, params)
    except ApiError as exc:
        _fail(exc)
    _emit(
        items,
        output,
        [
            ("Name", "name"),
            ("Location", "location"),
            ("State", "properties.provisioningState"),
            ("Tags", "tags"),
        ],
    )


@group_app.command("create")
def group_create(
    name: Annotated[str, typer.Option("--name", "-n")],
    location: Annotated[str, typer.Option("--location", "-l")] = "local",
    tags: Annotated[list[str] | None, typer.Option("--tag", help="name=value, repeatable.")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Create or update a resource group."""
    client = _client(data_dir)
    body: dict[str, Any] = {"location": location}
    if tags:
        body["tags"] = dict(t.partition("=")[::2] for t in tags)
    try:
        item = client.request(
            "PUT", f"/subscriptions/{client.subscription_id}/resourcegroups/{name}", RESOURCES_API, body
        ).json()
    except ApiError as exc:
        _fail(exc)
    _emit(item, output, [("Name", "name"), ("Location", "location"), ("State", "properties.provisioningState")])


@group_app.command("show")
def group_show(
    name: Annotated[str, typer.Option("--name", "-n")],
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Show a resource group."""
    client = _client(data_dir)
    try:
        item = client.request(
            "GET", f"/subscriptions/{client.subscription_id}/resourcegroups/{name}", RESOURCES_API
        ).json()
    except ApiError as exc:
        _fail(exc)
    _emit(item, output, [("Name", "name"), ("Location", "location"), ("State", "properties.provisioningState")])


@group_app.command("delete")
def group_delete(
    name: Annotated[str, typer.Option("--name", "-n")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the deletion is accepted.")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete a resource group and everything in it (a long-running operation)."""
    client = _client(data_dir)
    try:
        r = client.request("DELETE", f"/subscriptions/{client.subscription_id}/resourcegroups/{name}", RESOURCES_API)
        if no_wait:
            console.print(f"Deletion of '{name}' accepted.")
            return
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=err_console, transient=True
        ) as progress:
            task = progress.add_task(f"Deleting resource group '{name}'", total=None)

            def show(status: dict[str, Any]) -> None:
                detail = (status.get("properties") or {}).get("progress") or {}
                suffix = f" ({detail['resourcesDeleted']}/{detail['resourcesTotal']} resources)" if detail else ""
                progress.update(task, description=f"Deleting resource group '{name}': {status['status']}{suffix}")

            client.wait(r, show)
    except ApiError as exc:
        _fail(exc)
    console.print(f"Deleted resource group '{name}'.")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
