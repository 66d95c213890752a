"""The operator's upstream registration (Azure Stack Hub's activation): register this cloud with an upstream
marketplace, change it, or unregister, through the AzureBridge admin API (the ``default`` activation that
``alto marketplace register`` writes). The API's refusal is shown next to the upstream field, nothing changed."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from altostratus.portal.arm import BRIDGE_API, ApiError
from altostratus.portal.operator_data import Admin, admin_for
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, first, page, secure, take_field_error

PAGE = "/admin/registration"


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def admin(session: PortalSession) -> Admin:
        return await admin_for(arm, session)

    def back(session: PortalSession, message: str, field: str | None = None) -> Response:
        session.flash.append(json.dumps({"field": field, "message": message}) if field else message)
        return secure(RedirectResponse(PAGE, 303))

    async def registration(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        r = await arm.request(session.token, "GET", a.activation, BRIDGE_API)
        if r.status_code >= 400 and r.status_code != 404:
            raise ApiError(r.status_code, "Failed", r.text)
        activation = r.json() if r.status_code == 200 else None
        error = take_field_error(session)
        return portal.render(request, "operator_registration.html", session, activation=activation, error=error)

    async def register(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        upstream = first(form, "upstream").strip()
        if not upstream:
            return back(
                session, "Enter the upstream: 'demo', a catalogue directory on the server, or its URL.", "upstream"
            )
        props = {
            "upstream": upstream,
            **({"displayName": name} if (name := first(form, "display_name").strip()) else {}),
        }
        try:
            await arm.call(session.token, "PUT", a.activation, BRIDGE_API, {"properties": props})
        except ApiError as err:
            if err.status in (401, 403):
                raise
            field = "upstream" if (err.target or "").endswith("upstream") else "_form"
            return back(session, f"{err.code}: {err.message}", field)
        return back(
            session, f"Registered with {upstream}: its products are under Marketplace management → + Add from Azure."
        )

    async def unregister(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        await arm.call(session.token, "DELETE", a.activation, BRIDGE_API)
        return back(session, "Unregistered: nothing can be added from the upstream; what is downloaded stays.")

    return [
        (PAGE, "GET", page(portal, registration, operator=True)),
        (PAGE, "POST", page(portal, register, operator=True)),
        (PAGE + "/unregister", "POST", page(portal, unregister, operator=True)),
    ]
