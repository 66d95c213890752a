"""Requests the deployment engine makes to resource providers: through the router, as the deploying caller.

A deployment never has a second implementation of a resource. Each resource operation (PUT, GET for
``reference()``, POST for ``list*()``, DELETE in Complete mode, GET on a polling URL) is an internal request that
goes through the same steps as an HTTP one: route match, admin-namespace refusal, api-version check, subscription
check, then the provider's handler in its own database transaction, followed by the work the handler scheduled for
after its commit. Only authentication is skipped: the caller is the principal who started the deployment.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from altostratus.arm.context import Caller, RequestContext
from altostratus.arm.dispatch import Dispatcher, admin_namespace, cache_epochs, check_caller
from altostratus.arm.errors import ArmError, authorization_failed
from altostratus.arm.routing import Access, split_path

if TYPE_CHECKING:
    from altostratus.arm.context import Platform


@dataclass(frozen=True)
class InternalResponse:
    status: int
    headers: dict[str, str]  # lower-case keys
    body: Any  # parsed JSON, or None for an empty body
    request_id: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> dict[str, Any]:
        """The CloudError of a failed response (``{"code", "message", ...}``)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return dict(self.body["error"])
        return {"code": status_name(self.status), "message": f"The request failed with status {self.status}."}


STATUS_NAMES = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "NoContent", 400: "BadRequest", 401: "Unauthorized",
    403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict", 412: "PreconditionFailed",
    429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable",
}  # fmt: skip


def status_name(status: int) -> str:
    """The ``HttpStatusCode`` name ARM writes in ``statusCode`` of deployment operations."""
    return STATUS_NAMES.get(status, str(status))


class InternalClient:
    """Internal requests on behalf of one caller; thread-safe (every request has its own transaction)."""

    def __init__(self, services: Platform, caller: Caller, base_url: str) -> None:
        self.services = services
        self.caller = caller
        self.base_url = base_url
        self._dispatcher = Dispatcher(services)

    def request(self, method: str, url: str, *, api_version: str | None = None, body: Any = None) -> InternalResponse:
        """``url`` may be absolute (a polling URL a provider returned) or a path; its query is kept."""
        method = method.upper()
        parts = urlsplit(url)
        query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        if api_version is not None:
            query["api-version"] = api_version
        segments = split_path(parts.path)
        request_id = str(uuid.uuid4())
        try:
            response, ctx = self._run(method, segments, query, body, request_id)
        except ArmError as err:
            return InternalResponse(err.status, {}, err.body(), request_id)
        if ctx.extra.get("wake_operations"):
            self.services.operations.wake()
        for task in ctx.after_commit:
            task()
        raw = bytes(response.body) if response.body else b""
        parsed = json.loads(raw) if raw.strip() else None
        headers = {k.lower(): v for k, v in response.headers.items()}
        return InternalResponse(response.status_code, headers, parsed, request_id)

    def _run(
        self, method: str, segments: list[str], query: dict[str, str], body: Any, request_id: str
    ) -> tuple[Any, RequestContext]:
        services = self.services
        route, params, other_method = services.router.match(method, segments)
        if not self.caller.is_operator:
            admin = admin_namespace(segments)
            if admin or (route is not None and route.access is Access.OPERATOR):
                raise authorization_failed(
                    self.caller.client_id, f"{admin or 'admin'}/{method.lower()}", "/".join(segments)
                )
        if route is None:
            raise self._dispatcher._no_route(method, segments, other_method)
        api_version = self._dispatcher._check_api_version(route, query.get("api-version"))
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json", "x-ms-client-request-id": request_id}
        epochs = cache_epochs(services)
        with services.db.session(readonly=method in ("GET", "HEAD")) as db:
            ctx = RequestContext(
                method=method,
                path="/" + "/".join(segments),
                params=params,
                query=query,
                headers=headers,
                raw_body=raw,
                base_url=self.base_url,
                api_version=api_version,
                caller=self.caller,
                db=db,
                services=services,
                request_id=request_id,
            )
            check_caller(ctx, self.caller, segments, epochs)
            response = route.handler(ctx)
        return response, ctx
