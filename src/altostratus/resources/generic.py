"""Generic ARM resources: listings across providers, and "plain" resource types.

A plain type is one whose control plane is the ARM envelope itself (stored, validated, listed, deleted
with its group), with a hook that fills the computed read-only fields. Providers with behaviour (compute)
write the same envelope row beside their own tables, so these listings and group deletion see everything.
"""

from __future__ import annotations

import re
import uuid
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
from altostratus.resources.filters import parse_filter, tag_matcher
from altostratus.resources.groups import group_id, require_group
from altostratus.resources.providers import require_registered
from altostratus.resources.versions import RESOURCES
from altostratus.store.db import Database, iso, utcnow
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


def delete_resource_row(db: Database, registry: ProviderRegistry, row_id: int) -> bool:
    """Delete one resource through its provider's deleter (or just the row for plain types); True when gone."""
    with db.session() as s:
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
    clauses = parse_filter(ctx.query.get("$filter"), ("tagname", "tagvalue", "resourcetype", "name"))
    if clauses:
        keep = set(id(r) for r in _filtered(ctx, [r for r, _ in pairs]))
        pairs = [(r, g) for r, g in pairs if id(r) in keep]
    return paged(ctx, pairs, lambda p: render(p[0], p[1], expand=False))


def _filtered(ctx: RequestContext, rows: list[Resource]) -> list[Resource]:
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


@dataclass(frozen=True)
class PlainType:
    namespace: str
    type: str
    api_versions: tuple[str, ...]
    complete: Callable[[dict[str, Any], str], dict[str, Any]]  # (properties, resource id) -> properties

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.type}"


class PlainResourceHandlers:
    """PUT/GET/PATCH/DELETE/HEAD and list for one plain type."""

    def __init__(self, spec: PlainType) -> None:
        self.spec = spec

    def _find(self, ctx: RequestContext, group: ResourceGroup) -> Resource | None:
        return ctx.db.scalars(
            select(Resource).where(
                Resource.resource_group_id == group.id,
                Resource.type_key == self.spec.full_name.lower(),
                Resource.name_key == ctx.params["name"].lower(),
            )
        ).one_or_none()

    def _require(self, ctx: RequestContext, group: ResourceGroup) -> Resource:
        row = self._find(ctx, group)
        if row is None:
            raise resource_not_found(self.spec.full_name, ctx.params["name"], group.name)
        return row

    def get(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        row = self._require(ctx, group)
        return json_response(render(row, group), headers={"ETag": row.etag})

    def head(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        return empty(204 if self._find(ctx, group) else 404)

    def list(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        rows = list(
            ctx.db.scalars(
                select(Resource)
                .where(Resource.resource_group_id == group.id, Resource.type_key == self.spec.full_name.lower())
                .order_by(Resource.name_key)
            )
        )
        return paged(ctx, rows, lambda r: render(r, group))

    def put(self, ctx: RequestContext) -> Response:
        group = require_group(ctx, writable=True)
        require_registered(ctx, self.spec.namespace)
        name = ctx.params["name"]
        if not NAME.match(name):
            raise ArmError(400, "InvalidResourceName", f"The resource name '{name}' is invalid.", "name")
        body = ctx.json()
        row = self._find(ctx, group)
        check_preconditions(ctx, row.etag if row else None)
        location = body.get("location")
        if not isinstance(location, str) or location.replace(" ", "").lower() != ctx.services.settings.location:
            raise invalid_parameter(
                f"The location '{location}' is not available; use '{ctx.services.settings.location}'.",
                "location",
            )
        properties = obj(body.get("properties"), "properties")
        rid = resource_id(group.subscription_id, group.name, self.spec.full_name, name)
        stored = {k: v for k, v in body.items() if k not in (*READ_ONLY, "location", "tags", "properties")}
        stored["properties"] = self.spec.complete(
            {k: v for k, v in properties.items() if k != "provisioningState"}, rid
        )
        tags = validate_tags(body.get("tags"))
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
        return json_response(render(row, group), 201 if created else 200, {"ETag": row.etag})

    def patch(self, ctx: RequestContext) -> Response:
        group = require_group(ctx, writable=True)
        row = self._require(ctx, group)
        check_preconditions(ctx, row.etag)
        body = ctx.json()
        if "tags" in body:
            row.tags = validate_tags(body["tags"])
        row.etag = new_etag()
        row.changed_at = utcnow()
        return json_response(render(row, group), headers={"ETag": row.etag})

    def delete(self, ctx: RequestContext) -> Response:
        group = require_group(ctx)
        row = self._find(ctx, group)
        if row is None:
            return empty(204)
        check_preconditions(ctx, row.etag)
        ctx.db.delete(row)
        return empty(200)


def register_plain_type(router: Router, registry: ProviderRegistry, spec: PlainType) -> None:
    registry.add_type(spec.namespace, spec.type, spec.api_versions)
    h = PlainResourceHandlers(spec)
    base = (
        f"/subscriptions/{{subscriptionId}}/resourceGroups/{{resourceGroupName}}/providers/{spec.namespace}/{spec.type}"
    )
    router.add("GET", base, h.list, resource_type=spec.full_name)
    for method, fn in (
        ("GET", h.get),
        ("HEAD", h.head),
        ("PUT", h.put),
        ("PATCH", h.patch),
        ("DELETE", h.delete),
    ):
        router.add(method, base + "/{name}", fn, resource_type=spec.full_name)


def _nsg_properties(props: dict[str, Any], rid: str) -> dict[str, Any]:
    rules = props.get("securityRules") or []
    if not isinstance(rules, list):
        raise invalid_parameter("'securityRules' must be an array.", "properties.securityRules")
    for rule in rules:
        if not isinstance(rule, dict) or not rule.get("name"):
            raise invalid_parameter("Every security rule needs a name.", "properties.securityRules")
        rule["id"] = f"{rid}/securityRules/{rule['name']}"
        rule.setdefault("properties", {})["provisioningState"] = "Succeeded"
    return {**props, "securityRules": rules, "resourceGuid": props.get("resourceGuid") or str(uuid.uuid4())}


NETWORK_VERSIONS = (
    "2020-06-01",
    "2019-11-01",
    "2018-11-01",
    "2017-10-01",
    "2017-06-01",
    "2016-09-01",
    "2015-06-15",
)

LB_CHILDREN = ("frontendIPConfigurations", "backendAddressPools", "inboundNatPools", "inboundNatRules", "probes",
               "loadBalancingRules")  # fmt: skip


def _lb_properties(props: dict[str, Any], rid: str) -> dict[str, Any]:
    """Load balancers are control plane only; children get their ids so scale sets can reference NAT pools."""
    out = dict(props)
    for child in LB_CHILDREN:
        items = out.get(child) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("name") for i in items):
            raise invalid_parameter(f"'{child}' must be an array of named objects.", f"properties.{child}")
        for item in items:
            item["id"] = f"{rid}/{child}/{item['name']}"
            item.setdefault("properties", {})["provisioningState"] = "Succeeded"
        out[child] = items
    out["resourceGuid"] = out.get("resourceGuid") or str(uuid.uuid4())
    return out


PLAIN_TYPES = (
    PlainType("Microsoft.Network", "networkSecurityGroups", NETWORK_VERSIONS, _nsg_properties),
    PlainType("Microsoft.Network", "loadBalancers", NETWORK_VERSIONS, _lb_properties),
)


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
    for spec in PLAIN_TYPES:
        register_plain_type(router, registry, spec)
