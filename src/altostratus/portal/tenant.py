"""The tenant portal: the person's scale sets, the marketplace, a scale set's page and its instances.

Every read and write is an ARM call with the person's token; a scale set outside their subscriptions is the
API's 403/404, shown as the 404 page (they learn nothing about other tenants' resources)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from altostratus.portal import tenant_data as data
from altostratus.portal.arm import COMPUTE_API, ApiError, error_of
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, first, not_found, page, secure

PAGE_SIZE = 100
# The table's columns and the VM list's $orderby key of each (compute/vm_order.py).
SORTS = {
    "instanceId": "instanceId",
    "name": "name",
    "version": "properties/storageProfile/imageReference/exactVersion",
    "latestModelApplied": "properties/latestModelApplied",
    "provisioningState": "properties/provisioningState",
    "powerState": "properties/instanceView/powerState",
}
BULK = {
    "start": "start",
    "stop": "powerOff",
    "restart": "restart",
    "reimage": "reimage",
    "upgrade": "manualUpgrade",
    "delete": "delete",
}


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def home(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        subs = await data.subscriptions(arm, session.token)
        sets = await data.scale_sets(arm, session.token, subs)
        rows = [{"ss": ss, "url": "/portal" + ss["id"]} for ss in sets]
        return portal.render(request, "tenant_home.html", session, subs=subs, rows=rows)

    async def marketplace(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        subs = await data.subscriptions(arm, session.token)
        items = await data.gallery_items(arm, session.token, subs[0]["subscriptionId"]) if subs else []
        return portal.render(request, "tenant_marketplace.html", session, items=items)

    async def load_set(session: PortalSession, request: Request) -> tuple[str, dict[str, Any]]:
        p = request.path_params
        path = data.set_path(p["sub"], p["group"], p["name"])
        return path, await arm.call(session.token, "GET", path, COMPUTE_API)

    async def scale_set(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        path, ss = await load_set(session, request)
        # The set's instance view counts the instances on each exact image version (and says why a set cannot
        # converge): the page needs no instance of the set itself (tenant_data.InstanceSummary).
        view_task = arm.call(session.token, "GET", path + "/instanceView", COMPUTE_API)
        quota_task = data.usages(arm, session.token, request.path_params["sub"])
        view, quota = await asyncio.gather(view_task, quota_task)
        summary = data.InstanceSummary.of(view)
        ref = ss["properties"].get("virtualMachineProfile", {}).get("storageProfile", {}).get("imageReference", {})
        available = await data.image_versions(arm, session.token, request.path_params["sub"], ref)
        running = summary.versions
        newest = available[0] if available else None
        older = sum(n for v, n in running if newest and v != newest)
        problem = next(
            (s for s in view.get("statuses", []) if s.get("level") in ("Error", "Warning") and s.get("message")), None
        )
        return portal.render(
            request,
            "tenant_scaleset.html",
            session,
            ss=ss,
            ref=ref,
            instances=summary.instances,
            running=running,
            available=available,
            newest=newest,
            older=older,
            pinned=ref.get("version", "latest").lower() != "latest",
            problem=problem,
            guided=portal.guided.get(path),
            quota=quota,
            error=_pop_error(session),
            base=request.url.path,
        )

    async def instances(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        """One page of the table, sorted and paged by the API (``$orderby``, ``$top``, ``$skiptoken``: only the
        page's instances are fetched); the total comes from the set's instance view."""
        sort = request.query_params.get("sort", "instanceId")
        sort = sort if sort in SORTS else "instanceId"
        desc = request.query_params.get("order") == "desc"
        try:
            number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            number = 1
        p = request.path_params
        path = data.set_path(p["sub"], p["group"], p["name"])
        set_task = arm.call(session.token, "GET", path, COMPUTE_API)
        view_task = arm.call(session.token, "GET", path + "/instanceView", COMPUTE_API)
        ss, view = await asyncio.gather(set_task, view_task)
        total = data.InstanceSummary.of(view).instances
        pages = max(1, -(-total // PAGE_SIZE))
        number = min(number, pages)
        shown = await data.instances_page(
            arm, session.token, path, SORTS[sort], desc, (number - 1) * PAGE_SIZE, PAGE_SIZE
        )
        rows = [data.instance_row(vm) for vm in shown]
        base = request.url.path.removesuffix("/instances")
        return portal.render(
            request,
            "tenant_instances.html",
            session,
            ss=ss,
            rows=rows,
            total=total,
            page=number,
            pages=pages,
            sort=sort,
            desc=desc,
            base=base,
            error=_pop_error(session),
        )

    async def bulk(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        path, _ = await load_set(session, request)
        action = first(form, "action")
        ids = form.get("instance", [])
        back = request.url.path
        if action not in BULK and action not in ("protect", "unprotect"):
            return _back(session, back, "Choose an action.")
        if not ids:
            return _back(session, back, "Select at least one instance.")
        try:
            if action in ("protect", "unprotect"):
                for iid in ids:
                    vm = await arm.call(session.token, "GET", f"{path}/virtualMachines/{iid}", COMPUTE_API)
                    body = {
                        "location": vm["location"],
                        "properties": {"protectionPolicy": {"protectFromScaleIn": action == "protect"}},
                    }
                    await arm.call(session.token, "PUT", f"{path}/virtualMachines/{iid}", COMPUTE_API, body)
            else:
                await arm.call(session.token, "POST", f"{path}/{BULK[action]}", COMPUTE_API, {"instanceIds": ids})
        except ApiError as err:
            if err.status in (401, 403, 404):
                raise
            return _back(session, back, err.message)
        session.flash.append(f"{action.capitalize()} requested for {len(ids)} instance(s).")
        return secure(RedirectResponse(back, 303))

    async def scale(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        path, ss = await load_set(session, request)
        back = request.url.path.removesuffix("/scale")
        raw = first(form, "capacity")
        if not raw.isdigit():
            return _back(session, back, "The instance count must be a whole number.", "sku.capacity")
        try:
            await arm.call(session.token, "PATCH", path, COMPUTE_API, {"sku": {"capacity": int(raw)}})
        except ApiError as err:
            if err.status in (401, 403):
                raise
            return _back(session, back, err.message, err.target or "sku.capacity", err.code)
        session.flash.append(f"Scaling {ss['name']} to {raw} instances.")
        return secure(RedirectResponse(back, 303))

    async def status(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        """The scale set's provisioning state and instance states (the page's progress, polled by portal.js)."""
        path, ss = await load_set(session, request)
        summary = data.InstanceSummary.of(await arm.call(session.token, "GET", path + "/instanceView", COMPUTE_API))
        return secure(
            JSONResponse(
                {
                    "provisioningState": ss["properties"].get("provisioningState"),
                    "capacity": ss["sku"].get("capacity"),
                    "ready": summary.ready,
                    "instances": summary.instances,
                    "versions": summary.versions,
                    "guided": run.view() if (run := portal.guided.get(path)) else None,
                }
            )
        )

    async def guided(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        """Starts the guided replacement of the older instances (portal/guided.py); the page shows its steps."""
        path, _ = await load_set(session, request)
        portal.guided.start(path, session.user, session.token)
        return secure(RedirectResponse(request.url.path.removesuffix("/guided"), 303))

    async def console(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        """An instance's console output (boot diagnostics; the real serial console with the libvirt driver)."""
        path, ss = await load_set(session, request)
        iid = request.path_params["instance"]
        r = await arm.request(session.token, "GET", f"{path}/virtualMachines/{iid}/serialConsoleLog", COMPUTE_API)
        if r.status_code >= 400:
            raise error_of(r)
        base = request.url.path.split("/virtualMachines/")[0]
        return portal.render(request, "tenant_console.html", session, ss=ss, instance=iid, text=r.text, base=base)

    sp = "/portal/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
    return [
        ("/", "GET", page(portal, home)),
        ("/portal", "GET", page(portal, home)),
        ("/portal/marketplace", "GET", page(portal, marketplace)),
        (sp, "GET", page(portal, scale_set)),
        (sp + "/status.json", "GET", page(portal, status, json=True)),
        (sp + "/instances", "GET", page(portal, instances)),
        (sp + "/instances", "POST", page(portal, bulk)),
        (sp + "/scale", "POST", page(portal, scale)),
        (sp + "/guided", "POST", page(portal, guided)),
        (sp + "/virtualMachines/{instance}/console", "GET", page(portal, console)),
    ]


def _back(
    session: PortalSession, url: str, message: str, target: str | None = None, code: str | None = None
) -> Response:
    """Back to the page, which shows ``message`` next to the field ``target`` names (the API's error target)."""
    session.flash.append(json.dumps({"error": message, "target": target, "code": code}))
    return secure(RedirectResponse(url, 303))


def _pop_error(session: PortalSession) -> dict[str, Any] | None:
    for i, item in enumerate(session.flash):
        if item.startswith("{"):
            session.flash.pop(i)
            loaded: dict[str, Any] = json.loads(item)
            return loaded
    return None


__all__ = ["routes", "not_found"]
