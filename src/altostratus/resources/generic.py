"""Generic ARM resources: listings across providers, and the mechanism behind "plain" resource types.

A plain type is one whose control plane is the ARM envelope itself (stored, validated, listed, deleted
with its group), with a hook that validates a PUT and fills the computed read-only fields. Providers with
behaviour (compute) write the same envelope row beside their own tables, so these listings and group
deletion see everything. The plain types themselves live with their namespace (``network/provider.py``,
``storage/accounts.py``, ``insights/autoscale.py``, ``compute/stored_types.py``).

Some plain types have sub-resources that ARM also addresses on their own (a virtual network's subnets, a
load balancer's inbound NAT rules). Azure keeps them inside the parent's body, and so do we: a child route
reads or rewrites the array in the parent and runs the parent's hook again, so a subnet PUT is validated
exactly like the same subnet inside a virtual-network PUT, and the two views never disagree.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext, obj
from altostratus.arm.errors import ArmError, invalid_parameter, resource_not_found
from altostratus.arm.http import check_preconditions, empty, json_response, new_etag, paged, validate_tags
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.resources import tenancy
from altostratus.resources.filters import parse_filter, tag_matcher
from altostratus.resources.groups import group_id, require_group
from altostratus.resources.providers import require_registered
from altostratus.resources.versions import RESOURCES
from altostratus.store.db import iso, utcnow
from altostratus.store.models import Resource, ResourceGroup

NAME = re.compile(r"^[A-Za-z0-9][-\w.]{0,79}$")
READ_ONLY = ("id", "name", "type", "etag")


def resource_id(sub: str, group: str, rtype: str, name: str) -> str:
    return f"{group_id(sub, group)}/providers/{rtype}/{name}"


def render(row: Resource, group: ResourceGroup, *, expand: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": resource_id(group.subscription_id, group.name, row.type, row.name),
        "name": row.name,
        "type": row.type,
        "location": row.location,
    }
    if row.tags:
        body["tags"] = row.tags
    for key in ("kind", "sku", "plan", "managedBy", "identity", "zones"):
        if key in row.body:
            body[key] = row.body[key]
    if expand:
        body["etag"] = row.etag
        body["properties"] = {**row.body.get("properties", {}), "provisioningState": row.provisioning_state}
    else:
        body["createdTime"] = iso(row.created_at)
        body["changedTime"] = iso(row.changed_at)
        body["provisioningState"] = row.provisioning_state
    return body


def list_in_group(ctx: RequestContext) -> Response:
    group = require_group(ctx)
    rows = list(
        ctx.db.scalars(
            select(Resource)
            .where(Resource.resource_group_id == group.id)
            .order_by(Resource.type_key, Resource.name_key)
        )
    )
    rows = _filtered(ctx, rows)
    return paged(ctx, rows, lambda r: render(r, group, expand=False))


def list_in_subscription(ctx: RequestContext) -> Response:
    sub = ctx.params["subscriptionId"].lower()
    pairs = list(
        ctx.db.execute(
            select(Resource, ResourceGroup)
            .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
            .where(ResourceGroup.subscription_id == sub)
            .order_by(ResourceGroup.name_key, Resource.type_key, Resource.name_key)
        ).tuples()
    )
    # resourceGroup eq '...': how the current az lists a group's resources (az resource list -g).
    clauses = parse_filter(ctx.query.get("$filter"), ("tagname", "tagvalue", "resourcetype", "name", "resourcegroup"))
    if clauses and "resourcegroup" in clauses:
        group_key = clauses.pop("resourcegroup").lower()
        pairs = [(r, g) for r, g in pairs if g.name_key == group_key]
    if clauses:
        keep = set(id(r) for r in _filtered(ctx, [r for r, _ in pairs], clauses))
        pairs = [(r, g) for r, g in pairs if id(r) in keep]
    return paged(ctx, pairs, lambda p: render(p[0], p[1], expand=False))


def _filtered(ctx: RequestContext, rows: list[Resource], clauses: dict[str, str] | None = None) -> list[Resource]:
    if clauses is None:
        clauses = parse_filter(ctx.query.get("$filter"), ("tagname", "tagvalue", "resourcetype", "name"))
    if not clauses:
        return rows
    if "tagname" in clauses:
        match = tag_matcher(clauses)
        rows = [r for r in rows if match(r.tags)]
    if "resourcetype" in clauses:
        rows = [r for r in rows if r.type_key == clauses["resourcetype"].lower()]
    if "name" in clauses:
        rows = [r for r in rows if r.name_key == clauses["name"].lower()]
    return rows


Complete = Callable[["Draft"], dict[str, Any]]
"""Validates a draft (raising ArmError) and returns the body to store: ``properties`` and top-level fields such as
``sku`` and ``kind``. It runs before anything is written, so a refused request leaves no trace."""

Present = Callable[[dict[str, Any], "str | None"], dict[str, Any]]
"""Adapts a rendered resource to the request's api-version (old versions spell some fields differently)."""


@dataclass(frozen=True)
class Draft:
    """A plain resource about to be stored: what the caller sent, and what is stored now (None on create)."""

    ctx: RequestContext
    group: ResourceGroup
    rid: str
    name: str
    body: dict[str, Any]  # top-level fields other than id, name, type, etag, location, tags and properties
    properties: dict[str, Any]  # without provisioningState
    previous: dict[str, Any] | None

    @property
    def previous_properties(self) -> dict[str, Any]:
        return dict((self.previous or {}).get("properties") or {})


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise ArmError(400, "InvalidResourceName", f"The resource name '{name}' is invalid.", "name")


@dataclass(frozen=True)
class PlainType:
    namespace: str
    type: str
    api_versions: tuple[str, ...]  # any order; the registry sorts them newest first
    complete: Complete
    children: tuple[str, ...] = ()  # arrays of ``properties`` that ARM also addresses as sub-resources
    present: Present | None = None
    check_name: Callable[[str], None] = check_name  # raises ArmError for a name the type does not allow
    created_status: int = 201  # what a creating PUT answers (some Azure providers answer 200, and SDKs check)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.type}"


def group_routes_base(spec: PlainType) -> str:
    return (
        f"/subscriptions/{{subscriptionId}}/resourceGroups/{{resourceGroupName}}/providers/{spec.namespace}/{spec.type}"
    )


class PlainResourceHandlers:
    """PUT/GET/PATCH/DELETE/HEAD and lists (group, subscription) for one plain type."""

    def __init__(self, spec: PlainType) -> None:
        self.spec = spec

    def find(self, ctx: RequestContext, group: ResourceGroup, *, lock: bool = False) -> Resource | None:
        query = select(Resource).where(
            Resource.resource_group_id == group.id,
            Resource.type_key == self.spec.full_name.lower(),
            Resource.name_key == ctx.params["name"].lower(),
        )
        return ctx.db.scalars(query.with_for_update() if lock else query).one_or_none()

    def require(self, ctx: RequestContext, group: ResourceGroup, *, lock: bool = False) -> Resource:
        row = self.find(ctx, group, lock=lock)
        if row is None:
            raise resource_not_found(self.spec.full_name, ctx.params["name"], group.name)
        return row

    def show(self, ctx: RequestContext, row: Resource, group: ResourceGroup) -> dict[str, Any]:
        body = render(row, group)
        rtype = ctx.services.registry.get_type(self.spec.full_name)
        if rtype is not None and rtype.view is not None:
            body = rtype.view(ctx.db, body)
        return self.spec.present(body, ctx.api_version) if self.spec.present else body

    def get(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        row = self.require(ctx, group)
        return json_response(self.show(ctx, row, group), headers={"ETag": row.etag})

    def head(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        return empty(204 if self.find(ctx, group) else 404)

    def list(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        rows = list(
            ctx.db.scalars(
                select(Resource)
                .where(Resource.resource_group_id == group.id, Resource.type_key == self.spec.full_name.lower())
                .order_by(Resource.name_key)
            )
        )
        return paged(ctx, rows, lambda r: self.show(ctx, r, group))

    def list_all(self, ctx: RequestContext) -> Response:
        """Every resource of the type in the subscription (the SDKs' ``list_all``)."""
        pairs = list(
            ctx.db.execute(
                select(Resource, ResourceGroup)
                .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
                .where(
                    ResourceGroup.subscription_id == ctx.params["subscriptionId"].lower(),
                    Resource.type_key == self.spec.full_name.lower(),
                )
                .order_by(ResourceGroup.name_key, Resource.name_key)
            ).tuples()
        )
        return paged(ctx, pairs, lambda p: self.show(ctx, p[0], p[1]))

    def put(self, ctx: RequestContext) -> Response:
        group = require_group(ctx, writable=True)
        require_registered(ctx, self.spec.namespace)
        name = ctx.params["name"]
        self.spec.check_name(name)
        body = ctx.json()
        row = self.find(ctx, group, lock=True)
        check_preconditions(ctx, row.etag if row else None)
        if row is None:
            tenancy.check_create(ctx.db, group.subscription_id, self.spec.full_name)
        location = body.get("location")
        if not isinstance(location, str) or location.replace(" ", "").lower() != ctx.services.settings.location:
            raise invalid_parameter(
                f"The location '{location}' is not available; use '{ctx.services.settings.location}'.",
                "location",
            )
        properties = obj(body.get("properties"), "properties")
        tags = validate_tags(body.get("tags"))
        draft = Draft(
            ctx,
            group,
            resource_id(group.subscription_id, group.name, self.spec.full_name, name),
            name,
            {k: v for k, v in body.items() if k not in (*READ_ONLY, "location", "tags", "properties")},
            {k: v for k, v in properties.items() if k != "provisioningState"},
            copy.deepcopy(row.body) if row else None,
        )
        stored = self.spec.complete(draft)
        now = utcnow()
        created = row is None
        if row is None:
            row = Resource(
                resource_group_id=group.id,
                type=self.spec.full_name,
                type_key=self.spec.full_name.lower(),
                name=name,
                name_key=name.lower(),
                created_at=now,
            )
            ctx.db.add(row)
        row.location = ctx.services.settings.location
        row.tags = tags
        row.body = stored
        row.provisioning_state = "Succeeded"
        row.etag = new_etag()
        row.changed_at = now
        ctx.db.flush()
        status = self.spec.created_status if created else 200
        return json_response(self.show(ctx, row, group), status, {"ETag": row.etag})

    def rewrite(self, ctx: RequestContext, group: ResourceGroup, row: Resource, properties: dict[str, Any]) -> None:
        """Stores new ``properties`` of an existing resource (a child route's change) through the type's hook."""
        previous = copy.deepcopy(row.body)
        draft = Draft(
            ctx,
            group,
            resource_id(group.subscription_id, group.name, self.spec.full_name, row.name),
            row.name,
            {k: v for k, v in previous.items() if k != "properties"},
            {k: v for k, v in properties.items() if k != "provisioningState"},
            previous,
        )
        row.body = self.spec.complete(draft)
        row.etag = new_etag()
        row.changed_at = utcnow()
        ctx.db.flush()

    def patch(self, ctx: RequestContext) -> Response:
        group = require_group(ctx, writable=True)
        row = self.require(ctx, group, lock=True)
        check_preconditions(ctx, row.etag)
        body = ctx.json()
        if "tags" in body:
            row.tags = validate_tags(body["tags"])
        row.etag = new_etag()
        row.changed_at = utcnow()
        return json_response(self.show(ctx, row, group), headers={"ETag": row.etag})

    def delete(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        row = self.find(ctx, group, lock=True)
        if row is None:
            return empty(204)
        check_preconditions(ctx, row.etag)
        ctx.db.delete(row)
        return empty(200)


class ChildHandlers:
    """GET/PUT/DELETE and list of one sub-resource array, e.g. ``virtualNetworks/{name}/subnets/{childName}``.

    The child shares its parent's ETag (as in Azure: both change together).
    """

    def __init__(self, parent: PlainResourceHandlers, segment: str) -> None:
        self.parent = parent
        self.segment = segment
        self.type = f"{parent.spec.full_name}/{segment}"

    def _parent(self, ctx: RequestContext, group: ResourceGroup, action: str, *, lock: bool = False) -> Resource:
        row = self.parent.find(ctx, group, lock=lock)
        if row is None:
            rid = resource_id(group.subscription_id, group.name, self.parent.spec.full_name, ctx.params["name"])
            raise ArmError(
                404,
                "ParentResourceNotFound",
                f"Failed to perform '{action}' on resource(s) of type '{self.type}', because the parent resource "
                f"'{rid}' could not be found.",
            )
        return row

    def _items(self, row: Resource) -> list[dict[str, Any]]:
        items = (row.body.get("properties") or {}).get(self.segment) or []
        return [i for i in items if isinstance(i, dict)]

    def _index(self, items: list[dict[str, Any]], name: str) -> int | None:
        return next((i for i, it in enumerate(items) if str(it.get("name", "")).lower() == name.lower()), None)

    def _show(self, item: dict[str, Any], row: Resource) -> dict[str, Any]:
        return {**item, "etag": row.etag, "type": self.type}

    def _missing(self, ctx: RequestContext, group: ResourceGroup) -> ArmError:
        parent = f"{self.parent.spec.full_name}/{ctx.params['name']}/{self.segment}"
        return resource_not_found(parent, ctx.params["childName"], group.name)

    def list(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        row = self._parent(ctx, group, "read")
        return paged(ctx, self._items(row), lambda item: self._show(item, row))

    def get(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        row = self._parent(ctx, group, "read")
        items = self._items(row)
        index = self._index(items, ctx.params["childName"])
        if index is None:
            raise self._missing(ctx, group)
        return json_response(self._show(items[index], row), headers={"ETag": row.etag})

    def put(self, ctx: RequestContext) -> Response:
        group = require_group(ctx, writable=True)
        require_registered(ctx, self.parent.spec.namespace)
        name = ctx.params["childName"]
        check_name(name)
        body = ctx.json()
        properties = obj(body.get("properties"), "properties")
        row = self._parent(ctx, group, "write", lock=True)
        items = copy.deepcopy(self._items(row))
        index = self._index(items, name)
        check_preconditions(ctx, row.etag if index is not None else None)
        item = {"name": items[index]["name"] if index is not None else name, "properties": properties}
        if index is None:
            items.append(item)
        else:
            items[index] = item
        parent_properties = {**(row.body.get("properties") or {}), self.segment: items}
        self.parent.rewrite(ctx, group, row, copy.deepcopy(parent_properties))
        stored = self._items(row)
        saved = stored[self._index(stored, name) or 0]
        return json_response(self._show(saved, row), 201 if index is None else 200, {"ETag": row.etag})

    def delete(self, ctx: RequestContext) -> Response:
        group = require_group(ctx, writable=True)
        row = self.parent.find(ctx, group, lock=True)
        if row is None:
            return empty(204)
        items = copy.deepcopy(self._items(row))
        index = self._index(items, ctx.params["childName"])
        if index is None:
            return empty(204)
        check_preconditions(ctx, row.etag)
        del items[index]
        self.parent.rewrite(ctx, group, row, {**copy.deepcopy(row.body.get("properties") or {}), self.segment: items})
        return empty(200)


def register_plain_type(router: Router, registry: ProviderRegistry, spec: PlainType) -> PlainResourceHandlers:
    """Registers the type (and its child types, same api-versions) and routes all of its handlers."""
    registry.add_type(spec.namespace, spec.type, spec.api_versions)
    h = PlainResourceHandlers(spec)
    base = group_routes_base(spec)
    router.add("GET", f"/subscriptions/{{subscriptionId}}/providers/{spec.full_name}", h.list_all,
               resource_type=spec.full_name)  # fmt: skip
    router.add("GET", base, h.list, resource_type=spec.full_name)
    for method, fn in (
        ("GET", h.get),
        ("HEAD", h.head),
        ("PUT", h.put),
        ("PATCH", h.patch),
        ("DELETE", h.delete),
    ):
        router.add(method, base + "/{name}", fn, resource_type=spec.full_name)
    for segment in spec.children:
        child_type = registry.add_type(spec.namespace, f"{spec.type}/{segment}", spec.api_versions).full_name
        c = ChildHandlers(h, segment)
        collection = f"{base}/{{name}}/{segment}"
        router.add("GET", collection, c.list, resource_type=child_type)
        for method, fn in (("GET", c.get), ("PUT", c.put), ("DELETE", c.delete)):
            router.add(method, collection + "/{childName}", fn, resource_type=child_type)
    return h


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type("Microsoft.Resources", "resources", RESOURCES, arm_native=True, always_registered=True)
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/resources",
        list_in_group,
        resource_type="Microsoft.Resources/resources",
    )
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/resources",
        list_in_subscription,
        resource_type="Microsoft.Resources/resources",
    )
