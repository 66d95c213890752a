"""Moving resources between resource groups (and subscriptions of the same owner): ``moveResources`` and
``validateMoveResources``.

A move changes the resources' ids, nothing else: the same rows point at another group, and every id of a moved
resource written inside the moved resources (a NIC's subnet, a scale set's load-balancer pools) is rewritten to the
new id, so the moved set stays whole. As in Azure, a resource that references another one of the source group must
move with it, and the other way round (``MissingMoveDependentResources``); the deployment history stays where it
was (its records name the old ids, as Azure's do). Providers that keep state beside the generic row (a scale set
and its instances) move it through their :class:`~altostratus.arm.registry.Mover`.

The whole move is one transaction, so it is all or nothing and survives a crash either way; it is still answered
as ARM answers it, ``202`` and an operation to poll, whose result is ``204`` or the refusal (``409``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.access import authorize
from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter, resource_group_not_found, subscription_not_found
from altostratus.arm.registry import Mover, ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.arm.subscription_cache import visible
from altostratus.resources.groups import find_group, group_id, require_group
from altostratus.resources.versions import RESOURCES
from altostratus.store.db import utcnow
from altostratus.store.models import Resource, ResourceGroup, Subscription

KIND = "resourceGroups/moveResources"
GROUP_ID = re.compile(r"^/?subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/?$", re.IGNORECASE)
RESOURCE_ID = re.compile(
    r"^/?subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/(?P<ns>[^/]+)/(?P<rest>.+?)/?$",
    re.IGNORECASE,
)
MAX_RESOURCES = 800  # Azure's limit on one move request


@dataclass(frozen=True)
class MoveRequest:
    source: ResourceGroup
    target: ResourceGroup
    rows: list[Resource]  # in the order the caller listed them


def move_error(code: str, message: str, status: int = 409) -> ArmError:
    return ArmError(status, code, message)


def _target_subscription(ctx: RequestContext, subscription_id: str, group_name: str) -> Subscription:
    """The target subscription, writable, with the caller allowed to write into the target group: its owner (or
    the operator), or a principal whose role covers that group (arm/access.py), as for a PUT there."""
    sub = ctx.db.get(Subscription, subscription_id.lower())
    if sub is None:
        raise subscription_not_found(subscription_id)
    caller = ctx.require_caller
    if not visible(caller, sub):
        segments = ["subscriptions", sub.subscription_id, "resourceGroups", group_name]
        authorize(ctx.db, ctx.services.access, caller, sub, "PUT", segments, ctx.services.access.epoch)
    if sub.state != "Enabled":
        raise ArmError(
            409,
            "ReadOnlyDisabledSubscription",
            f"The subscription '{subscription_id}' is disabled and therefore marked as read only. You cannot "
            "perform any write actions on this subscription until it is re-enabled.",
        )
    return sub


def parse(ctx: RequestContext) -> MoveRequest:
    """What the request asks, checked as ARM checks it before any provider is asked (a bad request is a 4xx
    answer to the POST itself)."""
    body = ctx.json()
    ids = body.get("resources")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise invalid_parameter("'resources' must be a non-empty list of resource ids.", "resources")
    if len(ids) > MAX_RESOURCES:
        raise invalid_parameter(f"At most {MAX_RESOURCES} resources can be moved in one request.", "resources")
    target_text = body.get("targetResourceGroup")
    match = GROUP_ID.match(target_text) if isinstance(target_text, str) else None
    if match is None:
        raise invalid_parameter(
            "'targetResourceGroup' must be the id of a resource group: /subscriptions/{id}/resourceGroups/{name}.",
            "targetResourceGroup",
        )
    source = require_group(ctx, writable=True)
    target_sub = _target_subscription(ctx, match["sub"], match["group"])
    target = find_group(ctx.db, target_sub.subscription_id, match["group"])
    if target is None:
        raise resource_group_not_found(match["group"])
    if target.provisioning_state == "Deleting":
        raise group_being_deleted(target)
    if target.id == source.id:
        raise ArmError(
            400,
            "InvalidTargetResourceGroup",
            "The target resource group is the source resource group; a move needs another group.",
            "targetResourceGroup",
        )
    rows: list[Resource] = []
    seen: set[int] = set()
    for rid in ids:
        row = _find_resource(ctx, source, rid)
        if row.id not in seen:
            seen.add(row.id)
            rows.append(row)
    return MoveRequest(source, target, rows)


def group_being_deleted(group: ResourceGroup) -> ArmError:
    return ArmError(
        409,
        "ResourceGroupBeingDeleted",
        f"The resource group '{group.name}' is in deprovisioning state and cannot perform this operation.",
    )


def _find_resource(ctx: RequestContext, source: ResourceGroup, rid: str) -> Resource:
    match = RESOURCE_ID.match(rid)
    if match is None:
        raise invalid_parameter(f"'{rid}' is not a resource id.", "resources")
    if match["sub"].lower() != source.subscription_id or match["group"].lower() != source.name.lower():
        raise ArmError(
            400,
            "ResourceNotInSourceResourceGroup",
            f"The resource '{rid}' is not in the source resource group '{source.name}'; the resources of one move "
            "must all be in the group the request is made on.",
            "resources",
        )
    parts = match["rest"].split("/")
    if len(parts) != 2:
        raise ArmError(
            400,
            "ResourceNotTopLevel",
            f"Identifiers of the resources being moved must be top-level resources; '{rid}' is not. Move its "
            "parent: children move with it.",
            "resources",
        )
    full_type = f"{match['ns']}/{parts[0]}"
    row = ctx.db.scalars(
        select(Resource).where(
            Resource.resource_group_id == source.id,
            Resource.type_key == full_type.lower(),
            Resource.name_key == parts[1].lower(),
        )
    ).one_or_none()
    if row is None:
        raise ArmError(
            404,
            "ResourceNotFound",
            f"The Resource '{full_type}/{parts[1]}' under resource group '{source.name}' was not found.",
        )
    return row


def row_id(group: ResourceGroup, row: Resource) -> str:
    return f"{group_id(group.subscription_id, group.name)}/providers/{row.type}/{row.name}"


def _documents(db: Session, registry: ProviderRegistry, row: Resource) -> str:
    """Everything the resource keeps, as lower-case JSON text: where its references to other ids are."""
    rtype = registry.get_type(row.type)
    docs: list[Any] = [row.body]
    if rtype is not None and rtype.mover is not None:
        docs.extend(rtype.mover.documents(db, row))
    return json.dumps(docs).lower()


def _references(text: str, rid: str) -> bool:
    """Whether ``text`` names the resource ``rid`` or one of its children (ids end at a quote or go on with /)."""
    key = rid.lower()
    return f'"{key}"' in text or f'"{key}/' in text


def validate(db: Session, registry: ProviderRegistry, req: MoveRequest) -> None:
    """The checks Azure's providers make before a move: nothing is in flight, no name is taken in the target,
    and no reference between the moved resources and the ones that stay would break."""
    for row in req.rows:
        if row.provisioning_state not in ("Succeeded", "Failed", "Canceled"):
            raise move_error(
                "ResourceMoveProviderValidationFailed",
                f"The resource '{row_id(req.source, row)}' is '{row.provisioning_state}'; wait until its current "
                "operation ends, then move it.",
            )
        clash = db.scalars(
            select(Resource.id).where(
                Resource.resource_group_id == req.target.id,
                Resource.type_key == row.type_key,
                Resource.name_key == row.name_key,
            )
        ).first()
        if clash is not None:
            raise move_error(
                "ResourceMoveProviderValidationFailed",
                f"The target resource group '{req.target.name}' already has a resource '{row.type}/{row.name}'.",
            )
    moving = {row.id for row in req.rows}
    moved_text = {row.id: _documents(db, registry, row) for row in req.rows}
    # Every resource of the subscription that stays: one of the source group must not be named by a moved one nor
    # name one; one of another group must not name a moved one (its reference would point at nothing).
    staying = db.execute(
        select(Resource, ResourceGroup)
        .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
        .where(ResourceGroup.subscription_id == req.source.subscription_id)
        .order_by(ResourceGroup.name_key, Resource.type_key, Resource.name_key)
    ).tuples()
    for other, other_group in staying:
        if other.id in moving:
            continue
        other_id = row_id(other_group, other)
        other_text = _documents(db, registry, other)
        same_group = other_group.id == req.source.id
        for row in req.rows:
            moved_id = row_id(req.source, row)
            if _references(other_text, moved_id) or (same_group and _references(moved_text[row.id], other_id)):
                raise move_error(
                    "MissingMoveDependentResources",
                    f"The move resources request does not contain all the dependent resources: "
                    f"'{moved_id}' and '{other_id}' reference each other's ids and must move together"
                    + (". Add it to the request." if same_group else f"; move '{other_id}' to the group first."),
                )


def id_rewriter(pairs: list[tuple[str, str]]) -> Callable[[Any], Any]:
    """A function that returns a JSON document with every id of a moved resource (or of its children) replaced
    by the new one, whatever casing the document used."""
    lowered = [(old.lower(), new) for old, new in pairs]

    def one(text: str) -> str:
        low = text.lower()
        for old, new in lowered:
            if low == old or low.startswith(old + "/"):
                return new + text[len(old) :]
        return text

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return one(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk


def perform(db: Session, registry: ProviderRegistry, req: MoveRequest) -> None:
    pairs = [(row_id(req.source, row), row_id(req.target, row)) for row in req.rows]
    rewrite = id_rewriter(pairs)
    now = utcnow()
    for row in req.rows:
        rtype = registry.get_type(row.type)
        if rtype is not None and rtype.mover is not None:
            rtype.mover.move(db, row, req.target, rewrite)  # first: it finds its state by the row's old group
        row.resource_group_id = req.target.id
        row.body = rewrite(row.body)
        row.changed_at = now
    db.flush()


def _answer(ctx: RequestContext, error: ArmError | None) -> Response:
    """ARM's long-running answer (202, then 204 or the refusal) for work that was decided in this request."""
    op = lro.start_operation(ctx, namespace="Microsoft.Resources", kind=KIND, target=ctx.path)
    op.status = "Failed" if error else "Succeeded"
    op.end_time = utcnow()
    op.percent_complete = 100.0
    if error is not None:
        op.error = error.body()["error"]
        op.result = {"httpStatus": error.status}
    ctx.extra.pop("wake_operations", None)
    return lro.accepted(ctx, op)


def move_resources(ctx: RequestContext) -> Response:
    req = parse(ctx)
    try:
        validate(ctx.db, ctx.services.registry, req)
    except ArmError as error:
        return _answer(ctx, error)
    perform(ctx.db, ctx.services.registry, req)
    return _answer(ctx, None)


def validate_move_resources(ctx: RequestContext) -> Response:
    req = parse(ctx)
    try:
        validate(ctx.db, ctx.services.registry, req)
    except ArmError as error:
        return _answer(ctx, error)
    return _answer(ctx, None)


def table_mover(model: Any, *json_columns: str) -> Mover:
    """The :class:`Mover` of a provider that keeps one row per resource in ``model``'s table, keyed by
    ``(resource_group_id, name_key)`` with its own copy of ``subscription_id``, and the resource's JSON (where its
    references are) in ``json_columns``."""

    def find(db: Session, row: Resource) -> Any:
        return db.scalars(
            select(model).where(model.resource_group_id == row.resource_group_id, model.name_key == row.name_key)
        ).one_or_none()

    def documents(db: Session, row: Resource) -> list[Any]:
        state = find(db, row)
        return [] if state is None else [getattr(state, c) for c in json_columns]

    def move(db: Session, row: Resource, target: ResourceGroup, rewrite: Callable[[Any], Any]) -> None:
        state = find(db, row)  # called while ``row`` is still in the source group
        if state is None:
            return
        state.resource_group_id = target.id
        state.subscription_id = target.subscription_id
        for c in json_columns:
            setattr(state, c, rewrite(getattr(state, c)))

    return Mover(documents=documents, move=move)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type("Microsoft.Resources", "moveResources", RESOURCES, arm_native=True, hidden=True)
    base = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    rtype = "Microsoft.Resources/moveResources"
    router.add("POST", base + "/moveResources", move_resources, resource_type=rtype)
    router.add("POST", base + "/validateMoveResources", validate_move_resources, resource_type=rtype)
