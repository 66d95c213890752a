"""Requests the deployment engine makes to resource providers: through the router, as the deploying caller.

A deployment never has a second implementation of a resource, nor of the request checks. Each resource operation
(PUT, GET for ``reference()``, POST for ``list*()``, DELETE in Complete mode, GET on a polling URL) is a request
through the one pipeline (arm/pipeline.py), exactly as an HTTP one; only authentication is skipped, since the
caller is the principal who started the deployment. This module only translates to and from InternalResponse.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from altostratus.arm.caller import Caller
from altostratus.arm.errors import ArmError
from altostratus.arm.pipeline import Pipeline, PipelineRequest
from altostratus.arm.routing import split_path
from altostratus.deployments.platform import deployments_platform

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
        self.caller = caller
        self.base_url = base_url
        self._pipeline = Pipeline(services, deployments_platform(services).router)

    def request(self, method: str, url: str, *, api_version: str | None = None, body: Any = None) -> InternalResponse:
        """``url`` may be absolute (a polling URL a provider returned) or a path; its query is kept."""
        parts = urlsplit(url)
        query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        if api_version is not None:
            query["api-version"] = api_version
        segments = split_path(parts.path)
        request_id = str(uuid.uuid4())
        request = PipelineRequest(
            method=method.upper(),
            path="/".join(segments),
            segments=segments,
            query=query,
            headers={"content-type": "application/json", "x-ms-client-request-id": request_id},
            body=json.dumps(body).encode() if body is not None else b"",
            base_url=self.base_url,
            request_id=request_id,
            caller=self.caller,
        )
        try:
            reply = self._pipeline.call(request)
        except ArmError as err:
            return InternalResponse(err.status, {}, err.body(), request_id)
        parsed = json.loads(reply.body) if reply.body.strip() else None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in reply.headers}
        return InternalResponse(reply.status, headers, parsed, request_id)
