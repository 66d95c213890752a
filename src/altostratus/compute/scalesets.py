"""Microsoft.Compute/virtualMachineScaleSets: the REST surface (handlers stay thin; intent in service.py).

Writes answer 200/201 (PUT, PATCH) or 202 (DELETE, actions) with ``Azure-AsyncOperation``; the operation
completes when the scale-set controller has converged the generation the request produced.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import RequestContext, obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import check_preconditions, empty, json_response, new_etag, paged, validate_tags
from altostratus.compute import data_disks, natpools, quotas, rolling, service
from altostratus.compute.extensions import check_extensions, extensions_of
from altostratus.compute.host_view import down_hosts
from altostratus.compute.lifecycle import CONVERGE, CONVERGE_LOOK_SECONDS
from altostratus.compute.model import (
    check_capacity,
    deep_merge,
    fill_os_type,
    image_reference,
    os_type_of,
    strip_read_only,
    validate,
    with_secrets,
)
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.compute.platform import compute_platform
from altostratus.compute.render import instance_counts, render_set, set_id, set_instance_view
from altostratus.compute.sizes import SIZES
from altostratus.resources.groups import require_group
from altostratus.resources.providers import require_registered
from altostratus.storage.user_images import find_image
from altostratus.store.db import utcnow
from altostratus.store.models import Operation, Resource, ResourceGroup

NS = "Microsoft.Compute"
TYPE = "Microsoft.Compute/virtualMachineScaleSets"
NAME_MAX = 64


def find_set(s: Session, group: ResourceGroup, name: str, *, lock: bool = False) -> ScaleSet | None:
    query = select(ScaleSet).where(ScaleSet.resource_group_id == group.id, ScaleSet.name_key == name.lower())
    return s.scalars(query.with_for_update() if lock else query).one_or_none()


def require_set(ctx: RequestContext, *, lock: bool = False, writable: bool = False) -> tuple[ResourceGroup, ScaleSet]:
    group = require_group(ctx, writable=writable)
    name = ctx.params["vmScaleSetName"]
    ss = find_set(ctx.db, group, name, lock=lock)
    if ss is None or (writable and ss.deleting):
        if ss is not None:
            raise ArmError(409, "Conflict", f"The scale set '{ss.name}' is being deleted.")
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{TYPE}/{name}' under resource group '{group.name}' was not found.",
        )
    return group, ss


def converge_operation(ctx: RequestContext, ss: ScaleSet, group: ResourceGroup) -> Operation:
    ss.generation += 1
    ss.etag = new_etag()
    op = lro.start_operation(
        ctx,
        namespace=NS,
        kind=CONVERGE,
        target=set_id(group, ss),
        params={"scaleSetId": ss.id, "generation": ss.generation},
        # The controller ends it when the set converges (lifecycle.finish_converged) and writes its progress
        # meanwhile; the runner's look, this long after, is a safety net.
        parked_seconds=CONVERGE_LOOK_SECONDS,
    )
    ctx.after_commit.append(compute_platform(ctx).scalesets.wake)
    return op


def _envelope(ctx: RequestContext, group: ResourceGroup, ss: ScaleSet) -> None:
    """The generic resources row, so group listings and group deletion see the scale set."""
    row = ctx.db.scalars(
        select(Resource).where(
            Resource.resource_group_id == group.id, Resource.type_key == TYPE.lower(), Resource.name_key == ss.name_key
        )
    ).one_or_none()
    now = utcnow()
    if row is None:
        row = Resource(
            resource_group_id=group.id,
            type=TYPE,
            type_key=TYPE.lower(),
            name=ss.name,
            name_key=ss.name_key,
            location=ss.location,
            created_at=now,
        )
        ctx.db.add(row)
    row.tags, row.body, row.etag, row.changed_at = ss.tags, {"sku": {**ss.sku, "capacity": ss.capacity}}, ss.etag, now
    row.provisioning_state = ss.provisioning_state


def put_set(ctx: RequestContext) -> Response:
    group = require_group(ctx, writable=True)
    require_registered(ctx, NS)
    name = ctx.params["vmScaleSetName"]
    if not 1 <= len(name) <= NAME_MAX or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ArmError(400, "InvalidParameter", f"The scale set name '{name}' is invalid.", "vmScaleSetName")
    body = ctx.json()
    existing = find_set(ctx.db, group, name, lock=True)
    check_preconditions(ctx, existing.etag if existing else None)
    if existing is not None:
        if existing.deleting:
            raise ArmError(409, "Conflict", f"The scale set '{existing.name}' is being deleted.")
        props = obj(body.get("properties"), "properties")
        if not props.get("virtualMachineProfile"):
            # Azure Stack's scale-in/scale-out templates re-PUT only location + sku: the model is kept.
            return _update(ctx, group, existing, deep_merge(current_body(existing), body))
        # A full PUT that omits a secret keeps it: clients never see secrets, so they can't send them back.
        # One that omits the image reference keeps it too: az's vmss update, extension and disk commands drop it
        # from the body they PUT back ("avoid unnecessary permission error"), as Azure allows.
        body = {**body, "properties": with_secrets(keep_image_reference(props, existing.model), existing.secrets)}
        return _update(ctx, group, existing, body)
    valid = validate(
        body,
        ctx.services.settings.location,
        creating=True,
        min_grace_seconds=ctx.services.settings.repair_min_grace_seconds,
    )
    tags = validate_tags(body.get("tags"))
    quotas.check(ctx.db, group.subscription_id, add_sets=1, add_vms=valid.capacity, cores_each=valid.size.cores)
    if valid.image.uri:  # a user image: the blob must be in an account of this subscription
        find_image(ctx.db, valid.image.uri, group.subscription_id)
    image = service.RequestImage(ctx.db, valid.image)  # resolved once, for the whole request
    os_type = image().os_type
    check_extensions(ctx.db, valid.properties)
    natpools.check_conflicts(ctx.db, group.subscription_id, None, valid.properties, None)
    ss = ScaleSet(
        resource_group_id=group.id,
        subscription_id=group.subscription_id,
        name=name,
        name_key=name.lower(),
        location=ctx.services.settings.location,
        unique_id=str(uuid.uuid4()),
        tags=tags,
        sku=valid.sku,
        capacity=0,
        model=fill_os_type(strip_read_only(valid.properties), os_type),
        secrets=valid.secrets,
        rolling=None,
        rolling_active=False,
        model_revision=1,
        upgrade_mode=valid.upgrade_mode,
        provisioning_state="Creating",
        generation=0,
        observed_generation=0,
        next_instance_id=0,
        deleting=False,
        etag=new_etag(),
        created_at=utcnow(),
    )
    ctx.db.add(ss)
    ctx.db.flush()
    service.scale_to(ctx.db, ss, valid.capacity, image)
    op = converge_operation(ctx, ss, group)
    _envelope(ctx, group, ss)
    return json_response(render_set(ctx, group, ss), 201, {**lro.resource_headers(ctx, op), "ETag": ss.etag})


def keep_image_reference(props: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``props`` with the current image reference where the body has none (absent or null)."""
    profile = props.get("virtualMachineProfile")
    if not isinstance(profile, dict):
        return props
    storage = profile.get("storageProfile")
    if not isinstance(storage, dict) or storage.get("imageReference") is not None:
        return props
    current_ref = (current.get("virtualMachineProfile") or {}).get("storageProfile", {}).get("imageReference")
    if current_ref is None:
        return props
    storage = {**storage, "imageReference": current_ref}
    return {**props, "virtualMachineProfile": {**profile, "storageProfile": storage}}


def _update(ctx: RequestContext, group: ResourceGroup, ss: ScaleSet, body: dict[str, Any]) -> Response:
    op = apply_update(ctx, group, ss, body)
    return json_response(render_set(ctx, group, ss), 200, {**lro.resource_headers(ctx, op), "ETag": ss.etag})


def apply_update(ctx: RequestContext, group: ResourceGroup, ss: ScaleSet, body: dict[str, Any]) -> Operation:
    """A new model (a full body, secrets included) for the set: validated, recorded, instances brought to it
    as the upgrade mode says. Child resources (extensions) write through this too: one source of truth."""
    valid = validate(
        body,
        ctx.services.settings.location,
        creating=False,
        min_grace_seconds=ctx.services.settings.repair_min_grace_seconds,
    )
    old_ref, new_ref = image_reference(ss.model), valid.image
    if old_ref.uri != new_ref.uri:
        raise ArmError(
            409,
            "PropertyChangeNotAllowed",
            "Changing property 'osDisk.image.uri' (or between a user image and a platform image) is not allowed.",
            "osDisk.image.uri" if old_ref.uri else "imageReference",
        )
    if (old_ref.publisher.lower(), old_ref.offer.lower()) != (new_ref.publisher.lower(), new_ref.offer.lower()):
        raise ArmError(
            409,
            "PropertyChangeNotAllowed",
            "Changing property 'imageReference.publisher' or 'imageReference.offer' is not allowed.",
            "imageReference",
        )
    new_model = fill_os_type(strip_read_only(valid.properties), os_type_of(ss.model))
    if extensions_of(new_model) != extensions_of(ss.model):
        check_extensions(ctx.db, valid.properties)
    natpools.check_conflicts(ctx.db, ss.subscription_id, ss.id, new_model, ss.model)
    if new_model != ss.model or valid.secrets != ss.secrets or valid.sku["name"] != ss.sku["name"]:
        ss.model_revision += 1
    ss.model, ss.secrets, ss.sku, ss.upgrade_mode = new_model, valid.secrets, valid.sku, valid.upgrade_mode
    if "tags" in body:
        ss.tags = validate_tags(body.get("tags"))
    image = service.RequestImage(ctx.db, valid.image)  # resolved once (if anything needs it), for the request
    service.scale_to(ctx.db, ss, valid.capacity, image)
    outdated = [r for r in service.live_rows(ctx.db, ss) if r.model_revision != ss.model_revision]
    if ss.upgrade_mode == "Automatic":
        service.upgrade(ctx.db, ss, outdated, image)
    elif ss.upgrade_mode == "Rolling" and outdated and not ss.rolling_active:
        rolling.start(ctx.db, ss, outdated, reimage=False, source=image)
    elif ss.upgrade_mode == "Rolling" and ss.rolling_active:
        rolling.retarget(ctx.db, ss, outdated, image)
    ss.provisioning_state = "Updating"
    op = converge_operation(ctx, ss, group)
    _envelope(ctx, group, ss)
    return op


def patch_set(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx, lock=True, writable=True)
    check_preconditions(ctx, ss.etag)
    patch = ctx.json()
    unknown = set(patch) - {"sku", "properties", "tags", "plan", "identity", "zones"}
    if unknown:
        raise ArmError(400, "InvalidParameter", f"Unknown properties in the update: {', '.join(sorted(unknown))}.")
    if "sku" in patch and isinstance(patch["sku"], dict) and "capacity" in patch["sku"]:
        check_capacity(patch["sku"]["capacity"])
    return _update(ctx, group, ss, deep_merge(current_body(ss), patch))


def current_body(ss: ScaleSet) -> dict[str, Any]:
    """The scale set as a full request body (secrets included), for updates that send only what changes."""
    return {
        "location": ss.location,
        "sku": {**ss.sku, "capacity": ss.capacity},
        "tags": ss.tags,
        "properties": with_secrets(ss.model, ss.secrets),
    }


def get_set(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx)
    return json_response(render_set(ctx, group, ss), headers={"ETag": ss.etag})


def list_sets(ctx: RequestContext) -> Response:
    group = require_group(ctx)
    sets = list(
        ctx.db.scalars(select(ScaleSet).where(ScaleSet.resource_group_id == group.id).order_by(ScaleSet.name_key))
    )
    return paged(ctx, sets, lambda ss: render_set(ctx, group, ss))


def list_all_sets(ctx: RequestContext) -> Response:
    pairs = list(
        ctx.db.execute(
            select(ScaleSet, ResourceGroup)
            .join(ResourceGroup, ScaleSet.resource_group_id == ResourceGroup.id)
            .where(ScaleSet.subscription_id == ctx.params["subscriptionId"].lower())
            .order_by(ResourceGroup.name_key, ScaleSet.name_key)
        ).tuples()
    )
    return paged(ctx, pairs, lambda p: render_set(ctx, p[1], p[0]))


def delete_set(ctx: RequestContext) -> Response:
    group = require_group(ctx)
    ss = find_set(ctx.db, group, ctx.params["vmScaleSetName"], lock=True)
    if ss is None:
        return empty(204)
    ss.deleting = True
    ss.provisioning_state = "Deleting"
    for row in service.all_rows(ctx.db, ss):
        row.state = "Deleting"
    op = converge_operation(ctx, ss, group)
    return lro.accepted(ctx, op)


def list_skus(ctx: RequestContext) -> Response:
    _, ss = require_set(ctx)
    items = [
        {
            "resourceType": TYPE,
            "sku": {"name": size.name, "tier": "Standard"},
            "capacity": {"minimum": 0, "maximum": 1000, "defaultCapacity": 1, "scaleType": "Automatic"},
        }
        for size in SIZES.values()
    ]
    return paged(ctx, items, lambda x: x)


def instance_ids(ctx: RequestContext, *, required: bool = False) -> list[str] | None:
    body = ctx.json(required=required)
    ids = body.get("instanceIds")
    if ids is None:
        if required:
            raise invalid_parameter("'instanceIds' is required.", "instanceIds")
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
        raise invalid_parameter("'instanceIds' must be an array of instance ids.", "instanceIds")
    return [str(i) for i in ids]


def action(ctx: RequestContext) -> Response:
    """POST start|poweroff|restart|deallocate|reimage|reimageall|redeploy|delete|manualupgrade."""
    name = ctx.extra["action"]
    group, ss = require_set(ctx, lock=True, writable=True)
    required = name in ("delete", "manualupgrade")
    rows = service.select_instances(ctx.db, ss, instance_ids(ctx, required=required), required=required)
    apply_action(ctx, ss, name, rows)
    op = converge_operation(ctx, ss, group)
    return lro.accepted(ctx, op)


def apply_action(ctx: RequestContext, ss: ScaleSet, name: str, rows: list[ScaleSetVm]) -> None:
    if name == "start":
        service.set_power(rows, "running")
    elif name == "poweroff":
        service.set_power(rows, "stopped")
    elif name == "deallocate":
        service.set_power(rows, "deallocated")
    elif name in ("restart", "redeploy", "performmaintenance"):
        service.restart(rows)
    elif name in ("reimage", "reimageall"):
        service.reimage(ctx.db, ss, rows, service.RequestImage(ctx.db, image_reference(ss.model)))
        if name == "reimageall":  # Azure reimages every disk: the data disks start empty again
            for row in rows:
                data_disks.renew(row)
    elif name == "delete":
        service.delete_instances(ss, rows)
    elif name == "manualupgrade":
        service.upgrade(ctx.db, ss, rows, service.RequestImage(ctx.db, image_reference(ss.model)))
    else:  # pragma: no cover - routes only register the names above
        raise ArmError(400, "InvalidParameter", f"Unknown action '{name}'.")


def os_rolling_upgrade(ctx: RequestContext) -> Response:
    """POST osRollingUpgrade: reimage every instance to the newest image, batch by batch."""
    group, ss = require_set(ctx, lock=True, writable=True)
    rows = service.live_rows(ctx.db, ss)
    rolling.policy_of(ss.model)
    image = service.RequestImage(ctx.db, image_reference(ss.model))
    image()  # refused now when the image is not available, even with no instance to upgrade
    rolling.start(ctx.db, ss, rows, reimage=True, source=image)
    return lro.accepted(ctx, converge_operation(ctx, ss, group))


def cancel_rolling_upgrade(ctx: RequestContext) -> Response:
    group, ss = require_set(ctx, lock=True, writable=True)
    rolling.cancel(ctx.db, ss)
    ctx.after_commit.append(lambda: compute_platform(ctx).blobs.gc(ctx.services.db))  # its target may be unheld
    return lro.accepted(ctx, converge_operation(ctx, ss, group))


def latest_rolling_upgrade(ctx: RequestContext) -> Response:
    _, ss = require_set(ctx)
    if ss.rolling is None:
        raise ArmError(404, "NotFound", f"The scale set '{ss.name}' has had no rolling upgrade.")
    return json_response(rolling.render(ss))


def instance_view(ctx: RequestContext) -> Response:
    _, ss = require_set(ctx)
    return json_response(set_instance_view(ss, instance_counts(ctx.db, ss), down_hosts(ctx.db)))


ACTIONS = ("start", "poweroff", "restart", "deallocate", "reimage", "reimageall", "redeploy", "performMaintenance",
           "delete", "manualupgrade")  # fmt: skip


def _bind(name: str) -> Any:
    def handler(ctx: RequestContext) -> Response:
        ctx.extra["action"] = name.lower()
        return action(ctx)

    return handler


def register(router: Any, t: str) -> None:
    base = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute"
    item = base + "/virtualMachineScaleSets/{vmScaleSetName}"
    router.add("GET", base + "/virtualMachineScaleSets", list_sets, resource_type=t)
    router.add(
        "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/virtualMachineScaleSets", list_all_sets,
        resource_type=t,
    )  # fmt: skip
    router.add("GET", item, get_set, resource_type=t, reads_rows_only=True)
    for method, fn in (("PUT", put_set), ("PATCH", patch_set), ("DELETE", delete_set)):
        router.add(method, item, fn, resource_type=t)
    router.add("GET", item + "/skus", list_skus, resource_type=t)
    router.add("GET", item + "/instanceView", instance_view, resource_type=t, reads_rows_only=True)
    router.add("POST", item + "/osRollingUpgrade", os_rolling_upgrade, resource_type=t)
    router.add("POST", item + "/rollingUpgrades/cancel", cancel_rolling_upgrade, resource_type=t)
    router.add("GET", item + "/rollingUpgrades/latest", latest_rolling_upgrade, resource_type=t)
    for name in ACTIONS:
        router.add("POST", f"{item}/{name}", _bind(name), resource_type=t)
