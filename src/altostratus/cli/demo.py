"""`alto demo`: the seed scenario end to end, narrated, against a running server.

Everything goes through the REST API, as the operator (marketplace, platform images, gallery items) or as
the tenant (resource group, scale sets): each step says which call it made.

It leaves alone what it did not create, since it may run against a cloud that holds someone's work: it works in a
resource group of its own (a new, uniquely named one; an existing group is refused, never deleted), it adds the
demo image versions only when the catalogue has none of them (it never removes an operator's image), and it says
what it will change before it changes anything. With --cleanup (the default) it undoes its changes at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from altostratus.cli import lro
from altostratus.cli.client import ApiClient, ApiError
from altostratus.cli.common import (
    DataDirOpt,
    client,
    console,
    err_console,
    fail,
    wait_group_deletion,
    wait_with_progress,
)
from altostratus.cli.marketplace import BRIDGE_API, COMPUTE_ADMIN_API, GALLERY_API, activation_path
from altostratus.cli.output import human_size
from altostratus.cli.vmss import (
    COMPUTE_API,
    RESOURCES_API,
    group_path,
    instance_row,
    list_vms,
    scale_set_body,
    set_path,
    wait_instances,
)


def escape(text: str) -> str:
    """rich's markup escaping, imported when the demo prints (`alto --help` does not load rich)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


if TYPE_CHECKING:  # annotations only: `alto --help` must not pay for importing httpx or rich
    import httpx
    from rich.table import Table

PUBLISHER, OFFER, SKU = "Altostratus", "DemoLinux", "demo"
V1, V2 = "1.0.0", "1.1.0"
PRODUCTS = {V1: "Altostratus.DemoLinuxdemo.1.0.0", V2: "Altostratus.DemoLinuxdemo.1.1.0"}
GALLERY_ITEM = "microsoft.vmss.1.3.6"
TENANT_GALLERY_API = "2015-04-01"
LATEST, PINNED = "demo-latest", "demo-pinned"


class Narrator:
    """Numbered steps, the API calls behind them, and the subscription ids shortened to keep lines short."""

    def __init__(self, operator: ApiClient, tenant: ApiClient) -> None:
        self.step_no = 0
        self.subs = {operator.subscription_id: "{operatorSub}", tenant.subscription_id: "{tenantSub}"}

    def step(self, title: str) -> None:
        self.step_no += 1
        console.print()
        console.print(f"[bold cyan]Step {self.step_no}:[/bold cyan] [bold]{escape(title)}[/bold]")

    def api(self, method: str, path: str, version: str, as_: str, query: str = "") -> None:
        for sub, alias in self.subs.items():
            path = path.replace(sub, alias)
        line = f"{method} {path}?api-version={version}{query}"
        console.print(f"  [dim]API ({as_}): {escape(line)}[/dim]", soft_wrap=True)

    def say(self, text: str) -> None:
        console.print(f"  {text}")


def _versions(vms: list[dict[str, Any]]) -> dict[str, str]:
    return {
        str(v["instanceId"]): str(v["properties"]["storageProfile"]["imageReference"].get("exactVersion")) for v in vms
    }


def _instances_table(sets: dict[str, list[dict[str, Any]]]) -> Table:
    from rich.table import Table

    table = Table("Scale set", "Instance", "Computer name", "Image version", "Provisioning", "Power state")
    for name, vms in sets.items():
        for vm in vms:
            row = instance_row(vm)
            table.add_row(
                name,
                str(row["instanceId"]),
                str(row["computerName"]),
                str(row["imageVersion"]),
                str(row["provisioningState"]),
                str(row["powerState"]),
            )
    return table


def _describe(versions: dict[str, str]) -> str:
    return ", ".join(f"{iid}: {ver}" for iid, ver in versions.items()) or "(none)"


class Demo:
    def __init__(self, operator: ApiClient, tenant: ApiClient, group: str) -> None:
        self.op, self.tn, self.group = operator, tenant, group
        self.n = Narrator(operator, tenant)
        self.activation = activation_path(operator)
        self.images = (
            f"/subscriptions/{operator.subscription_id}/providers/Microsoft.Compute.Admin/locations/local/"
            "artifactTypes/platformImage"
        )
        self.admin_gallery = f"/subscriptions/{operator.subscription_id}/providers/Microsoft.Gallery.Admin/galleryItems"
        self.tenant_gallery = f"/subscriptions/{tenant.subscription_id}/providers/Microsoft.Gallery/galleryItems"
        self.summary: dict[str, Any] = {}

    # -- small wrappers that narrate the call they make -----------------------------------------------------

    def call(self, api: ApiClient, method: str, path: str, version: str, body: Any = None) -> httpx.Response:
        self.n.api(method, path, version, "operator" if api is self.op else "tenant")
        return api.request(method, path, version, body)

    def image_path(self, version: str) -> str:
        return f"{self.images}/publishers/{PUBLISHER}/offers/{OFFER}/skus/{SKU}/versions/{version}"

    def catalogue(self, narrate: bool = True) -> list[str]:
        """Demo image versions in the platform image catalogue, oldest first."""
        if narrate:
            self.n.api("GET", self.images, COMPUTE_ADMIN_API, "operator")
        items = self.op.request("GET", self.images, COMPUTE_ADMIN_API).json()
        prefix = f"/publishers/{PUBLISHER}/offers/{OFFER}/skus/{SKU}/versions/".lower()
        return [i["name"] for i in items if prefix in i["id"].lower()]

    def download(self, product: str) -> None:
        r = self.call(self.op, "POST", f"{self.activation}/products/{product}/download", BRIDGE_API)
        if err_console.is_terminal:
            wait_with_progress(self.op, r, f"Downloading {product}")
        else:
            lro.wait(self.op, r)
        item = self.op.request("GET", f"{self.activation}/downloadedProducts/{product}", BRIDGE_API).json()
        props = item.get("properties") or {}
        sizes = ""
        if props.get("virtualSize") is not None:
            sizes = (
                f" ({human_size(props['virtualSize'])} virtual, {human_size(props.get('allocatedSize', 0))} allocated)"
            )
        self.n.say(f"Downloaded [bold]{product}[/bold]{sizes}.")

    def vms(self, name: str) -> list[dict[str, Any]]:
        path = f"{set_path(self.tn, self.group, name)}/virtualMachines"
        self.n.api("GET", path, COMPUTE_API, "tenant", "&$expand=instanceView")
        return list_vms(self.tn, self.group, name)

    def gallery_names(self) -> list[str]:
        items = self.call(self.tn, "GET", self.tenant_gallery, TENANT_GALLERY_API).json()["value"]
        return [str(i["name"]) for i in items]

    # -- the story --------------------------------------------------------------------------------------------

    def run(self, cleanup: bool) -> None:
        console.print(
            f"[bold]Altostratus demo[/bold]: image versions and scale sets, against {escape(self.op.endpoint)}\n"
            f"  operator subscription {{operatorSub}} = {self.op.subscription_id}\n"
            f"  tenant subscription   {{tenantSub}} = {self.tn.subscription_id}"
        )
        self.check_upstream()
        self.check_untouched()
        self.announce(cleanup)
        self.download_v1()
        self.create_sets()
        self.show_instances()
        self.download_v2()
        self.scale_out()
        self.delete_old_instances()
        self.gallery_item()
        if cleanup:
            self.clean_up()
        else:
            self.summary["group"] = f"kept (remove it with: alto group delete -n {self.group} --yes)"
            self.summary["images"] = f"kept (remove it with: alto marketplace remove {PRODUCTS[V2]})"
        self.print_summary()

    def check_upstream(self) -> None:
        self.n.step("Check that the upstream marketplace offers the demo image versions")
        self.n.api("GET", f"{self.activation}/products", BRIDGE_API, "operator")
        products = self.op.list_all(f"{self.activation}/products", BRIDGE_API)
        by_name = {p["name"].split("/", 1)[-1]: p["properties"] for p in products}
        from rich.table import Table

        table = Table("Product", "Kind", "Version", "Downloaded")
        for name in [*PRODUCTS.values(), GALLERY_ITEM]:
            props = by_name.get(name)
            if props is not None:
                table.add_row(
                    name,
                    str(props.get("productKind")),
                    str((props.get("productProperties") or {}).get("version")),
                    str(props.get("downloadState")),
                )
        console.print(table)
        missing = [p for p in [*PRODUCTS.values(), GALLERY_ITEM] if p not in by_name]
        if missing:
            err_console.print(
                f"[red]The upstream marketplace does not offer {', '.join(missing)}.[/red] "
                "Register the demo marketplace first: alto admin register --upstream demo"
            )
            raise typer.Exit(1)
        self.n.say("The upstream offers versions 1.0.0 and 1.1.0 of the demo image, and the scale-set gallery item.")

    def check_untouched(self) -> None:
        """Stop before any change if the story would delete or replace something the demo did not create."""
        self.n.step("Check that the demo can run without touching anything it did not create")
        try:
            self.call(self.tn, "GET", group_path(self.tn, self.group), RESOURCES_API)
        except ApiError as exc:
            if exc.status != 404:
                raise
        else:
            refuse(
                f"Resource group '{self.group}' already exists. The demo works only in a group of its own and "
                "leaves this one alone: leave out -g (a new, uniquely named group) or name a group that does not exist."
            )
        present = self.catalogue()
        if present:
            urns = ", ".join(f"{PUBLISHER}:{OFFER}:{SKU}:{v}" for v in present)
            refuse(
                f"The image catalogue already has {urns}. The demo adds its versions only to a catalogue without "
                "them (downloading them would replace these), and removes no image it did not add. "
                "Remove them first if you no longer need them (alto marketplace list; alto marketplace remove "
                "PRODUCT, or alto image remove URN), then run the demo again."
            )
        self.n.say(f"No resource group '{self.group}' and no {PUBLISHER}:{OFFER}:{SKU} image yet.")

    def announce(self, cleanup: bool) -> None:
        """Say what the demo will change, before it changes anything."""
        self.n.step("What the demo will change")
        self.n.say(f"- create resource group '{self.group}' with two scale sets (tenant subscription);")
        self.n.say(
            f"- add {PUBLISHER}:{OFFER}:{SKU} {V1} to the operator's image catalogue, then {V2}, which replaces "
            f"{V1} (downloading a newer version replaces the older ones, as on Azure Stack Hub);"
        )
        self.n.say(
            f"- take the gallery item '{GALLERY_ITEM}' off the marketplace (downloading it first if missing; "
            "if it was there before, it is downloaded again afterwards so the marketplace ends as it was);"
        )
        if cleanup:
            self.n.say(f"- at the end, delete '{self.group}' and remove the image version it added.")
        else:
            self.n.say(f"- with --no-cleanup, '{self.group}' and the image version it added stay.")

    def download_v1(self) -> None:
        self.n.step(f"Download version {V1} of the demo image from the marketplace")
        self.download(PRODUCTS[V1])
        self.n.say(f"Image catalogue: {', '.join(self.catalogue())}")

    def create_sets(self) -> None:
        self.n.step(f"Create two scale sets in resource group '{self.group}': one on 'latest', one pinned to {V1}")
        self.call(self.tn, "PUT", group_path(self.tn, self.group), RESOURCES_API, {"location": "local"})
        self.n.say(f"Created resource group '{self.group}'.")
        register = f"/subscriptions/{self.tn.subscription_id}/providers/Microsoft.Compute/register"
        self.call(self.tn, "POST", register, RESOURCES_API)
        self.n.say("Microsoft.Compute is registered with the tenant subscription.")
        import secrets  # here: `alto --help` does not need it

        password = secrets.token_urlsafe(16)
        started = []
        for name, version in ((LATEST, "latest"), (PINNED, V1)):
            image = {"publisher": PUBLISHER, "offer": OFFER, "sku": SKU, "version": version}
            body = scale_set_body(image=image, capacity=2, computer_name_prefix=name, admin_password=password)
            started.append(
                (name, version, self.call(self.tn, "PUT", set_path(self.tn, self.group, name), COMPUTE_API, body))
            )
        for name, version, r in started:  # both sets are created side by side
            wait_instances(self.tn, r, f"Creating '{name}'")
            self.n.say(f"Created [bold]{name}[/bold] (image version '{version}', 2 instances).")

    def show_instances(self) -> None:
        self.n.step("Show the instances and the exact image version each one runs")
        console.print(_instances_table({LATEST: self.vms(LATEST), PINNED: self.vms(PINNED)}))
        self.n.say(f"'latest' was resolved when the instances were created: both sets run {V1}.")

    def download_v2(self) -> None:
        self.n.step(f"Download version {V2}: it replaces {V1} in the image catalogue")
        self.download(PRODUCTS[V2])
        remaining = self.catalogue()
        self.n.say(f"Image catalogue now: {', '.join(remaining) or '(empty)'}")
        if V1 not in remaining:
            self.n.say(f"{V1} is gone for new deployments; running instances keep their disks.")

    def scale_out(self) -> None:
        self.n.step("Scale both sets to 3 instances")
        before = _versions(list_vms(self.tn, self.group, LATEST))
        r = self.call(self.tn, "PATCH", set_path(self.tn, self.group, LATEST), COMPUTE_API, {"sku": {"capacity": 3}})
        wait_instances(self.tn, r, f"Scaling '{LATEST}' to 3")
        after = _versions(self.vms(LATEST))
        new = {iid: ver for iid, ver in after.items() if iid not in before}
        for iid, ver in new.items():
            self.n.say(f"[green]{LATEST}: new instance {iid} runs {ver}[/green] ('latest' is resolved at scale-out).")
        self.summary[LATEST] = "succeeded: new instance(s) " + _describe(new)

        try:
            body = {"sku": {"capacity": 3}}
            r = self.call(self.tn, "PATCH", set_path(self.tn, self.group, PINNED), COMPUTE_API, body)
        except ApiError as exc:
            target = f" (target: {exc.target})" if exc.target else ""
            self.n.say(f"[red]{PINNED}: the scale-out is refused[/red] (HTTP {exc.status}). What the tenant sees:")
            console.print(f"    [red]{escape(exc.code)}[/red]: {escape(exc.message)}{escape(target)}", soft_wrap=True)
            self.summary[PINNED] = f"refused: {exc.code}"
        else:
            wait_instances(self.tn, r, f"Scaling '{PINNED}' to 3")
            self.n.say(f"[yellow]{PINNED}: the scale-out was not refused (was {V1} still in the catalogue?)[/yellow]")
            self.summary[PINNED] = "succeeded (unexpected)"
        vms = self.vms(PINNED)
        running = [instance_row(v) for v in vms]
        states = ", ".join(f"{r['instanceId']}: {r['imageVersion']}, {r['powerState']}" for r in running)
        self.n.say(f"{PINNED} keeps its existing instances running on {V1}: {states}.")
        console.print(_instances_table({LATEST: list_vms(self.tn, self.group, LATEST), PINNED: vms}))

    def delete_old_instances(self) -> None:
        self.n.step(f"Delete the instances of '{LATEST}' that still run {V1}")
        old = [iid for iid, ver in _versions(list_vms(self.tn, self.group, LATEST)).items() if ver == V1]
        if old:
            path = f"{set_path(self.tn, self.group, LATEST)}/delete"
            r = self.call(self.tn, "POST", path, COMPUTE_API, {"instanceIds": old})
            wait_instances(self.tn, r, f"Deleting instances {', '.join(old)} of '{LATEST}'")
            self.n.say(f"Deleted instance(s) {', '.join(old)}; the capacity drops by as many.")
        versions = _versions(self.vms(LATEST))
        self.n.say(f"{LATEST} now: {_describe(versions)}")
        self.summary["latest-now"] = versions
        self.summary["pinned-now"] = _versions(list_vms(self.tn, self.group, PINNED))

    def gallery_item(self) -> None:
        self.n.step(f"Take the scale-set offering '{GALLERY_ITEM}' off the marketplace (Remove-AzsGalleryItem)")
        items = self.call(self.op, "GET", self.admin_gallery, GALLERY_API).json()["value"]
        was_there = GALLERY_ITEM in [i["name"] for i in items]
        if not was_there:
            self.download(GALLERY_ITEM)
        else:
            self.n.say(f"'{GALLERY_ITEM}' is already in the marketplace: it is downloaded again after this step.")
        listed = GALLERY_ITEM in self.gallery_names()
        self.n.say(f"Tenant listing {'shows' if listed else 'does not show'} '{GALLERY_ITEM}'.")
        self.call(self.op, "DELETE", f"{self.admin_gallery}/{GALLERY_ITEM}", GALLERY_API)
        names = self.gallery_names()
        gone = GALLERY_ITEM not in names
        self.n.say(
            f"Removed. Tenant listing now: {', '.join(names) or '(empty)'} - "
            + ("[green]the offering is gone[/green]." if gone else "[red]still listed![/red]")
        )
        self.summary["gallery"] = "removed; gone from the tenant listing" if gone else "still listed"
        if was_there:
            self.download(GALLERY_ITEM)
            self.n.say(f"'{GALLERY_ITEM}' is back in the marketplace, as it was before the demo.")
            self.summary["gallery"] += "; downloaded again, as it was before"

    def clean_up(self) -> None:
        self.n.step(f"Clean up: delete resource group '{self.group}' and its scale sets")
        r = self.call(self.tn, "DELETE", group_path(self.tn, self.group), RESOURCES_API)
        wait_group_deletion(self.tn, r, self.group)
        self.n.say(f"Deleted resource group '{self.group}'.")
        self.summary["group"] = "deleted"
        self.call(self.op, "DELETE", f"{self.activation}/downloadedProducts/{PRODUCTS[V2]}", BRIDGE_API)
        self.n.say(f"Removed {PUBLISHER}:{OFFER}:{SKU}:{V2}, which the demo added, from the image catalogue.")

    def print_summary(self) -> None:
        console.print()
        console.print("[bold]Summary[/bold]")
        from rich.table import Table

        table = Table("Scale set", "Image reference", "Scale-out to 3", "Instances at the end (id: version)")
        table.add_row(
            LATEST, f"{PUBLISHER}:{OFFER}:{SKU}:latest", self.summary.get(LATEST, ""),
            _describe(self.summary.get("latest-now", {})),
        )  # fmt: skip
        table.add_row(
            PINNED, f"{PUBLISHER}:{OFFER}:{SKU}:{V1}", self.summary.get(PINNED, ""),
            _describe(self.summary.get("pinned-now", {})),
        )  # fmt: skip
        console.print(table)
        console.print(f"  Demo image versions in the catalogue: {', '.join(self.catalogue(narrate=False)) or '(none)'}")
        if "images" in self.summary:
            console.print(f"  {PUBLISHER}:{OFFER}:{SKU}:{V2}: {self.summary['images']}")
        console.print(f"  Gallery item {GALLERY_ITEM}: {self.summary.get('gallery', '')}")
        console.print(f"  Resource group '{self.group}': {self.summary.get('group', '')}")


def refuse(reason: str) -> NoReturn:
    """Stop before the demo changes anything, saying why and what to do."""
    err_console.print(reason, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def demo(
    resource_group: Annotated[
        str | None,
        typer.Option(
            "--resource-group",
            "-g",
            help="A new resource group for the demo (default: demo-<random>); an existing group is refused.",
        ),
    ] = None,
    cleanup: Annotated[
        bool, typer.Option("--cleanup/--no-cleanup", help="Delete the demo resource group at the end.")
    ] = True,
    data_dir: DataDirOpt = None,
) -> None:
    """Narrate the image-version story end to end: marketplace downloads, 'latest' and pinned scale sets,
    a refused scale-out, instance deletion and gallery-item removal (a running server is needed)."""
    operator, tenant = client(data_dir, "operator"), client(data_dir, "tenant")
    try:
        import secrets

        Demo(operator, tenant, resource_group or f"demo-{secrets.token_hex(3)}").run(cleanup)
    except ApiError as exc:
        fail(exc)
