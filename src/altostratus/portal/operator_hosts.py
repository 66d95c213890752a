"""The operator's hosts page: the hypervisor hosts instances are placed on, with their health, capacity and
instances, and the same actions as ``alto admin host`` - add, drain, enable, remove - each a call to the
``Microsoft.Compute.Admin/locations/{location}/hosts`` API with the operator's token (docs/several-machines.md).
The API's refusals (a malformed URI, a host that still has instances) are shown next to what they name."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from altostratus.portal.arm import COMPUTE_ADMIN_API, ApiError
from altostratus.portal.operator_data import admin_for
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, back_to, first, page, take_field_error

FIELDS = {"properties.uri": "uri", "hostName": "name"}
ACTIONS = {"drain": "drained: no new instances go to it", "enable": "enabled", "remove": "removed"}


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def hosts_page(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin_for(arm, session)
        hosts = await a.hosts()
        totals = {
            "hosts": len(hosts),
            "healthy": sum(1 for h in hosts if h["properties"].get("health") == "Healthy"),
            "instances": sum(int(h["properties"].get("instances") or 0) for h in hosts),
        }
        return portal.render(
            request, "operator_hosts.html", session, hosts=hosts, totals=totals, error=take_field_error(session)
        )

    def back(session: PortalSession, err: ApiError | None = None, field: str = "_form", message: str = "") -> Response:
        return back_to("/admin/hosts", session, err, fields=FIELDS, field=field, message=message)

    async def add_host(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin_for(arm, session)
        name, uri = first(form, "name").strip(), first(form, "uri").strip()
        if not name:
            return back(session, ApiError(400, "InvalidParameter", "Enter a host name.", "hostName"))
        try:
            body = {"properties": {"uri": uri}}
            await arm.call(session.token, "PUT", a.host(quote(name, safe="")), COMPUTE_ADMIN_API, body)
        except ApiError as err:
            if err.status in (401, 403):
                raise
            return back(session, err)
        return back(session, message=f"Host {name} added. Its health shows once the monitor has reached it.")

    async def change_host(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin_for(arm, session)
        name, action = first(form, "host"), first(form, "action")
        if action not in ACTIONS:
            return back(session, message="Choose an action.")
        path = a.host(quote(name, safe=""))
        try:
            if action == "remove":
                await arm.call(session.token, "DELETE", path, COMPUTE_ADMIN_API)
            else:
                await arm.call(session.token, "POST", f"{path}/{action}", COMPUTE_ADMIN_API)
        except ApiError as err:
            if err.status in (401, 403):
                raise
            return back(session, err, field=f"host:{name}")
        return back(session, message=f"Host {name} {ACTIONS[action]}.")

    return [
        ("/admin/hosts", "GET", page(portal, hosts_page, operator=True)),
        ("/admin/hosts", "POST", page(portal, add_host, operator=True)),
        ("/admin/hosts/change", "POST", page(portal, change_host, operator=True)),
    ]
