"""``Altostratus.Identity.Admin/users``: the people of the local directory (the operator's side of sign-in).

A user is a name and a password over a principal (store/models.py ``User``): the principal is what the API
authorizes, so a user created with ``role: operator`` is an operator, and a tenant user owns subscriptions the
way any principal does (``Microsoft.Subscriptions.Admin`` ``owner`` = the user's ``objectId``). Passwords are
write-only: set on creation or by a later PUT (a reset), never returned. Disabling a user stops their
sign-ins and the tokens they already hold (the pipeline refuses a disabled user's principal).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.http import empty, json_response, paged
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.arm.user_auth import hash_password, password_problem
from altostratus.resources.directory import create_user
from altostratus.store.db import utcnow
from altostratus.store.models import Principal, Subscription, User

IDENTITY_NS = "Altostratus.Identity.Admin"
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
ROLES = ("tenant", "operator")
VERSIONS = ("2024-01-01",)


def _base(ctx: RequestContext) -> str:
    return f"/subscriptions/{ctx.params['subscriptionId']}/providers/{IDENTITY_NS}/users"


def render_user(ctx: RequestContext, user: User, role: str) -> dict[str, Any]:
    return {
        "id": f"{_base(ctx)}/{user.name}",
        "name": user.name,
        "type": f"{IDENTITY_NS}/users",
        "properties": {
            "userName": user.name,
            "objectId": user.client_id,
            "role": role,
            "enabled": user.enabled,
            "createdTime": user.created_at.isoformat(),
            "passwordChangedTime": user.password_changed_at.isoformat(),
        },
    }


def _name(ctx: RequestContext) -> str:
    name = ctx.params["userName"]
    if not USER_NAME.match(name):
        raise invalid_parameter(
            f"The user name '{name}' is not valid: 1 to 64 letters, digits, '.', '_', '-' or '@', starting with a "
            "letter or digit.",
            "userName",
        )
    return name


def _find(ctx: RequestContext, name: str) -> User | None:
    return ctx.db.scalar(select(User).where(User.name_key == name.lower()))


def _role(ctx: RequestContext, user: User) -> str:
    principal = ctx.db.get(Principal, user.client_id)
    return principal.role if principal is not None else "tenant"


def list_users(ctx: RequestContext) -> Response:
    rows = ctx.db.execute(select(User, Principal.role).join(Principal).order_by(User.created_at)).all()
    return paged(ctx, rows, lambda row: render_user(ctx, row[0], row[1]))


def get_user(ctx: RequestContext) -> Response:
    name = _name(ctx)
    user = _find(ctx, name)
    if user is None:
        raise ArmError(404, "UserNotFound", f"The user '{name}' could not be found.")
    return json_response(render_user(ctx, user, _role(ctx, user)))


def _password(ctx: RequestContext, props: dict[str, Any]) -> str:
    """The hash of the body's new password (hashed on the login limits' workers, before any write)."""
    problem = password_problem(props.get("password"))
    if problem:
        raise invalid_parameter(problem, "properties.password")
    hashed: str = ctx.services.logins.hash_off_thread(hash_password, props["password"])
    return hashed


def put_user(ctx: RequestContext) -> Response:
    """Creates a user (201) or changes one (200): a new password, enabled or not. The role cannot change (it is
    the principal's; make another user)."""
    name = _name(ctx)
    props = ctx.properties()
    role = props.get("role")
    if role is not None and role not in ROLES:
        raise invalid_parameter("'role' must be 'tenant' or 'operator'.", "properties.role")
    enabled = props.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise invalid_parameter("'enabled' must be true or false.", "properties.enabled")
    user = _find(ctx, name)
    if user is None:
        if "password" not in props:
            raise invalid_parameter("'password' is required to create a user.", "properties.password")
        user, principal = create_user(ctx.db, name, _password(ctx, props), role or "tenant")
        if enabled is False:
            user.enabled = False
        return json_response(render_user(ctx, user, principal.role), 201)
    current = _role(ctx, user)
    if role is not None and role != current:
        raise ArmError(409, "PropertyChangeNotAllowed", "A user's role cannot change.", "properties.role")
    if "password" in props:
        user.password_hash = _password(ctx, props)
        user.password_changed_at = utcnow()
    if enabled is not None and enabled != user.enabled:
        if not enabled and user.client_id == ctx.require_caller.client_id:
            raise ArmError(409, "Conflict", "A user cannot disable themselves.", "properties.enabled")
        user.enabled = enabled
        _forget(ctx, user.client_id)
    return json_response(render_user(ctx, user, current), 200)


def _forget(ctx: RequestContext, client_id: str) -> None:
    """Stop trusting the principal's cached check now and again after the commit (as deleting a principal)."""
    tokens = ctx.services.tokens
    tokens.forget_client(client_id)
    ctx.after_commit.append(lambda: tokens.forget_client(client_id))


def delete_user(ctx: RequestContext) -> Response:
    """Deletes the user and the principal they sign in as (refused while it owns subscriptions)."""
    user = _find(ctx, _name(ctx))
    if user is None:
        return empty(204)
    cid = user.client_id
    if cid == ctx.require_caller.client_id:
        raise ArmError(409, "Conflict", "A user cannot delete themselves.")
    owned = ctx.db.scalar(select(func.count()).select_from(Subscription).where(Subscription.owner_client_id == cid))
    if owned:
        raise ArmError(409, "Conflict", f"The user owns {owned} subscription(s); reassign or delete them first.")
    ctx.db.delete(user)
    principal = ctx.db.get(Principal, cid)
    if principal is not None:
        ctx.db.delete(principal)
    _forget(ctx, cid)
    return empty(200)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    registry.add_type(IDENTITY_NS, "users", VERSIONS, always_registered=True)
    users = "/subscriptions/{subscriptionId}/providers/" + IDENTITY_NS + "/users"
    t = f"{IDENTITY_NS}/users"
    router.add("GET", users, list_users, resource_type=t, access=Access.OPERATOR)
    for method, fn in (("GET", get_user), ("PUT", put_user), ("DELETE", delete_user)):
        router.add(method, users + "/{userName}", fn, resource_type=t, access=Access.OPERATOR)
