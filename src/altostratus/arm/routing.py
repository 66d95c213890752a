"""Case-insensitive ARM routing.

ARM path segments and names are case-insensitive (the SDK itself mixes ``resourcegroups`` and
``resourceGroups``), so templates are matched segment by segment on lower-cased literals while
parameter values keep the caller's casing. More literal segments win over parameters, so
``.../providers/Microsoft.Resources/deployments`` beats a generic ``.../providers/{ns}/{type}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.responses import Response

    from altostratus.arm.context import Platform, RequestContext

Handler = Callable[["RequestContext"], "Response"]
# Decides on the event loop, before any thread or transaction, from the server's services, the raw body and the
# peer address: an answer refuses the request outright (the token endpoint's 429s), None hands it on.
Gate = Callable[["Platform", bytes, "str | None"], "Response | None"]
# Work a handler needs done before its transaction opens (network fetches, building files): given the path
# parameters, the raw body and the server's parts, it returns what the pipeline puts in the handler's
# ``ctx.extra``. A write transaction holds the database's write lock, so nothing slow may run inside one.
Prepare = Callable[[dict[str, str], bytes, "Platform"], dict[str, Any]]


class Access(Enum):
    PUBLIC = "public"  # no token (metadata endpoints, token issuance)
    AUTHENTICATED = "authenticated"
    OPERATOR = "operator"


# api-version policy of a route: a resource type whose registered versions apply, or one of these.
ANY_VERSION = "*"  # required, any value (operation-status URLs carry the caller's own)
NO_VERSION = ""  # not required (OAuth endpoints)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    resource_type: str  # "Namespace/type", ANY_VERSION or NO_VERSION
    access: Access
    segments: tuple[tuple[bool, str], ...]  # (is_parameter, lower-case literal or parameter name)
    # A GET whose answer depends only on the request, the caller and the database rows it reads (no driver,
    # clock or file): the pipeline may reuse its answer until a commit changes a table it read.
    reads_rows_only: bool = False
    gate: Gate | None = None
    prepare: Prepare | None = None

    @property
    def literal_count(self) -> int:
        return sum(1 for is_param, _ in self.segments if not is_param)


def split_path(path: str) -> list[str]:
    """Path segments without empty ones, so ``//metadata`` (msrestazure concatenation) still matches."""
    return [s for s in path.split("/") if s]


def missing_type(segments: list[str], provider_index: int) -> str:
    """The resource type a path names after ``providers/{namespace}``, children included: types and names
    alternate, so ``virtualMachineScaleSets/x/extensions`` names ``virtualMachineScaleSets/extensions``. The
    "no such route" error names this (ARM does), not the parent type that does exist."""
    rest = segments[provider_index + 2 :]
    return "/".join(rest[0::2])


def parse_template(template: str) -> tuple[tuple[bool, str], ...]:
    out = []
    for seg in split_path(template):
        if seg.startswith("{") and seg.endswith("}"):
            out.append((True, seg[1:-1]))
        else:
            out.append((False, seg.lower()))
    return tuple(out)


MATCH_CACHE_SIZE = 4096


class Router:
    def __init__(self) -> None:
        # Bucketed by segment count; each bucket sorted most-literal first.
        self._buckets: dict[int, list[Route]] = {}
        # (method, lower-cased segments) -> what the search found: a bucket holds ~100 templates, and
        # trying them one by one was the largest cost of a cached read. Parameters are taken per request.
        self._found: dict[tuple[str, tuple[str, ...]], tuple[Route | None, bool]] = {}

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        resource_type: str,
        access: Access = Access.AUTHENTICATED,
        reads_rows_only: bool = False,
        gate: Gate | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        segments = parse_template(template)
        if reads_rows_only and method.upper() != "GET":
            raise ValueError(f"{method} {template}: only a GET's answer can be reused")
        route = Route(
            method.upper(), template, handler, resource_type, access, segments, reads_rows_only, gate, prepare
        )
        bucket = self._buckets.setdefault(len(segments), [])
        bucket.append(route)
        bucket.sort(key=lambda r: -r.literal_count)
        self._found.clear()

    def match(self, method: str, segments: list[str]) -> tuple[Route | None, dict[str, str], bool]:
        """Returns (route, parameters, path_exists_for_another_method)."""
        lowered = tuple([s.lower() for s in segments])
        key = (method, lowered)
        found = self._found.get(key)
        if found is None:
            found = self._search(method, lowered)
            if len(self._found) >= MATCH_CACHE_SIZE:
                self._found.clear()
            self._found[key] = found
        route, other_method = found
        if route is None:
            return None, {}, other_method
        params = {value: seg for (is_param, value), seg in zip(route.segments, segments, strict=True) if is_param}
        return route, params, False

    def _search(self, method: str, lowered: tuple[str, ...]) -> tuple[Route | None, bool]:
        other_method = False
        for route in self._buckets.get(len(lowered), ()):
            for (is_param, value), low in zip(route.segments, lowered, strict=True):
                if not is_param and value != low:
                    break
            else:
                if route.method == method:
                    return route, False
                other_method = True
        return None, other_method

    def routes(self) -> list[Route]:
        return [r for bucket in self._buckets.values() for r in bucket]
