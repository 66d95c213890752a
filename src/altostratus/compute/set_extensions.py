"""virtualMachineScaleSets/{name}/extensions: the extensions of a scale set as child resources.

There is one source of truth: ``virtualMachineProfile.extensionProfile.extensions`` of the set's model. A PUT,
PATCH or DELETE here rewrites that list and goes through the same update as a PUT of the whole set
(:func:`scalesets.apply_update`): the same handler check against the extension repository (``ArtifactNotFound``),
the same secrets handling (``protectedSettings`` kept apart, never echoed; a PUT that omits them keeps the old
ones, as a set PUT does), the same upgrade policy (Automatic instances take the new model at once, Manual ones
show ``latestModelApplied: false`` until upgraded). A GET reads the entry back from the model, so the set and its
extension collection can never disagree.

``POST extensionRollingUpgrade`` brings every instance to the set's extensions in rolling batches (the policy of
``upgradePolicy.rollingUpgradePolicy``); extensions are control plane here, so a batch records the model on its
instances without touching their disks, and ``rollingUpgrades/latest`` shows the progress.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import RequestContext, obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import json_response, paged
from altostratus.compute import rolling, service
from altostratus.compute.extensions import extensions_of
from altostratus.compute.model import deep_merge, image_reference
from altostratus.compute.models import ScaleSet
from altostratus.compute.render import set_id
from altostratus.compute.scalesets import apply_update, converge_operation, current_body, require_set
from altostratus.store.models import ResourceGroup

EXTENSION_TYPE = "Microsoft.Compute/virtualMachineScaleSets/extensions"
READ_ONLY = ("provisioningState",)


def _entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The extension list of a full set body, made if absent (so a set without extensions can get one)."""
    profile = body["properties"].setdefault("virtualMachineProfile", {})
    section = profile.get("extensionProfile")
    if not isinstance(section, dict):
        section = profile["extensionProfile"] = {}
    if not isinstance(section.get("extensions"), list):
        section["extensions"] = []
    return section["extensions"]


def _find(entries: list[dict[str, Any]], name: str) -> int | None:
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and str(entry.get("name", "")).lower() == name.lower():
            return i
    return None


def render_extension(group: ResourceGroup, ss: ScaleSet, entry: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(entry.get("properties") or {})
    props["provisioningState"] = ss.provisioning_state  # the set's: an extension is applied with its model
    name = str(entry.get("name", ""))
    return {
        "id": f"{set_id(group, ss)}/extensions/{name}",
        "name": name,
        "type": EXTENSION_TYPE,
        "properties": props,
    }


def _require_extension(ss: ScaleSet, name: str) -> dict[str, Any]:
    entries = extensions_of(ss.model)
    i = _find(entries, name)
    if i is None:
        raise ArmError(404, "NotFound", f"The extension '{name}' of scale set '{ss.name}' was not found.")
    return entries[i]


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    props = dict(obj(body.get("properties"), "properties"))
    for key in READ_ONLY:
        props.pop(key, None)
    return props


def _check_name(ctx: RequestContext) -> str:
    name = ctx.params["vmssExtensionName"]
    body_name = ctx.json().get("name")
    if body_name is not None and (not isinstance(body_name, str) or body_name.lower() != name.lower()):
        raise invalid_parameter(f"The name in the body '{body_name}' differs from the name in the URL.", "name")
    if not 1 <= len(name) <= 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise invalid_parameter(f"The extension name '{name}' is invalid.", "vmssExtensionName")
    return name


def _write(
    ctx: RequestContext, group: ResourceGroup, ss: ScaleSet, body: dict[str, Any], name: str, status: int
) -> Response:
    op = apply_update(ctx, group, ss, body)
    entry = _require_extension(ss, name)
    return json_response(render_extension(group, ss, entry), status, lro.async_headers(ctx, op))


def put_extension(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx, lock=True, writable=True)
    name = _check_name(ctx)
    props = _properties(ctx.json(required=True))
    body = current_body(ss)
    entries = _entries(body)
    i = _find(entries, name)
    if i is None:
        entries.append({"name": name, "properties": props})
    else:
        entries[i] = {**entries[i], "name": name, "properties": props}
    return _write(ctx, group, ss, body, name, 201 if i is None else 200)


def patch_extension(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx, lock=True, writable=True)
    name = _check_name(ctx)
    patch = _properties(ctx.json(required=True))
    body = current_body(ss)
    entries = _entries(body)
    i = _find(entries, name)
    if i is None:
        raise ArmError(404, "NotFound", f"The extension '{name}' of scale set '{ss.name}' was not found.")
    entries[i] = {**entries[i], "properties": deep_merge(entries[i].get("properties") or {}, patch)}
    return _write(ctx, group, ss, body, name, 200)


def delete_extension(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx, lock=True, writable=True)
    name = ctx.params["vmssExtensionName"]
    body = current_body(ss)
    entries = _entries(body)
    i = _find(entries, name)
    if i is None:
        return Response(status_code=204)
    others = [e for e in entries if e is not entries[i]]
    for other in others:
        after = (other.get("properties") or {}).get("provisionAfterExtensions") or []
        if isinstance(after, list) and any(str(a).lower() == name.lower() for a in after):
            raise ArmError(
                400,
                "InvalidParameter",
                f"The extension '{name}' cannot be deleted: extension '{other.get('name')}' is provisioned after it "
                "(provisionAfterExtensions).",
                "provisionAfterExtensions",
            )
    del entries[i]
    return lro.accepted(ctx, apply_update(ctx, group, ss, body))


def get_extension(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx)
    return json_response(render_extension(group, ss, _require_extension(ss, ctx.params["vmssExtensionName"])))


def list_extensions(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx)
    return paged(ctx, extensions_of(ss.model), lambda e: render_extension(group, ss, e))


def extension_rolling_upgrade(ctx: RequestContext) -> Response:
    """POST extensionRollingUpgrade: every live instance takes the set's extensions, batch by batch."""
    group, ss = require_set(ctx, lock=True, writable=True)
    if not extensions_of(ss.model):
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The scale set '{ss.name}' has no extensions to upgrade.",
        )
    rows = service.live_rows(ctx.db, ss)
    rolling.start(
        ctx.db, ss, rows, reimage=False, source=service.RequestImage(ctx.db, image_reference(ss.model)),
        extensions_only=True,
    )  # fmt: skip
    return lro.accepted(ctx, converge_operation(ctx, ss, group))


def register(router: Any, t: str, set_type: str) -> None:
    base = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute"
    item = base + "/virtualMachineScaleSets/{vmScaleSetName}"
    extensions = item + "/extensions"
    router.add("GET", extensions, list_extensions, resource_type=t, reads_rows_only=True)
    router.add("GET", extensions + "/{vmssExtensionName}", get_extension, resource_type=t, reads_rows_only=True)
    router.add("PUT", extensions + "/{vmssExtensionName}", put_extension, resource_type=t)
    router.add("PATCH", extensions + "/{vmssExtensionName}", patch_extension, resource_type=t)
    router.add("DELETE", extensions + "/{vmssExtensionName}", delete_extension, resource_type=t)
    router.add("POST", item + "/extensionRollingUpgrade", extension_rolling_upgrade, resource_type=set_type)
