"""Resource groups: HEAD/PUT/GET/PATCH/list, and DELETE as a long-running operation.

Deleting a group marks it ``Deleting`` at once (so nothing new lands in it) and records an operation; the
operation runner deletes the resources inside through their providers' deleters, then the group.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.access import readable_paths
from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter, resource_group_not_found
from altostratus.arm.http import check_preconditions, empty, json_response, new_etag, paged, validate_tags
from altostratus.arm.operations import OperationHandler, OperationTask, Pending, ProgressFn, settle
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources.filters import parse_tag_filter
from altostratus.resources.versions import RESOURCES
from altostratus.store.db import Database, utcnow
from altostratus.store.models import Operation, Resource, ResourceGroup

TYPE = "Microsoft.Resources/resourceGroups"
DELETE_KIND = "resourceGroups/delete"
NAME = re.compile(r"^[-\w._()]{1,90}$")
MANAGED_BY_MAX = 512  # the column's size


def group_id(sub: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{name}"


def render(group: ResourceGroup) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": group_id(group.subscription_id, group.name),
        "name": group.name,
        "type": TYPE,
        "location": group.location,
        "properties": {"provisioningState": group.provisioning_state},
    }
    if group.tags:
        body["tags"] = group.tags
    if group.managed_by:
        body["managedBy"] = group.managed_by
    return body


def find_group(db: Session, subscription_id: str, name: str, *, lock: bool = False) -> ResourceGroup | None:
    query = select(ResourceGroup).where(
        ResourceGroup.subscription_id == subscription_id.lower(), ResourceGroup.name_key == name.lower()
    )
    return db.scalars(query.with_for_update() if lock else query).one_or_none()


def require_group(ctx: RequestContext, *, writable: bool = False) -> ResourceGroup:
    """The group named in the path; 404 if missing, 409 if it is being deleted and we want to write."""
    name = ctx.params["resourceGroupName"]
    group = find_group(ctx.db, ctx.params["subscriptionId"], name)
    if group is None:
        raise resource_group_not_found(name)
    if writable and group.provisioning_state == "Deleting":
        raise ArmError(
            409,
            "ResourceGroupBeingDeleted",
            f"The resource group '{group.name}' is in deprovisioning state and cannot perform this operation.",
        )
    return group


def validate_name(name: str) -> None:
    if not NAME.match(name) or name.endswith("."):
        raise ArmError(
            400,
            "InvalidResourceGroupName",
            f"The provided resource group name '{name}' has these invalid characters or length: resource group "
            "names are 1-90 characters of letters, digits, '_', '-', '.', '(' and ')', and cannot end with '.'.",
            "resourceGroupName",
        )


def managed_by_of(value: Any) -> str | None:
    """``managedBy`` is the id of the resource that manages the group: a string or null, nothing else reaches the
    string column (an object or a huge number there was a database error, a 500)."""
    if value is None or (isinstance(value, str) and len(value) <= MANAGED_BY_MAX):
        return value or None
    raise invalid_parameter(
        f"'managedBy' must be a resource id (a string of at most {MANAGED_BY_MAX} characters) or null.", "managedBy"
    )


def check_existence(ctx: RequestContext) -> Response:
    found = find_group(ctx.db, ctx.params["subscriptionId"], ctx.params["resourceGroupName"])
    return empty(204 if found else 404)


def get_group(ctx: RequestContext) -> Response:
    group = require_group(ctx)
    return json_response(render(group), headers={"ETag": group.etag})


def put_group(ctx: RequestContext) -> Response:
    name = ctx.params["resourceGroupName"]
    validate_name(name)
    body = ctx.json()
    existing = find_group(ctx.db, ctx.params["subscriptionId"], name)
    check_preconditions(ctx, existing.etag if existing else None)
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise invalid_parameter("The 'location' property is required for a resource group.", "location")
    settings_location = ctx.services.settings.location
    if location.replace(" ", "").lower() != settings_location:
        raise ArmError(
            400,
            "LocationNotAvailableForResourceGroup",
            f"The provided location '{location}' is not available for resource group. List of available regions "
            f"is '{settings_location}'.",
            "location",
        )
    tags = validate_tags(body.get("tags"))
    managed_by = managed_by_of(body.get("managedBy"))
    if existing is not None:
        if existing.provisioning_state == "Deleting":
            require_group(ctx, writable=True)
        if existing.location != settings_location:
            raise ArmError(409, "InvalidResourceGroupLocation", "A resource group's location cannot change.")
        existing.tags = tags
        existing.managed_by = managed_by
        existing.etag = new_etag()
        return json_response(render(existing), 200, {"ETag": existing.etag})
    group = ResourceGroup(
        subscription_id=ctx.params["subscriptionId"].lower(),
        name=name,
        name_key=name.lower(),
        location=settings_location,
        tags=tags,
        managed_by=managed_by,
        provisioning_state="Succeeded",
        etag=new_etag(),
        created_at=utcnow(),
    )
    ctx.db.add(group)
    ctx.db.flush()
    return json_response(render(group), 201, {"ETag": group.etag})


def patch_group(ctx: RequestContext) -> Response:
    group = require_group(ctx, writable=True)
    body = ctx.json()
    check_preconditions(ctx, group.etag)
    if "tags" in body:
        group.tags = validate_tags(body["tags"])
    if "managedBy" in body:
        group.managed_by = managed_by_of(body["managedBy"])
    group.etag = new_etag()
    return json_response(render(group), 200, {"ETag": group.etag})


def list_groups(ctx: RequestContext) -> Response:
    query = (
        select(ResourceGroup)
        .where(ResourceGroup.subscription_id == ctx.params["subscriptionId"].lower())
        .order_by(ResourceGroup.name_key)
    )
    groups = list(ctx.db.scalars(query))
    tag_filter = parse_tag_filter(ctx.query.get("$filter"))
    if tag_filter is not None:
        groups = [g for g in groups if tag_filter(g.tags)]
    sub, caller = ctx.extra.get("subscription"), ctx.caller
    readable = readable_paths(ctx.db, ctx.services.access, caller, sub) if sub and caller else None
    if readable is not None:  # a caller with roles on some groups lists those
        groups = [g for g in groups if readable(group_id(g.subscription_id, g.name))]
    return paged(ctx, groups, render)


def delete_group(ctx: RequestContext) -> Response:
    name = ctx.params["resourceGroupName"]
    # Locked: while we hold the row, the deletion under way cannot finish, so "Deleting" implies its
    # operation is still InProgress below.
    group = find_group(ctx.db, ctx.params["subscriptionId"], name, lock=True)
    if group is None:
        raise resource_group_not_found(name)
    if group.provisioning_state == "Deleting":
        running = ctx.db.scalars(
            select(Operation).where(
                Operation.kind == DELETE_KIND,
                Operation.target == group_id(group.subscription_id, group.name),
                Operation.status == "InProgress",
            )
        ).first()
        if running is not None:  # a repeated DELETE joins the deletion under way
            return lro.accepted(ctx, running)
    group.provisioning_state = "Deleting"
    op = lro.start_operation(
        ctx,
        namespace="Microsoft.Resources",
        kind=DELETE_KIND,
        target=group_id(group.subscription_id, group.name),
        params={"groupId": group.id},
    )
    return lro.accepted(ctx, op)


def delete_resource_row(db: Database, registry: ProviderRegistry, row_id: int) -> bool:
    """Delete one resource through its provider's deleter (or just the row for plain types); True when gone."""
    with db.session(readonly=True) as s:  # reads take no write lock (writers queue for it)
        row = s.get(Resource, row_id)
        if row is None:
            return True
        rtype = registry.get_type(row.type)
    if rtype is not None and rtype.deleter is not None and not rtype.deleter(db, row_id):
        return False
    with db.session() as s:
        row = s.get(Resource, row_id)
        if row is not None:
            s.delete(row)
    return True


def delete_handler(registry: ProviderRegistry) -> OperationHandler:
    """Deletes every resource in the group (one transaction each, so a restart resumes), then the group."""
    return lambda db, task, progress: _run_delete(db, registry, task, progress)


def delete_at_claim(s: Session, task: OperationTask, op: Operation) -> bool:
    """An empty group (the usual case for a script's throw-away group) is deleted in its deletion's claim: the
    claim, the deletion and the operation's end are one write transaction, not two (the claim, then the group
    and the operation's end). A group with resources is left to the handler, one resource per transaction."""
    group_pk = task.params["groupId"]
    if s.scalars(select(Resource.id).where(Resource.resource_group_id == group_pk).limit(1)).first() is not None:
        return False
    group = s.get(ResourceGroup, group_pk)
    if group is not None:
        s.delete(group)
    settle(op)
    return True


def _run_delete(
    db: Database, registry: ProviderRegistry, task: OperationTask, progress: ProgressFn
) -> dict[str, Any] | None:
    group_pk = task.params["groupId"]
    with db.session(readonly=True) as s:
        ids = list(s.scalars(select(Resource.id).where(Resource.resource_group_id == group_pk)))
    done = 0
    for rid in ids:
        if delete_resource_row(db, registry, rid):
            done += 1
        progress(100.0 * done / max(len(ids), 1), {"resourcesDeleted": done, "resourcesTotal": len(ids)})
    if done < len(ids):
        raise Pending(1.0)  # providers are still deleting (e.g. scale-set instances); come back later
    with db.session() as s:
        group = s.get(ResourceGroup, group_pk)
        if group is not None:
            s.delete(group)
        progress.end_in(s)  # the group and its operation end in one write
    return None


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type("Microsoft.Resources", "resourceGroups", RESOURCES, arm_native=True, always_registered=True)
    base = "/subscriptions/{subscriptionId}/resourcegroups"
    router.add("GET", base, list_groups, resource_type=TYPE, reads_rows_only=True)
    item = base + "/{resourceGroupName}"
    router.add("HEAD", item, check_existence, resource_type=TYPE)
    router.add("GET", item, get_group, resource_type=TYPE, reads_rows_only=True)
    router.add("PUT", item, put_group, resource_type=TYPE)
    router.add("PATCH", item, patch_group, resource_type=TYPE)
    router.add("DELETE", item, delete_group, resource_type=TYPE)
