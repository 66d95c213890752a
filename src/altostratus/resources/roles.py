"""Microsoft.Authorization role definitions and role assignments at a subscription, resource group or resource.

The three built-in roles with Azure's ids (``arm/access.py`` enforces them); assignments name a principal of the
directory (its client id: the object id Azure would use) and one of those roles. Only an Owner of the scope (the
subscription's owner, an Owner assignment covering it, or the operator) may create or delete assignments; the
pipeline enforces that like any other write. ``$filter`` takes ``atScope()``, ``principalId eq '{id}'`` and
``assignedTo('{id}')`` (what the SDK and ``az role assignment list`` send); ``roleName eq '{name}'`` for
definitions (what ``az role assignment create --role Reader`` sends).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from altostratus.arm.access import CONTRIBUTOR, OWNER, READER, ROLES
from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response, paged
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.store.db import iso, utcnow
from altostratus.store.models import Principal, RoleAssignment

NS = "Microsoft.Authorization"
VERSIONS = ("2022-05-01-preview", "2022-04-01", "2020-10-01-preview", "2020-04-01-preview", "2018-09-01-preview",
            "2018-01-01-preview", "2015-07-01")  # fmt: skip
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
PRINCIPAL_FILTER = re.compile(r"^\s*(?:principalId\s+eq\s+'([^']+)'|assignedTo\('([^']+)'\))\s*$", re.IGNORECASE)
ROLE_NAME_FILTER = re.compile(r"^\s*roleName\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)
DESCRIPTIONS = {
    OWNER: ("Grants full access to manage all resources, including the ability to assign roles.", ["*"], []),
    CONTRIBUTOR: (
        "Grants full access to manage all resources, but does not allow you to assign roles.",
        ["*"],
        ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write"],
    ),
    READER: ("View all resources, but does not allow you to make any changes.", ["*/read"], []),
}


def scope_of(ctx: RequestContext) -> str:
    """The scope a route addresses: its path up to ``/providers/Microsoft.Authorization``."""
    low = ctx.path.lower()
    return ctx.path[: low.rindex("/providers/microsoft.authorization")]


def definition_id(ctx: RequestContext, role: str) -> str:
    return f"/subscriptions/{ctx.params['subscriptionId']}/providers/{NS}/roleDefinitions/{role}"


def render_definition(ctx: RequestContext, role: str) -> dict[str, Any]:
    description, actions, not_actions = DESCRIPTIONS[role]
    return {
        "id": definition_id(ctx, role),
        "name": role,
        "type": f"{NS}/roleDefinitions",
        "properties": {
            "roleName": ROLES[role][0],
            "type": "BuiltInRole",
            "description": description,
            "assignableScopes": ["/"],
            "permissions": [{"actions": actions, "notActions": not_actions, "dataActions": [], "notDataActions": []}],
        },
    }


def list_definitions(ctx: RequestContext) -> Response:
    roles = list(ROLES)
    wanted = ctx.query.get("$filter")
    if wanted:
        m = ROLE_NAME_FILTER.match(wanted)
        if m is None:
            raise invalid_parameter("Supported $filter: roleName eq '{name}'.", "$filter")
        roles = [r for r in roles if ROLES[r][0].lower() == m.group(1).lower()]
    return paged(ctx, roles, lambda r: render_definition(ctx, r))


def get_definition(ctx: RequestContext) -> Response:
    role = ctx.params["roleDefinitionId"].lower()
    if role not in ROLES:
        raise ArmError(404, "RoleDefinitionDoesNotExist", f"The role definition '{role}' does not exist.")
    return json_response(render_definition(ctx, role))


def render_assignment(ctx: RequestContext, row: RoleAssignment) -> dict[str, Any]:
    return {
        "id": f"{row.scope}/providers/{NS}/roleAssignments/{row.name}",
        "name": row.name,
        "type": f"{NS}/roleAssignments",
        "properties": {
            "roleDefinitionId": definition_id(ctx, row.role_definition),
            "principalId": row.principal_id,
            "principalType": "ServicePrincipal",
            "scope": row.scope,
            "createdOn": iso(row.created_at),
            "updatedOn": iso(row.created_at),
            "createdBy": row.created_by,
        },
    }


def _name(ctx: RequestContext) -> str:
    name = ctx.params["roleAssignmentName"]
    if not GUID.match(name):
        raise invalid_parameter(f"The role assignment name '{name}' is not a GUID.", "roleAssignmentName")
    return name.lower()


def get_assignment(ctx: RequestContext) -> Response:
    row = ctx.db.get(RoleAssignment, _name(ctx))
    if row is None or row.scope_key != scope_of(ctx).lower():
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{ctx.params['roleAssignmentName']}' "
                       "is not found.")  # fmt: skip
    return json_response(render_assignment(ctx, row))


def put_assignment(ctx: RequestContext) -> Response:
    name = _name(ctx)
    props = ctx.properties()
    role_id, principal = props.get("roleDefinitionId"), props.get("principalId")
    if not isinstance(role_id, str) or role_id.rstrip("/").rsplit("/", 1)[-1].lower() not in ROLES:
        known = ", ".join(f"{n} ({r})" for r, (n, _) in ROLES.items())
        raise invalid_parameter(
            f"'roleDefinitionId' must name a built-in role: {known}.", "properties.roleDefinitionId"
        )
    role = role_id.rstrip("/").rsplit("/", 1)[-1].lower()
    if not isinstance(principal, str) or ctx.db.get(Principal, principal.lower()) is None:
        raise ArmError(400, "PrincipalNotFound", f"Principal {principal} does not exist in the directory.",
                       "properties.principalId")  # fmt: skip
    principal = principal.lower()
    scope = scope_of(ctx)
    existing = ctx.db.get(RoleAssignment, name)
    if existing is not None:
        same = (existing.scope_key, existing.principal_id, existing.role_definition) == (scope.lower(), principal, role)
        if not same:
            raise ArmError(
                409,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            )
        return json_response(render_assignment(ctx, existing), 201)
    duplicate = ctx.db.scalar(
        select(RoleAssignment.name).where(
            RoleAssignment.scope_key == scope.lower(),
            RoleAssignment.principal_id == principal,
            RoleAssignment.role_definition == role,
        )
    )
    if duplicate is not None:
        raise ArmError(409, "RoleAssignmentExists", f"The role assignment already exists (its name is {duplicate}).")
    row = RoleAssignment(
        name=name,
        subscription_id=ctx.params["subscriptionId"].lower(),
        principal_id=principal,
        role_definition=role,
        scope=scope,
        scope_key=scope.lower(),
        created_by=ctx.require_caller.client_id,
        created_at=utcnow(),
    )
    ctx.db.add(row)
    ctx.db.flush()
    ctx.after_commit.append(ctx.services.access.forget)
    return json_response(render_assignment(ctx, row), 201)


def delete_assignment(ctx: RequestContext) -> Response:
    row = ctx.db.get(RoleAssignment, _name(ctx))
    if row is None or row.scope_key != scope_of(ctx).lower():
        return empty(204)
    body = render_assignment(ctx, row)
    ctx.db.delete(row)
    ctx.services.access.forget()  # now, and again after the commit (see resources/admin.py delete_principal)
    ctx.after_commit.append(ctx.services.access.forget)
    return json_response(body)


def list_assignments(ctx: RequestContext) -> Response:
    """Assignments at, above and below the scope (``atScope()``: at and above), optionally of one principal."""
    scope = scope_of(ctx).lower()
    rows = ctx.db.scalars(
        select(RoleAssignment)
        .where(RoleAssignment.subscription_id == ctx.params["subscriptionId"].lower())
        .order_by(RoleAssignment.created_at, RoleAssignment.name)
    ).all()
    at_scope, principal = False, None
    wanted = (ctx.query.get("$filter") or "").strip()
    if wanted:
        m = PRINCIPAL_FILTER.match(wanted)
        if wanted.lower() == "atscope()":
            at_scope = True
        elif m is not None:
            principal = (m.group(1) or m.group(2)).lower()
        else:
            raise invalid_parameter(
                "Supported $filter: atScope(), principalId eq '{id}', assignedTo('{id}').", "$filter"
            )

    def related(row: RoleAssignment) -> bool:
        above = scope == row.scope_key or scope.startswith(row.scope_key + "/")
        below = row.scope_key.startswith(scope + "/")
        return above or (below and not at_scope)

    found = [r for r in rows if related(r) and (principal is None or r.principal_id == principal)]
    return paged(ctx, found, lambda r: render_assignment(ctx, r))


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    assignments = registry.add_type(NS, "roleAssignments", VERSIONS, always_registered=True).full_name
    definitions = registry.add_type(NS, "roleDefinitions", VERSIONS, always_registered=True).full_name
    sub = "/subscriptions/{subscriptionId}"
    group = sub + "/resourceGroups/{resourceGroupName}"
    resource = group + "/providers/{resourceProviderNamespace}/{resourceType}/{resourceName}"
    for scope in (sub, group, resource):
        base = scope + "/providers/" + NS
        router.add("GET", base + "/roleAssignments", list_assignments, resource_type=assignments)
        for method, fn in (("GET", get_assignment), ("PUT", put_assignment), ("DELETE", delete_assignment)):
            router.add(method, base + "/roleAssignments/{roleAssignmentName}", fn, resource_type=assignments)
        router.add("GET", base + "/roleDefinitions", list_definitions, resource_type=definitions)
        router.add("GET", base + "/roleDefinitions/{roleDefinitionId}", get_definition, resource_type=definitions)
