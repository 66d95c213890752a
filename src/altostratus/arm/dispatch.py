"""The one request pipeline every ARM call goes through.

Order matters and mirrors ARM: match the route (to learn whether it is public), authenticate, refuse
admin namespaces to tenants, check the api-version, check the subscription belongs to the caller, then
run the handler in one database transaction. Every failure becomes a CloudError; an unexpected exception
is logged with the request id and still answered in the ARM shape.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from altostratus.arm import access_log
from altostratus.arm.context import Caller, Platform, RequestContext
from altostratus.arm.errors import ArmError, authorization_failed
from altostratus.arm.http import json_response
from altostratus.arm.request_ids import new_request_id
from altostratus.arm.routing import ANY_VERSION, NO_VERSION, Access, Route, split_path
from altostratus.store.models import Principal, Subscription

log = logging.getLogger("altostratus.api")

ADMIN_NAMESPACE = re.compile(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*\.Admin$", re.IGNORECASE)


def _authorization_error_headers(err: ArmError, base_url: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{base_url}/", error="invalid_token", '
        f'error_description="{err.code}"'
    }


class Dispatcher:
    def __init__(self, services: Platform) -> None:
        self.services = services

    async def endpoint(self, request: Request) -> Response:
        start = time.perf_counter()
        request_id = new_request_id()
        caller: Caller | None = None
        try:
            response, caller = await self._handle(request, request_id)
        except ArmError as err:
            headers = _authorization_error_headers(err, _base_url(request)) if err.status == 401 else None
            response = json_response(err.body(), err.status, headers)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id)
            response = json_response(
                {
                    "error": {
                        "code": "InternalServerError",
                        "message": f"The server encountered an internal error. Request id: {request_id}.",
                    }
                },
                500,
            )
        response.headers["x-ms-request-id"] = request_id
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            response.headers["x-ms-client-request-id"] = client_request_id
        response.headers["x-ms-correlation-request-id"] = request.headers.get("x-ms-correlation-request-id", request_id)
        if access_log.enabled():
            access_log.request(
                request_id=request_id,
                method=request.method,
                path=request.url.path,
                api_version={k.lower(): v for k, v in request.query_params.items()}.get("api-version"),
                status=response.status_code,
                start=start,
                client=caller.client_id if caller else None,
                client_request_id=client_request_id,
                lane="general",
            )
        return response

    async def _handle(self, request: Request, request_id: str) -> tuple[Response, Caller | None]:
        services = self.services
        method = request.method.upper()
        segments = split_path(request.url.path)
        route, params, other_method = services.router.match(method, segments)

        caller: Caller | None = None
        if route is None or route.access is not Access.PUBLIC:
            caller = services.tokens.verify_header(request.headers.get("authorization"))
        if caller is not None and not caller.is_operator:
            # Checked before route existence: tenants learn nothing about admin APIs, not even which exist.
            admin = admin_namespace(segments)
            if admin or (route is not None and route.access is Access.OPERATOR):
                raise authorization_failed(caller.client_id, f"{admin or 'admin'}/{method.lower()}", request.url.path)
        if route is None:
            raise self._no_route(method, segments, other_method)

        query = {k.lower(): v for k, v in request.query_params.items()}
        api_version = self._check_api_version(route, query.get("api-version"))
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}

        def run() -> Response:
            epochs = cache_epochs(services)
            with services.db.session(readonly=method in ("GET", "HEAD")) as db:
                ctx = RequestContext(
                    method=method,
                    path="/" + "/".join(segments),
                    params=params,
                    query=query,
                    headers=headers,
                    raw_body=body,
                    base_url=_base_url(request),
                    api_version=api_version,
                    caller=caller,
                    db=db,
                    services=services,
                    request_id=request_id,
                )
                if caller is not None:
                    check_caller(ctx, caller, segments, epochs)
                response = route.handler(ctx)
            if ctx.extra.get("wake_operations"):
                services.operations.wake()
            for task in ctx.after_commit:
                task()
            return response

        return await run_in_threadpool(run), caller

    def _check_api_version(self, route: Route, value: str | None) -> str | None:
        if route.resource_type == NO_VERSION:
            return value
        if not value:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if route.resource_type == ANY_VERSION:
            return value
        rtype = self.services.registry.get_type(route.resource_type)
        assert rtype is not None, f"route {route.template} names unregistered type {route.resource_type}"
        if value.lower() in (v.lower() for v in rtype.api_versions):
            return value
        supported = ", ".join(rtype.api_versions)
        if rtype.arm_native:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{value}' is invalid. The supported versions are '{supported}'.",
            )
        raise ArmError(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{self.services.settings.location}' and API "
            f"version '{value}' for type '{rtype.name}'. The supported api-versions are '{supported}'. The "
            f"supported locations are '{self.services.settings.location}'.",
        )

    def _no_route(self, method: str, segments: list[str], other_method: bool) -> ArmError:
        path = "/" + "/".join(segments)
        if other_method:
            return ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
        lowered = [s.lower() for s in segments]
        if "providers" in lowered:
            i = lowered.index("providers")
            if i + 1 < len(segments):
                ns = self.services.registry.get_namespace(segments[i + 1])
                if ns is None:
                    return ArmError(
                        400,
                        "InvalidResourceNamespace",
                        f"The resource namespace '{segments[i + 1]}' is invalid.",
                    )
                if i + 2 < len(segments):
                    return ArmError(
                        400,
                        "InvalidResourceType",
                        f"The resource type '{segments[i + 2]}' could not be found in the namespace '{ns.name}'.",
                    )
        return ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'.")


def cache_epochs(services: Platform) -> tuple[int, int]:
    """The principal and subscription caches' epochs, read before a transaction takes its snapshot: an entry
    forgotten after this point is not refilled from a snapshot that may predate the write behind the forget."""
    return services.tokens.epoch, services.subscriptions.epoch


def check_caller(ctx: RequestContext, caller: Caller, segments: list[str], epochs: tuple[int, int]) -> None:
    """The checks that need the request's transaction: the principal still exists, the subscription in the
    path is the caller's, and a subscription that is not Enabled is only read."""
    db = ctx.db

    def exists(client_id: str) -> bool:
        return db.get(Principal, client_id) is not None

    ctx.services.tokens.check_principal_active(caller.client_id, exists, epochs[0])
    if "subscriptionId" in ctx.params:
        sub = ctx.services.subscriptions.check(db, caller, ctx.params["subscriptionId"], epochs[1])
        ctx.extra["subscription"] = sub
        check_writable(sub, ctx.method, segments)


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def admin_namespace(segments: list[str]) -> str | None:
    """The ``*.Admin`` namespace a path addresses (the segment after ``providers``), if any."""
    for i, seg in enumerate(segments[:-1]):
        if seg.lower() == "providers" and ADMIN_NAMESPACE.match(segments[i + 1]):
            return segments[i + 1]
    return None


def check_writable(sub: Subscription, method: str, segments: list[str]) -> None:
    """A subscription that is not Enabled is read-only for its own resources (the operator can still fix it)."""
    if method in ("GET", "HEAD") or sub.state == "Enabled" or admin_namespace(segments) is not None:
        return
    raise ArmError(
        409,
        "ReadOnlyDisabledSubscription",
        f"The subscription '{sub.subscription_id}' is {sub.state.lower()} and therefore marked as read only. "
        "You cannot perform any write actions on this subscription until it is re-enabled.",
    )
