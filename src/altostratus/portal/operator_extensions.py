"""VM extensions added directly by the operator (not through the marketplace): the Compute.Admin ``VMExtension``
artifact API, which copies the handler package with the same resumable, verified download as images."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from altostratus.portal.arm import COMPUTE_ADMIN_API, ApiError, error_of
from altostratus.portal.operator_data import Admin, admin_for
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, first, page, secure

BACK = "/admin/marketplace"


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def admin(session: PortalSession) -> Admin:
        return await admin_for(arm, session)

    def path(a: Admin, publisher: str, kind: str, version: str) -> str:
        return f"{a.images}/VMExtension/publishers/{publisher}/types/{kind}/versions/{version}"

    async def add_extension(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        parts = [first(form, k).strip() for k in ("publisher", "type", "version")]
        uri = first(form, "uri").strip()
        if not all(parts) or not uri:
            session.flash.append("Enter the extension's publisher, type, version and the package's path or URL.")
            return secure(RedirectResponse(BACK, 303))
        name = "{}.{} {}".format(*parts)
        body = {"properties": {"vmOsType": first(form, "os_type", "Linux"), "sourceBlob": {"uri": uri}}}
        r = await arm.request(session.token, "PUT", path(a, *parts), COMPUTE_ADMIN_API, body)
        if r.status_code >= 400:
            err = error_of(r)
            if err.status in (401, 403):
                raise err
            session.flash.append(f"The extension {name} was refused: {err.message}")
        else:
            session.flash.append(f"Adding the extension {name}: it is ready once its package is copied.")
        return secure(RedirectResponse(BACK, 303))

    async def delete_extension(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        parts = first(form, "extension").split("|")
        if len(parts) != 3:
            session.flash.append("Choose an extension.")
            return secure(RedirectResponse(BACK, 303))
        try:
            await arm.call(session.token, "DELETE", path(a, *parts), COMPUTE_ADMIN_API)
            session.flash.append("The extension {}.{} {} was deleted.".format(*parts))
        except ApiError as err:
            if err.status in (401, 403):
                raise
            session.flash.append(f"The extension could not be deleted: {err.message}")
        return secure(RedirectResponse(BACK, 303))

    return [
        (BACK + "/add-extension", "POST", page(portal, add_extension, operator=True)),
        (BACK + "/delete-extension", "POST", page(portal, delete_extension, operator=True)),
    ]
