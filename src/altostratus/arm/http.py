"""Response helpers every provider uses: JSON bodies, paging with absolute nextLink, ETags."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.responses import Response

from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError

JSON_TYPE = "application/json; charset=utf-8"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

T = TypeVar("T")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, headers=headers, media_type=JSON_TYPE)


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers=headers)


def int_query(ctx: RequestContext, name: str, *, minimum: int = 1) -> int | None:
    raw = ctx.query.get(name.lower())
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ArmError(400, "InvalidQueryParameterValue", f"The value '{raw}' of '{name}' is not an integer.") from None
    if value < minimum:
        raise ArmError(400, "InvalidQueryParameterValue", f"The value of '{name}' must be at least {minimum}.")
    return value


def paged(ctx: RequestContext, items: Sequence[T], render: Callable[[T], dict[str, Any]]) -> Response:
    """``{"value": [...], "nextLink"?}`` with an absolute nextLink carrying ``$skiptoken``.

    ``$top`` sets the page size (as ARM does: the SDK's pager then follows nextLink to the end).
    """
    size = min(int_query(ctx, "$top") or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = int_query(ctx, "$skiptoken", minimum=0) or 0
    page = items[start : start + size]
    body: dict[str, Any] = {"value": [render(i) for i in page]}
    if start + size < len(items):
        query = {k: v for k, v in ctx.query.items() if k not in ("api-version", "$skiptoken")}
        query["$skiptoken"] = str(start + size)
        body["nextLink"] = ctx.url(ctx.path, api_version=ctx.api_version, **query)
    return json_response(body)


def new_etag() -> str:
    return f'"{uuid.uuid4().hex}"'


def check_preconditions(ctx: RequestContext, current_etag: str | None) -> None:
    """If-Match / If-None-Match on writes (412 PreconditionFailed on mismatch)."""
    if_match = ctx.headers.get("if-match")
    if if_match is not None:
        wanted = {t.strip() for t in if_match.split(",")}
        if current_etag is None or ("*" not in wanted and current_etag not in wanted):
            raise ArmError(
                412,
                "PreconditionFailed",
                f"The condition specified using HTTP conditional header(s) is not met: If-Match '{if_match}' "
                f"does not match the current ETag '{current_etag or '(no resource)'}'.",
            )
    if_none_match = ctx.headers.get("if-none-match")
    if if_none_match is not None and current_etag is not None:
        wanted = {t.strip() for t in if_none_match.split(",")}
        if "*" in wanted or current_etag in wanted:
            raise ArmError(
                412,
                "PreconditionFailed",
                "The condition specified using HTTP conditional header(s) is not met: the resource exists "
                f"(If-None-Match '{if_none_match}').",
            )


def validate_tags(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ArmError(400, "InvalidTag", "Tags must be an object of string values.", "tags")
    if len(tags) > 50:
        raise ArmError(400, "InvalidTag", "A resource can have at most 50 tags.", "tags")
    for k, v in tags.items():
        if not k or len(k) > 512 or any(c in k for c in "<>%&\\?/"):
            raise ArmError(400, "InvalidTagNameCharacters", f"The tag name '{k}' is invalid.", "tags")
        if len(v) > 256:
            raise ArmError(400, "InvalidTag", f"The value of tag '{k}' exceeds 256 characters.", "tags")
    return dict(tags)
