"""ASGI types, and the mount that sends browser routes to the portal and everything else to the ARM app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The portal's own paths. None is an ARM route (ARM paths start with /subscriptions, /providers, /tenants,
# /locations, /metadata or a tenant id before /oauth2 or /.well-known), and the mount asks the API's router
# first anyway, so an API route can never be shadowed.
PORTAL_PREFIXES = ("/admin", "/portal", "/sign-in", "/sign-out")


def wants_html(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            return b"text/html" in value
    return False


class PortalMount:
    """``/`` for a browser (Accept: text/html) and the portal's prefixes go to the portal; the rest to ARM.

    API clients are unaffected: they never ask ``/`` for HTML (``GET /`` with a JSON Accept still gets the
    API's 401), and ``api_owns`` (the API router's match) wins over any portal path."""

    def __init__(self, arm: ASGIApp, portal: ASGIApp, api_owns: Callable[[str, str], bool]) -> None:
        self.arm = arm
        self.portal = portal
        self.api_owns = api_owns

    def routes_to_portal(self, scope: Scope) -> bool:
        if scope["type"] != "http":
            return False
        path: str = scope["path"]
        if path == "/":
            return wants_html(scope)
        if not any(path == p or path.startswith(p + "/") for p in PORTAL_PREFIXES):
            return False
        return not self.api_owns(scope["method"], path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.routes_to_portal(scope):
            await self.portal(scope, receive, send)
        else:
            await self.arm(scope, receive, send)
