"""A resource group's ``exportTemplate``: a template that deploys the group's resources again.

Each resource is read as its provider shows it (the provider's own GET handler, at the newest api-version the
type has), inside the request's one read of the database; read-only fields are dropped, and every id of a
resource of the group becomes a ``resourceId()`` expression with a ``dependsOn`` on it, so the template deploys in
the right order into any group. Secrets are never shown by a provider, so they come back as ``securestring``
parameters (a scale set's ``adminPassword``), which the redeploying caller supplies.

Reading through the GET handlers, not internal requests through the pipeline, keeps the export in the request's
transaction (a second one on the same thread is not possible on SQLite); the caller, subscription and
api-version are the ones the request was admitted with, so nothing is shown that a GET would not show.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router, split_path
from altostratus.deployments.platform import deployments_platform
from altostratus.resources.groups import group_id, require_group
from altostratus.store.models import Resource, ResourceGroup

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
READ_ONLY = frozenset(
    k.lower() for k in ("provisioningState", "uniqueId", "resourceGuid", "timeCreated", "etag", "instanceView")
)
TOP_LEVEL = ("type", "apiVersion", "name", "location", "tags", "sku", "kind", "plan", "identity", "zones")
_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/(?P<ns>[^/]+)/(?P<rest>.+)$", re.IGNORECASE)


def read_as_provider(ctx: RequestContext, path: str, api_version: str) -> tuple[int, Any]:
    """What a GET of ``path`` answers the caller, from the provider's handler in this request's transaction."""
    route, params, _ = deployments_platform(ctx.services).router.match("GET", split_path(path))
    if route is None:
        return 404, None
    sub = RequestContext(
        method="GET",
        path=path,
        params=params,
        query={"api-version": api_version},
        headers={},
        raw_body=b"",
        base_url=ctx.base_url,
        api_version=api_version,
        caller=ctx.caller,
        db=ctx.db,
        services=ctx.services,
        request_id=ctx.request_id,
        extra={k: v for k, v in ctx.extra.items() if k == "subscription"},
    )
    try:
        response = route.handler(sub)
    except ArmError as err:
        return err.status, err.body()
    return response.status_code, json.loads(bytes(response.body)) if response.body else None


def _expression(group: ResourceGroup, value: str) -> tuple[str, str | None] | None:
    """``[resourceId('ns/type[/child]', 'name'[, 'childName'])]`` for an id inside ``group``, and the key of the
    top-level resource it names (for dependsOn); None for anything else."""
    match = _ID.match(value)
    if match is None or not value.lower().startswith(group_id(group.subscription_id, group.name).lower() + "/"):
        return None
    parts = match["rest"].split("/")
    if len(parts) % 2:
        return None
    types, names = parts[0::2], parts[1::2]
    full_type = "/".join([match["ns"], *types])
    args = ", ".join(f"'{a}'" for a in [full_type, *names])
    top = f"{match['ns']}/{types[0]}/{names[0]}".lower()
    return f"[resourceId({args})]", top


def _clean(value: Any, group: ResourceGroup, refs: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v, group, refs) for k, v in value.items() if k.lower() not in READ_ONLY}
    if isinstance(value, list):
        return [_clean(v, group, refs) for v in value]
    if isinstance(value, str):
        found = _expression(group, value)
        if found is not None:
            refs.add(found[1] or "")
            return found[0]
    return value


def _parameter_name(row: Resource, what: str) -> str:
    short = row.type.split("/")[-1]
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{short}_{row.name}_{what}")


def _secrets(row: Resource, resource: dict[str, Any], parameters: dict[str, Any]) -> None:
    """A scale set that signs in with a password: the password is a parameter (providers never show it)."""
    if row.type.lower() != "microsoft.compute/virtualmachinescalesets":
        return
    os_profile = ((resource.get("properties") or {}).get("virtualMachineProfile") or {}).get("osProfile")
    if not isinstance(os_profile, dict) or os_profile.get("adminPassword"):
        return
    linux = os_profile.get("linuxConfiguration") or {}
    if isinstance(linux, dict) and linux.get("disablePasswordAuthentication") is True:
        return
    name = _parameter_name(row, "adminPassword")
    parameters[name] = {"type": "securestring"}
    os_profile["adminPassword"] = f"[parameters('{name}')]"
    os_profile.pop("customData", None)


def export_group(ctx: RequestContext) -> Response:
    group = require_group(ctx)
    body = ctx.json(required=False)
    wanted = body.get("resources", ["*"])
    if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
        raise invalid_parameter("'resources' must be a list of resource ids, or ['*'] for all.", "resources")
    query = select(Resource).where(Resource.resource_group_id == group.id)
    rows = list(ctx.db.scalars(query.order_by(Resource.type_key, Resource.name_key)))
    base = group_id(group.subscription_id, group.name)
    if "*" not in wanted:
        keys = {w.lower().rstrip("/") for w in wanted}
        rows = [r for r in rows if f"{base}/providers/{r.type}/{r.name}".lower() in keys]
    registry = ctx.services.registry
    keys_of = {f"{r.type}/{r.name}".lower(): r for r in rows}
    resources: list[dict[str, Any]] = []
    parameters: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for row in rows:
        rtype = registry.get_type(row.type)
        api_version = rtype.api_versions[0] if rtype is not None else None
        path = f"{base}/providers/{row.type}/{row.name}"
        status, shown = read_as_provider(ctx, path, api_version) if api_version else (404, None)
        if status != 200 or not isinstance(shown, dict):
            errors.append(
                {
                    "code": "ExportTemplateProviderError",
                    "message": f"Could not get resource of the type '{row.type}'. Resources of this type will "
                    "not be exported.",
                    "target": path,
                }
            )
            continue
        refs: set[str] = set()
        own = f"{row.type}/{row.name}".lower()
        resource: dict[str, Any] = {"type": row.type, "apiVersion": api_version, "name": row.name}
        for key in TOP_LEVEL[3:]:
            if key in shown:  # tags are the tenant's words: kept as they are
                resource[key] = shown[key] if key == "tags" else _clean(shown[key], group, refs)
        if "properties" in shown:
            resource["properties"] = _clean(shown["properties"], group, refs)
        _secrets(row, resource, parameters)
        depends = sorted(
            f"[resourceId('{keys_of[k].type}', '{keys_of[k].name}')]" for k in refs if k in keys_of and k != own
        )
        if depends:
            resource["dependsOn"] = depends
        resources.append(resource)
    template = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": parameters,
        "variables": {},
        "resources": resources,
    }
    answer: dict[str, Any] = {"template": template}
    if errors:
        answer["error"] = {
            "code": "ExportTemplateCompletedWithErrors",
            "message": "Export template operation completed with errors. Some resources were not exported. Please "
            "see details for more information.",
            "details": errors,
        }
    return json_response(answer)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    router.add(
        "POST",
        "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}/exportTemplate",
        export_group,
        resource_type="Microsoft.Resources/resourceGroups",
    )
