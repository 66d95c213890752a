"""Assembles the portal: its routes (sign-in, tenant, operator), static assets, and the mount in front of ARM."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from altostratus.portal import (
    activity,
    deployments,
    operator,
    operator_extensions,
    operator_hosts,
    operator_quotas,
    operator_registration,
    operator_users,
    signin,
    tenant,
    wizard,
)
from altostratus.portal.arm import Arm
from altostratus.portal.asgi import ASGIApp, PortalMount
from altostratus.portal.sessions import COOKIE, SessionStore
from altostratus.portal.web import HERE, Portal, not_found, secure

DEFAULT_IDLE_SECONDS = 1800
log = logging.getLogger("altostratus.portal")


class SecureStatic(StaticFiles):
    """Assets with the same security headers as pages (nosniff matters most for scripts)."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "max-age=300"
        return response


def build_portal(arm_app: ASGIApp, base_url: str, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> Starlette:
    portal = Portal(Arm(arm_app, base_url), SessionStore(idle_seconds))
    routes: list[Any] = [Mount("/portal/static", SecureStatic(directory=HERE / "static"), name="static")]
    for module in (
        signin,
        tenant,
        wizard,
        deployments,
        activity,
        operator,
        operator_users,
        operator_hosts,
        operator_quotas,
        operator_registration,
        operator_extensions,
    ):
        for path, method, endpoint in module.routes(portal):
            routes.append(Route(path, endpoint, methods=[method]))

    async def missing(request: Request, exc: Exception) -> Response:
        if getattr(exc, "status_code", 404) == 405:
            return secure(Response("Method Not Allowed", 405))
        return not_found(portal, request, portal.sessions.get(request.cookies.get(COOKIE)))

    async def failed(request: Request, exc: Exception) -> Response:
        """A bug of the portal's: logged with its traceback, and a page that says so rather than a bare 500."""
        log.error("portal page %s failed", request.url.path, exc_info=exc)
        session = portal.sessions.get(request.cookies.get(COOKIE))
        text = "This page failed on the server (the error is in the server's log). Nothing else was affected."
        return portal.error_page(request, session, 500, "Something went wrong", text)

    return Starlette(routes=routes, exception_handlers={404: missing, 405: missing, Exception: failed})


def with_portal(
    arm_app: ASGIApp, base_url: str, api_owns: Callable[[str, str], bool], idle_seconds: float = DEFAULT_IDLE_SECONDS
) -> PortalMount:
    """The ASGI app ``alto up`` serves with the portal: browser routes to the portal, the rest to ``arm_app``."""
    return PortalMount(arm_app, build_portal(arm_app, base_url, idle_seconds), api_owns)
