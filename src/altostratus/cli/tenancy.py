"""Tenancy commands: the operator's plans, offers, quotas and subscription states (``alto admin plan|offer|quota|
subscription``), and the tenant's offers, subscriptions and add-on plans (``alto offer``, ``alto subscription``).

Each is a REST call of Microsoft.Subscriptions(.Admin) or a ``*.Admin`` quota API, as docs/tenancy.md describes.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer

from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import DataDirOpt, Output, OutputOpt, QueryOpt, client, console, emit, fail
from altostratus.cli.confirm import YesOpt, confirm
from altostratus.cli.output import Col

SUBS_API = "2015-11-01"
SERVICES = {
    "compute": ("Microsoft.Compute.Admin", "2018-02-09"),
    "network": ("Microsoft.Network.Admin", "2015-06-15"),
    "storage": ("Microsoft.Storage.Admin", "2019-08-08-preview"),
}
DEFAULT_GROUP = "system.tenancy"

plan_app = typer.Typer(help="Plans: the services and quotas an offer sells.", no_args_is_help=True)
offer_app = typer.Typer(help="Offers: base and add-on plans tenants subscribe to.", no_args_is_help=True)
quota_app = typer.Typer(help="Quotas of Compute, Network and Storage that plans name.", no_args_is_help=True)
tenant_offer_app = typer.Typer(help="Offers you can subscribe to.", no_args_is_help=True)
tenant_sub_app = typer.Typer(help="Get a subscription from an offer; add add-on plans.", no_args_is_help=True)

GroupOpt = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group of the operator's plans.")]
ServiceOpt = Annotated[str, typer.Option("--service", "-s", help="compute, network or storage.")]


def _admin(api: ApiClient, group: str) -> str:
    return f"/subscriptions/{api.subscription_id}/resourceGroups/{group}/providers/Microsoft.Subscriptions.Admin"


def _service(name: str) -> tuple[str, str]:
    if name.lower() not in SERVICES:
        raise typer.BadParameter(f"'{name}' is not one of {', '.join(SERVICES)}.", param_hint="--service")
    return SERVICES[name.lower()]


def _quota_url(api: ApiClient, service: str, name: str | None = None) -> tuple[str, str]:
    namespace, version = _service(service)
    base = f"/subscriptions/{api.subscription_id}/providers/{namespace}/locations/{api.credentials['location']}/quotas"
    return (f"{base}/{name}" if name else base), version


# --- quotas ----------------------------------------------------------------------------------------------------


def _limits(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise typer.BadParameter(f"'{item}' is not name=number.", param_hint="--limit")
        out[key.strip()] = int(value)
    return out


@quota_app.command("set")
def quota_set(
    service: ServiceOpt,
    name: Annotated[str, typer.Option("--name", "-n", help="Quota name ('Default Quota' is every default plan's).")],
    limit: Annotated[list[str], typer.Option("--limit", help="name=number, e.g. virtualMachineCount=4; repeatable.")],
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Create or change a quota (limits not given keep their value, or Azure Stack's default)."""
    api = client(data_dir, "operator")
    url, version = _quota_url(api, service, name)
    try:
        item = api.request("PUT", url, version, {"properties": _limits(limit)}).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Name", "name"), ("Limits", "properties")])


@quota_app.command("list")
def quota_list(
    service: ServiceOpt, data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None
) -> None:
    """A service's quotas."""
    api = client(data_dir, "operator")
    url, version = _quota_url(api, service)
    try:
        items = api.list_all(url, version)
    except ApiError as exc:
        fail(exc)
    emit(items, output, [Col("Name", "name", ident=True), ("Limits", "properties")], query)


@quota_app.command("delete")
def quota_delete(
    service: ServiceOpt, name: Annotated[str, typer.Option("--name", "-n")], data_dir: DataDirOpt = None
) -> None:
    """Delete a quota no plan names."""
    api = client(data_dir, "operator")
    url, version = _quota_url(api, service, name)
    try:
        api.request("DELETE", url, version)
    except ApiError as exc:
        fail(exc)
    console.print(f"Deleted quota '{name}'.")


# --- plans -----------------------------------------------------------------------------------------------------


@plan_app.command("create")
def plan_create(
    name: Annotated[str, typer.Option("--name", "-n")],
    quota: Annotated[
        list[str], typer.Option("--quota", help="service=quota name, e.g. compute='Default Quota'; repeatable.")
    ],
    display_name: Annotated[str | None, typer.Option(help="Shown to tenants.")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    group: GroupOpt = DEFAULT_GROUP,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Create or update a plan: each --quota grants its service with that quota."""
    api = client(data_dir, "operator")
    ids = []
    for given in quota:
        service, sep, quota_name = given.partition("=")
        if not sep:
            raise typer.BadParameter(f"'{given}' is not service=quota.", param_hint="--quota")
        ids.append(_quota_url(api, service.strip(), quota_name.strip())[0])
    props: dict[str, Any] = {"quotaIds": ids}
    if display_name:
        props["displayName"] = display_name
    if description:
        props["description"] = description
    try:
        item = api.request("PUT", f"{_admin(api, group)}/plans/{name}", SUBS_API, {"properties": props}).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Name", "name"), ("Quotas", "properties.quotaIds")])


@plan_app.command("list")
def plan_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Every plan."""
    api = client(data_dir, "operator")
    try:
        items = api.list_all(
            f"/subscriptions/{api.subscription_id}/providers/Microsoft.Subscriptions.Admin/plans", SUBS_API
        )
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [Col("Name", "name", ident=True), ("Display name", "properties.displayName"),
         ("Subscriptions", "properties.subscriptionCount"), ("Quotas", "properties.quotaIds")],
        query,
    )  # fmt: skip


@plan_app.command("delete")
def plan_delete(
    name: Annotated[str, typer.Option("--name", "-n")], group: GroupOpt = DEFAULT_GROUP, data_dir: DataDirOpt = None
) -> None:
    """Delete a plan no offer links and no subscription holds."""
    api = client(data_dir, "operator")
    try:
        api.request("DELETE", f"{_admin(api, group)}/plans/{name}", SUBS_API)
    except ApiError as exc:
        fail(exc)
    console.print(f"Deleted plan '{name}'.")


# --- offers ----------------------------------------------------------------------------------------------------


@offer_app.command("create")
def offer_create(
    name: Annotated[str, typer.Option("--name", "-n")],
    base_plan: Annotated[list[str], typer.Option("--base-plan", help="A plan every subscription gets; repeatable.")],
    addon_plan: Annotated[
        list[str] | None, typer.Option("--addon-plan", help="plan[:max acquisitions], optional extras; repeatable.")
    ] = None,
    state: Annotated[str, typer.Option(help="Private, Public or Decommissioned.")] = "Private",
    display_name: Annotated[str | None, typer.Option(help="Shown to tenants.")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    group: GroupOpt = DEFAULT_GROUP,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Create or update an offer (Public: tenants see it and subscribe)."""
    api = client(data_dir, "operator")
    addons = []
    for given in addon_plan or []:
        plan, _, count = given.partition(":")
        addons.append({"planId": plan, "maxAcquisitionCount": int(count) if count.isdigit() else 1})
    props: dict[str, Any] = {"basePlanIds": base_plan, "addonPlans": addons, "state": state}
    if display_name:
        props["displayName"] = display_name
    if description:
        props["description"] = description
    try:
        item = api.request("PUT", f"{_admin(api, group)}/offers/{name}", SUBS_API, {"properties": props}).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Name", "name"), ("State", "properties.state")])


@offer_app.command("set-state")
def offer_set_state(
    name: Annotated[str, typer.Option("--name", "-n")],
    state: Annotated[str, typer.Option(help="Private, Public or Decommissioned.")],
    group: GroupOpt = DEFAULT_GROUP,
    data_dir: DataDirOpt = None,
) -> None:
    """Make an offer public, private, or decommission it (existing subscriptions keep it)."""
    api = client(data_dir, "operator")
    try:
        api.request("PUT", f"{_admin(api, group)}/offers/{name}", SUBS_API, {"properties": {"state": state}})
    except ApiError as exc:
        fail(exc)
    console.print(f"Offer '{name}' is {state}.")


@offer_app.command("link")
def offer_link(
    name: Annotated[str, typer.Option("--name", "-n", help="The offer.")],
    plan: Annotated[str, typer.Option(help="The plan to link.")],
    link_type: Annotated[str, typer.Option("--type", help="Base or Addon.")] = "Addon",
    max_acquisitions: Annotated[int, typer.Option(help="Add-on: times one subscription may acquire it.")] = 1,
    unlink: Annotated[bool, typer.Option(help="Unlink instead.")] = False,
    group: GroupOpt = DEFAULT_GROUP,
    data_dir: DataDirOpt = None,
) -> None:
    """Link (or --unlink) a base or add-on plan."""
    api = client(data_dir, "operator")
    body = {"planName": plan, "planLinkType": link_type, "maxAcquisitionCount": max_acquisitions}
    try:
        api.request("POST", f"{_admin(api, group)}/offers/{name}/{'unlink' if unlink else 'link'}", SUBS_API, body)
    except ApiError as exc:
        fail(exc)
    console.print(
        f"{'Unlinked' if unlink else 'Linked'} plan '{plan}' ({link_type}) {'from' if unlink else 'to'} offer '{name}'."
    )


@offer_app.command("list")
def offer_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Every offer, with its state and plans."""
    api = client(data_dir, "operator")
    try:
        items = api.list_all(
            f"/subscriptions/{api.subscription_id}/providers/Microsoft.Subscriptions.Admin/offers", SUBS_API
        )
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [Col("Name", "name", ident=True), ("State", "properties.state"),
         ("Subscriptions", "properties.subscriptionCount"), ("Base plans", "properties.basePlanIds")],
        query,
    )  # fmt: skip


@offer_app.command("delete")
def offer_delete(
    name: Annotated[str, typer.Option("--name", "-n")],
    group: GroupOpt = DEFAULT_GROUP,
    yes: YesOpt = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete an offer no subscription uses."""
    api = client(data_dir, "operator")
    confirm(f"Delete offer '{name}'?", yes)
    try:
        api.request("DELETE", f"{_admin(api, group)}/offers/{name}", SUBS_API)
    except ApiError as exc:
        fail(exc)
    console.print(f"Deleted offer '{name}'.")


# --- the operator's subscription commands ----------------------------------------------------------------------


def subscription_set_state(
    subscription: Annotated[str, typer.Option("--subscription", help="Subscription id.")],
    state: Annotated[str, typer.Option(help="Enabled, Disabled (read-only) or Deleted (gone for its tenant).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Enable, disable or delete a tenant's subscription."""
    api = client(data_dir, "operator")
    url = f"/subscriptions/{api.subscription_id}/providers/Microsoft.Subscriptions.Admin/subscriptions/{subscription}"
    try:
        api.request("PUT", url, SUBS_API, {"properties": {"state": state}})
    except ApiError as exc:
        fail(exc)
    console.print(f"Subscription {subscription} is {state}.")


def subscription_add_plan(
    subscription: Annotated[str, typer.Option("--subscription", help="Subscription id.")],
    plan: Annotated[str, typer.Option(help="An add-on plan of the subscription's offer.")],
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Add an add-on plan to a tenant's subscription (its quotas add to the base plans')."""
    api = client(data_dir, "operator")
    url = (
        f"/subscriptions/{api.subscription_id}/providers/Microsoft.Subscriptions.Admin/subscriptions/{subscription}"
        f"/acquiredPlans/{uuid.uuid4()}"
    )
    try:
        item = api.request("PUT", url, SUBS_API, {"properties": {"planId": plan}}).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Acquisition", "name"), ("Plan", "properties.planId")])


# --- the tenant's commands -------------------------------------------------------------------------------------


@tenant_offer_app.command("list")
def tenant_offer_list(data_dir: DataDirOpt = None, output: OutputOpt = Output.table, query: QueryOpt = None) -> None:
    """Public offers you can get a subscription from."""
    api = client(data_dir)
    try:
        items = api.list_all("/providers/Microsoft.Subscriptions/offers", SUBS_API)
    except ApiError as exc:
        fail(exc)
    emit(
        items,
        output,
        [Col("Name", "name", ident=True), ("Display name", "displayName"), ("Description", "description")],
        query,
    )


@tenant_sub_app.command("create")
def tenant_subscription_create(
    offer: Annotated[str, typer.Option(help="A public offer's name (see `alto offer list`).")],
    display_name: Annotated[str | None, typer.Option("--display-name", "-n")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Get a new subscription from an offer; prints its id (its providers are registered from the offer's plans)."""
    api = client(data_dir)
    sub = str(uuid.uuid4())
    body = {"offerId": f"/delegatedProviders/default/offers/{offer}", "displayName": display_name or offer}
    try:
        item = api.request("PUT", f"/subscriptions/{sub}", SUBS_API, body).json()
    except ApiError as exc:
        fail(exc)
    console.print_json(json.dumps(item))


@tenant_sub_app.command("add-plan")
def tenant_subscription_add_plan(
    plan: Annotated[str, typer.Option(help="An add-on plan of your subscription's offer.")],
    subscription: Annotated[str | None, typer.Option(help="Subscription id (default: credentials.json's).")] = None,
    data_dir: DataDirOpt = None,
    output: OutputOpt = Output.json,
) -> None:
    """Add an add-on plan to your subscription."""
    api = client(data_dir)
    sub = subscription or api.subscription_id
    url = f"/subscriptions/{sub}/providers/Microsoft.Subscriptions/acquiredPlans/{uuid.uuid4()}"
    try:
        item = api.request("PUT", url, SUBS_API, {"properties": {"planId": plan}}).json()
    except ApiError as exc:
        fail(exc)
    emit(item, output, [("Acquisition", "name"), ("Plan", "properties.planId")])
