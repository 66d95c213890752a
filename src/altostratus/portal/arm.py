"""The portal's ARM client: requests with the signed-in person's token, through the server's own ASGI app.

In-process (``httpx.ASGITransport``) rather than over HTTPS to itself: the request is the same bytes an SDK
sends and goes through the same endpoint and pipeline (authentication, authorization, api-version, validation,
errors), without a TLS handshake, a socket, or trusting our own CA from inside the server, and it works
whatever address ``alto up`` listens on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from altostratus.portal.asgi import ASGIApp

# httpx logs every request at INFO: the access log already has each one the portal makes.
logging.getLogger("httpx").setLevel(logging.WARNING)

RESOURCES_API = "2019-10-01"
SUBSCRIPTIONS_API = "2016-06-01"
COMPUTE_API = "2020-06-01"
COMPUTE_ADMIN_API = "2015-12-01-preview"
BRIDGE_API = "2016-01-01"
GALLERY_API = "2016-05-01"
SUBS_ADMIN_API = "2015-11-01"
IDENTITY_ADMIN_API = "2024-01-01"
PORTAL_CLIENT_ID = "a1705a7e-0000-4000-8000-000000000001"  # the portal as a public client of the token endpoint


@dataclass
class ApiError(Exception):
    """An ARM error answer: shown to the person as the API said it (``target`` names the form field)."""

    status: int
    code: str
    message: str
    target: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def error_of(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return ApiError(response.status_code, str(err.get("code")), str(err.get("message")), err.get("target"))
    if isinstance(err, str):  # the token endpoint's OAuth2 shape
        return ApiError(response.status_code, err, str(body.get("error_description", "")))
    return ApiError(response.status_code, "Error", response.text[:300] or f"HTTP {response.status_code}")


class Arm:
    """One per server; every call names the token it acts with."""

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, timeout=120)

    async def request(
        self, token: str, method: str, path: str, api_version: str, body: Any = None, **query: str
    ) -> httpx.Response:
        params = {"api-version": api_version, **query}
        content = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        return await self._client.request(method, path, params=params, content=content, headers=headers)

    async def call(self, token: str, method: str, path: str, api_version: str, body: Any = None, **query: str) -> Any:
        """The answer's JSON (None for an empty body); an error answer raises :class:`ApiError`."""
        r = await self.request(token, method, path, api_version, body, **query)
        if r.status_code >= 400:
            raise error_of(r)
        return r.json() if r.content else None

    async def list_all(self, token: str, path: str, api_version: str, **query: str) -> list[dict[str, Any]]:
        """Every item of a list, following nextLink; a bare-array answer (Compute.Admin) is the list itself."""
        answer = await self.call(token, "GET", path, api_version, **query)
        if isinstance(answer, list):
            return answer
        items: list[dict[str, Any]] = list(answer.get("value", []))
        next_link = answer.get("nextLink")
        while next_link:
            r = await self._client.get(next_link, headers={"Authorization": f"Bearer {token}"})
            if r.status_code >= 400:
                raise error_of(r)
            page = r.json()
            items += page.get("value", [])
            next_link = page.get("nextLink")
        return items

    async def password_token(self, name: str, password: str, client: tuple[str, int]) -> dict[str, Any]:
        """A user's token from the token endpoint (the password grant), as the browser's address asks for it, so
        the endpoint's sign-in limits apply per person and per address exactly as to any other client."""
        transport = httpx.ASGITransport(app=self.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=self.base_url, timeout=60) as c:
            r = await c.post(
                "/organizations/oauth2/v2.0/token",
                data={
                    "grant_type": "password",
                    "client_id": PORTAL_CLIENT_ID,
                    "username": name,
                    "password": password,
                    "scope": f"{self.base_url}/.default",
                },
            )
        if r.status_code != 200:
            raise error_of(r)
        answer: dict[str, Any] = r.json()
        return answer

    async def close(self) -> None:
        await self._client.aclose()
