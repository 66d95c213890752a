"""What tenant pages read, gathered from the ARM API (several calls made concurrently where a page needs them)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from altostratus.portal.arm import COMPUTE_API, GALLERY_API, RESOURCES_API, SUBSCRIPTIONS_API, ApiError, Arm

LOCATION = "local"
# A scale set's instances in one answer (the API pages 100 at a time by default; a set has at most 1000), with or
# without their instance views (power state, errors): ten round trips cost more than the page's whole rendering.
ALL = {"$top": "1000"}
EXPANDED = {**ALL, "$expand": "instanceView"}


def set_path(sub: str, group: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"


def parts_of(resource_id: str) -> tuple[str, str, str]:
    """(subscription, group, name) of a scale set's id."""
    p = resource_id.split("/")
    return p[2], p[4], p[-1]


def version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in version.split("."))
    except ValueError:
        return (0,)


async def subscriptions(arm: Arm, token: str) -> list[dict[str, Any]]:
    return await arm.list_all(token, "/subscriptions", SUBSCRIPTIONS_API)


async def scale_sets(arm: Arm, token: str, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lists = await asyncio.gather(
        *(
            arm.list_all(
                token, f"/subscriptions/{s['subscriptionId']}/providers/Microsoft.Compute/virtualMachineScaleSets",
                COMPUTE_API,
            )
            for s in subs
        )
    )  # fmt: skip
    return [ss for one in lists for ss in one]


async def gallery_items(arm: Arm, token: str, sub: str) -> list[dict[str, Any]]:
    answer = await arm.call(token, "GET", f"/subscriptions/{sub}/providers/Microsoft.Gallery/galleryItems", GALLERY_API)
    return list(answer.get("value", []))


async def groups(arm: Arm, token: str, sub: str) -> list[dict[str, Any]]:
    return await arm.list_all(token, f"/subscriptions/{sub}/resourcegroups", RESOURCES_API)


async def sizes(arm: Arm, token: str, sub: str) -> list[dict[str, Any]]:
    path = f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/{LOCATION}/vmSizes"
    return list((await arm.call(token, "GET", path, COMPUTE_API)).get("value", []))


async def images(arm: Arm, token: str, sub: str) -> list[dict[str, Any]]:
    """Every publisher/offer/sku this cloud can deploy, with its versions (newest first)."""
    base = f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/{LOCATION}/publishers"
    found: list[dict[str, Any]] = []
    for pub in await arm.call(token, "GET", base, COMPUTE_API):
        offers_path = f"{base}/{pub['name']}/artifacttypes/vmimage/offers"
        for offer in await arm.call(token, "GET", offers_path, COMPUTE_API):
            for sku in await arm.call(token, "GET", f"{offers_path}/{offer['name']}/skus", COMPUTE_API):
                path = f"{offers_path}/{offer['name']}/skus/{sku['name']}/versions"
                versions = [v["name"] for v in await arm.call(token, "GET", path, COMPUTE_API)]
                versions.sort(key=version_key, reverse=True)
                found.append(
                    {"publisher": pub["name"], "offer": offer["name"], "sku": sku["name"], "versions": versions}
                )
    return found


async def image_versions(arm: Arm, token: str, sub: str, ref: dict[str, Any]) -> list[str]:
    path = (
        f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/{LOCATION}/publishers/{ref.get('publisher')}"
        f"/artifacttypes/vmimage/offers/{ref.get('offer')}/skus/{ref.get('sku')}/versions"
    )
    try:
        versions = [v["name"] for v in await arm.call(token, "GET", path, COMPUTE_API)]
    except ApiError as err:
        if err.status == 404:
            return []
        raise
    return sorted(versions, key=version_key, reverse=True)


def instance_row(vm: dict[str, Any]) -> dict[str, Any]:
    props = vm.get("properties", {})
    statuses = props.get("instanceView", {}).get("statuses", [])
    power = next((s["code"].split("/", 1)[1] for s in statuses if s["code"].startswith("PowerState/")), "")
    problem = next((s.get("message") for s in statuses if s.get("level") == "Error"), None)
    return {
        "instanceId": vm.get("instanceId"),
        "name": vm.get("name"),
        "version": props.get("storageProfile", {}).get("imageReference", {}).get("exactVersion") or "",
        "latestModelApplied": props.get("latestModelApplied"),
        "provisioningState": props.get("provisioningState"),
        "powerState": power,
        "protected": props.get("protectionPolicy", {}).get("protectFromScaleIn", False),
        "problem": problem,
    }


def versions_running(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    counts = Counter(r["version"] or "unknown" for r in rows)
    return sorted(counts.items(), key=lambda kv: version_key(kv[0]), reverse=True)


@dataclass(frozen=True)
class InstanceSummary:
    """What a scale set's instance view says of its instances: how many, how many provisioned, and how many on
    each exact image version (``virtualMachine.imageVersionsSummary``, this cloud's addition; newest first)."""

    instances: int
    ready: int
    versions: list[tuple[str, int]]

    @classmethod
    def of(cls, view: dict[str, Any]) -> InstanceSummary:
        vm = view.get("virtualMachine") or {}
        provisioning = [s for s in vm.get("statusesSummary", []) if s.get("code", "").startswith("ProvisioningState/")]
        counts = [(v.get("version") or "unknown", int(v.get("count", 0))) for v in vm.get("imageVersionsSummary", [])]
        return cls(
            instances=sum(int(s.get("count", 0)) for s in provisioning),
            ready=sum(int(s.get("count", 0)) for s in provisioning if s["code"] == "ProvisioningState/succeeded"),
            versions=sorted(counts, key=lambda kv: version_key(kv[0]), reverse=True),
        )


async def instances_page(
    arm: Arm, token: str, set_path: str, orderby: str, desc: bool, skip: int, size: int
) -> list[dict[str, Any]]:
    """One page of a set's instances with their instance views, sorted by the API (``$orderby``); the VM list's
    ``$skiptoken`` is the position in that order, as in the ``nextLink`` it answers with."""
    query = {"$top": str(size), "$expand": "instanceView", "$orderby": f"{orderby} {'desc' if desc else 'asc'}"}
    if skip:
        query["$skiptoken"] = str(skip)
    answer = await arm.call(token, "GET", set_path + "/virtualMachines", COMPUTE_API, **query)
    return list(answer.get("value", []))


async def usages(arm: Arm, token: str, sub: str) -> dict[str, dict[str, Any]]:
    """The subscription's compute quota and use, by name (cores, virtualMachines, virtualMachineScaleSets)."""
    path = f"/subscriptions/{sub}/providers/Microsoft.Compute/locations/{LOCATION}/usages"
    answer = await arm.call(token, "GET", path, COMPUTE_API)
    return {u["name"]["value"]: u for u in answer.get("value", [])}
