"""``alto role assignment create|list|delete``: Microsoft.Authorization role assignments on the tenant's
subscription, a resource group or a resource, like ``az role assignment``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import DataDirOpt, Output, OutputOpt, QueryOpt, client, console, emit, fail
from altostratus.cli.output import Col

API = "2022-04-01"
ROLES = {
    "owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
}
NAMES = {v: k.capitalize() for k, v in ROLES.items()}

role_app = typer.Typer(help="Role-based access (like `az role`).", no_args_is_help=True)
assignment_app = typer.Typer(help="Who may read, operate or own what.", no_args_is_help=True)
role_app.add_typer(assignment_app, name="assignment")

ScopeOpt = Annotated[str | None, typer.Option(help="A full scope: /subscriptions/{id}[/resourceGroups/{g}[/...]].")]
GroupOpt = Annotated[str | None, typer.Option("--resource-group", "-g", help="A resource group of the subscription.")]


def _scope(api: ApiClient, scope: str | None, group: str | None) -> str:
    if scope:
        return scope.rstrip("/")
    base = f"/subscriptions/{api.subscription_id}"
    return f"{base}/resourceGroups/{group}" if group else base


@assignment_app.command("create")
def create(
    assignee: Annotated[str, typer.Option(help="The principal's client id.")],
    role: Annotated[str, typer.Option(help="Owner, Contributor or Reader.")],
    scope: ScopeOpt = None,
    group: GroupOpt = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Give a principal a role at the subscription (default), a resource group or a resource."""
    api = client(data_dir)
    role_id = ROLES.get(role.lower())
    if role_id is None:
        raise typer.BadParameter(f"'{role}' is not Owner, Contributor or Reader.", param_hint="--role")
    at = _scope(api, scope, group)
    definitions = f"/subscriptions/{api.subscription_id}/providers/Microsoft.Authorization/roleDefinitions"
    body = {"properties": {"roleDefinitionId": f"{definitions}/{role_id}", "principalId": assignee}}
    try:
        item = api.request("PUT", f"{at}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}", API, body)
    except ApiError as exc:
        fail(exc)
    emit(item.json(), output, [("Name", "name"), ("Scope", "properties.scope")])


def _row(item: dict[str, Any]) -> dict[str, Any]:
    props = item["properties"]
    return {**item, "role": NAMES.get(props["roleDefinitionId"].rsplit("/", 1)[-1], "?")}


@assignment_app.command("list")
def list_(
    scope: ScopeOpt = None,
    group: GroupOpt = None,
    assignee: Annotated[str | None, typer.Option(help="Only this principal's.")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Role assignments at, above and below a scope."""
    api = client(data_dir)
    params = {"$filter": f"principalId eq '{assignee}'"} if assignee else None
    try:
        items = api.list_all(
            f"{_scope(api, scope, group)}/providers/Microsoft.Authorization/roleAssignments", API, params
        )
    except ApiError as exc:
        fail(exc)
    columns: list[Col | tuple[str, str]] = [
        ("Role", "role"),
        Col("Principal", "properties.principalId", ident=True),
        ("Scope", "properties.scope"),
        Col("Name", "name", ident=True),
    ]
    emit(items, output, columns, query, row=_row)


@assignment_app.command("delete")
def delete(
    name: Annotated[str, typer.Option("--name", "-n", help="The assignment's name (see `list`).")],
    scope: ScopeOpt = None,
    group: GroupOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a role assignment."""
    api = client(data_dir)
    try:
        api.request(
            "DELETE", f"{_scope(api, scope, group)}/providers/Microsoft.Authorization/roleAssignments/{name}", API
        )
    except ApiError as exc:
        fail(exc)
    console.print(f"Deleted role assignment {name}.")
