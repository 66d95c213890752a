"""`alto deployment group ...`: template deployments of a resource group, shaped like `az deployment group`.

A client of Microsoft.Resources/deployments (api-version 2019-10-01) as the tenant principal. The commands read
their inputs with :mod:`deployment_input`, talk HTTP through :mod:`deployment_http` (errors kept whole) and print
with :mod:`deployment_view` and :mod:`whatif_view`; what is here is the flow of each command.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from altostratus.cli import lro
from altostratus.cli.client import ApiClient
from altostratus.cli.common import DataDirOpt, Output, OutputOpt, QueryOpt, client, console, emit, err_console
from altostratus.cli.deployment_http import (
    call,
    deployments_path,
    handled,
    list_all,
    operations_path,
    wait_spinning,
)
from altostratus.cli.lazy import lazy_module

if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx
    import httpx

    from altostratus.cli import deployment_view as view
    from altostratus.cli import whatif_view as whatif
else:  # what prints deployments, made of rich parts: loaded when a command first uses it
    view = lazy_module("altostratus.cli.deployment_view")
    whatif = lazy_module("altostratus.cli.whatif_view")

deployment_app = typer.Typer(help="Template deployments (like `az deployment`).", no_args_is_help=True)
group_app = typer.Typer(help="Deployments of a resource group (like `az deployment group`).", no_args_is_help=True)
deployment_app.add_typer(group_app, name="group")


class Mode(StrEnum):
    Incremental = "Incremental"
    Complete = "Complete"


class ResultFormat(StrEnum):
    FullResourcePayloads = "FullResourcePayloads"
    ResourceIdOnly = "ResourceIdOnly"


GroupOpt = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="Deployment name.")]
DefaultNameOpt = Annotated[
    str | None, typer.Option("--name", "-n", help="Deployment name (default: the template file's base name).")
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--template-file", "-f", help="Template JSON (a byte-order mark, comments, trailing commas are ok)."),
]
UriOpt = Annotated[str | None, typer.Option("--template-uri", "-u", help="http(s) URL the server fetches it from.")]
ParamsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--parameters",
        "-p",
        help="@file.json, inline JSON, or name=value (JSON if it parses, else a string); repeatable, later wins.",
    ),
]
ModeOpt = Annotated[Mode, typer.Option("--mode", case_sensitive=False, help="Complete deletes what is not in it.")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Return once the request is accepted.")]
EXTRA_ARGS = {"allow_extra_args": True}  # `--parameters @p.json name=web`, as az takes them


# ---------------------------------------------------------------------------------------------------- inputs


def request_inputs(
    extras: list[str],
    template_file: Path | None,
    template_uri: str | None,
    parameters: list[str] | None,
    name: str | None,
    mode: Mode,
    settings: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """The deployment name and the request body (template, merged parameters, mode); ``extras`` are the words
    after ``--parameters`` (az style)."""
    if extras and parameters is None:
        raise typer.BadParameter(f"unexpected argument(s): {' '.join(extras)}")
    # Imported here: the template engine is only for the commands that send a template.
    from altostratus.cli.deployment_input import InputError, default_name, load_template, merge_parameters

    try:
        source = load_template(template_file, template_uri)
        values = merge_parameters([*(parameters or []), *extras])
    except InputError as exc:
        err_console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    body = '{"properties": ' + source.properties_text(mode.value, values, settings) + "}"
    return name or default_name(template_file, template_uri), body


# -------------------------------------------------------------------------------------------------- commands


@group_app.command("create", context_settings=EXTRA_ARGS)
def create(
    ctx: typer.Context,
    resource_group: GroupOpt,
    template_file: FileOpt = None,
    template_uri: UriOpt = None,
    parameters: ParamsOpt = None,
    name: DefaultNameOpt = None,
    mode: ModeOpt = Mode.Incremental,
    no_wait: NoWaitOpt = False,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Deploy a template to a resource group, showing its operations while it runs; prints the outputs."""
    name, body = request_inputs(ctx.args, template_file, template_uri, parameters, name, mode)
    api = client(data_dir)
    path = f"{deployments_path(api, resource_group)}/{name}"
    with handled(f"Deployment '{name}' was not accepted."):
        r = call(api, "PUT", path, body)
    if no_wait:
        if output is Output.json:
            console.print_json(r.text)
        else:
            where = f"-g {resource_group} -n {name}"
            console.print(f"Deployment '{name}' accepted. Follow it with `alto deployment group show {where}`.")
        return
    try:
        with handled(), view.OperationsView(err_console, name) as live:
            status, operations, dep = follow(api, r, resource_group, name, live)
    except KeyboardInterrupt:
        where = f"-g {resource_group} -n {name}"
        err_console.print(
            f"Stopped waiting; '{name}' goes on in the cloud. `alto deployment group show {where}` shows it, "
            f"`alto deployment group cancel {where}` stops it."
        )
        raise typer.Exit(130) from None
    if dep is None:  # it failed: the deployment itself tells which resources and why
        with handled():
            dep = call(api, "GET", path).json()
    report(dep, status, operations, resource_group, output)


def follow(
    api: ApiClient, r: httpx.Response, group: str, name: str, live: view.OperationsView
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """Wait for the deployment, feeding the live view its operations at every poll.

    Returns the last status, the operations as last listed, and the deployment (None when it did not succeed).
    """
    operations: list[dict[str, Any]] = []

    def show(status: dict[str, Any]) -> None:
        nonlocal operations
        operations = list_all(api, operations_path(api, group, name))
        live.update(str(status.get("status")), operations)

    try:
        outcome = lro.wait(api, r, show)
    except lro.OperationFailed as exc:
        return exc.body, operations, None
    return outcome.status, operations, outcome.result


def report(
    dep: dict[str, Any], status: dict[str, Any], operations: list[dict[str, Any]], group: str, output: Output
) -> None:
    """The end of `create`: state and outputs, or the error with the failed resources (exit 1)."""
    props = dep.get("properties") or {}
    name, state = dep.get("name"), props.get("provisioningState") or status.get("status")
    if state != "Succeeded":
        why = "Resources deployed before it stopped stay." if state == "Canceled" else "See its operations."
        error = props.get("error") or status.get("error") or {"code": state, "message": why}
        view.print_error(err_console, error, f"Deployment '{name}' {str(state).lower()}.")
        lines = view.failed_operations(operations)
        if lines:
            err_console.print("Failed operations:")
            for line in lines:
                err_console.print(f"  {line}", markup=False, highlight=False)
        err_console.print(f"All operations: `alto deployment group list-operations -g {group} -n {name}`.")
        raise typer.Exit(1)
    if output is Output.json:
        console.print_json(json.dumps(dep))
        return
    count = len(props.get("outputResources") or [])
    took = view.human_duration(props.get("duration"))
    console.print(f"Deployment '{name}': {state} in {took} ({count} resource(s)).", highlight=False)
    outputs = props.get("outputs") or {}
    console.print(view.outputs_table(outputs) if outputs else "No outputs.")


@group_app.command("validate", context_settings=EXTRA_ARGS)
def validate(
    ctx: typer.Context,
    resource_group: GroupOpt,
    template_file: FileOpt = None,
    template_uri: UriOpt = None,
    parameters: ParamsOpt = None,
    name: DefaultNameOpt = None,
    mode: ModeOpt = Mode.Incremental,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Check a template and its parameters without deploying (ARM's preflight); exits 1 when invalid."""
    name, body = request_inputs(ctx.args, template_file, template_uri, parameters, name, mode)
    api = client(data_dir)
    with handled("The template is not valid."):
        result = call(api, "POST", f"{deployments_path(api, resource_group)}/{name}/validate", body).json()
    if output is Output.json:
        console.print_json(json.dumps(result))
        return
    resources = (result.get("properties") or {}).get("validatedResources") or []
    console.print(f"The template is valid: {len(resources)} resource(s) validated.")
    if resources:
        from rich.table import Table

        table = Table("Resource", "Api version")
        for res in resources:
            table.add_row(f"{res.get('type')}/{res.get('name')}", res.get("apiVersion"))
        console.print(table)


@group_app.command("what-if", context_settings=EXTRA_ARGS)
def what_if(
    ctx: typer.Context,
    resource_group: GroupOpt,
    template_file: FileOpt = None,
    template_uri: UriOpt = None,
    parameters: ParamsOpt = None,
    name: DefaultNameOpt = None,
    mode: ModeOpt = Mode.Incremental,
    result_format: Annotated[
        ResultFormat, typer.Option("--result-format", "-r", help="ResourceIdOnly lists resources without properties.")
    ] = ResultFormat.FullResourcePayloads,
    exclude_change_types: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-change-types",
            "-x",
            help="Leave out these change types (`-x NoChange Ignore`, or comma-separated).",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Show what a deployment would create, modify or delete, without changing anything."""
    # `-x NoChange Ignore` as az takes it: the extra words that name change types belong to -x.
    kinds = {k.casefold() for k in whatif.CHANGES}
    more = [a for a in ctx.args if exclude_change_types and a.casefold() in kinds]
    excluded = excluded_types([*(exclude_change_types or []), *more])
    extras = [a for a in ctx.args if a not in more]
    settings = {"whatIfSettings": {"resultFormat": result_format.value}}
    name, body = request_inputs(extras, template_file, template_uri, parameters, name, mode, settings)
    api = client(data_dir)
    with handled("What-if failed."):
        r = call(api, "POST", f"{deployments_path(api, resource_group)}/{name}/whatIf", body)
        result = wait_spinning(api, r, f"What-if of '{name}'", final_state_via="location").result or {}
    if result.get("error") or str(result.get("status", "Succeeded")) not in ("Succeeded", ""):
        view.print_error(err_console, result.get("error") or {"code": result.get("status")}, "What-if failed.")
        raise typer.Exit(1)
    changes = [c for c in (result.get("properties") or {}).get("changes") or [] if c.get("changeType") not in excluded]
    if output is Output.json:
        console.print_json(
            json.dumps({**result, "properties": {**(result.get("properties") or {}), "changes": changes}})
        )
        return
    whatif.render(console, changes)


def excluded_types(values: list[str] | None) -> set[str]:
    known = {k.casefold(): k for k in whatif.CHANGES}
    out = set()
    for part in (p for v in values or [] for p in v.replace(",", " ").split()):
        if part.casefold() not in known:
            raise typer.BadParameter(
                f"'{part}' is not one of {', '.join(whatif.CHANGES)}", param_hint="--exclude-change-types"
            )
        out.add(known[part.casefold()])
    return out


@group_app.command("show")
def show(resource_group: GroupOpt, name: NameOpt, data_dir: DataDirOpt = None, output: OutputOpt = Output.json) -> None:
    """A deployment: state, parameters, outputs, dependencies, error."""
    api = client(data_dir)
    with handled():
        dep = call(api, "GET", f"{deployments_path(api, resource_group)}/{name}").json()
    if output is Output.json:
        console.print_json(json.dumps(dep))
        return
    emit(view.deployment_row(dep), output, view.DEPLOYMENT_COLUMNS)
    props = dep.get("properties") or {}
    if props.get("outputs"):
        console.print(view.outputs_table(props["outputs"]))
    if props.get("error"):
        view.print_error(console, props["error"])


@group_app.command("list")
def list_deployments(
    resource_group: GroupOpt,
    state: Annotated[str | None, typer.Option("--state", help="Only deployments in this state, e.g. Failed.")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """The deployment history of a resource group, newest first."""
    api = client(data_dir)
    params = {"$filter": f"provisioningState eq '{state}'"} if state else None
    with handled():
        items = list_all(api, deployments_path(api, resource_group) + "/", params)
    emit(items, output, view.DEPLOYMENT_COLUMNS, query, row=view.deployment_row)


@group_app.command("list-operations")
def list_operations(
    resource_group: GroupOpt,
    name: NameOpt,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """What a deployment did, resource by resource: operation, state, HTTP status, duration, error."""
    api = client(data_dir)
    with handled():
        items = list_all(api, operations_path(api, resource_group, name))
    emit(items, output, view.OPERATION_COLUMNS, query, row=view.operation_row)


@group_app.command("delete")
def delete(resource_group: GroupOpt, name: NameOpt, no_wait: NoWaitOpt = False, data_dir: DataDirOpt = None) -> None:
    """Remove a deployment from the history (the resources it deployed stay)."""
    api = client(data_dir)
    with handled():
        r = call(api, "DELETE", f"{deployments_path(api, resource_group)}/{name}")
        if r.status_code == 204:
            console.print(f"No deployment '{name}' in '{resource_group}': nothing to delete.")
            return
        if no_wait:
            console.print(f"Deletion of deployment '{name}' accepted.")
            return
        try:
            wait_spinning(api, r, f"Deleting deployment '{name}'")
        except lro.OperationFailed as exc:
            view.print_error(err_console, exc.error, "Deletion failed.")
            raise typer.Exit(1) from None
    console.print(f"Deleted deployment '{name}' from the history of '{resource_group}' (its resources stay).")


@group_app.command("cancel")
def cancel(resource_group: GroupOpt, name: NameOpt, data_dir: DataDirOpt = None) -> None:
    """Stop a running deployment; resources already deployed stay."""
    api = client(data_dir)
    with handled():
        call(api, "POST", f"{deployments_path(api, resource_group)}/{name}/cancel")
    console.print(f"Canceled deployment '{name}'.")


@group_app.command("export")
def export(resource_group: GroupOpt, name: NameOpt, data_dir: DataDirOpt = None) -> None:
    """The template a deployment used, as JSON."""
    api = client(data_dir)
    with handled():
        body = call(api, "POST", f"{deployments_path(api, resource_group)}/{name}/exportTemplate").json()
    console.print_json(json.dumps(body.get("template")))
