"""Operator pages for people and subscriptions: create a user, give them a subscription, reset a password,
disable, enable or delete them - each an admin API call (``Altostratus.Identity.Admin/users``,
``Microsoft.Subscriptions.Admin/subscriptions``) with the operator's token; the API's errors are shown next to
the field their ``target`` names."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from altostratus.portal.arm import IDENTITY_ADMIN_API, SUBS_ADMIN_API, ApiError
from altostratus.portal.operator_data import Admin, admin_for
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, back_to, first, page, take_field_error

FIELDS = {"properties.password": "password", "userName": "name", "properties.role": "role"}


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def admin(session: PortalSession) -> Admin:
        return await admin_for(arm, session)

    def users_path(a: Admin, name: str = "") -> str:
        base = f"/subscriptions/{a.sub}/providers/Altostratus.Identity.Admin/users"
        return f"{base}/{name}" if name else base

    async def users_page(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        users, subs = await asyncio.gather(a.users(), a.subscriptions())
        owned: dict[str, list[dict[str, Any]]] = {}
        for sub in subs:
            owned.setdefault(str(sub["properties"].get("owner")), []).append(sub)
        error = take_field_error(session)
        return portal.render(request, "operator_users.html", session, users=users, owned=owned, error=error)

    def back(session: PortalSession, err: ApiError | None = None, field: str = "_form", message: str = "") -> Response:
        return back_to("/admin/users", session, err, fields=FIELDS, field=field, message=message)

    async def create_user(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        name = first(form, "name").strip()
        if not name:
            return back(session, ApiError(400, "InvalidParameter", "Enter a user name.", "userName"))
        props = {"role": first(form, "role", "tenant"), "password": first(form, "password")}
        try:
            await arm.call(session.token, "PUT", users_path(a, name), IDENTITY_ADMIN_API, {"properties": props})
        except ApiError as err:
            if err.status in (401, 403):
                raise
            return back(session, err)
        return back(session, message=f"User {name} created.")

    async def change_user(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        name, action = first(form, "user"), first(form, "action")
        try:
            if action == "delete":
                await arm.call(session.token, "DELETE", users_path(a, name), IDENTITY_ADMIN_API)
                return back(session, message=f"User {name} deleted.")
            props: dict[str, Any]
            if action in ("disable", "enable"):
                props = {"enabled": action == "enable"}
            elif action == "password":
                props = {"password": first(form, "password")}
            else:
                return back(session, message="Choose an action.")
            await arm.call(session.token, "PUT", users_path(a, name), IDENTITY_ADMIN_API, {"properties": props})
        except ApiError as err:
            if err.status in (401, 403):
                raise
            return back(session, err, field=f"user:{name}")
        done = {"disable": "disabled", "enable": "enabled", "password": "has a new password"}[action]
        return back(session, message=f"{name} {done}.")

    async def create_subscription(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        a = await admin(session)
        owner, display = first(form, "owner"), first(form, "display_name").strip()
        path = f"/subscriptions/{a.sub}/providers/Microsoft.Subscriptions.Admin/subscriptions/{uuid.uuid4()}"
        body = {"properties": {"displayName": display, "owner": owner}}
        try:
            await arm.call(session.token, "PUT", path, SUBS_ADMIN_API, body)
        except ApiError as err:
            if err.status in (401, 403):
                raise
            return back(session, err, field=f"user:{first(form, 'user')}")
        return back(session, message=f"Subscription {display or '(unnamed)'} created for {first(form, 'user')}.")

    return [
        ("/admin/users", "GET", page(portal, users_page, operator=True)),
        ("/admin/users", "POST", page(portal, create_user, operator=True)),
        ("/admin/users/change", "POST", page(portal, change_user, operator=True)),
        ("/admin/users/subscription", "POST", page(portal, create_subscription, operator=True)),
    ]
