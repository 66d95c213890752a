"""Tenant pages for resource groups and template deployments: the groups, a group's resources and deployments, a
deployment's status, per-resource operations and template, and deploying a custom template (pasted, or read from
a file by the page's script) with a parameters form generated from its ``parameters``.

All of it is ``Microsoft.Resources`` as the SDK calls it; the portal only turns forms into requests. A template the
API refuses (validation, preflight) is shown with the API's message, and nothing is deployed."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from altostratus.portal import tenant_data as data
from altostratus.portal.arm import RESOURCES_API, ApiError
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, first, page, secure

SIMPLE = ("string", "securestring", "int", "bool")


def group_path(sub: str, group: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}"


def deployment_path(sub: str, group: str, name: str) -> str:
    return f"{group_path(sub, group)}/providers/Microsoft.Resources/deployments/{name}"


def parameter_fields(template: dict[str, Any]) -> list[dict[str, Any]]:
    """A form field per template parameter: its type, default, allowed values (objects and arrays as JSON)."""
    fields = []
    for name, spec in (template.get("parameters") or {}).items():
        if not isinstance(spec, dict):
            continue
        kind = str(spec.get("type", "string")).lower()
        default = spec.get("defaultValue")
        shown = default if kind in SIMPLE or default is None else json.dumps(default)
        if isinstance(shown, str) and shown.startswith("["):  # an expression: the engine computes it
            shown = None
        fields.append(
            {
                "name": name,
                "type": kind,
                "default": "" if shown is None else str(shown).lower() if kind == "bool" else str(shown),
                "required": "defaultValue" not in spec,
                "allowed": spec.get("allowedValues"),
                "description": (spec.get("metadata") or {}).get("description", ""),
            }
        )
    return fields


def parameter_values(fields: list[dict[str, Any]], form: dict[str, list[str]]) -> dict[str, Any]:
    """The deployment's ``parameters`` from the form: only what the person filled (defaults stay the template's)."""
    values: dict[str, Any] = {}
    for f in fields:
        raw = first(form, "p_" + f["name"])
        if raw == "":
            continue
        value: Any = raw
        if f["type"] == "int" and re.fullmatch(r"-?\d+", raw.strip()):
            value = int(raw)
        elif f["type"] == "bool":
            value = raw.lower() == "true"
        elif f["type"] in ("object", "secureobject", "array"):
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw  # the API says what is wrong with it
        values[f["name"]] = {"value": value}
    return values


def error_field(err: ApiError, fields: list[dict[str, Any]]) -> str:
    """The form field an API error is about: the parameter its ``target`` or its message names, else the template."""
    names = {f["name"] for f in fields}
    last = (err.target or "").split(".")[-1]
    if last in names:
        return "p_" + last
    named = re.search(r"parameter '([^']+)'", err.message)
    if named and named.group(1) in names:
        return "p_" + named.group(1)
    return "template"


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def groups_page(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        subs = await data.subscriptions(arm, session.token)
        lists = await asyncio.gather(*(data.groups(arm, session.token, s["subscriptionId"]) for s in subs))
        rows = [(s, g) for s, gs in zip(subs, lists, strict=True) for g in gs]
        return portal.render(request, "tenant_groups.html", session, rows=rows)

    async def group_page(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        sub, group = request.path_params["sub"], request.path_params["group"]
        path = group_path(sub, group)
        rg, resources, deployments = await asyncio.gather(
            arm.call(session.token, "GET", path, RESOURCES_API),
            arm.list_all(session.token, f"/subscriptions/{sub}/resourceGroups/{group}/resources", RESOURCES_API),
            arm.list_all(session.token, f"{path}/providers/Microsoft.Resources/deployments", RESOURCES_API),
        )
        deployments.sort(key=lambda d: d["properties"].get("timestamp") or "", reverse=True)
        return portal.render(
            request, "tenant_group.html", session, rg=rg, sub=sub, resources=resources, deployments=deployments
        )

    async def deployment_page(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        p = request.path_params
        path = deployment_path(p["sub"], p["group"], p["name"])
        dep, ops, exported = await asyncio.gather(
            arm.call(session.token, "GET", path, RESOURCES_API),
            arm.list_all(session.token, path + "/operations", RESOURCES_API),
            arm.request(session.token, "POST", path + "/exportTemplate", RESOURCES_API),
        )
        template = json.dumps(exported.json().get("template"), indent=2) if exported.status_code == 200 else None
        return portal.render(
            request, "tenant_deployment.html", session, dep=dep, ops=ops, template_json=template, base=request.url.path
        )

    async def deploy_form(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        subs = await data.subscriptions(arm, session.token)
        v = {"subscription": subs[0]["subscriptionId"] if subs else "", "group": "", "name": "", "template": ""}
        return portal.render(request, "tenant_deploy.html", session, subs=subs, v=v, fields=None, errors={})

    async def deploy_submit(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        subs = await data.subscriptions(arm, session.token)
        v = {k: first(form, k).strip() for k in ("subscription", "group", "name")}
        v["template"] = first(form, "template")
        v["name"] = v["name"] or f"portal-{time.strftime('%Y%m%d-%H%M%S')}"
        errors: dict[str, str] = {}
        try:
            template = json.loads(v["template"])
            if not isinstance(template, dict):
                raise ValueError("a template is a JSON object")
        except ValueError as exc:
            errors["template"] = f"The template is not valid JSON: {exc}."
            return portal.render(
                request, "tenant_deploy.html", session, 400, subs=subs, v=v, fields=None, errors=errors
            )
        fields = parameter_fields(template)
        if not v["group"]:
            errors["group"] = "Enter a resource group (made if it does not exist)."
        if first(form, "step") != "deploy" or errors:
            return portal.render(request, "tenant_deploy.html", session, subs=subs, v=v, fields=fields, errors=errors)
        body = {
            "properties": {"mode": "Incremental", "template": template, "parameters": parameter_values(fields, form)}
        }
        gpath = group_path(v["subscription"], v["group"])
        try:
            if (await arm.request(session.token, "HEAD", gpath, RESOURCES_API)).status_code != 204:
                await arm.call(session.token, "PUT", gpath, RESOURCES_API, {"location": data.LOCATION})
            path = deployment_path(v["subscription"], v["group"], v["name"])
            await arm.call(session.token, "PUT", path, RESOURCES_API, body)
        except ApiError as err:
            if err.status in (401, 403):
                raise
            errors[error_field(err, fields)] = f"{err.code}: {err.message}"
            return portal.render(
                request, "tenant_deploy.html", session, 400, subs=subs, v=v, fields=fields, errors=errors
            )
        session.flash.append(f"Deployment {v['name']} started.")
        return secure(RedirectResponse("/portal" + path, 303))

    base = "/portal/subscriptions/{sub}/resourceGroups/{group}"
    return [
        ("/portal/groups", "GET", page(portal, groups_page)),
        (base, "GET", page(portal, group_page)),
        (base + "/providers/Microsoft.Resources/deployments/{name}", "GET", page(portal, deployment_page)),
        ("/portal/deploy", "GET", page(portal, deploy_form)),
        ("/portal/deploy", "POST", page(portal, deploy_submit)),
    ]
