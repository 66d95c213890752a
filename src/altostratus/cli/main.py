"""Entry point of the `alto` command."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from altostratus.cli.account import account_app, login, login_command, save_profile
from altostratus.cli.catalog import catalog_app
from altostratus.cli.client import ApiError
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
    read_credentials,
    wait_group_deletion,
)
from altostratus.cli.confirm import YesOpt, confirm
from altostratus.cli.demo import demo
from altostratus.cli.deployment import deployment_app
from altostratus.cli.failures import DEBUG_ENV, debugging, unexpected
from altostratus.cli.hosts import host_app
from altostratus.cli.images import images_app
from altostratus.cli.marketplace import gallery_app, image_app, marketplace_app, register
from altostratus.cli.nodes import node_app
from altostratus.cli.output import Col
from altostratus.cli.profiles import PROFILE_ENV, select
from altostratus.cli.roles import role_app
from altostratus.cli.tenancy import (
    offer_app,
    plan_app,
    quota_app,
    subscription_add_plan,
    subscription_set_state,
    tenant_offer_app,
    tenant_sub_app,
)
from altostratus.cli.users import user_app
from altostratus.cli.vmss import vmss_app
from altostratus.config import DEFAULT_DATA_DIR, Settings

app = typer.Typer(
    help="Altostratus: an Azure Stack Hub-compatible cloud for virtual machine scale sets. "
    "Add --debug to any command to see the traceback of a failure.",
    no_args_is_help=True,
    rich_markup_mode=None,  # click's plain help wraps; rich's panels cut option names ("--upgrade-policy-mo…")
)
admin_app = typer.Typer(help="Operator commands (need the operator principal).", no_args_is_help=True)
admin_sub_app = typer.Typer(help="Tenant subscriptions.", no_args_is_help=True)
admin_principal_app = typer.Typer(help="Service principals of the local directory.", no_args_is_help=True)
group_app = typer.Typer(help="Resource groups (like `az group`).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
admin_app.add_typer(admin_sub_app, name="subscription")
admin_app.add_typer(admin_principal_app, name="principal")
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(node_app, name="node")
app.add_typer(group_app, name="group")
app.add_typer(account_app, name="account")
app.command("login")(login)


@app.callback()
def root(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help=f"Act as this saved profile (see `alto account list`); default: ${PROFILE_ENV}, else the one "
            "`alto account set` chose, else credentials.json's tenant.",
        ),
    ] = None,
) -> None:
    """Options for every command (the app's help text is the Typer's)."""
    select(profile)


RESOURCES_API = "2019-10-01"
SUBSCRIPTIONS_API = "2016-06-01"
SUBS_ADMIN_API = "2015-11-01"
IDENTITY_ADMIN_API = "2024-01-01"

app.add_typer(marketplace_app, name="marketplace")
app.add_typer(image_app, name="image")
app.add_typer(gallery_app, name="gallery-item")
app.add_typer(catalog_app, name="catalog")
app.add_typer(images_app, name="images")
app.add_typer(vmss_app, name="vmss")
app.add_typer(deployment_app, name="deployment")
app.command("demo")(demo)
admin_app.command("register")(register)
admin_app.add_typer(plan_app, name="plan")
admin_app.add_typer(offer_app, name="offer")
admin_app.add_typer(quota_app, name="quota")
admin_app.add_typer(host_app, name="host")
admin_sub_app.command("set-state")(subscription_set_state)
admin_sub_app.command("add-plan")(subscription_add_plan)
app.add_typer(tenant_offer_app, name="offer")
app.add_typer(tenant_sub_app, name="subscription")
app.add_typer(role_app, name="role")


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
    operation_retention_days: Annotated[
        float, typer.Option(help="Days a finished long-running operation (and its Activity Log entry) is kept.")
    ] = 90.0,
    upstream: Annotated[
        str | None,
        typer.Option(help="Marketplace upstream to register: 'demo' (default on first start), a directory or a URL."),
    ] = None,
    hypervisor: Annotated[str, typer.Option(help="What runs instances: sim (default) or libvirt.")] = "sim",
    sim_boot_seconds: Annotated[float, typer.Option(help="sim driver: seconds an instance takes to boot.")] = 0.0,
    sim_fail_boot_marker: Annotated[
        str | None,
        typer.Option(help="sim driver failure injection: instances whose user data contains it fail to boot."),
    ] = None,
    libvirt_uri: Annotated[
        list[str] | None, typer.Option(help="libvirt host URI (repeatable; default qemu:///system).")
    ] = None,
    libvirt_memory_cap: Annotated[int, typer.Option(help="libvirt: cap on each VM's memory in MB.")] = 256,
    repair_min_grace_seconds: Annotated[
        float,
        typer.Option(help="Lowest automaticRepairsPolicy.gracePeriod tenants may set, in seconds (Azure: 600)."),
    ] = 600.0,
    login_rate_per_source: Annotated[
        float, typer.Option(help="Token endpoint: secret checks per second allowed from one address.")
    ] = 2.0,
    login_burst_per_source: Annotated[int, typer.Option(help="Token endpoint: burst of checks per address.")] = 20,
    login_rate_per_client: Annotated[
        float, typer.Option(help="Token endpoint: secret checks per second allowed for one client id.")
    ] = 1.0,
    login_burst_per_client: Annotated[int, typer.Option(help="Token endpoint: burst of checks per client id.")] = 5,
    login_hash_workers: Annotated[int, typer.Option(help="Token endpoint: threads that hash secrets.")] = 1,
    allow_outbound_private: Annotated[
        bool,
        typer.Option(help="Let tenants' linked templates come from private addresses (10/8, 172.16/12, 192.168/16)."),
    ] = False,
    outbound_allow: Annotated[
        list[str] | None,
        typer.Option(help="Host, address or CIDR tenants' linked templates may come from whatever it is (repeatable)."),
    ] = None,
    portal: Annotated[
        bool, typer.Option("--portal/--no-portal", help="Serve the web portals (tenant at /, operator at /admin).")
    ] = True,
    portal_session_idle: Annotated[
        int, typer.Option(help="Portal: seconds a session may sit idle before the person signs in again.")
    ] = 1800,
    join: Annotated[
        str | None,
        typer.Option(help="Join the cloud of this running node (https://...; default: the node the token names)."),
    ] = None,
    join_token: Annotated[
        str | None,
        typer.Option(
            help="Join a running cloud: a token from `alto admin node join-token` (first start of a further node)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Start the service (HTTPS ARM endpoint, token endpoint, controllers, web portals)."""
    from altostratus.server import serve

    settings = Settings(
        data_dir=data_dir.expanduser().resolve(),
        host=host,
        port=port,
        database_url=database_url,
        controllers=controllers,
        token_lifetime=token_lifetime,
        operation_retention_days=operation_retention_days,
        upstream=upstream if upstream in (None, "demo") or "://" in (upstream or "") else str(Path(upstream).resolve()),
        hypervisor=hypervisor,
        sim_boot_seconds=sim_boot_seconds,
        sim_fail_boot_marker=sim_fail_boot_marker,
        libvirt_uris=tuple(libvirt_uri or ()),
        libvirt_memory_cap_mb=libvirt_memory_cap,
        repair_min_grace_seconds=repair_min_grace_seconds,
        login_rate_per_source=login_rate_per_source,
        login_burst_per_source=login_burst_per_source,
        login_rate_per_client=login_rate_per_client,
        login_burst_per_client=login_burst_per_client,
        login_hash_workers=login_hash_workers,
        outbound_allow_private=allow_outbound_private,
        outbound_allow=tuple(outbound_allow or ()),
        portal=portal,
        portal_session_idle=portal_session_idle,
        join_token=join_token,
        join_url=join,
    )
    if join and not join_token:
        raise typer.BadParameter("--join needs --join-token (from `alto admin node join-token`).", param_hint="--join")
    serve(settings, log_level)


@admin_sub_app.command("create")
def subscription_create(
    display_name: Annotated[str, typer.Option("--display-name", "-n", help="Name of the new subscription.")],
    owner: Annotated[str | None, typer.Option(help="Client id of an existing principal (default: a new one).")] = None,
    offer: Annotated[str | None, typer.Option(help="The offer (default: default-offer).")] = None,
    save_profile_as: Annotated[
        str | None,
        typer.Option("--save-profile", help="Also save the new principal as this profile (`alto --profile NAME`)."),
    ] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Create a tenant subscription (and, unless --owner is given, a new tenant principal that owns it).

    Prints the new tenant's credentials as JSON, in the shape of credentials.json's "tenant" entry, and on
    stderr the `alto login` line that lets `alto` act as it (or saves it right away with --save-profile).
    """
    import uuid

    api = client(data_dir, "operator")
    admin = f"/subscriptions/{api.subscription_id}/providers"
    try:
        result: dict[str, Any] = {}
        if owner is None:
            cid = str(uuid.uuid4())
            p = api.request(
                "PUT",
                f"{admin}/Altostratus.Identity.Admin/principals/{cid}",
                IDENTITY_ADMIN_API,
                {"properties": {"displayName": f"{display_name} owner", "role": "tenant"}},
            ).json()
            owner = cid
            result.update(clientId=cid, clientSecret=p["properties"]["clientSecret"])
        sub_id = str(uuid.uuid4())
        api.request(
            "PUT",
            f"{admin}/Microsoft.Subscriptions.Admin/subscriptions/{sub_id}",
            SUBS_ADMIN_API,
            {"properties": {"displayName": display_name, "owner": owner, "offerId": offer}},
        )
        result.update(subscriptionId=sub_id, owner=owner)
    except ApiError as exc:
        fail(exc)
    emit(result, output, [Col("Subscription", "subscriptionId", ident=True), Col("Owner", "owner", ident=True)])
    if "clientSecret" not in result:
        return  # an existing owner: its secret is wherever it was saved before
    if save_profile_as:
        credentials, path = read_credentials(data_dir)
        save_profile(save_profile_as, credentials, path, cid, result["clientSecret"], sub_id)
        hint = f"Saved as profile '{save_profile_as}': use it with `alto --profile {save_profile_as} ...`."
    else:
        name = re.sub(r"[^a-z0-9]+", "-", display_name.lower()).strip("-")[:64] or "NAME"
        hint = f"To act as this tenant, save it as a profile:\n  {login_command(name, result, data_dir)}"
    err_console.print(hint, markup=False, highlight=False, soft_wrap=True)


@admin_sub_app.command("list")
def subscription_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """All subscriptions of this cloud."""
    api = client(data_dir, "operator")
    try:
        items = api.list_all(
            f"/subscriptions/{api.subscription_id}/providers/Microsoft.Subscriptions.Admin/subscriptions",
            SUBS_ADMIN_API,
        )
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [
            Col("Subscription", "name", ident=True),
            ("Name", "properties.displayName"),
            Col("Owner", "properties.owner", ident=True),
            ("State", "properties.state"),
        ],
        query,
    )


@admin_principal_app.command("list")
def principal_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Principals of the local directory."""
    api = client(data_dir, "operator")
    try:
        items = api.list_all(
            f"/subscriptions/{api.subscription_id}/providers/Altostratus.Identity.Admin/principals",
            IDENTITY_ADMIN_API,
        )
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [Col("Client id", "name", ident=True), ("Name", "properties.displayName"), ("Role", "properties.role")],
        query,
    )


@app.command("subscriptions")
def subscriptions(
    operator: Annotated[bool, typer.Option(help="As the operator principal.")] = False,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Subscriptions the principal can see."""
    api = client(data_dir, "operator" if operator else "tenant")
    try:
        items = api.list_all("/subscriptions", SUBSCRIPTIONS_API)
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [Col("Subscription", "subscriptionId", ident=True), ("Name", "displayName"), ("State", "state")],
        query,
    )


@group_app.command("list")
def group_list(
    tag: Annotated[str | None, typer.Option(help="Only groups with this tag (name or name=value).")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.table,
    query: QueryOpt = None,
) -> None:
    """Resource groups of the tenant's subscription."""
    api = client(data_dir)
    params = None
    if tag:
        name, _, value = tag.partition("=")
        quote = lambda v: v.replace("'", "''")  # noqa: E731 - OData string literal escaping
        f = f"tagName eq '{quote(name)}'" + (f" and tagValue eq '{quote(value)}'" if value else "")
        params = {"$filter": f}
    try:
        items = api.list_all(f"/subscriptions/{api.subscription_id}/resourcegroups", RESOURCES_API, params)
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [
            Col("Name", "name", ident=True),
            ("Location", "location"),
            ("State", "properties.provisioningState"),
            ("Tags", "tags"),
        ],
        query,
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
    api = client(data_dir)
    body: dict[str, Any] = {"location": location}
    if tags:
        body["tags"] = dict(t.partition("=")[::2] for t in tags)
    try:
        item = api.request(
            "PUT", f"/subscriptions/{api.subscription_id}/resourcegroups/{name}", RESOURCES_API, body
        ).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Name", "name"), ("Location", "location"), ("State", "properties.provisioningState")])


@group_app.command("show")
def group_show(
    name: Annotated[str, typer.Option("--name", "-n")],
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Show a resource group."""
    api = client(data_dir)
    try:
        item = api.request("GET", f"/subscriptions/{api.subscription_id}/resourcegroups/{name}", RESOURCES_API).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Name", "name"), ("Location", "location"), ("State", "properties.provisioningState")])


@group_app.command("delete")
def group_delete(
    name: Annotated[str, typer.Option("--name", "-n")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the deletion is accepted.")] = False,
    yes: YesOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete a resource group and everything in it (a long-running operation); asks first unless --yes."""
    api = client(data_dir)
    confirm(f"Delete resource group '{name}' and every resource in it?", yes)
    try:
        r = api.request("DELETE", f"/subscriptions/{api.subscription_id}/resourcegroups/{name}", RESOURCES_API)
        if no_wait:
            console.print(f"Deletion of '{name}' accepted.")
            return
        wait_group_deletion(api, r, name)
    except ApiError as exc:
        fail(exc)
    console.print(f"Deleted resource group '{name}'.")


def main() -> None:
    """Run a command; a failure is one line on stderr unless ``--debug`` (anywhere on the line) asks for tracebacks."""
    # typer converts parameters with pydantic, whose first use scans every installed distribution's entry points
    # for plugins: ~0.2 s of every command's start, for plugins the CLI never has. An operator's own setting wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if "--debug" in sys.argv[1:]:
        sys.argv = [sys.argv[0], *(a for a in sys.argv[1:] if a != "--debug")]
        os.environ[DEBUG_ENV] = "1"  # commands and their child processes read it through failures.debugging()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug or an unforeseen failure: still one line, the traceback only on request
        if debugging():
            raise
        err_console.print(unexpected(exc), markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
