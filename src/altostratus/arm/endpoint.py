"""The HTTP side of the pipeline: turns an HTTP request into a :class:`PipelineRequest` and the answer (or the
error) into an HTTP response with ARM's request-id headers and an access-log line.

Every failure becomes a CloudError; an unexpected exception is logged with the request id and still answered
in the ARM shape (500 InternalServerError), never as a bare traceback.
"""

from __future__ import annotations

import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from altostratus.arm import access_log
from altostratus.arm.context import Caller
from altostratus.arm.errors import ArmError
from altostratus.arm.http import json_response
from altostratus.arm.pipeline import Pipeline, PipelineRequest
from altostratus.arm.request_ids import new_request_id
from altostratus.arm.routing import Access, split_path

log = logging.getLogger("altostratus.api")


def _authorization_error_headers(err: ArmError, base_url: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{base_url}/", error="invalid_token", '
        f'error_description="{err.code}"'
    }


def internal_error(request_id: str) -> Response:
    return json_response(
        {
            "error": {
                "code": "InternalServerError",
                "message": f"The server encountered an internal error. Request id: {request_id}.",
            }
        },
        500,
    )


class HttpEndpoint:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def handle(self, request: Request) -> Response:
        start = time.perf_counter()
        request_id = new_request_id()
        base_url = _base_url(request)
        caller: Caller | None = None
        try:
            response, caller = await self._handle(request, request_id, base_url)
        except ArmError as err:
            headers = _authorization_error_headers(err, base_url) if err.status == 401 else None
            response = json_response(err.body(), err.status, headers)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id)
            response = internal_error(request_id)
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
            )
        return response

    async def _handle(self, request: Request, request_id: str, base_url: str) -> tuple[Response, Caller | None]:
        pipeline = self.pipeline
        method = request.method.upper()
        segments = split_path(request.url.path)
        route, params, other_method = pipeline.services.router.match(method, segments)
        caller: Caller | None = None
        if route is None or route.access is not Access.PUBLIC:
            caller = pipeline.services.tokens.verify_header(request.headers.get("authorization"))
        description = PipelineRequest(
            method=method,
            path=request.url.path,
            segments=segments,
            query={k.lower(): v for k, v in request.query_params.items()},
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            base_url=base_url,
            request_id=request_id,
        )
        admitted = pipeline.admit(description, route, params, other_method, caller)
        response, _ctx = await run_in_threadpool(pipeline.execute, admitted)
        return response, caller


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"
