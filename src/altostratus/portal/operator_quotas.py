"""The operator's compute quotas: each subscription's use against its limits (the tenant's own Usage_List, which an
operator may read for any subscription) and a form that sets a subscription's quota or the default one
(``Microsoft.Compute.Admin/locations/{location}/quotas/{name}``)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from altostratus.portal.arm import ApiError
from altostratus.portal.operator_data import Admin, admin_for
from altostratus.portal.sessions import PortalSession
from altostratus.portal.tenant_data import LOCATION, usages
from altostratus.portal.web import Portal, first, page, secure

QUOTA_API = "2018-02-09"
DEFAULT = "Default Quota"
LIMITS = (("virtualMachineCount", "Virtual machines"), ("coresLimit", "vCPUs"), ("vmScaleSetCount", "Scale sets"))


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def admin(session: PortalSession) -> Admin:
        return await admin_for(arm, session)

    def quota_path(a: Admin, name: str = "") -> str:
        base = f"/subscriptions/{a.sub}/providers/Microsoft.Compute.Admin/locations/{LOCATION}/quotas"
        return f"{base}/{name}" if name else base

    async def quotas_page(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        subs = await a.subscriptions()
        quotas, uses = await asyncio.gather(
            arm.call(session.token, "GET", quota_path(a), QUOTA_API),
            asyncio.gather(*(usages(arm, session.token, s["name"]) for s in subs)),
        )
        named = {q["name"].split("/")[-1].lower(): q for q in quotas.get("value", [])}
        rows = [{"sub": s, "use": use, "own": s["name"].lower() in named} for s, use in zip(subs, uses, strict=True)]
        default = named.get(DEFAULT.lower(), {}).get("properties", {})
        return portal.render(request, "operator_quotas.html", session, rows=rows, default=default, limits=LIMITS)

    async def set_quota(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        name = first(form, "quota") or DEFAULT
        props: dict[str, Any] = {}
        for key, label in LIMITS:
            raw = first(form, key).strip()
            if raw:
                if not raw.isdigit():
                    session.flash.append(f"{label} must be a whole number: nothing changed.")
                    return secure(RedirectResponse("/admin/quotas", 303))
                props[key] = int(raw)
        try:
            await arm.call(session.token, "PUT", quota_path(a, name), QUOTA_API, {"properties": props})
        except ApiError as err:
            if err.status in (401, 403):
                raise
            session.flash.append(f"The quota was not changed: {err.message}")
            return secure(RedirectResponse("/admin/quotas", 303))
        label = first(form, "label") or name
        session.flash.append(f"Quota {'for all subscriptions' if name == DEFAULT else 'of ' + label} saved.")
        return secure(RedirectResponse("/admin/quotas", 303))

    return [
        ("/admin/quotas", "GET", page(portal, quotas_page, operator=True)),
        ("/admin/quotas", "POST", page(portal, set_quota, operator=True)),
    ]
